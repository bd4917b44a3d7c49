"""The action plugin, called directly with a real DataLoader and real vault files."""

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest
from ansible import constants as ansible_constants
from ansible.errors import AnsibleActionFail
from ansible.executor import task_result
from ansible.parsing import vault
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.playbook.play_context import PlayContext

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as plugin
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as stores
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs

SECRETS = [("default", VaultSecret(b"action test password"))]
DEFAULT_SECRETS = object()


def make_action(args: dict, secrets=DEFAULT_SECRETS, check_mode: bool = False) -> plugin.ActionModule:
    if secrets is DEFAULT_SECRETS:
        secrets = SECRETS
    loader = DataLoader()
    loader.set_vault_secrets(list(secrets) if secrets is not None else None)
    task = MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check_mode
    task.action = "zulip_ops.zulip.zulip_scim_token"
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = plugin.ActionModule(task, connection, PlayContext(), loader, MagicMock(), None)
    action._load_name = "zulip_ops.zulip.zulip_scim_token"
    return action


@pytest.fixture
def task_vars(tmp_path):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    return {"inventory_hostname": "web1", "inventory_dir": str(inventory), "playbook_dir": str(tmp_path)}


@pytest.fixture
def default_file(task_vars):
    return os.path.join(task_vars["inventory_dir"], ".zulip_scim_tokens.vault.yml")


# ansible-core >= 2.19 keeps the vault secrets in a process-wide context too.
HAS_SECRETS_CONTEXT = hasattr(vault, "VaultSecretsContext")


@pytest.fixture
def no_context_secrets(monkeypatch):
    """Tests must not see vault secrets another test (or Ansible) put in the process context."""
    if HAS_SECRETS_CONTEXT:
        monkeypatch.setattr(
            "ansible.parsing.vault.VaultSecretsContext.current", classmethod(lambda cls, optional=False: None)
        )


def run(args, task_vars, **kwargs) -> dict:
    return make_action(args, **kwargs).run(task_vars=task_vars)


def stored(path) -> dict:
    return vfs.VaultFileStore(path, SECRETS).read("web1")


