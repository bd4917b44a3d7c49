# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Microsoft Entra ID backend against its double (tests/idp_doubles/entra_id.py), issue 24.

The double is the authority and Graph v1.0 on 127.0.0.1 over TLS (a CA made here); its
validateCredentials and provisioning cycles really call a Zulip-like SCIM endpoint
(_tls_fixtures.loopback_server) that answers 200 only to the realm's current token. Every Graph
body either side sends is checked against msgraph-sdk's models (the double records mismatches;
each test ends by asserting there are none). NETWORK RULE: nothing here contacts any address
outside 127.0.0.0/8; ``only_loopback`` makes that an assertion.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("msal", reason="msal is not installed in this venv")
pytest.importorskip("msgraph", reason="msgraph-sdk is not installed in this venv")

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_api_entra_id as entra  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis as idp_apis  # noqa: E402
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpRealm, IdpState  # noqa: E402

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _idp_double_loader as loader  # noqa: E402  pylint: disable=wrong-import-position

tlsfix = loader.tls_fixtures()
doubles = loader.double("entra_id")
graph_models = sys.modules["idp_doubles_graph_models"]

TENANT = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
CLIENT = "0a1b2c3d-1111-4222-8333-944445555666"
SECRET = "TEST~client-secret-never-shown-4711"
SP = "11111111-2222-4333-8444-555555555555"
HOST = "acme.zulip.test"
OLD = "old-scim-token-never-shown-0123456789"
NEW = "new-scim-token-never-shown-9876543210"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return tlsfix.TestCA(tmp_path_factory.mktemp("entra-ca"))


@pytest.fixture(scope="module")
def zulip(ca, tmp_path_factory):
    """The realm's SCIM endpoint: answers 200 to the token in force (``tokens``), 401 to any other."""
    certificate = ca.issue([HOST], "acme")
    with tlsfix.loopback_server({}, certificate) as (server, url):
        yield server, int(url.rsplit(":", 1)[1])


@pytest.fixture
def realm(zulip):
    server, port = zulip
    server.tokens.clear()
    server.tokens["%s:%d" % (HOST, port)] = OLD
    return IdpRealm(subdomain="acme", idp="entra_id", base_url="https://%s:%d/scim/v2" % (HOST, port),
                    settings={"service_principal_id": SP})


def zulip_rotates(zulip, token: str) -> None:
    server, port = zulip
    server.tokens["%s:%d" % (HOST, port)] = token


@pytest.fixture
def double(ca, tmp_path):
    with doubles.running(tmp_path, ca, scim_hosts={HOST: "127.0.0.1"}, scim_ca_path=str(ca.path)) as d:
        d.add_tenant(TENANT, domains=["acme.onmicrosoft.com"])
        d.add_app(TENANT, CLIENT, secret=SECRET)
        d.add_service_principal(SP)
        yield d
        assert d.model_problems == []  # every Graph body both sides sent matched msgraph-sdk's models


@pytest.fixture
def only_loopback(monkeypatch):
    """Every name this process resolves (requests, urllib, the double's SCIM calls); anything but 127.0.0.1 fails."""
    resolved = []
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        resolved.append(host)
        if host != "127.0.0.1":
            raise AssertionError("tried to resolve %r: only 127.0.0.1 may be contacted" % (host,))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return resolved


def options(double, ca, **more) -> dict:
    values = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET, "authority": double.authority_url,
              "graph_url": double.graph_url, "ca_path": str(ca.path)}
    values.update(more)
    return {k: v for k, v in values.items() if v is not None}


def backend(double, ca, environ=None, **more):
    return idp_apis.connect("entra_id", options(double, ca, **more), environ or {})


def graph_log(double):
    return [(m, p.split("/synchronization/", 1)[1]) for m, p in double.log("graph")]


def refusal(call, *args) -> str:
    with pytest.raises(IdpError) as caught:
        call(*args)
    message = str(caught.value)
    for secret in (SECRET, OLD, NEW):
        assert secret not in message
    assert "eyJ0eXAi" not in message  # no access token
    return message


# --------------------------------------------------------------------------- read


