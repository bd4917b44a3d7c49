# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The authentik backend against its double (tests/idp_doubles/authentik.py), issue 24.

The double is an HTTPS server on 127.0.0.1 checked against the authentik-client models (every
request body and every answer); its sync really calls the realm's SCIM URL, which is a
Zulip-like SCIM server on 127.0.0.1 (``_tls_fixtures.loopback_server``) reached through a host
map, so "verify" passes only when the token authentik now holds is the one Zulip accepts.
NETWORK RULE: nothing here contacts any address but 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _idp_double_loader as loader  # noqa: E402  pylint: disable=wrong-import-position

tlsfix, doubles, json_double, strict = loader.backend_kit("authentik", vendor_package="authentik_client")

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_api_authentik as authentik  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpRealm  # noqa: E402

API_TOKEN = "ak-API-token-never-shown-0123456789"
VIEW_TOKEN = "ak-VIEW-only-token-never-shown-0123"
OLD_SCIM = "zulip-OLD-scim-token-never-shown-000000"
NEW_SCIM = "zulip-NEW-scim-token-never-shown-111111"
HOST = "acme.zulip.test"
BASE_URL = "https://%s/scim/v2" % HOST
SECRETS = (API_TOKEN, VIEW_TOKEN, OLD_SCIM, NEW_SCIM)


ca = loader.ca_fixture("authentik")
refusal = loader.refusal_check(SECRETS)


@pytest.fixture()
def zulip(ca):
    """The realm's SCIM endpoint: Zulip-like, on 127.0.0.1, accepting OLD_SCIM until the test rotates it."""
    certificate = ca.issue([HOST], "zulip-acme")
    with tlsfix.loopback_server({HOST: OLD_SCIM}, certificate) as (server, url):
        yield server, int(url.rsplit(":", 1)[1])


@pytest.fixture()
def idp(ca, zulip):
    server = doubles.AuthentikDouble(json_double.loopback_certificate(ca, "authentik"),
                                     {API_TOKEN: "change", VIEW_TOKEN: "view"}, ca_path=ca.path,
                                     resolve={HOST: ("127.0.0.1", zulip[1])})
    server.add_provider(7, "Zulip acme", "https://old.example.test/scim/v2", OLD_SCIM)
    server.add_provider(8, "Zulip oauth", BASE_URL, "", auth_mode="oauth")
    with json_double.running(server):
        yield server
        server.wait_for_syncs()
        assert server.violations == []


def options(idp, **more) -> dict:
    return {"url": idp.url, "api_token": API_TOKEN, "ca_path": str(idp_ca(idp)), "sync_timeout": 5, **more}


def idp_ca(idp) -> Path:
    return idp.ca_path


def realm(provider_id=7) -> IdpRealm:
    return IdpRealm(subdomain="acme", idp="authentik", base_url=BASE_URL, settings={"provider_id": provider_id})


STATUS = "/api/v3/providers/scim/7/sync/status/"
PROVIDER = "/api/v3/providers/scim/7/"


def test_the_table_names_the_backend():
    assert _idp_apis.BACKEND_MODULES["authentik"] == "_idp_api_authentik"
    assert _idp_apis.automated("authentik")


def test_read_names_the_provider_and_its_current_url(idp):
    state = authentik.connect(options(idp), {}).read(realm())
    assert state.automated
    assert state.summary == ("SCIM provider 7 (Zulip acme) at https://old.example.test/scim/v2; the push sets its URL "
                             "to %s" % BASE_URL)
    assert idp.requests() == [("GET", PROVIDER), ("GET", STATUS)]
    assert all(e["authorization"] == "Bearer " + API_TOKEN for e in idp.log)


def test_one_rotation_in_order(idp, zulip):
    backend = _idp_apis.connect("authentik", options(idp), {})
    state = backend.read(realm())
    backend.before_zulip(realm(), state)
    zulip[0].tokens[HOST] = NEW_SCIM  # Zulip rotated: the new token 200, the old one 401
    backend.push(realm(), state, NEW_SCIM)
    backend.verify(realm(), state)
    backend.after(realm(), state)
    requests = idp.requests()
    assert requests[:5] == [("GET", PROVIDER), ("GET", STATUS), ("PATCH", PROVIDER), ("GET", PROVIDER), ("GET", STATUS)]
    assert set(requests[5:]) <= {("GET", STATUS)}
    assert idp.log[2]["body"] == {"url": BASE_URL, "token": NEW_SCIM}
    assert idp.providers[7]["url"] == BASE_URL and idp.tokens[7] == NEW_SCIM
    # The sync the save queued reached the realm with the new token, and Zulip took it.
    assert [(c["url"], c["token"], c["status"]) for c in idp.sync_calls] == [(BASE_URL, NEW_SCIM, 200)]