class TestRun:
    def test_first_run_generates_and_censors(self, task_vars, default_file):
        result = run({"realms": ["acme", ""]}, task_vars)
        assert result["_ansible_no_log"] is True
        assert result["changed"] is True
        assert result["generated"] == ["acme", ""]
        assert result["rotated"] == result["adopted"] == result["retired"] == result["conflicts"] == []
        assert result["previous_tokens"] == {}
        assert result["path"] == default_file
        assert result["host"] == "web1"
        assert {realm: entry["token"] for realm, entry in stored(default_file).items()} == result["tokens"]
        for token in result["tokens"].values():
            assert len(token) >= 43

    def test_second_run_same_tokens_unchanged(self, task_vars, default_file):
        first = run({"realms": ["acme", ""]}, task_vars)
        mtime = os.stat(default_file).st_mtime_ns
        second = run({"realms": ["acme", ""]}, task_vars)
        assert second["tokens"] == first["tokens"]
        assert second["changed"] is False and second["generated"] == []
        assert os.stat(default_file).st_mtime_ns == mtime

    def test_rotate_returns_previous(self, task_vars):
        first = run({"realms": ["acme", ""]}, task_vars)
        rotated = run({"realms": ["acme", ""], "rotate": ["acme"]}, task_vars)
        assert rotated["changed"] and rotated["rotated"] == ["acme"]
        assert rotated["previous_tokens"] == {"acme": first["tokens"]["acme"]}
        assert rotated["tokens"][""] == first["tokens"][""]
        assert rotated["tokens"]["acme"] != first["tokens"]["acme"]

    def test_retire_and_token_bytes(self, task_vars, default_file):
        run({"realms": ["acme", "old"]}, task_vars)
        result = run({"realms": ["acme", "new"], "retire": ["old"], "token_bytes": 64}, task_vars)
        assert result["retired"] == ["old"] and result["generated"] == ["new"]
        assert len(result["tokens"]["new"]) == 86
        assert stored(default_file)["old"]["state"] == "retired"

    def test_adopt_and_conflict_warning(self, task_vars, monkeypatch):
        warnings = []
        monkeypatch.setattr(plugin.display, "warning", lambda msg, *a, **k: warnings.append(msg))
        result = run({"realms": ["acme"], "adopt": {"acme": "HostToken_1-strong"}}, task_vars)
        assert result["adopted"] == ["acme"] and result["tokens"] == {"acme": "HostToken_1-strong"}
        assert warnings == []
        result = run({"realms": ["acme"], "adopt": {"acme": "OtherToken_2-strong"}}, task_vars)
        assert result["conflicts"] == ["acme"] and result["tokens"] == {"acme": "HostToken_1-strong"}
        assert result["changed"] is False
        assert len(warnings) == 1 and "realm acme on web1" in warnings[0]
        assert "HostToken_1" not in warnings[0] and "OtherToken_2" not in warnings[0]

    def test_weak_adopted_token_is_kept_with_a_warning_to_rotate(self, task_vars, default_file, monkeypatch):
        warnings = []
        monkeypatch.setattr(plugin.display, "warning", lambda msg, *a, **k: warnings.append(msg))
        result = run({"realms": ["acme"], "adopt": {"acme": "Weak_1"}}, task_vars)
        # The IdP keeps working: the short token is adopted and stored.
        assert result["adopted"] == ["acme"] and result["tokens"] == {"acme": "Weak_1"}
        assert stored(default_file)["acme"]["token"] == "Weak_1"
        assert len(warnings) == 1
        assert "realm acme on web1" in warnings[0] and "--tags rotate_scim_token" in warnings[0]
        assert '"zulip_scim_rotate_realms": ["acme"]' in warnings[0] and "--limit web1" in warnings[0]
        assert "Weak_1" not in warnings[0]
        # Next run: the stored token is used, nothing adopted, no new warning.
        again = run({"realms": ["acme"], "adopt": {"acme": "Weak_1"}}, task_vars)
        assert again["changed"] is False and len(warnings) == 1

    def test_weak_token_adopted_and_rotated_in_one_run_gives_no_warning(self, task_vars, monkeypatch):
        warnings = []
        monkeypatch.setattr(plugin.display, "warning", lambda msg, *a, **k: warnings.append(msg))
        result = run({"realms": ["acme"], "rotate": ["acme"], "adopt": {"acme": "Weak_1"}}, task_vars)
        assert result["rotated"] == ["acme"] and result["previous_tokens"] == {"acme": "Weak_1"}
        assert warnings == []

    @pytest.mark.parametrize("unsafe", ['quo"te-token-0123456', "new\nline-token-01234", "\x7fdel-token-0123456"])
    def test_unsafe_host_token_is_refused_before_any_write(self, task_vars, default_file, unsafe):
        result = run({"realms": ["acme"], "adopt": {"acme": unsafe}}, task_vars)
        assert result["failed"] is True and "adopt[acme] is not a usable token" in result["msg"]
        assert "turn adoption off" in result["msg"] and unsafe not in result["msg"]
        assert not os.path.exists(default_file)

    def test_explicit_host_and_relative_path(self, task_vars, tmp_path):
        (tmp_path / "secrets").mkdir()
        result = run({"realms": ["acme"], "host": "other", "path": "secrets/t.vault.yml"}, task_vars)
        assert result["path"] == str(tmp_path / "secrets" / "t.vault.yml")
        assert result["host"] == "other"
        assert vfs.VaultFileStore(result["path"], SECRETS).read("other")["acme"]["token"] == result["tokens"]["acme"]

    def test_encrypt_identity_is_honoured(self, task_vars, default_file, monkeypatch):
        monkeypatch.setattr(ansible_constants, "DEFAULT_VAULT_ENCRYPT_IDENTITY", "prod")
        secrets = SECRETS + [("prod", VaultSecret(b"prod password"))]
        run({"realms": ["acme"]}, task_vars, secrets=secrets)
        with open(default_file, "rb") as handle:
            assert handle.readline().strip() == b"$ANSIBLE_VAULT;1.2;AES256;prod"


class TestCheckMode:
    def test_check_mode_writes_nothing_but_returns_tokens(self, task_vars, default_file):
        result = run({"realms": ["acme", ""]}, task_vars, check_mode=True)
        assert result["changed"] is True and result["generated"] == ["acme", ""]
        assert len(result["tokens"]) == 2
        assert not os.path.exists(default_file)
        assert os.listdir(os.path.dirname(default_file)) == []

    def test_check_mode_on_existing_file(self, task_vars, default_file):
        real = run({"realms": ["acme"]}, task_vars)
        with open(default_file, "rb") as handle:
            before = handle.read()
        same = run({"realms": ["acme"]}, task_vars, check_mode=True)
        assert same["changed"] is False and same["tokens"] == real["tokens"]
        rotate = run({"realms": ["acme"], "rotate": ["acme"]}, task_vars, check_mode=True)
        assert rotate["changed"] is True and rotate["previous_tokens"] == real["tokens"]
        with open(default_file, "rb") as handle:
            assert handle.read() == before

    def test_store_changed_says_the_same_as_changed(self, task_vars, default_file):
        # The scim role's look-up overrides changed (changed_when: it writes nothing) and reads store_changed.
        would = run({"realms": ["acme"]}, task_vars, check_mode=True)
        assert would["store_changed"] is True is would["changed"]
        run({"realms": ["acme"]}, task_vars)
        same = run({"realms": ["acme"]}, task_vars, check_mode=True)
        assert same["store_changed"] is False is same["changed"]