def test_read_reports_the_running_job_and_writes_nothing(double, ca, realm, only_loopback):
    job = double.add_job(SP)
    state = backend(double, ca).read(realm)
    assert state.automated
    assert state.summary == "job %s running (paused during the rotation, started after)" % job.id
    assert state.facts["job_id"] == job.id and state.facts["was_running"] and not state.facts["quarantined"]
    assert graph_log(double) == [("GET", "jobs")]
    assert [p.rsplit("/", 1)[1] for _m, p in double.log("authority")] == ["openid-configuration", "token"]
    assert set(only_loopback) == {"127.0.0.1"}


def test_wrong_client_secret_is_refused_by_read_before_any_graph_call(double, ca, realm):
    double.add_job(SP)
    message = refusal(backend(double, ca, client_secret="TEST~wrong-secret-never-shown").read, realm)
    assert message == ("entra_id: the authority %s refused the client_secret of app %s in tenant %s: invalid_client "
                       "(AADSTS7000215)" % (double.authority_url, CLIENT, TENANT))
    assert "wrong-secret" not in message
    assert double.log("graph") == []


def test_unknown_tenant_is_refused_without_quoting_the_answer(double, ca, realm):
    message = refusal(backend(double, ca, tenant_id="7f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b").read, realm)
    assert "no token from the authority" in message and "answered HTTP 400" in message
    assert "AADSTS90002" not in message  # msal's exception quotes the body: only its type is shown


def test_a_tenant_may_be_named_by_its_domain(double, ca, realm):
    double.add_job(SP)
    assert backend(double, ca, tenant_id="acme.onmicrosoft.com").read(realm).automated
    assert double.log("authority") == [("GET", "/acme.onmicrosoft.com/v2.0/.well-known/openid-configuration"),
                                       ("POST", "/acme.onmicrosoft.com/oauth2/v2.0/token")]


def test_the_client_secret_option_wins_over_the_environment(double, ca, realm):
    double.add_job(SP)
    assert backend(double, ca, environ={"AZURE_CLIENT_SECRET": SECRET}, client_secret=None).read(realm).automated
    message = refusal(backend(double, ca, environ={"AZURE_CLIENT_SECRET": SECRET}, client_secret="TEST~wrong").read, realm)
    assert "refused the client_secret of app" in message
    message = refusal(backend(double, ca, environ={"AZURE_CLIENT_SECRET": "TEST~wrong"}, client_secret=None).read, realm)
    assert "refused the AZURE_CLIENT_SECRET of app" in message


def test_a_missing_service_principal_is_a_clear_refusal(double, ca, realm):
    other = IdpRealm("acme", "entra_id", realm.base_url, {"service_principal_id": "99999999-2222-4333-8444-555555555555"})
    message = refusal(backend(double, ca).read, other)
    assert message == ("entra_id: realm acme: no service principal 99999999-2222-4333-8444-555555555555 in tenant %s "
                       "(service_principal_id is the enterprise application's Object ID)" % TENANT)
    assert [m for m, _p in double.log("graph")] == ["GET"]


def test_a_service_principal_without_a_job_or_with_two_needs_attention(double, ca, realm):
    message = refusal(backend(double, ca).read, realm)
    assert "has no synchronization job: set its Provisioning Mode to Automatic" in message
    first, second = double.add_job(SP), double.add_job(SP)
    message = refusal(backend(double, ca).read, realm)
    assert "has 2 synchronization jobs" in message and "set job_id" in message
    chosen = IdpRealm("acme", "entra_id", realm.base_url, {"service_principal_id": SP, "job_id": second.id})
    assert backend(double, ca).read(chosen).facts["job_id"] == second.id
    assert first.id != second.id
    assert all(m == "GET" for m, _p in double.log("graph"))


def test_least_privilege_owned_by_needs_ownership(double, ca, realm):
    double.add_job(SP)
    double.add_app(TENANT, CLIENT, secret=SECRET, roles=[doubles.OWNED_BY])
    message = refusal(backend(double, ca).read, realm)
    assert "may not read the provisioning of service principal" in message
    double.service_principals[SP].owners.add(CLIENT)
    assert backend(double, ca).read(realm).automated


# --------------------------------------------------------------------------- the rotation


def rotate(api, realm, zulip, token):
    state = api.read(realm)
    api.before_zulip(realm, state)
    zulip_rotates(zulip, token)
    api.push(realm, state, token)
    api.verify(realm, state)
    api.after(realm, state)
    return state


