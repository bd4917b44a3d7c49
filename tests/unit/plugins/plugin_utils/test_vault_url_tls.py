# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The HashiCorp Vault / OpenBao URL of the token store: no plain HTTP to another machine (issue 23).

The other machine is a server inside a network namespace this file creates (_tls_fixtures.Netns,
a veth pair with link-local addresses); it records every connection, so "refused before any
request" is seen from the server's side. The OpenBao servers of tests/unit/conftest.py, on
127.0.0.1, show that loopback keeps working over http://. NETWORK RULE: nothing here contacts any
other address.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _hashicorp_vault_store as hvs
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as token_stores


def _load_fixtures():
    name = "_tls_fixtures"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "modules" / "_tls_fixtures.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tlsfix = _load_fixtures()
VAULT_TOKEN = "hvs.TEST-vault-token-never-shown-0123"


@pytest.fixture(scope="module")
def netns():
    with tlsfix.namespace_or_skip() as namespace:
        yield namespace


def refusal(options: dict, environ: dict | None = None) -> str:
    with pytest.raises(ts.TokenStoreError) as caught:
        token_stores.hashicorp_store(options, environ or {}).read("web1")
    return str(caught.value)


def test_http_to_another_machine_is_refused_before_any_request(netns, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve({}, log)
    message = refusal({"url": url, "token": VAULT_TOKEN})
    assert message == (
        "hashicorp_vault store: url (zulip_scim_vault_url, BAO_ADDR or VAULT_ADDR) %s is plain HTTP to another machine than "
        "this one: the tokens would cross the network unencrypted and unauthenticated. Use https://, or set "
        "allow_insecure_http (zulip_scim_vault_allow_insecure_http in the scim role) to true if the network between "
        "them is trusted; nothing was sent to it" % url)
    assert VAULT_TOKEN not in message
    assert tlsfix.read_events(log) == []  # not even a connection


def test_vault_addr_from_the_environment_is_held_to_the_same_rule(netns, tmp_path):
    log = tmp_path / "server.log"
    url = netns.serve({}, log)
    message = refusal({}, {"VAULT_ADDR": url, "VAULT_TOKEN": VAULT_TOKEN})
    assert "is plain HTTP to another machine" in message and "zulip_scim_vault_allow_insecure_http" in message
    assert tlsfix.read_events(log) == []


def test_http_to_another_machine_is_sent_when_allowed(netns, tmp_path):
    pytest.importorskip("hvac")
    log = tmp_path / "server.log"
    url = netns.serve({}, log)
    message = refusal({"url": url, "token": VAULT_TOKEN, "allow_insecure_http": True})
    # Not a Vault server: the store's own error about it, after a request really went there.
    assert "plain HTTP" not in message and VAULT_TOKEN not in message
    assert [e for e in tlsfix.read_events(log) if e["event"] == "request"]


def test_https_to_another_machine_is_validated_by_default(netns, tmp_path):
    pytest.importorskip("hvac")
    pytest.importorskip("cryptography")
    log = tmp_path / "server.log"
    url = netns.serve({}, log, tlsfix.self_signed(tmp_path, "vault.example.test"))
    message = refusal({"url": url, "token": VAULT_TOKEN})
    assert "the TLS certificate of %s is not trusted" % url in message
    assert [e for e in tlsfix.read_events(log) if e["event"] == "request"] == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8200", "http://[::1]:8200", "http://localhost:8200"])
def test_http_on_loopback_needs_no_permission(url):
    hvs.check_settings(hvs.VaultSettings(url=url, token=VAULT_TOKEN))


def test_http_on_loopback_still_works(openbao, kv_path):
    assert openbao.url.startswith("http://127.0.0.1:")
    store = token_stores.hashicorp_store({"url": openbao.url, "token": openbao.root_token, "path": kv_path}, {})
    assert store.read("web1") == {}
