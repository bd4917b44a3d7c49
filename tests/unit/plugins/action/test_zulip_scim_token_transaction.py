"""A change as one transaction across the token store and the host (issue 24), with both stores.

The scim role stores a new token as pending (until_proven), then either confirms it once the host
is proven to serve it, or settles it when the host went back: the store goes back too. The same
tests run against the ansible-vault file and against the suite's real OpenBao (KV v2). The host is
a dict here: what the action would read with zulip_scim_token_info.
"""

from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.playbook.play_context import PlayContext

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as plugin
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_stores import hashicorp_store

SECRETS = [("default", VaultSecret(b"transaction test password"))]
HOST = "web1"


class Backend:
    """One token store as the tests see it: the action's store arguments, and a way to read it back."""

    def __init__(self, args: dict, read, version):
        self.args = args
        self.read = read
        # Something that changes with every write (file bytes, KV versions): a run that changes
        # nothing must not write.
        self.version = version


@pytest.fixture(params=["vault_file", "hashicorp_vault"])
def backend(request, tmp_path, monkeypatch) -> Backend:
    if request.param == "vault_file":
        path = str(tmp_path / "tokens.vault.yml")

        def file_bytes():
            return open(path, "rb").read() if os.path.exists(path) else b""
        return Backend({"path": path}, lambda: vfs.VaultFileStore(path, SECRETS).read(HOST), file_bytes)
    openbao = request.getfixturevalue("openbao")
    kv_path = request.getfixturevalue("kv_path")
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    monkeypatch.delenv("VAULT_CACERT", raising=False)
    options = {"path": kv_path}

    def versions():
        proc = openbao.bao("kv", "metadata", "get", "-format=json", "-mount=secret", "%s/%s/acme" % (kv_path, HOST),
                           check=False)
        return json.loads(proc.stdout)["data"]["current_version"] if proc.returncode == 0 else 0
    return Backend({"store": "hashicorp_vault", "hashicorp": options},
                   lambda: hashicorp_store(options, os.environ).read(HOST), versions)


@pytest.fixture
def host(monkeypatch) -> dict:
    """The tokens the host serves, by realm; the action reads them instead of running zulip_scim_token_info."""
    serves: dict = {"_reads": []}

    def host_tokens(self, realms, args, task_vars):
        serves["_reads"].append(list(realms))
        return {realm: serves[realm] for realm in realms if serves.get(realm)}
    monkeypatch.setattr(plugin.ActionModule, "host_tokens", host_tokens)
    return serves


@pytest.fixture
def warnings(monkeypatch) -> list:
    found: list = []
    monkeypatch.setattr(plugin.display, "warning", lambda msg, *a, **k: found.append(msg))
    return found


def token_task(backend: Backend, tmp_path, check_mode: bool = False, **args) -> dict:
    loader = DataLoader()
    loader.set_vault_secrets(list(SECRETS))
    task = MagicMock()
    task.args = dict(backend.args, **args)
    task.async_val = 0
    task.check_mode = check_mode
    task.action = "zulip_ops.zulip.zulip_scim_token"
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = plugin.ActionModule(task, connection, PlayContext(), loader, MagicMock(), None)
    action._load_name = "zulip_ops.zulip.zulip_scim_token"
    task_vars = {"inventory_hostname": HOST, "inventory_dir": str(tmp_path), "playbook_dir": str(tmp_path)}
    result = action.run(task_vars=task_vars)
    assert not result.get("failed"), result.get("msg")
    return result


def plain_run(backend, tmp_path, **args) -> dict:
    """The role's token task in a run without the rotate tag."""
    return token_task(backend, tmp_path, realms=["acme"], until_proven=True, settle_from_host=True, **args)


def enabled(backend, tmp_path, host) -> str:
    """acme enabled and proven: the host serves the store's token, nothing pending."""
    made = plain_run(backend, tmp_path)
    host["acme"] = made["tokens"]["acme"]
    token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven=made["tokens"])
    assert "pending" not in backend.read()["acme"]
    return made["tokens"]["acme"]