def test_a_rotation_pauses_pushes_both_keys_validates_and_starts(double, ca, realm, zulip, only_loopback):
    job = double.add_job(SP)
    rotate(backend(double, ca), realm, zulip, NEW)
    assert graph_log(double) == [("GET", "jobs"), ("POST", "jobs/%s/pause" % job.id), ("PUT", "secrets"),
                                 ("POST", "jobs/%s/validateCredentials" % job.id), ("POST", "jobs/%s/start" % job.id)]
    put = [r for r in double.requests if r["method"] == "PUT"][0]
    assert put["body"] == {"value": [{"key": "BaseAddress", "value": realm.base_url + "/?aadOptscim062020"},
                                     {"key": "SecretToken", "value": NEW}]}
    assert double.service_principals[SP].secrets == {"BaseAddress": realm.base_url + "/?aadOptscim062020", "SecretToken": NEW}
    assert [(s["why"], s["path"], s["status"]) for s in double.scim_requests] == [
        ("validateCredentials", "/scim/v2/Users?count=1", 200)]
    assert (job.schedule_state, job.status_code) == ("Active", "Active")
    assert double.run_cycle(SP, job.id) == 200  # the provisioning service now works with the new token
    server, port = zulip
    seen = [e for e in server.events if e["event"] in ("sni", "request")][-4:]
    probe = {"event": "request", "path": "/scim/v2/Users?count=1", "host": "%s:%d" % (HOST, port), "authorized": True}
    assert seen == [{"event": "sni", "name": HOST}, probe] * 2  # validateCredentials, then the cycle
    assert set(only_loopback) == {"127.0.0.1"}


def test_other_secret_keys_are_sent_with_every_put(double, ca, realm, zulip):
    job = double.add_job(SP)
    keep = IdpRealm("acme", "entra_id", realm.base_url, {"service_principal_id": SP, "other_secret_keys": {
        "SyncAll": False, "SyncNotificationSettings": {"Enabled": False, "DeleteThresholdEnabled": True}}})
    rotate(backend(double, ca), keep, zulip, NEW)
    assert double.service_principals[SP].secrets == {
        "BaseAddress": realm.base_url + "/?aadOptscim062020", "SecretToken": NEW, "SyncAll": "false",
        "SyncNotificationSettings": '{"Enabled":false,"DeleteThresholdEnabled":true}'}
    assert job.status_code == "Active"


def test_the_double_replaces_all_keys_on_put_so_unsent_keys_are_gone(double, ca, realm, zulip):
    double.add_job(SP)
    double.service_principals[SP].secrets = {"BaseAddress": "https://old.example/scim/v2/", "SecretToken": OLD, "SyncAll": "true"}
    rotate(backend(double, ca), realm, zulip, NEW)
    assert "SyncAll" not in double.service_principals[SP].secrets  # hence other_secret_keys


def test_a_paused_job_stays_paused_and_sends_nothing(double, ca, realm, zulip):
    job = double.add_job(SP, state="Paused")
    state = rotate(backend(double, ca), realm, zulip, NEW)
    assert "paused: it stays so" in state.summary
    assert graph_log(double) == [("GET", "jobs"), ("PUT", "secrets"), ("POST", "jobs/%s/validateCredentials" % job.id)]
    assert job.schedule_state == "Paused"
    assert double.run_cycle(SP, job.id) is None
    assert [s["why"] for s in double.scim_requests] == ["validateCredentials"]


def test_a_job_paused_by_a_run_that_did_not_finish_is_started_by_the_run_that_resumes(double, ca, realm, zulip):
    """The realm's token was pending when this run began: the paused job is the earlier run's pause."""
    import dataclasses

    job = double.add_job(SP, state="Paused")
    resuming = dataclasses.replace(realm, resuming=True)
    state = rotate(backend(double, ca), resuming, zulip, NEW)
    assert graph_log(double)[-1] == ("POST", "jobs/%s/start" % job.id)
    assert job.schedule_state == "Active" and "running" in state.summary
    assert double.run_cycle(SP, job.id) == 200


