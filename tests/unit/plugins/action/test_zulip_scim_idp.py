"""zulip_scim_idp: the IdP side of a rotation, step by step, through a recording backend.

The real backends (Entra ID, authentik, Okta) are tested against their doubles in
tests/unit/plugins/plugin_utils/test_idp_api_*.py; here the action's own rules: which realms
are automated, where the base URL comes from, the order, check mode, and messages.
"""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_idp as plugin
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpState

TOKEN_NEW = "new-T0ken-" + "n" * 40
TOKEN_OLD = "old-T0ken-" + "o" * 40
API_SECRET = "authentik-api-S3cret-" + "s" * 20


class Recorder:
    """A backend that records each call (realm, step) and fails where told."""

    name = "authentik"

    def __init__(self, calls: list, fail: dict, automated: bool = True):
        self.calls, self.fail, self.is_automated = calls, fail, automated

    def _do(self, what: str, realm, token: str | None = None):
        self.calls.append((what, realm.subdomain, realm.base_url, token))
        if self.fail.get(what) in (realm.subdomain, "*"):
            raise IdpError("%s refused (HTTP 500)" % what)

    def read(self, realm):
        self._do("read", realm)
        self.resuming = realm.resuming
        return IdpState(automated=self.is_automated, summary="provider 3", facts={"was": "running"})

    def before_zulip(self, realm, state):
        assert state.facts == {"was": "running"}
        self._do("before", realm)

    def push(self, realm, state, token):
        self._do("push", realm, token)

    def verify(self, realm, state):
        self._do("verify", realm)

    def after(self, realm, state):
        self._do("after", realm)

    def restore(self, realm, state, token):
        self._do("restore", realm, token)


@pytest.fixture
def backend(monkeypatch):
    """The calls, the failures to inject, and the options each connect got."""
    calls: list = []
    fail: dict = {}
    connected: list = []
    shape = {"automated": True}

    def connect(idp, options, environ):
        connected.append((idp, dict(options)))
        return Recorder(calls, fail, shape["automated"])

    monkeypatch.setattr(_idp_apis, "BACKEND_MODULES", {"authentik": "unused"})
    monkeypatch.setattr(_idp_apis, "connect", connect)
    return {"calls": calls, "fail": fail, "connected": connected, "shape": shape}


def realms(*extra: dict) -> list:
    return [{"subdomain": "acme", "idp": "authentik", "idp_settings": {"provider_id": 3}},
            {"subdomain": "", "client_name": "authentik", "idp_settings": {"provider_id": 4}},
            {"subdomain": "beta", "client_name": "okta"},  # no idp_settings: by hand
            *extra]


CONNECTIONS = {"authentik": {"url": "https://authentik.example.net", "api_token": API_SECRET}}


def run(operation: str, check_mode: bool = False, **args) -> dict:
    task = MagicMock()
    task.args = dict({"operation": operation, "realms": realms(), "connections": CONNECTIONS,
                      "external_host": "zulip.example.com"}, **args)
    task.async_val = 0
    task.check_mode = check_mode
    task.action = "zulip_ops.zulip.zulip_scim_idp"
    action = plugin.ActionModule(task, MagicMock(), PlayContext(), DataLoader(), MagicMock(), None)
    action._load_name = "zulip_ops.zulip.zulip_scim_idp"
    return action.run(task_vars={"inventory_hostname": "web1"})


def no_secret_in(result: dict) -> None:
    text = repr(result)
    assert TOKEN_NEW not in text and TOKEN_OLD not in text and API_SECRET not in text


def test_check_reads_each_automated_realm_with_the_inventorys_base_url(backend):
    result = run("check")
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert [c[:3] for c in backend["calls"]] == [
        ("read", "acme", "https://acme.zulip.example.com/scim/v2"),
        ("read", "", "https://zulip.example.com/scim/v2")]
    assert result["automated"] == ["", "acme"] and result["manual"] == []
    assert result["states"]["acme"] == {"automated": True, "summary": "provider 3", "facts": {"was": "running"}}
    assert backend["connected"] == [("authentik", CONNECTIONS["authentik"])]  # one backend per IdP
    no_secret_in(result)