def test_a_new_token_is_pending_until_the_host_proves_it(backend, tmp_path, host):
    made = plain_run(backend, tmp_path)
    assert made["generated"] == ["acme"] and made["pending"] == ["acme"]
    assert made["resumed"] == []  # this run began it
    assert backend.read()["acme"]["pending"]
    host["acme"] = made["tokens"]["acme"]
    # Only the proven token: another one (a store changed since) is not confirmed.
    wrong = token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven={"acme": "NotTheToken_0123456789"})
    assert wrong["confirmed"] == [] and not wrong["changed"]
    done = token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven=made["tokens"])
    assert done["confirmed"] == ["acme"] and done["changed"] and made["tokens"]["acme"] not in done["msg"]
    assert backend.read()["acme"] == {"token": made["tokens"]["acme"], "created": backend.read()["acme"]["created"],
                                      "state": "active"}
    before = backend.version()
    again = token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven=made["tokens"])
    assert again["confirmed"] == [] and not again["changed"] and backend.version() == before


def test_a_rotation_whose_host_went_back_is_put_back_in_the_store(backend, tmp_path, host, warnings):
    old = enabled(backend, tmp_path, host)
    old_created = backend.read()["acme"]["created"]
    rotated = plain_run(backend, tmp_path, rotate=["acme"])
    new = rotated["tokens"]["acme"]
    assert new != old and rotated["pending"] == ["acme"]
    # The host went back (a failed restart or check): it serves the old token again.
    assert host["acme"] == old
    back = token_task(backend, tmp_path, realms=["acme"], operation="settle")
    assert back["rolled_back"] == ["acme"] and back["changed"] and back["pending"] == []
    assert old not in back["msg"] and new not in back["msg"] and "never in force" in back["msg"]
    entry = backend.read()["acme"]
    assert (entry["token"], entry["created"], entry["state"]) == (old, old_created, "active")
    assert "pending" not in entry
    assert entry["previous"][0]["token"] == new and entry["previous"][0]["rolled_back"]
    # The next run without the rotate tag changes nothing: no conflict, the host's token is the store's.
    before = backend.version()
    plain = plain_run(backend, tmp_path)
    assert not plain["changed"] and plain["tokens"] == {"acme": old} and plain["conflicts"] == []
    assert plain["pending"] == [] and backend.version() == before and warnings == []
    # A settle with nothing pending neither reads the host nor writes.
    reads = len(host["_reads"])
    nothing = token_task(backend, tmp_path, realms=["acme"], operation="settle")
    assert not nothing["changed"] and len(host["_reads"]) == reads and backend.version() == before


def test_a_run_killed_before_the_store_went_back_is_finished_by_the_next_run(backend, tmp_path, host, warnings):
    old = enabled(backend, tmp_path, host)
    new = plain_run(backend, tmp_path, rotate=["acme"])["tokens"]["acme"]
    # Killed after the host went back, before the settle: the store still holds the new token, pending.
    assert backend.read()["acme"]["token"] == new and host["acme"] == old
    # The role's look-up (a trial in check mode, no host read) tells that there is something to do.
    trial = token_task(backend, tmp_path, check_mode=True, realms=["acme"], until_proven=True)
    assert trial["pending"] == ["acme"]
    nxt = plain_run(backend, tmp_path)
    assert nxt["rolled_back"] == ["acme"] and nxt["tokens"] == {"acme": old} and nxt["conflicts"] == []
    assert nxt["changed"] and nxt["pending"] == [] and nxt["rotated"] == [] and nxt["generated"] == []
    assert len(warnings) == 1 and "never in force" in warnings[0] and old not in warnings[0] and new not in warnings[0]
    assert backend.read()["acme"]["token"] == old
    before = backend.version()
    assert not plain_run(backend, tmp_path)["changed"] and backend.version() == before


