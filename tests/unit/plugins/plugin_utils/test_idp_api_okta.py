# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Okta backend against its double (tests/idp_doubles/okta.py), issue 24.

The double is an HTTPS server on 127.0.0.1 checked against the okta SDK's models (every request
body and every answer). NETWORK RULE: nothing here contacts any address but 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _idp_double_loader as loader  # noqa: E402  pylint: disable=wrong-import-position

tlsfix, doubles, json_double, strict = loader.backend_kit("okta", vendor_package="okta")

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_api_okta as okta  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpRealm  # noqa: E402

API_TOKEN = "00okta-API-token-never-shown-0123456789"
READ_TOKEN = "00okta-READ-only-token-never-shown-0123"
OLD_SCIM = "zulip-OLD-scim-token-never-shown-000000"
NEW_SCIM = "zulip-NEW-scim-token-never-shown-111111"
BASE_URL = "https://acme.zulip.test/scim/v2"
PASSPHRASE = "key-passphrase-never-shown-0123"
SECRETS = (API_TOKEN, READ_TOKEN, OLD_SCIM, NEW_SCIM, PASSPHRASE, "double-access-token", "BEGIN PRIVATE KEY")
TOKEN_APP, CUSTOM_APP, OAUTH_APP, DISABLED_APP, ELSEWHERE_APP = (
    "0oatoken0000000000d7", "0oacustom000000000d7", "0oaoauth0000000000d7", "0oadisabled0000000d7", "0oaelsewhere00000d7")


ca = loader.ca_fixture("okta")
refusal = loader.refusal_check(SECRETS)


@pytest.fixture()
def idp(ca):
    server = doubles.OktaDouble(json_double.loopback_certificate(ca, "okta"), {API_TOKEN: "manage", READ_TOKEN: "read"},
                                service_apps={})
    server.ca_path = ca.path
    server.add_app(TOKEN_APP, "TOKEN", "ENABLED", OLD_SCIM, base_url=BASE_URL)
    server.add_app(CUSTOM_APP, "UNKNOWN")
    server.add_app(OAUTH_APP, "OAUTH2", "ENABLED")
    server.add_app(DISABLED_APP, "TOKEN", "DISABLED", OLD_SCIM)
    server.add_app(ELSEWHERE_APP, "TOKEN", "ENABLED", OLD_SCIM, base_url="https://other.example.test/scim/v2")
    with json_double.running(server):
        yield server
        assert server.violations == []


def options(idp, **more) -> dict:
    return {"org_url": idp.url, "api_token": API_TOKEN, "ca_path": str(idp.ca_path), **more}


def realm(app_id=TOKEN_APP) -> IdpRealm:
    return IdpRealm(subdomain="acme", idp="okta", base_url=BASE_URL, settings={"app_id": app_id})


def path(app_id=TOKEN_APP, tail="") -> str:
    return "/api/v1/apps/%s/connections/default%s" % (app_id, tail)


def test_the_table_names_the_backend():
    assert _idp_apis.BACKEND_MODULES["okta"] == "_idp_api_okta"


def test_one_rotation_in_order(idp):
    backend = _idp_apis.connect("okta", options(idp), {})
    state = backend.read(realm())
    assert state.automated and state.summary == "app %s: provisioning connection ENABLED, auth scheme TOKEN" % TOKEN_APP
    backend.before_zulip(realm(), state)
    backend.push(realm(), state, NEW_SCIM)
    backend.verify(realm(), state)
    backend.after(realm(), state)
    assert idp.requests() == [("GET", path()), ("POST", path(tail="?activate=true")), ("GET", path())]
    assert idp.log[1]["body"] == {"profile": {"authScheme": "TOKEN", "token": NEW_SCIM}, "baseUrl": BASE_URL}
    assert all(e["authorization"] == "SSWS " + API_TOKEN for e in idp.log)
    assert idp.apps[TOKEN_APP]["token"] == NEW_SCIM and idp.apps[TOKEN_APP]["status"] == "ENABLED"


