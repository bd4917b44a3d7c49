# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where the modules send SCIM tokens (issue 23): certificates and plain HTTP, through main().

A non-loopback ``api_url`` is a server inside a network namespace this file creates (a veth pair
with link-local addresses, _tls_fixtures.Netns); the local front end is a server on 127.0.0.1.
NETWORK RULE: nothing here contacts any other address.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_check, zulip_scim_config

import _module_runner as runner  # noqa: E402 - found through conftest.py
import _tls_fixtures as tlsfix  # noqa: E402 - found through conftest.py

EXTERNAL_HOST = "zulip.example.com"
ACME_HOST = "acme." + EXTERNAL_HOST
TOKEN_ACME = "acme-TLS-t0ken-0123456789abcdef0123"
TOKEN_NEW = "acme-TLS-new-t0ken-fedcba9876543210"
TOKENS = {ACME_HOST: TOKEN_ACME}


@pytest.fixture(autouse=True)
def fresh_connections():
    """Each test makes its own handshakes (the keep-alive pool is per module run)."""
    scim_http.close_connections()
    yield
    scim_http.close_connections()


class Host:
    """A temporary Zulip host: settings.py with EXTERNAL_HOST, a secrets file with acme's token, a deployment."""

    def __init__(self, root: Path):
        self.etc = root / "etc" / "zulip"
        self.etc.mkdir(parents=True)
        self.settings = self.etc / "settings.py"
        self.settings.write_text("from .config import get_secret\nEXTERNAL_HOST = %r\n" % EXTERNAL_HOST, encoding="utf-8")
        self.secrets = self.etc / "zulip-secrets.conf"
        self.secrets.write_text("[secrets]\nscim_bearer_token_acme = %s\n" % TOKEN_ACME, encoding="utf-8")
        self.deploy = root / "deployments" / "current"
        self.deploy.mkdir(parents=True)
        (self.deploy / "version.py").write_text('ZULIP_VERSION = "9.3"\nLATEST_MAJOR_VERSION = "9"\n', encoding="utf-8")

    def args(self, **extra) -> dict:
        return dict(settings_path=str(self.settings), secrets_path=str(self.secrets), deploy_path=str(self.deploy),
                    zulip_conf_path=str(self.etc / "zulip.conf"), **extra)

    def state(self) -> dict:
        """Every name in /etc/zulip with its bytes, inode, mode and mtime: what a run could change."""
        return {path.name: (path.read_bytes(), path.stat().st_ino, path.stat().st_mode, path.stat().st_mtime_ns)
                for path in sorted(self.etc.iterdir())}


@pytest.fixture
def host(tmp_path) -> Host:
    return Host(tmp_path)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA of this test file, certificates it signed for the realms' host names and for another host,
    and a self-signed one for the realms' names."""
    pytest.importorskip("cryptography")
    workdir = tmp_path_factory.mktemp("tls-certs")
    ca = tlsfix.TestCA(workdir)
    return {
        "ca": ca.path,
        "realms": ca.issue([EXTERNAL_HOST, "*." + EXTERNAL_HOST], "realms"),
        "other": ca.issue(["other.example.net"], "other"),
        "self_signed": tlsfix.self_signed(workdir, ACME_HOST),
    }


@pytest.fixture(scope="module")
def netns():
    with tlsfix.namespace_or_skip() as namespace:
        yield namespace


def leaked(outcome: runner.Outcome, *secrets: str) -> list[str]:
    text = repr(outcome.result) + repr(outcome.warnings)
    return [secret for secret in secrets if secret in text]


# --------------------------------------------------------------------------- (a) another machine: validated by default


def test_a_non_loopback_https_url_with_a_self_signed_certificate_fails_by_default(host, netns, certs, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve(TOKENS, log, certs["self_signed"])
    out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url))
    assert out.failed, out
    message = out.result["msg"]
    assert message.startswith(url + ": the TLS certificate is not trusted for " + ACME_HOST), message
    assert "self-signed certificate" in message
    assert "zulip_scim_api_ca_path" in message and "zulip_scim_api_validate_certs" in message
    assert "no token was sent" in message
    assert not leaked(out, TOKEN_ACME)
    events = tlsfix.read_events(log)
    # The handshake named the realm, and failed before any request (no token crossed the network).
    assert {"event": "sni", "name": ACME_HOST} in events
    assert [e for e in events if e["event"] == "request"] == []


def test_a_non_loopback_url_is_validated_with_the_ca_given_by_ca_path(host, netns, certs, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve(TOKENS, log, certs["realms"])
    out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, ca_path=str(certs["ca"])))
    assert not out.failed, out
    assert out.result["realms"]["acme"] == {"with_token": 200, "without_token": 401, "with_wrong_token": 401}