def test_a_host_that_has_the_new_token_keeps_it_pending_until_proven(backend, tmp_path, host):
    old = enabled(backend, tmp_path, host)
    new = plain_run(backend, tmp_path, rotate=["acme"])["tokens"]["acme"]
    host["acme"] = new  # written, not proven (killed before the check)
    settled = token_task(backend, tmp_path, realms=["acme"], operation="settle")
    assert settled["rolled_back"] == [] and settled["pending"] == ["acme"] and not settled["changed"]
    # A later run, even one that asks for rotation, proves this token first instead of making another,
    # and the token it replaced is to get 401 once it is proven.
    nxt = plain_run(backend, tmp_path, rotate=["acme"])
    assert nxt["tokens"] == {"acme": new} and nxt["rotated"] == [] and nxt["pending"] == ["acme"]
    assert nxt["resumed"] == ["acme"]  # an earlier run began it: what it did to an IdP is this run's to finish
    assert nxt["previous_tokens"] == {"acme": old}
    token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven=nxt["tokens"])
    assert "pending" not in backend.read()["acme"]


def test_a_host_with_another_token_is_not_taken_for_a_host_that_went_back(backend, tmp_path, host):
    enabled(backend, tmp_path, host)
    new = plain_run(backend, tmp_path, rotate=["acme"])["tokens"]["acme"]
    host["acme"] = "SomebodyElses_token_0123456789"
    settled = token_task(backend, tmp_path, realms=["acme"], operation="settle")
    assert settled["rolled_back"] == [] and backend.read()["acme"]["token"] == new


def test_a_first_enable_whose_host_went_back_leaves_no_token_in_force(backend, tmp_path, host):
    failed = plain_run(backend, tmp_path)["tokens"]["acme"]
    # The host went back to no SCIM for acme.
    back = token_task(backend, tmp_path, realms=["acme"], operation="settle")
    assert back["rolled_back"] == ["acme"]
    entry = backend.read()["acme"]
    assert entry["state"] == "retired" and entry["rolled_back"] and entry["token"] == failed and "pending" not in entry
    audit = token_task(backend, tmp_path, realms=[], audit=True)["audit"]
    assert [(a["realm"], a["state"]) for a in audit] == [("acme", "retired")]
    # The next run enables the realm again, with a new token; the failed one is never given out.
    again = plain_run(backend, tmp_path)
    assert again["generated"] == ["acme"] and again["tokens"]["acme"] != failed
    item = backend.read()["acme"]["previous"][0]
    assert item["token"] == failed and item["rolled_back"] and item["retired"]
    # And a second failure goes back the same way.
    token_task(backend, tmp_path, realms=["acme"], operation="settle")
    entry = backend.read()["acme"]
    assert (entry["state"], entry["token"]) == ("retired", again["tokens"]["acme"]) and entry["rolled_back"]
    assert [item["token"] for item in entry["previous"]] == [failed]


def test_check_mode_settles_nothing(backend, tmp_path, host):
    enabled(backend, tmp_path, host)
    new = plain_run(backend, tmp_path, rotate=["acme"])["tokens"]["acme"]
    before = backend.version()
    would = token_task(backend, tmp_path, check_mode=True, realms=["acme"], operation="settle")
    assert would["rolled_back"] == ["acme"] and backend.version() == before and backend.read()["acme"]["token"] == new


def test_without_history_the_replaced_token_is_kept_until_settled_or_confirmed(backend, tmp_path, host):
    old = enabled(backend, tmp_path, host)
    rotated = plain_run(backend, tmp_path, rotate=["acme"], history=0)
    assert [p["token"] for p in backend.read()["acme"]["previous"]] == [old]
    token_task(backend, tmp_path, realms=["acme"], operation="confirm", proven=rotated["tokens"], history=0)
    assert "previous" not in backend.read()["acme"]


def test_the_age_policy_keeps_the_transaction(backend, tmp_path, host):
    old = enabled(backend, tmp_path, host)
    plain_run(backend, tmp_path, rotate=["acme"])
    # A killed run's pending token is settled in a run with an age policy too, and not rotated as overdue.
    nxt = plain_run(backend, tmp_path, max_age_days=1, max_age_action="rotate", rotate_overdue=True)
    assert nxt["rolled_back"] == ["acme"] and nxt["tokens"] == {"acme": old} and nxt["rotated"] == []
    rotated = plain_run(backend, tmp_path, max_age_days=1, max_age_action="rotate", rotate_overdue=True,
                        rotate=["acme"])
    assert rotated["rotated"] == ["acme"] and rotated["pending"] == ["acme"]