def test_a_custom_scim_app_stays_manual_and_nothing_is_pushed(idp):
    backend = okta.connect(options(idp), {})
    state = backend.read(realm(CUSTOM_APP))
    assert not state.automated
    assert state.summary == (
        "app %s: provisioning connection UNKNOWN, auth scheme UNKNOWN; Okta's API does not set this app's connection "
        "(custom SCIM apps, such as the SCIM 2.0 Test App, answer UNKNOWN), so this realm stays manual" % CUSTOM_APP)
    assert "push: the app is not automated" in refusal(backend.push, realm(CUSTOM_APP), state, NEW_SCIM)
    assert idp.requests() == [("GET", path(CUSTOM_APP))]


def test_an_oauth_connection_stays_manual(idp):
    state = okta.connect(options(idp), {}).read(realm(OAUTH_APP))
    assert not state.automated and "auth scheme OAUTH2; it does not take a token" in state.summary


def test_wrong_api_token_is_refused_by_read_and_nothing_is_written(idp):
    message = refusal(okta.connect(options(idp, api_token="00wrong"), {}).read, realm())
    assert message == "okta, realm acme, read: Okta answered HTTP 401 (E0000011): the API token is wrong or expired"
    assert idp.requests() == [("GET", path())]
    assert idp.apps[TOKEN_APP]["token"] == OLD_SCIM


def test_a_read_only_token_reads_but_cannot_push(idp):
    backend = okta.connect(options(idp, api_token=READ_TOKEN), {})
    state = backend.read(realm())
    assert refusal(backend.push, realm(), state, NEW_SCIM) == (
        "okta, realm acme, push: Okta answered HTTP 403 (E0000006): the API token's admin may not manage this app")
    assert idp.apps[TOKEN_APP]["token"] == OLD_SCIM


def test_missing_app(idp):
    assert refusal(okta.connect(options(idp), {}).read, realm("0oamissing00000000d7")) == (
        "okta, realm acme, read: Okta answered HTTP 404 (E0000007): no such app (app 0oamissing00000000d7)")


def test_a_connection_to_another_base_url_is_refused_before_anything_changes(idp):
    message = refusal(okta.connect(options(idp), {}).read, realm(ELSEWHERE_APP))
    assert message == ("okta, realm acme, read: the app's connection sends to https://other.example.test/scim/v2, not to "
                       "the realm's %s; correct it in Okta first" % BASE_URL)
    assert idp.requests() == [("GET", path(ELSEWHERE_APP))]


def test_restore_pushes_the_old_token(idp):
    backend = okta.connect(options(idp), {})
    state = backend.read(realm())
    backend.push(realm(), state, NEW_SCIM)
    backend.restore(realm(), state, OLD_SCIM)
    assert idp.requests()[-1] == ("POST", path(tail="?activate=true"))
    assert idp.log[-1]["body"]["profile"] == {"authScheme": "TOKEN", "token": OLD_SCIM}
    assert idp.apps[TOKEN_APP]["token"] == OLD_SCIM and idp.apps[TOKEN_APP]["status"] == "ENABLED"


def test_restore_of_a_disabled_connection_disables_it_again(idp):
    backend = okta.connect(options(idp), {})
    state = backend.read(realm(DISABLED_APP))
    backend.push(realm(DISABLED_APP), state, NEW_SCIM)
    assert idp.apps[DISABLED_APP]["status"] == "ENABLED"
    assert idp.log[-1]["body"] == {"profile": {"authScheme": "TOKEN", "token": NEW_SCIM}}  # no baseUrl: it had none
    backend.restore(realm(DISABLED_APP), state, OLD_SCIM)
    assert idp.requests()[-2:] == [("POST", path(DISABLED_APP)), ("POST", path(DISABLED_APP, "/lifecycle/deactivate"))]
    assert idp.apps[DISABLED_APP]["token"] == OLD_SCIM and idp.apps[DISABLED_APP]["status"] == "DISABLED"


