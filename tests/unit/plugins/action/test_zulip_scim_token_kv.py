"""The actions with store=hashicorp_vault, against the real OpenBao of tests/unit/conftest.py.

zulip_scim_token (generate, check mode, rotate, adopt, retire, errors) and
zulip_scim_token_copy (vault file -> KV v2 -> vault file, same tokens).
"""

from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.playbook.play_context import PlayContext

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as token_plugin
from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token_copy as copy_plugin
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as stores
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs

SECRETS = [("default", VaultSecret(b"kv action test password"))]


def make_action(module, name: str, args: dict, check_mode: bool = False):
    """The action as Ansible builds it: a real DataLoader with the play's vault secret."""
    loader = DataLoader()
    loader.set_vault_secrets(list(SECRETS))
    task = MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check_mode
    task.action = "zulip_ops.zulip.%s" % name
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = module.ActionModule(task, connection, PlayContext(), loader, MagicMock(), None)
    action._load_name = "zulip_ops.zulip.%s" % name
    return action


@pytest.fixture
def task_vars(tmp_path):
    return {"inventory_hostname": "web1", "inventory_dir": str(tmp_path), "playbook_dir": str(tmp_path)}


@pytest.fixture
def hashicorp(openbao, kv_path, monkeypatch):
    """The action's hashicorp option; the server address and token come from the environment, as in AWX."""
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    monkeypatch.delenv("VAULT_CACERT", raising=False)
    for name in ("BAO_ADDR", "BAO_TOKEN", "BAO_NAMESPACE", "BAO_CACERT"):  # they would win over VAULT_*
        monkeypatch.delenv(name, raising=False)
    return {"path": kv_path}


def token_task(args: dict, task_vars: dict, check_mode: bool = False) -> dict:
    return make_action(token_plugin, "zulip_scim_token", args, check_mode).run(task_vars=task_vars)


def copy_task(args: dict, task_vars: dict, check_mode: bool = False) -> dict:
    return make_action(copy_plugin, "zulip_scim_token_copy", args, check_mode).run(task_vars=task_vars)


def kv_data(openbao, kv_path: str, realm_key: str) -> dict | None:
    proc = openbao.bao("kv", "get", "-format=json", "-mount=secret", "%s/web1/%s" % (kv_path, realm_key), check=False)
    return json.loads(proc.stdout)["data"]["data"] if proc.returncode == 0 else None


class TestTokenActionWithKV:
    def test_generate_then_nothing_to_do(self, hashicorp, task_vars, openbao, kv_path):
        args = {"realms": ["acme", ""], "store": "hashicorp_vault", "hashicorp": hashicorp}
        first = token_task(args, task_vars)
        assert first["changed"] and first["generated"] == ["acme", ""] and first["_ansible_no_log"] is True
        assert first["path"] == "%s secret/%s" % (openbao.url, kv_path)
        assert kv_data(openbao, kv_path, "acme")["token"] == first["tokens"]["acme"]
        assert kv_data(openbao, kv_path, "_root")["token"] == first["tokens"][""]
        second = token_task(args, task_vars)
        assert not second["changed"] and second["tokens"] == first["tokens"]
        # Nothing went to the ansible-vault file.
        assert not os.path.exists(os.path.join(task_vars["inventory_dir"], stores.DEFAULT_FILENAME))
        # How to read a token, as this store says it (the sheet and the report print it).
        hint = token_task(dict(args, realms=[], audit=True), task_vars)["read_token"]
        assert hint.startswith("bao kv get -mount=secret -field=token %s/web1/<realm, _root" % kv_path), hint
        proc = openbao.bao("kv", "get", "-mount=secret", "-field=token", "%s/web1/acme" % kv_path)
        assert proc.stdout.strip() == first["tokens"]["acme"]  # the command it names works
        assert first["tokens"]["acme"] not in hint

    def test_check_mode_writes_nothing(self, hashicorp, task_vars, openbao, kv_path):
        result = token_task({"realms": ["acme"], "store": "hashicorp_vault", "hashicorp": hashicorp}, task_vars,
                            check_mode=True)
        assert result["changed"] and result["generated"] == ["acme"]
        assert kv_data(openbao, kv_path, "acme") is None

    def test_rotate_adopt_retire(self, hashicorp, task_vars, openbao, kv_path):
        base = {"store": "hashicorp_vault", "hashicorp": hashicorp}
        adopted = token_task(dict(base, realms=["acme"], adopt={"acme": "HostToken_1"}), task_vars)
        assert adopted["adopted"] == ["acme"] and adopted["tokens"] == {"acme": "HostToken_1"}
        rotated = token_task(dict(base, realms=["acme"], rotate=["acme"]), task_vars)
        assert rotated["previous_tokens"] == {"acme": "HostToken_1"}
        retired = token_task(dict(base, realms=["beta"], retire=["acme"]), task_vars)
        assert retired["retired"] == ["acme"] and retired["retired_tokens"] == {"acme": rotated["tokens"]["acme"]}
        assert kv_data(openbao, kv_path, "acme")["state"] == "retired"

    def test_unreachable_store_is_a_clear_error(self, task_vars, kv_path, monkeypatch):
        pytest.importorskip("hvac")
        monkeypatch.setenv("VAULT_TOKEN", "hvs.do-not-show-me")
        result = token_task({"realms": ["acme"], "store": "hashicorp_vault",
                             "hashicorp": {"url": "http://127.0.0.1:1", "path": kv_path, "timeout": 3}}, task_vars)
        assert result["failed"] and "cannot reach http://127.0.0.1:1" in result["msg"]
        assert "do-not-show-me" not in json.dumps(result, default=str)

    def test_no_address_at_all(self, task_vars, monkeypatch):
        monkeypatch.delenv("VAULT_ADDR", raising=False)
        monkeypatch.delenv("BAO_ADDR", raising=False)
        result = token_task({"realms": ["acme"], "store": "hashicorp_vault"}, task_vars)
        assert result["failed"] and "VAULT_ADDR" in result["msg"]