def test_wrong_api_token_is_refused_by_read_and_nothing_is_written(idp):
    message = refusal(authentik.connect(options(idp, api_token="ak-wrong-token"), {}).read, realm())
    assert message == ("authentik, realm acme, read: authentik refused the API token (HTTP 403): it is wrong or expired, "
                       "or its user may not view and change SCIM provider 7")
    assert idp.requests() == [("GET", PROVIDER)]
    assert idp.tokens[7] == OLD_SCIM


def test_api_token_from_the_environment(idp):
    given = options(idp)
    del given["api_token"]
    assert authentik.connect(given, {"AUTHENTIK_TOKEN": API_TOKEN}).read(realm()).automated
    assert "no API token; set api_token or AUTHENTIK_TOKEN" in refusal(authentik.connect, given, {})


def test_missing_provider(idp):
    message = refusal(authentik.connect(options(idp), {}).read, realm(99))
    assert message.endswith("authentik has no SCIM provider 99 (HTTP 404): check the realm's provider_id")


def test_an_oauth_provider_stays_manual(idp):
    state = authentik.connect(options(idp), {}).read(realm(8))
    assert not state.automated
    assert "auth_mode oauth, not a token" in state.summary
    assert "PATCH" not in [request[0] for request in idp.requests()]


def test_a_view_only_token_reads_but_cannot_push(idp):
    backend = authentik.connect(options(idp, api_token=VIEW_TOKEN), {})
    state = backend.read(realm())
    message = refusal(backend.push, realm(), state, NEW_SCIM)
    assert "push: authentik refused the API token (HTTP 403)" in message
    assert idp.tokens[7] == OLD_SCIM


def test_verify_fails_when_the_sync_fails_and_restore_puts_back_url_and_token(idp):
    backend = authentik.connect(options(idp), {})
    state = backend.read(realm())
    backend.push(realm(), state, NEW_SCIM)  # Zulip still holds OLD_SCIM: the sync gets 401
    message = refusal(backend.verify, realm(), state)
    assert message == ("authentik, realm acme, verify: authentik's sync after the push ended with status warning: see the "
                       "provider's sync status and its system tasks in authentik")
    assert [(c["token"], c["status"]) for c in idp.sync_calls] == [(NEW_SCIM, 401)]
    backend.restore(realm(), state, OLD_SCIM)
    assert idp.log[-1]["method"] == "PATCH"
    assert idp.log[-1]["body"] == {"token": OLD_SCIM, "url": "https://old.example.test/scim/v2"}
    assert idp.providers[7]["url"] == "https://old.example.test/scim/v2" and idp.tokens[7] == OLD_SCIM


def test_restore_without_a_token_touches_nothing(idp):
    """None: the IdP was never pushed to, or had no token before (a first enable): authentik is left as it is."""
    backend = authentik.connect(options(idp), {})
    state = backend.read(realm())
    before = len(idp.log)
    backend.restore(realm(), state, None)
    assert len(idp.log) == before


def test_verify_gives_up_after_sync_timeout(idp, zulip):
    idp.sync_seconds = 3
    zulip[0].tokens[HOST] = NEW_SCIM
    backend = authentik.connect(options(idp, sync_timeout=1), {})
    state = backend.read(realm())
    backend.push(realm(), state, NEW_SCIM)
    message = refusal(backend.verify, realm(), state)
    assert message == ("authentik, realm acme, verify: no successful sync within 1 s after the push (sync_timeout); last "
                       "sync status: running, still running")


def test_a_url_that_does_not_read_back_fails_verify(idp):
    backend = authentik.connect(options(idp), {})
    state = backend.read(realm())
    idp.providers[7]["url"] = "https://elsewhere.example.test/scim/v2"
    assert "the provider reads back with URL https://elsewhere.example.test/scim/v2, not %s" % BASE_URL in refusal(
        backend.verify, realm(), state)