def test_restore_without_a_token_touches_nothing(idp):
    """None: the IdP was never pushed to, or had no token before (a first enable): Okta is left as it is."""
    backend = okta.connect(options(idp), {})
    state = backend.read(realm())
    before = list(idp.requests())
    status = idp.apps[TOKEN_APP]["status"]
    backend.restore(realm(), state, None)
    assert idp.requests() == before and idp.apps[TOKEN_APP]["status"] == status


def test_verify_fails_on_a_disabled_connection(idp):
    backend = okta.connect(options(idp), {})
    state = backend.read(realm())
    backend.push(realm(), state, NEW_SCIM)
    idp.apps[TOKEN_APP]["status"] = "DISABLED"  # e.g. Okta's test of the connection failed
    assert refusal(backend.verify, realm(), state) == (
        "okta, realm acme, verify: the connection reads back as DISABLED with auth scheme TOKEN, not ENABLED with TOKEN")


def test_api_token_from_the_environment(idp):
    given = options(idp)
    del given["api_token"]
    assert okta.connect(given, {"OKTA_API_TOKEN": API_TOKEN}).read(realm()).automated
    assert okta.connect(given, {"OKTA_CLIENT_TOKEN": API_TOKEN}).read(realm()).automated
    assert "no credential; set api_token (or OKTA_API_TOKEN / OKTA_CLIENT_TOKEN), or client_id and private_key_path" in \
        refusal(okta.connect, given, {})


@pytest.mark.parametrize("given, expected", [
    ({"org_url": "https://a.okta.com", "api_token": API_TOKEN, "clientid": "x"}, "okta: unknown option(s) clientid"),
    ({"org_url": "https://a.okta.com", "api_token": API_TOKEN, "client_id": "x"}, "okta: api_token and client_id are both set"),
    ({"org_url": "https://a.okta.com", "client_id": "0oasvc"}, "okta: client_id needs private_key_path"),
    ({"org_url": "https://a.okta.com", "api_token": API_TOKEN, "private_key_path": "/k.pem"},
     "okta: private_key_path only work with client_id"),
    ({"org_url": "https://a.okta.com", "client_id": "0oasvc", "private_key_path": "/nonexistent/k.pem"},
     "okta: private_key_path /nonexistent/k.pem: No such file or directory"),
    ({"api_token": API_TOKEN}, "okta: option org_url is required"),
    ({"org_url": "https://a.okta.com/api", "api_token": API_TOKEN}, "okta: org_url must be the org's URL without a path"),
    ({"org_url": "https://a.okta.com", "api_token": "two words"}, "okta: api_token is not a usable credential"),
    ({"org_url": "http://a.okta.com", "api_token": API_TOKEN}, "okta: http://a.okta.com is plain HTTP to another machine"),
])
def test_bad_options_are_refused_before_any_request(given, expected):
    assert refusal(okta.connect, given, {}).startswith(expected)


@pytest.mark.parametrize("settings", [{}, {"app_id": "0oa/../x"}, {"app_id": "0oa?x=1"}, {"app_id": ""}])
def test_bad_app_ids_are_refused(idp, settings):
    bad = IdpRealm(subdomain="acme", idp="okta", base_url=BASE_URL, settings=settings)
    assert "app_id must be the app's id" in refusal(okta.connect(options(idp), {}).read, bad)
    assert idp.log == []


def test_a_bad_scim_token_is_refused_without_quoting_it(idp):
    backend = okta.connect(options(idp), {})
    state = backend.read(realm())
    assert refusal(backend.push, realm(), state, NEW_SCIM + "\r\nX: y") == (
        "okta, realm acme, push: the realm's SCIM token is not one word of printable ASCII")


# --------------------------------------------------------------------------- the model checks themselves