def test_validation_of_a_non_loopback_url_can_still_be_turned_off(host, netns, certs, tmp_path):
    url = netns.serve(TOKENS, tmp_path / "server.log", certs["self_signed"])
    out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, validate_certs=False))
    assert not out.failed, out


# --------------------------------------------------------------------------- (b) plain HTTP to another machine


@pytest.mark.parametrize("module", [zulip_scim_config, zulip_scim_preflight, zulip_scim_check], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_http_to_another_machine_is_refused_before_anything_changes(module, host, netns, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve({ACME_HOST: TOKEN_NEW}, log)
    before = host.state()
    # zulip_scim_config would write the new token and the realm's SCIM_CONFIG entry, and prove them.
    args = host.args(realms=[{"subdomain": "acme"}] if module is zulip_scim_config else ["acme"], api_url=url)
    if module is zulip_scim_config:
        args.update(tokens={"acme": TOKEN_NEW}, backup=True, keep_previous=True, check_unchanged=True)
    out = runner.run_module(module.main, args)
    assert out.failed, out
    message = out.result["msg"]
    assert message == ("api_url %s is plain HTTP to another machine than this one: the tokens would cross the network "
                       "unencrypted and unauthenticated. Use https://, or set allow_insecure_http "
                       "(zulip_scim_api_allow_insecure_http in the scim role) to true if the network between them "
                       "is trusted; nothing was changed" % url)
    assert host.state() == before
    assert out.run.calls == []  # no manage.py, no psql
    assert tlsfix.read_events(log) == []  # not even a connection
    assert not leaked(out, TOKEN_ACME, TOKEN_NEW)


def test_http_to_another_machine_works_when_allowed(host, netns, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve(TOKENS, log)
    out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, allow_insecure_http=True))
    assert not out.failed, out
    assert len([e for e in tlsfix.read_events(log) if e["event"] == "request"]) == 3


@pytest.mark.parametrize("url", ["http://127.0.0.1:%d", "http://localhost:%d"])
def test_http_on_loopback_needs_no_permission(host, url):
    with tlsfix.loopback_server(TOKENS) as (server, dummy):
        out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url % server.server_address[1]))
    assert not out.failed, out
    assert len(server.of("request")) == 3


# --------------------------------------------------------------------------- (c) the local front end, validated