class TestFailures:
    def test_no_vault_secret(self, task_vars, default_file, no_context_secrets):
        for secrets in (None, []):
            result = run({"realms": ["acme"]}, task_vars, secrets=secrets)
            assert result["failed"] is True and result["changed"] is False
            assert "run with --vault-password-file, --ask-vault-pass or --vault-id" in result["msg"]
            assert "_ansible_no_log" not in result  # the message must stay visible
        assert not os.path.exists(default_file)

    def test_wrong_secret(self, task_vars, default_file):
        run({"realms": ["acme"]}, task_vars)
        result = run({"realms": ["acme", "b"]}, task_vars, secrets=[("default", VaultSecret(b"wrong"))])
        assert result["failed"] and "cannot decrypt" in result["msg"]
        assert set(stored(default_file)) == {"acme"}

    @pytest.mark.parametrize(
        "args, message",
        [
            ({"realms": ["Acme"]}, "realms: not a valid Zulip subdomain: 'Acme'"),
            ({"realms": ["acme"], "rotate": ["b"]}, "rotate lists realms that are not in realms: b"),
            ({"realms": ["acme"], "token_bytes": 16}, "token_bytes must be an integer of at least 32"),
            ({"realms": ["acme"], "adopt": {"acme": "two words"}}, "adopt[acme] is not a usable token"),
        ],
    )
    def test_bad_arguments_write_nothing(self, task_vars, default_file, args, message):
        result = run(args, task_vars)
        assert result["failed"] and message in result["msg"]
        assert not os.path.exists(default_file)

    def test_unknown_option_is_refused(self, task_vars):
        with pytest.raises(AnsibleActionFail, match="Unsupported parameters"):
            run({"realms": ["acme"], "rotation": ["acme"]}, task_vars)

    def test_realms_required(self, task_vars):
        with pytest.raises(AnsibleActionFail, match="realms"):
            run({}, task_vars)

    def test_no_host(self, task_vars):
        del task_vars["inventory_hostname"]
        result = run({"realms": ["acme"]}, task_vars)
        assert result["failed"] and "set host" in result["msg"]

    def test_unexpected_error_is_withheld(self, task_vars, monkeypatch):
        def leak(*_args, **_kwargs):
            raise ValueError("SecretTokenValue123")

        monkeypatch.setattr(plugin, "apply_request", leak)
        result = run({"realms": ["acme"]}, task_vars)
        assert result["failed"]
        assert "ValueError" in result["msg"] and "SecretTokenValue123" not in result["msg"]
        assert "exception" not in result


class TestHelpers:
    def test_default_path_prefers_inventory_dir(self):
        assert stores.default_path({"inventory_dir": "/inv", "playbook_dir": "/pb"}) == "/inv/.zulip_scim_tokens.vault.yml"

    def test_default_path_falls_back_to_playbook_dir(self):
        assert stores.default_path({"inventory_dir": None, "playbook_dir": "/pb"}) == "/pb/.zulip_scim_tokens.vault.yml"

    def test_default_path_needs_a_directory(self):
        with pytest.raises(ts.TokenStoreError, match="neither inventory_dir nor playbook_dir"):
            stores.default_path({})

    def test_resolve_path(self):
        assert stores.resolve_path("/abs/./t.yml", {}) == "/abs/t.yml"
        assert stores.resolve_path("rel/t.yml", {"playbook_dir": "/pb"}) == "/pb/rel/t.yml"
        assert stores.resolve_path("rel/t.yml", {}) == os.path.join(os.getcwd(), "rel/t.yml")
        assert stores.resolve_path(None, {"inventory_dir": "/inv"}) == "/inv/.zulip_scim_tokens.vault.yml"

    def test_text(self):
        assert stores.text(None) is None
        assert stores.text(3) == "3"

        class Tagged(str):
            pass

        value = stores.text(Tagged("web1"))
        assert value == "web1" and type(value) is str  # pylint: disable=unidiomatic-typecheck

    def test_vault_secrets_from_loader(self):
        loader = DataLoader()
        loader.set_vault_secrets(SECRETS)
        assert stores.vault_secrets(loader) == SECRETS

    @pytest.mark.skipif(not HAS_SECRETS_CONTEXT, reason="ansible-core < 2.19 has no VaultSecretsContext")
    def test_vault_secrets_from_context(self, monkeypatch):
        context = MagicMock(secrets=SECRETS)
        monkeypatch.setattr(
            "ansible.parsing.vault.VaultSecretsContext.current", classmethod(lambda cls, optional=False: context)
        )
        assert stores.vault_secrets(DataLoader()) == SECRETS
        assert stores.vault_secrets(object()) == SECRETS

    def test_vault_secrets_none(self, no_context_secrets):
        assert stores.vault_secrets(DataLoader()) == []

    def test_result_from_is_censored(self):
        outcome = ts.Outcome(tokens={"a": "T"}, generated=["a"])
        result = plugin.result_from(outcome, "web1", "/p")
        assert result["_ansible_no_log"] is True and result["changed"] is True

    @pytest.mark.skipif(not hasattr(task_result, "censor_result"), reason="censor_result is 2.19's: test_zulip_scim_token_playbook checks censoring end to end")
    def test_censoring_by_ansible(self):
        """What a callback (and so -vvv) receives for such a result: no token."""
        from ansible.executor.task_result import censor_result

        outcome = ts.Outcome(tokens={"a": "SecretTok"}, previous_tokens={"a": "OldTok"}, rotated=["a"])
        censored = censor_result(plugin.result_from(outcome, "web1", "/p"))
        assert "SecretTok" not in repr(censored) and "OldTok" not in repr(censored)
        assert censored["changed"] is True

    def test_vault_round_trip_with_ansible_vault_lib(self, task_vars, default_file):
        result = run({"realms": [""]}, task_vars)
        with open(default_file, "rb") as handle:
            text = VaultLib(SECRETS).decrypt(handle.read()).decode()
        assert '    "":\n      token: %s\n' % result["tokens"][""] in text