def test_a_job_in_quarantine_is_started_which_lifts_the_quarantine(double, ca, realm, zulip):
    job = double.add_job(SP)
    double.service_principals[SP].secrets = {"BaseAddress": realm.base_url + "/?aadOptscim062020", "SecretToken": "stale"}
    assert double.run_cycle(SP, job.id) == 401  # a running job that meets 401 goes to quarantine
    assert job.status_code == "Quarantine" and job.quarantine["reason"] == "EncounteredQuarantineException"
    api = backend(double, ca)
    state = api.read(realm)
    assert state.facts["quarantined"] and state.summary.startswith("job %s in quarantine (EncounteredQuarantineException)" % job.id)
    api.before_zulip(realm, state)
    zulip_rotates(zulip, NEW)
    api.push(realm, state, NEW)
    api.verify(realm, state)
    api.after(realm, state)
    assert (job.schedule_state, job.status_code, job.quarantine, job.failures) == ("Active", "Active", None, 0)
    assert double.run_cycle(SP, job.id) == 200


def test_validation_fails_when_the_scim_endpoint_answers_401(double, ca, realm, zulip):
    job = double.add_job(SP)
    api = backend(double, ca)
    state = api.read(realm)
    api.before_zulip(realm, state)
    api.push(realm, state, NEW)  # Zulip still serves OLD: the pushed token gets 401
    message = refusal(api.verify, realm, state)
    assert message == ("entra_id: POST /servicePrincipals/%s/synchronization/jobs/%s/validateCredentials (verify the new "
                       "token, realm acme: Entra could not use the saved Tenant URL and token) answered HTTP 400 (BadRequest)"
                       % (SP, job.id))
    assert double.scim_requests[-1]["status"] == 401
    assert job.schedule_state == "Paused"


def test_restore_puts_the_old_token_back_validates_and_starts(double, ca, realm, zulip):
    job = double.add_job(SP)
    api = backend(double, ca)
    state = api.read(realm)
    api.before_zulip(realm, state)
    api.push(realm, state, NEW)
    refusal(api.verify, realm, state)  # Zulip went back to OLD (or never took NEW)
    api.restore(realm, state, OLD)
    assert double.service_principals[SP].secrets["SecretToken"] == OLD
    assert graph_log(double)[-3:] == [("PUT", "secrets"), ("POST", "jobs/%s/validateCredentials" % job.id),
                                      ("POST", "jobs/%s/start" % job.id)]
    assert [s["status"] for s in double.scim_requests] == [401, 200]
    assert job.status_code == "Active"
    assert double.run_cycle(SP, job.id) == 200


def test_restore_from_the_state_before_the_push_still_puts_the_old_token_back(double, ca, realm, zulip):
    """The action hands the state between tasks: restore may get the state as it was after the pause."""
    job = double.add_job(SP)
    api = backend(double, ca)
    state = api.read(realm)
    api.before_zulip(realm, state)
    saved = IdpState(state.automated, state.summary, dict(state.facts))  # what the "before" task returned
    zulip_rotates(zulip, NEW)
    api.push(realm, state, NEW)
    zulip_rotates(zulip, OLD)  # something after the push failed: Zulip went back
    backend(double, ca).restore(realm, saved, OLD)  # a new task: a new backend, the saved state
    assert double.service_principals[SP].secrets["SecretToken"] == OLD
    assert graph_log(double)[-3:] == [("PUT", "secrets"), ("POST", "jobs/%s/validateCredentials" % job.id),
                                      ("POST", "jobs/%s/start" % job.id)]
    assert job.status_code == "Active" and double.run_cycle(SP, job.id) == 200


def test_restore_without_an_old_token_only_starts_the_job(double, ca, realm):
    job = double.add_job(SP)
    api = backend(double, ca)
    state = api.read(realm)
    api.before_zulip(realm, state)
    api.restore(realm, state, None)  # a first enable: no token was in force before
    assert graph_log(double) == [("GET", "jobs"), ("POST", "jobs/%s/pause" % job.id), ("POST", "jobs/%s/start" % job.id)]


def test_a_restore_that_does_not_validate_leaves_the_job_paused(double, ca, realm, zulip):
    job = double.add_job(SP)
    api = backend(double, ca)
    state = api.read(realm)
    api.before_zulip(realm, state)
    api.push(realm, state, NEW)
    zulip_rotates(zulip, "a third token")
    message = refusal(api.restore, realm, state, OLD)
    assert "restore: validate the old token" in message
    assert job.schedule_state == "Paused"  # started, it would meet 401 and go to quarantine