from okta.models.provisioning_connection_response import ProvisioningConnectionResponse  # noqa: E402
from okta.models.update_default_provisioning_connection_for_application_request import (  # noqa: E402
    UpdateDefaultProvisioningConnectionForApplicationRequest as UpdateRequest,
)


@pytest.mark.parametrize("model, body, problem", [
    (UpdateRequest, {"profile": {"authScheme": "TOKEN", "token": "t", "tokn": "t"}}, "body.profile.tokn: unknown field"),
    (UpdateRequest, {"profile": {"authScheme": "TOKEN", "token": 5}}, "body.profile.token: string_type"),
    (UpdateRequest, {"profile": {"token": "t"}}, "body.profile.authScheme: required field missing"),
    (UpdateRequest, {"profile": {"authScheme": "UNKNOWN"}}, "body.profile.authScheme: enum"),
    (ProvisioningConnectionResponse, {"profile": {"authScheme": "TOKEN"}}, "body.status: required field missing"),
    (ProvisioningConnectionResponse, {"status": "ENABLED", "profile": {"authScheme": "TOKEN"}, "token": "x"},
     "body.token: unknown field"),
    (ProvisioningConnectionResponse, {"status": "ON", "profile": {"authScheme": "TOKEN"}}, "body.status: enum"),
])
def test_the_checker_refuses_what_the_models_do_not_define(model, body, problem):
    with pytest.raises(strict.ModelMismatch) as caught:
        strict.check(model, body)
    assert problem in str(caught.value)


def test_the_double_records_a_request_the_model_does_not_define(idp):
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_http import JsonClient
    client = JsonClient(idp.url, "test", lambda: {"Authorization": "SSWS " + API_TOKEN}, ca_path=str(idp.ca_path))
    body = {"profile": {"authScheme": "TOKEN", "token": "t"}, "url": BASE_URL}
    assert client.call("POST", path(), body, expect=(400,)).status == 400
    assert len(idp.violations) == 1 and "body.url: unknown field" in idp.violations[0]
    idp.violations.clear()
    assert idp.apps[TOKEN_APP]["token"] == OLD_SCIM


def test_an_unknown_realm_setting_is_refused(idp):
    bad = IdpRealm(subdomain="acme", idp="okta", base_url=BASE_URL, settings={"app_id": TOKEN_APP, "appid": "x"})
    assert refusal(okta.connect(options(idp), {}).read, bad) == "okta, realm acme: unknown idp_settings appid; known: app_id"
    assert idp.log == []


# --------------------------------------------------------------------------- OAuth 2.0 service app (private_key_jwt)

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

TOKEN_ENDPOINT = "/oauth2/v1/token"