class TestCopyAction:
    def vault_file(self, task_vars) -> str:
        return os.path.join(task_vars["inventory_dir"], stores.DEFAULT_FILENAME)

    def test_there_and_back_keeps_every_token(self, hashicorp, task_vars, openbao, kv_path):
        made = token_task({"realms": ["acme", ""], "rotate": []}, task_vars)
        token_task({"realms": ["acme", ""], "rotate": ["acme"]}, task_vars)
        file_entries = vfs.VaultFileStore(self.vault_file(task_vars), SECRETS).read("web1")

        dry = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, task_vars, check_mode=True)
        assert dry["changed"] and dry["copied"] == ["", "acme"] and kv_data(openbao, kv_path, "acme") is None

        into_kv = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        assert into_kv["changed"] and into_kv["copied"] == ["", "acme"] and into_kv["unchanged"] == []
        assert kv_data(openbao, kv_path, "acme") == file_entries["acme"]
        assert kv_data(openbao, kv_path, "_root")["token"] == made["tokens"][""]
        assert "tokens" not in into_kv

        # The KV store now answers with the same tokens and nothing to change.
        from_kv = token_task({"realms": ["acme", ""], "store": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        assert not from_kv["changed"]
        assert from_kv["tokens"] == {realm: entry["token"] for realm, entry in file_entries.items()}

        again = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        assert not again["changed"] and again["unchanged"] == ["", "acme"]

        # And back, into an empty file.
        os.unlink(self.vault_file(task_vars))
        back = copy_task({"to": "vault_file", "hashicorp": hashicorp}, task_vars)
        assert back["changed"] and back["copied"] == ["", "acme"]
        assert vfs.VaultFileStore(self.vault_file(task_vars), SECRETS).read("web1") == file_entries

    def test_a_differing_entry_stops_the_copy(self, hashicorp, task_vars, openbao, kv_path):
        token_task({"realms": ["acme", "beta"]}, task_vars)
        token_task({"realms": ["acme"], "store": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        result = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        assert result["failed"] and "other entries for realm(s) acme" in result["msg"]
        assert kv_data(openbao, kv_path, "beta") is None  # nothing was copied

    def test_only_the_realms_asked_for(self, hashicorp, task_vars, openbao, kv_path):
        token_task({"realms": ["acme", "beta"]}, task_vars)
        result = copy_task({"to": "hashicorp_vault", "realms": ["beta"], "hashicorp": hashicorp}, task_vars)
        assert result["copied"] == ["beta"] and kv_data(openbao, kv_path, "acme") is None
        missing = copy_task({"to": "hashicorp_vault", "realms": ["gamma"], "hashicorp": hashicorp}, task_vars)
        assert missing["failed"] and "no entry for realm(s) gamma" in missing["msg"]

    def test_needs_a_host(self, hashicorp):
        result = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, {"playbook_dir": "/tmp"})
        assert result["failed"] and "set host" in result["msg"]

    def test_other_errors_are_withheld(self, hashicorp, task_vars, monkeypatch):
        def explode(*_args, **_kwargs):
            raise ValueError("secret-looking-detail")

        monkeypatch.setattr(copy_plugin, "copy_host", explode)
        result = copy_task({"to": "hashicorp_vault", "hashicorp": hashicorp}, task_vars)
        assert result["failed"] and "ValueError" in result["msg"] and "secret-looking-detail" not in result["msg"]