def test_a_connection_the_api_cannot_set_is_manual(backend):
    backend["shape"]["automated"] = False
    result = run("check")
    assert result["manual"] == ["", "acme"] and result["automated"] == []
    assert "connect those by hand" in result["msg"]
    states = result["states"]
    backend["calls"].clear()
    assert run("push", states=states, tokens={"acme": TOKEN_NEW})["pushed"] == []
    assert backend["calls"] == []


@pytest.mark.parametrize("args, words", [
    ({"external_host": None}, "set zulip_scim_external_host"),
    ({"external_host": "zulip.example.com/evil"}, "zulip_scim_external_host"),
    ({"host_external_host": "attacker.example.net"}, "no IdP is pointed at either until they agree"),
    ({"connections": {}}, "zulip_scim_idp_connections has no authentik entry"),
    ({"realms": [{"subdomain": "x", "idp": "other", "idp_settings": {"id": 1}}]}, "cannot set a other connection"),
])
def test_refused_before_any_request(backend, args, words):
    result = run("check", **args)
    assert result["failed"] and words in result["msg"], result
    assert "Nothing was changed" in result["msg"]
    assert backend["calls"] == []
    no_secret_in(result)


def test_the_steps_in_order_with_each_realms_new_token(backend):
    states = run("check")["states"]
    backend["calls"].clear()
    assert run("before", states=states)["changed"] is True
    pushed = run("push", states=states, tokens={"acme": TOKEN_NEW})
    assert pushed["pushed"] == ["acme"] and pushed["changed"] is True
    assert [(c[0], c[1]) for c in backend["calls"]] == [
        ("before", "acme"), ("before", ""), ("push", "acme"), ("verify", "acme"), ("after", "acme")]
    assert backend["calls"][2][3] == TOKEN_NEW
    no_secret_in(pushed)


def test_check_mode_reads_and_calls_nothing_else(backend):
    states = run("check", check_mode=True)["states"]
    reads = len(backend["calls"])
    assert reads == 2
    assert run("before", check_mode=True, states=states)["changed"] is True
    result = run("push", check_mode=True, states=states, tokens={"acme": TOKEN_NEW})
    assert result["pushed"] == ["acme"] and "would get" in result["msg"]
    assert run("restore", check_mode=True, states=states, tokens={"acme": TOKEN_OLD})["restored"] == []
    assert len(backend["calls"]) == reads


def test_a_failed_step_is_named_and_stops(backend):
    states = run("check")["states"]
    backend["fail"]["verify"] = ""
    result = run("push", states=states, tokens={"acme": TOKEN_NEW, "": TOKEN_NEW})
    assert result["failed"]
    assert result["msg"].startswith('realm "" (root domain) (authentik), step verify: verify refused (HTTP 500)')
    assert ("after", "") not in [(c[0], c[1]) for c in backend["calls"]]
    # acme's IdP came first and got the new token, the root domain's may have it: a restore gives both the old one.
    assert result["attempted"] == ["", "acme"]
    no_secret_in(result)


def test_restore_tries_every_realm_and_names_the_failures(backend):
    states = run("check")["states"]
    backend["fail"]["restore"] = ""
    result = run("restore", states=states, tokens={"acme": TOKEN_OLD})
    assert result["failed"] and 'realm "" (root domain) (authentik), step restore' in result["msg"]
    assert [(c[0], c[1], c[3]) for c in backend["calls"] if c[0] == "restore"] == [
        ("restore", "acme", TOKEN_OLD), ("restore", "", None)]
    no_secret_in(result)


def test_later_steps_need_the_checks_state(backend):
    result = run("push", tokens={"acme": TOKEN_NEW})
    assert result["failed"] and "no state from an earlier check" in result["msg"]


def test_an_unexpected_error_is_withheld(backend, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("the token is " + TOKEN_NEW)
    monkeypatch.setattr(Recorder, "push", boom)
    states = run("check")["states"]
    result = run("push", states=states, tokens={"acme": TOKEN_NEW})
    assert result["failed"] and "details are withheld" in result["msg"]
    no_secret_in(result)


def test_a_realm_left_pending_by_an_earlier_run_is_read_as_resuming(backend, monkeypatch):
    seen = []

    def read(self, realm):
        seen.append((realm.subdomain, realm.resuming))
        return IdpState(True, "", {})

    monkeypatch.setattr(Recorder, "read", read)
    run("check", resumed=[""])
    assert seen == [("acme", False), ("", True)]