def service_app(idp, tmp_path, client_id="0oaservice000000000d7", key_kind="rsa", scopes=("okta.apps.manage",),
                kid="key-1", dpop=False, passphrase=None, register=True) -> dict:
    """A key made here, its public part registered with the double's service app; the options for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_kind == "rsa" else \
        ec.generate_private_key(ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    path = tmp_path / ("%s-%s.pem" % (client_id, key_kind))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    if register:
        idp.service_apps[client_id] = {"public_key": key.public_key(), "kid": kid, "scopes": list(scopes), "dpop": dpop}
    given = {"org_url": idp.url, "client_id": client_id, "private_key_path": str(path), "key_id": kid,
             "ca_path": str(idp.ca_path)}
    if passphrase:
        given["private_key_passphrase"] = passphrase
    return given


@pytest.mark.parametrize("key_kind", ["rsa", "ec"])
def test_one_rotation_as_a_service_app(idp, tmp_path, key_kind):
    backend = okta.connect(service_app(idp, tmp_path, key_kind=key_kind), {"OKTA_API_TOKEN": API_TOKEN})
    state = backend.read(realm())
    backend.push(realm(), state, NEW_SCIM)
    backend.verify(realm(), state)
    # One token request, then every API call with its access token (the environment's API token unused).
    assert idp.requests() == [("POST", TOKEN_ENDPOINT), ("GET", path()), ("POST", path(tail="?activate=true")),
                              ("GET", path())]
    form = idp.log[0]["body"]
    assert form["grant_type"] == "client_credentials" and form["scope"] == "okta.apps.manage"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert idp.log[0]["content_type"] == "application/x-www-form-urlencoded"
    assert {e["authorization"] for e in idp.log[1:]} == {"Bearer " + next(iter(idp.access_tokens))}
    assert idp.apps[TOKEN_APP]["token"] == NEW_SCIM


def test_a_key_okta_does_not_know_is_refused_before_any_api_call(idp, tmp_path):
    given = service_app(idp, tmp_path)
    idp.service_apps[given["client_id"]]["public_key"] = rsa.generate_private_key(65537, 2048).public_key()
    message = refusal(okta.connect(given, {}).read, realm())
    assert message == ("okta: Okta refused the service app's token request (HTTP 401, invalid_client): check client_id, "
                       "the key (its public part must be registered with the app) and key_id")
    assert idp.requests() == [("POST", TOKEN_ENDPOINT)]


def test_a_wrong_key_id_is_refused(idp, tmp_path):
    given = dict(service_app(idp, tmp_path), key_id="key-2")
    assert "(HTTP 401, invalid_client)" in refusal(okta.connect(given, {}).read, realm())


def test_scopes_the_app_was_not_granted_are_refused(idp, tmp_path):
    given = service_app(idp, tmp_path, scopes=("okta.apps.read",))
    assert refusal(okta.connect(given, {}).read, realm()).endswith(
        "(HTTP 400, invalid_scope): grant the app the scopes asked for (scopes) in Okta API Scopes")


def test_a_read_scope_reads_but_cannot_push(idp, tmp_path):
    given = dict(service_app(idp, tmp_path, scopes=("okta.apps.read",)), scopes="okta.apps.read")
    backend = okta.connect(given, {})
    state = backend.read(realm())
    assert "push: Okta answered HTTP 403 (E0000006)" in refusal(backend.push, realm(), state, NEW_SCIM)
    assert idp.apps[TOKEN_APP]["token"] == OLD_SCIM


def test_an_app_that_requires_dpop_is_refused_with_a_reason(idp, tmp_path):
    message = refusal(okta.connect(service_app(idp, tmp_path, dpop=True), {}).read, realm())
    assert message.endswith("(HTTP 400, invalid_dpop_proof): the service app requires DPoP, which the collection does not "
                            "support yet; turn DPoP off for it or use an API token")


def test_every_token_request_has_a_fresh_assertion(idp, tmp_path):
    given = service_app(idp, tmp_path)
    for _attempt in range(2):
        assert okta.connect(given, {}).read(realm()).automated
    assertions = [e["body"]["client_assertion"] for e in idp.log if e["path"] == TOKEN_ENDPOINT]
    assert len(assertions) == 2 and len(idp.seen_jti) == 2


def test_an_encrypted_key_needs_its_passphrase(idp, tmp_path):
    given = service_app(idp, tmp_path, passphrase=PASSPHRASE)
    assert okta.connect(given, {}).read(realm()).automated
    del given["private_key_passphrase"]
    assert "is not a PEM private key (or its passphrase is wrong or missing)" in refusal(okta.connect, given, {})
    given["private_key_passphrase"] = "wrong-" + PASSPHRASE
    assert "is not a PEM private key" in refusal(okta.connect, given, {})


def test_a_small_rsa_key_is_refused(idp, tmp_path):
    given = service_app(idp, tmp_path, register=False)
    weak = rsa.generate_private_key(65537, 1024)
    Path(given["private_key_path"]).write_bytes(weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert "an RSA key of 2048 bits or more, or a P-256 EC key, is needed" in refusal(okta.connect, given, {})