@pytest.mark.parametrize("given, expected", [
    ({"url": "https://a.test", "api_token": API_TOKEN, "colour": "red"}, "authentik: unknown option(s) colour"),
    ({"api_token": API_TOKEN}, "authentik: option url is required"),
    ({"url": "https://a.test", "api_token": API_TOKEN + "\nX-Evil: 1"}, "authentik: api_token is not a usable credential"),
    ({"url": "https://a.test", "api_token": API_TOKEN, "timeout": "soon"}, "authentik: option timeout must be a int"),
    ({"url": "https://u:p@a.test", "api_token": API_TOKEN}, "authentik: url must not hold a user, password"),
    ({"url": "http://a.test", "api_token": API_TOKEN}, "authentik: http://a.test/api/v3 is plain HTTP to another machine"),
    ({"url": "https://a.test", "api_token": API_TOKEN, "ca_path": "/nonexistent/ca.pem"},
     "authentik: ca_path /nonexistent/ca.pem: no such file"),
])
def test_bad_options_are_refused_before_any_request(given, expected):
    assert refusal(authentik.connect, given, {}).startswith(expected)


@pytest.mark.parametrize("settings", [{}, {"provider_id": "7/../8"}, {"provider_id": 0}, {"provider_id": True}])
def test_bad_provider_ids_are_refused(idp, settings):
    bad = IdpRealm(subdomain="acme", idp="authentik", base_url=BASE_URL, settings=settings)
    assert "provider_id must be the SCIM provider's id" in refusal(authentik.connect(options(idp), {}).read, bad)
    assert idp.log == []


# --------------------------------------------------------------------------- the model checks themselves

from authentik_client.models.patched_scim_provider_request import PatchedSCIMProviderRequest  # noqa: E402
from authentik_client.models.scim_provider import SCIMProvider  # noqa: E402
from authentik_client.models.sync_status import SyncStatus  # noqa: E402


@pytest.mark.parametrize("model, body, problem", [
    (PatchedSCIMProviderRequest, {"url": BASE_URL, "token": "t", "tokn": "t"}, "body.tokn: unknown field"),
    (PatchedSCIMProviderRequest, {"url": BASE_URL, "token": 5}, "body.token: string_type"),
    (SCIMProvider, {k: v for k, v in doubles.provider(1, "n", BASE_URL).items() if k != "url"}, "body.url: required field missing"),
    # Required but nullable: the generated model alone lets it be missing.
    (SCIMProvider, {k: v for k, v in doubles.provider(1, "n", BASE_URL).items() if k != "auth_oauth_url_start"},
     "body.auth_oauth_url_start: required field missing"),
    (SCIMProvider, dict(doubles.provider(1, "n", BASE_URL), token="leaked"), "body.token: unknown field"),
    (SyncStatus, {"is_running": "no"}, "body.is_running: bool_type"),
    (SyncStatus, {"is_running": False, "last_sync_status": "fine"}, "body.last_sync_status: enum"),
    (SyncStatus, {}, "body.is_running: required field missing"),
])
def test_the_checker_refuses_what_the_models_do_not_define(model, body, problem):
    with pytest.raises(strict.ModelMismatch) as caught:
        strict.check(model, body)
    assert problem in str(caught.value)


def test_the_double_records_a_request_the_model_does_not_define(idp):
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_http import JsonClient
    client = JsonClient(idp.url + "/api/v3", "test", lambda: {"Authorization": "Bearer " + API_TOKEN}, ca_path=str(idp.ca_path))
    assert client.call("PATCH", "/providers/scim/7/", {"url": BASE_URL, "secret": "x"}, expect=(400,)).status == 400
    assert idp.violations == ["PATCH body does not match PatchedSCIMProviderRequest: PATCH body.secret: unknown field"]
    idp.violations.clear()
    assert idp.tokens[7] == OLD_SCIM


def test_an_unknown_realm_setting_is_refused(idp):
    bad = IdpRealm(subdomain="acme", idp="authentik", base_url=BASE_URL, settings={"provider_id": 7, "provider": 8})
    assert refusal(authentik.connect(options(idp), {}).read, bad) == (
        "authentik, realm acme: unknown idp_settings provider; known: provider_id")
    assert idp.log == []