# --------------------------------------------------------------------------- msal: the authority only, the CA, the certificate


def test_msal_contacts_nothing_but_the_configured_authority(double, ca, realm, only_loopback):
    double.add_job(SP)
    backend(double, ca).read(realm)
    assert double.log("authority") == [("GET", "/%s/v2.0/.well-known/openid-configuration" % TENANT), ("POST", "/%s/oauth2/v2.0/token" % TENANT)]
    assert set(only_loopback) == {"127.0.0.1"}  # no instance discovery at login.microsoftonline.com
    token_request = [r for r in double.requests if r["path"].endswith("/token")][0]
    assert token_request["server"] == "authority" and token_request["body"]["client_secret"] == SECRET


def test_a_token_endpoint_outside_the_authority_gets_nothing(double, ca, realm, only_loopback):
    double.add_job(SP)
    double.token_endpoint_override = double.graph_url + "/%s/oauth2/v2.0/token" % TENANT
    message = refusal(backend(double, ca).read, realm)
    assert message == "entra_id: msal was about to contact %s, outside the authority %s: refused" % (
        double.graph_url, double.authority_url)
    assert double.log("graph") == []  # the client secret never left for the other origin


def test_the_ca_bundle_is_used_whatever_requests_ca_bundle_says(double, ca, realm, monkeypatch, tmp_path):
    double.add_job(SP)
    other = tlsfix.TestCA(tmp_path, "another CA")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other.path))
    assert backend(double, ca).read(realm).automated
    message = refusal(backend(double, ca, ca_path=str(other.path)).read, realm)
    assert message.startswith("entra_id: no token from the authority") and "SSLError" in message
    assert len(double.log("authority")) == 2  # the refused handshake carried no request


def test_a_certificate_signs_in_instead_of_a_secret(double, ca, realm, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zulip-ops entra app")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "app.crt").write_bytes(cert_pem)
    (tmp_path / "app.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    double.add_app(TENANT, CLIENT, certificate_pem=cert_pem)
    double.add_job(SP)
    api = backend(double, ca, client_secret=None, client_certificate_path=str(tmp_path / "app.crt"),
                  client_private_key_path=str(tmp_path / "app.key"))
    assert api.read(realm).automated
    assert double.assertion_problems == [""]
    form = [r for r in double.requests if r["path"].endswith("/token")][0]["body"]
    assert "client_secret" not in form and form["client_assertion_type"].endswith("jwt-bearer")
    # Another key for the same certificate is refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "other.key").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    message = refusal(backend(double, ca, client_secret=None, client_certificate_path=str(tmp_path / "app.crt"),
                              client_private_key_path=str(tmp_path / "other.key")).read, realm)
    assert "refused the certificate %s of app" % (tmp_path / "app.crt") in message and "AADSTS700027" in message


# --------------------------------------------------------------------------- options, secrets, imports