def age_tokens(path, realm_created: dict) -> None:
    """Back-date tokens in the file, as if they had been made long ago."""
    with vfs.VaultFileStore(path, SECRETS).transaction("web1") as entries:
        for realm, created in realm_created.items():
            entries[realm]["created"] = created


class TestAgePolicy:
    OLD = "2024-01-01T00:00:00Z"

    @pytest.mark.reliability(area="token_file", case="a token older than zulip_scim_token_max_age_days, action fail",
                             outcome="the task fails before anything is written, naming host, realm and age and "
                                     "how to rotate; the token file keeps every byte")
    def test_fail_stops_before_anything_is_written(self, task_vars, default_file):
        run({"realms": ["acme", ""]}, task_vars)
        age_tokens(default_file, {"": self.OLD})
        before = open(default_file, "rb").read()
        result = run({"realms": ["acme", ""], "retire": ["beta"], "max_age_days": 365, "max_age_action": "fail"},
                     task_vars)
        assert result["failed"] is True
        assert '"" (root domain)' in result["msg"] and "days" in result["msg"] and "rotate_scim_token" in result["msg"]
        assert open(default_file, "rb").read() == before

    def test_warn_names_the_overdue_tokens(self, task_vars, default_file, monkeypatch):
        run({"realms": ["acme", ""]}, task_vars)
        age_tokens(default_file, {"acme": self.OLD})
        warnings: list[str] = []
        monkeypatch.setattr(plugin.display, "warning", warnings.append)
        result = run({"realms": ["acme", ""], "max_age_days": 365}, task_vars)
        assert not result.get("failed") and result["changed"] is False
        assert list(result["overdue"]) == ["acme"] and result["overdue"]["acme"] > 365
        assert any("acme (" in w and "older than 365 days" in w for w in warnings)
        for token in result["tokens"].values():
            assert all(token not in w for w in warnings)

    def test_rotate_only_when_asked_and_only_the_overdue(self, task_vars, default_file):
        first = run({"realms": ["acme", ""]}, task_vars)
        age_tokens(default_file, {"acme": self.OLD})
        args = {"realms": ["acme", ""], "max_age_days": 30, "max_age_action": "rotate"}
        assert run(args, task_vars)["rotated"] == []  # not a rotation run: a warning only
        result = run(dict(args, rotate_overdue=True), task_vars)
        assert result["rotated"] == ["acme"] and result["previous_tokens"] == {"acme": first["tokens"]["acme"]}
        assert result["tokens"][""] == first["tokens"][""]

    def test_audit_lists_every_realm_and_no_token(self, task_vars, default_file):
        first = run({"realms": ["acme", ""]}, task_vars)
        run({"realms": ["acme"], "rotate": ["acme"], "retire": [""]}, task_vars)
        result = run({"realms": [], "audit": True}, task_vars)
        assert "_ansible_no_log" not in result and result["changed"] is False
        by_realm = {item["realm"]: item for item in result["audit"]}
        assert by_realm["acme"]["state"] == "active" and by_realm["acme"]["replaced_tokens"] == 1
        assert by_realm[""]["state"] == "retired" and by_realm[""]["age_days"] == 0
        dumped = repr(result)
        for token in first["tokens"].values():
            assert token not in dumped
        # How to read a token, as this store says it (the sheet and the report print it).
        assert result["read_token"] == ("ansible-vault view %s   (then zulip_scim_tokens > web1 > <realm, \"\" for the "
                                        "root domain> > token)" % default_file)
        assert run({"realms": ["acme"]}, task_vars)["read_token"] == result["read_token"]