def test_validate_certs_passes_against_127_0_0_1_with_a_certificate_for_the_realm(host, certs):
    with tlsfix.loopback_server(TOKENS, certs["realms"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(
            realms=["acme"], api_url=url, validate_certs=True, ca_path=str(certs["ca"])))
    assert not out.failed, out
    assert out.result["realms"]["acme"] == {"with_token": 200, "without_token": 401, "with_wrong_token": 401}
    # SNI named the realm, not 127.0.0.1; the Host header too.
    assert {e["name"] for e in server.of("sni")} == {ACME_HOST}
    assert {e["host"] for e in server.of("request")} == {ACME_HOST}


def test_validate_certs_true_checks_the_realm_name_not_127_0_0_1(host, certs, monkeypatch):
    """The operator's case without the new option: a CA the host's OpenSSL trusts (SSL_CERT_FILE stands in
    for the system store), the certificate Zulip has for its users, the default local front end."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["ca"]))
    monkeypatch.setattr(scim_http, "_CONTEXTS", {})  # a context made before would hold the real store
    with tlsfix.loopback_server(TOKENS, certs["realms"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, validate_certs=True))
    assert not out.failed, out
    assert {e["name"] for e in server.of("sni")} == {ACME_HOST}


def test_validate_certs_fails_against_a_certificate_for_another_host(host, certs):
    with tlsfix.loopback_server(TOKENS, certs["other"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(
            realms=["acme"], api_url=url, validate_certs=True, ca_path=str(certs["ca"])))
    assert out.failed, out
    assert "the TLS certificate is not trusted for %s (Hostname mismatch" % ACME_HOST in out.result["msg"]
    assert server.of("request") == []
    assert not leaked(out, TOKEN_ACME)


def test_validate_certs_with_the_system_store_refuses_a_private_ca(host, certs):
    with tlsfix.loopback_server(TOKENS, certs["realms"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, validate_certs=True))
    assert out.failed, out
    assert "unable to get local issuer certificate" in out.result["msg"]
    assert "checked with the system's CAs" in out.result["msg"]
    assert server.of("request") == []


def test_a_ca_path_alone_turns_validation_on_for_loopback(host, certs):
    with tlsfix.loopback_server(TOKENS, certs["other"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url, ca_path=str(certs["ca"])))
    assert out.failed and "Hostname mismatch" in out.result["msg"], out


def test_loopback_keeps_the_old_default_no_validation(host, certs):
    with tlsfix.loopback_server(TOKENS, certs["self_signed"]) as (server, url):
        out = runner.run_module(zulip_scim_check.main, host.args(realms=["acme"], api_url=url))
    assert not out.failed, out
    # No validation: the handshake names the URL's address, and an address is sent as no server name.
    assert [e["name"] for e in server.of("sni")] == [None]


def test_a_missing_ca_path_is_refused_before_anything_changes(host, tmp_path):
    before = host.state()
    missing = tmp_path / "no-such-ca.pem"
    out = runner.run_module(zulip_scim_config.main, host.args(
        realms=[{"subdomain": "acme"}], tokens={"acme": TOKEN_NEW}, api_url="https://127.0.0.1:1", ca_path=str(missing)))
    assert out.failed, out
    assert out.result["msg"] == ("ca_path (zulip_scim_api_ca_path in the scim role) %s: no such file (expected a PEM CA "
                                 "bundle); nothing was changed" % missing)
    assert host.state() == before


# --------------------------------------------------------------------------- scim_http: server name and connection pool


def test_with_validation_each_realm_has_its_own_connection_named_after_it(certs):
    tokens = {ACME_HOST: TOKEN_ACME, "beta." + EXTERNAL_HOST: "beta-token-0123456789abcdef", EXTERNAL_HOST: "root-token-0123456789"}
    with tlsfix.loopback_server(tokens, certs["realms"]) as (server, url):
        for dummy in range(2):
            for host_header, token in tokens.items():
                assert scim_http.probe(url, host_header, token, validate_certs=True, ca_path=str(certs["ca"])).status == 200
    # One handshake per realm host name, each reused for the realm's second request.
    assert sorted(e["name"] for e in server.of("sni")) == sorted(tokens)
    assert len(server.of("connection")) == 3
    assert len(server.of("request")) == 6


def test_without_validation_the_realms_share_one_connection(certs):
    with tlsfix.loopback_server(TOKENS, certs["self_signed"]) as (server, url):
        for host_header in (ACME_HOST, "beta." + EXTERNAL_HOST, EXTERNAL_HOST):
            assert scim_http.probe(url, host_header, validate_certs=False).status in (401, 404)
    assert len(server.of("connection")) == 1


def test_the_server_name_has_no_port(certs):
    """EXTERNAL_HOST may carry a port; the Host header keeps it, the TLS server name cannot."""
    with tlsfix.loopback_server({ACME_HOST + ":8443": TOKEN_ACME}, certs["realms"]) as (server, url):
        result = scim_http.probe(url, ACME_HOST + ":8443", TOKEN_ACME, validate_certs=True, ca_path=str(certs["ca"]))
    assert result.status == 200, result.describe()
    assert [e["name"] for e in server.of("sni")] == [ACME_HOST]


def test_a_certificate_refusal_is_not_waited_for_after_a_restart(certs, monkeypatch):
    """A 502 is waited for after a restart; an untrusted certificate will not go away by waiting."""
    slept = []
    monkeypatch.setattr(scim_http.time, "sleep", slept.append)
    with tlsfix.loopback_server(TOKENS, certs["other"]) as (server, url):
        result = scim_http.probe_until_settled(url, ACME_HOST, TOKEN_ACME, True, 5, attempts=5, delay=1.0,
                                               after_restart=True, ca_path=str(certs["ca"]))
    assert result.status is None and result.error.startswith("the TLS certificate is not trusted"), result.error
    assert slept == []


def _dead_owners_namespaces() -> list[str]:
    return [name for name in os.listdir("/run/netns")
            if name.startswith(tlsfix.NETNS_PREFIX) and not tlsfix._owner_alive(name)]


def test_a_namespace_outlives_no_test_process(tmp_path):
    """A process that makes a namespace and ends without closing it (pytest-forked's child under
    ``ansible-test units``, a killed run) leaves nothing: its watchdog removes it, and a namespace
    nobody owns (an older leftover) is reaped by the next one made."""
    if tlsfix.netns_missing():
        pytest.skip(tlsfix.netns_missing())
    orphan = "%s%d" % (tlsfix.NETNS_PREFIX, tlsfix.NETNS_SLOTS - 1)
    subprocess.run(["ip", "netns", "add", orphan], check=True, capture_output=True)
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child ends without closing its namespace or its server
            namespace = tlsfix.Netns()
            namespace.serve({}, tmp_path / "orphan-server.log")
            os._exit(0)
        os.waitpid(child, 0)
        assert not os.path.exists("/run/netns/" + orphan), "a namespace nobody owns was not reaped"
        deadline = time.monotonic() + 20
        while _dead_owners_namespaces() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _dead_owners_namespaces() == []
        servers = subprocess.run(["pgrep", "-f", str(tmp_path / "orphan-server.log")], capture_output=True,
                                 text=True, check=False).stdout.split()
        assert servers == [], "a server of a namespace whose owner died still runs"
    finally:
        subprocess.run(["ip", "netns", "del", orphan], capture_output=True, check=False)