@pytest.mark.parametrize("bad, expected", [
    ({"tenant_id": "not a tenant"}, "tenant_id must be the directory (tenant) ID"),
    ({"client_id": "acme-app"}, "client_id must be the application (client) ID"),
    ({"authority": "http://127.0.0.1:1"}, "authority must be an https:// URL"),
    ({"authority": "https://login.microsoftonline.com/%s" % TENANT}, "authority must be the authority's root URL"),
    ({"graph_url": "https://graph.microsoft.com/?x=1"}, "graph_url must be an https:// URL without query"),
    ({"client_secret": None}, "no credential: set client_secret (or the environment variable AZURE_CLIENT_SECRET)"),
    ({"client_certificate_path": "/etc/hostname"}, "a certificate needs both"),
    ({"client_certificate_path": "/etc/hostname", "client_private_key_path": "/etc/hostname"},
     "give client_secret or a certificate"),
    ({"client_secret": "two words"}, "client_secret does not hold one client secret"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem: no such file"),
    ({"timeout": 0}, "option timeout must be a positive number"),
    ({"timeout": 601}, "timeout must be a number of seconds from 1 to 600"),
    ({"validate_certs": "yes"}, "option validate_certs must be a bool"),
    ({"tenant": TENANT}, "unknown option(s) tenant"),
])
def test_bad_options_are_refused_before_any_request(double, ca, bad, expected):
    values = options(double, ca)
    values.update(bad)
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(IdpError) as caught:
        entra.connect(values, {})
    assert expected in str(caught.value)
    assert double.requests == []


@pytest.mark.parametrize("settings, expected", [
    ({"service_principal_id": "../jobs"}, "service_principal_id must be the object ID"),
    ({"service_principal_id": SP, "job_id": "a/b"}, "job_id must be a synchronization job id"),
    ({"service_principal_id": SP, "other_secret_keys": {"SecretToken": "x"}}, "BaseAddress and SecretToken are set by the collection"),
    ({"service_principal_id": SP, "spid": 1}, "unknown setting(s) spid"),
])
def test_bad_realm_settings_are_refused_before_any_request(double, ca, realm, settings, expected):
    bad = IdpRealm("acme", "entra_id", realm.base_url, settings)
    with pytest.raises(IdpError) as caught:
        backend(double, ca).read(bad)
    assert expected in str(caught.value)
    assert double.requests == []


def test_a_plain_http_base_url_is_never_given_to_entra(double, ca, realm):
    double.add_job(SP)
    plain = IdpRealm("acme", "entra_id", "http://%s/scim/v2" % HOST, {"service_principal_id": SP})
    assert "must be an https:// URL" in refusal(backend(double, ca).read, plain)
    assert double.requests == []


def test_no_secret_is_logged_or_shown(double, ca, realm, zulip, caplog):
    caplog.set_level(logging.DEBUG)
    job = double.add_job(SP)
    api = backend(double, ca)
    state = rotate(api, realm, zulip, NEW)
    refusal(backend(double, ca, client_secret="TEST~wrong-secret-never-shown").read, realm)
    api.push(realm, state, "a-token-zulip-refuses-never-shown")
    refusal(api.verify, realm, state)
    api.restore(realm, state, NEW)
    access_tokens = list(double.access_tokens)
    assert caplog.records  # msal and urllib3 did log at DEBUG
    for secret in [SECRET, "wrong-secret-never-shown", OLD, NEW, "a-token-zulip-refuses-never-shown"] + access_tokens:
        assert secret not in caplog.text
        assert secret not in repr(api.settings) and secret not in repr(state)
    assert job.status_code == "Active"


def test_connect_neither_imports_msal_nor_makes_a_request(double, ca):
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis\n"
            "_idp_apis.connect('entra_id', %r, {})\n"
            "assert 'msal' not in sys.modules and 'requests' not in sys.modules, 'imported too early'\n"
            % (str(REPO / "playbooks" / "collections"), options(double, ca)))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert double.requests == []


# --------------------------------------------------------------------------- the model checker itself


@pytest.mark.parametrize("body, problem", [
    ({"value": [{"key": "SecretToken", "value": "x", "expiry": "never"}]}, "field expiry unknown to SynchronizationSecretKeyStringValuePair"),
    ({"value": [{"key": "SecretToken"}]}, "required field value missing"),
    ({"value": [{"key": "SecretToken", "value": 5}]}, "string expected, got int"),
    ({"value": [{"key": "Token", "value": "x"}]}, "one of SynchronizationSecret expected"),
    ({"values": []}, "field values unknown to SecretsPutRequestBody"),
])
def test_the_model_checker_rejects_what_the_sdk_model_does_not_describe(body, problem):
    with pytest.raises(graph_models.ModelMismatch) as caught:
        graph_models.check("secrets_put", body)
    assert problem in str(caught.value)


def test_the_model_checker_rejects_an_unknown_field_deep_in_a_job_and_accepts_the_doubles_answers(double):
    job = double.add_job(SP, quarantined=True)
    answer = {"@odata.context": "x", "value": [job.as_json()]}
    graph_models.check("jobs", answer, response=True)
    with pytest.raises(graph_models.ModelMismatch, match="@odata.context"):
        graph_models.check("jobs", answer)  # an annotation is allowed in a response only
    answer["value"][0]["status"]["quarantine"]["retryAfter"] = "PT6H"
    with pytest.raises(graph_models.ModelMismatch, match=r"\.value\[0\]\.status\.quarantine: field retryAfter unknown"):
        graph_models.check("jobs", answer, response=True)
    with pytest.raises(graph_models.ModelMismatch, match="boolean expected"):
        graph_models.check("validate_credentials", {"useSavedCredentials": "true"})
