"""The ansible-vault file backend: real files, real vault encryption, real processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret, parse_vaulttext_envelope

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs

PASSWORD = b"correct horse battery staple"
SECRETS = [("default", VaultSecret(PASSWORD))]
NOW = "2026-11-28T16:40:00Z"


def encrypt(path, text: str, secrets=None, vault_id: str = "default") -> None:
    secrets = SECRETS if secrets is None else secrets
    data = VaultLib(secrets).encrypt(text, secret=dict(secrets)[vault_id], vault_id=vault_id)
    with open(path, "wb") as handle:
        handle.write(data)


def decrypt(path, secrets=None) -> str:
    secrets = SECRETS if secrets is None else secrets
    with open(path, "rb") as handle:
        return VaultLib(secrets).decrypt(handle.read()).decode()


def header_vault_id(path) -> str:
    with open(path, "rb") as handle:
        return parse_vaulttext_envelope(handle.read())[3]


def ensure(store, host, realms, **kwargs) -> ts.Outcome:
    """One locked run of the decisions, as the action plugin does it."""
    with store.transaction(host) as entries:
        return ts.apply_request(entries, ts.make_request(realms, **kwargs), now=NOW, new_token=ts.token_factory())


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "zulip_scim_tokens.vault.yml")


@pytest.fixture
def store(path):
    return vfs.VaultFileStore(path, SECRETS)


# ------------------------------------------------------------------ round trip


class TestRoundTrip:
    def test_first_write_creates_encrypted_file_in_documented_format(self, store, path):
        outcome = ensure(store, "web1", ["acme", ""])
        assert outcome.generated == ["acme", ""]
        with open(path, "rb") as handle:
            assert handle.read().startswith(b"$ANSIBLE_VAULT;1.1;AES256\n")
        text = decrypt(path)
        lines = text.splitlines()
        assert lines[0] == (
            "# Bearer tokens for Zulip SCIM, written by zulip_ops.zulip. "
            "View: ansible-vault view zulip_scim_tokens.vault.yml"
        )
        assert lines[1:4] == ["zulip_scim_tokens:", "  web1:", '    "":']
        assert "      token: %s" % outcome.tokens[""] in lines
        assert "      created: %s" % NOW in lines  # plain, as documented
        assert "      state: active" in lines
        # any YAML reader sees the same data (times become datetimes there)
        plain = yaml.safe_load(text)["zulip_scim_tokens"]["web1"]
        assert {realm: entry["token"] for realm, entry in plain.items()} == outcome.tokens

    def test_read_back(self, store):
        outcome = ensure(store, "web1", ["acme", ""])
        entries = store.read("web1")
        assert {realm: entry["token"] for realm, entry in entries.items()} == outcome.tokens
        assert entries["acme"]["created"] == NOW  # a string, not a datetime
        assert store.read("other") == {}

    def test_second_run_same_tokens_no_change(self, store):
        first = ensure(store, "web1", ["acme", ""])
        second = ensure(store, "web1", ["acme", ""])
        assert second.tokens == first.tokens
        assert not second.changed

    def test_history_and_retired_round_trip(self, store, path):
        ensure(store, "web1", ["acme", "old"])
        ensure(store, "web1", ["acme"], rotate=["acme"])
        ensure(store, "web1", ["acme"], retire=["old"])
        entries = store.read("web1")
        assert entries["acme"]["previous"][0]["replaced"] == NOW
        assert entries["old"]["state"] == "retired"
        text = decrypt(path)
        assert "      previous:\n        - token: " in text  # list items indented under their key

    def test_hosts_kept_apart_and_sorted(self, store, path):
        b = ensure(store, "b-host", ["acme"])
        a = ensure(store, "a-host", ["acme"])
        assert a.tokens["acme"] != b.tokens["acme"]
        hosts = list(yaml.safe_load(decrypt(path))["zulip_scim_tokens"])
        assert hosts == ["a-host", "b-host"]
        assert store.read("b-host")["acme"]["token"] == b.tokens["acme"]

    def test_read_returns_a_copy(self, store):
        ensure(store, "web1", ["acme"])
        store.read("web1")["acme"]["token"] = "changed"
        assert store.read("web1")["acme"]["token"] != "changed"

    def test_emptied_host_is_removed(self, store, path):
        ensure(store, "web1", ["acme"])
        ensure(store, "web2", ["acme"])
        with store.transaction("web1") as entries:
            entries.clear()
        assert list(yaml.safe_load(decrypt(path))["zulip_scim_tokens"]) == ["web2"]

    def test_hand_edited_file_is_read(self, store, path):
        encrypt(path, 'zulip_scim_tokens:\n  web1:\n    "":\n      token: HandMade_token-1\n'
                      "      created: 2026-11-28T16:40:00Z\n      state: active\n      previous:\n")
        assert store.read("web1")[""] == {"token": "HandMade_token-1", "created": NOW, "state": "active",
                                          "previous": []}

    @pytest.mark.parametrize("text", ["", "# only a comment\n", "zulip_scim_tokens:\n", "zulip_scim_tokens: {}\n"])
    def test_empty_files(self, store, path, text):
        encrypt(path, text)
        assert store.read("web1") == {}
        outcome = ensure(store, "web1", ["acme"])
        assert store.read("web1")["acme"]["token"] == outcome.tokens["acme"]

    def test_symlink_is_followed(self, tmp_path):
        (tmp_path / "real").mkdir()
        target = tmp_path / "real" / "tokens.vault.yml"
        link = tmp_path / "link.vault.yml"
        link.symlink_to(target)
        store = vfs.VaultFileStore(str(link), SECRETS)
        ensure(store, "web1", ["acme"])
        assert link.is_symlink() and target.is_file()
        assert store.location == str(link)


# ------------------------------------------------------------------ writes


class TestWrites:
    def test_mode_0600_even_with_open_umask(self, store, path):
        old = os.umask(0)
        try:
            ensure(store, "web1", ["acme"])
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_mode_0600_replaces_looser_mode(self, store, path):
        ensure(store, "web1", ["acme"])
        os.chmod(path, 0o644)
        ensure(store, "web1", ["b"])
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_no_change_leaves_file_untouched(self, store, path):
        ensure(store, "web1", ["acme", ""])
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        with open(path, "rb") as handle:
            before = handle.read()
        outcome = ensure(store, "web1", ["acme", ""], adopt={"acme": "different"})
        assert not outcome.changed and outcome.conflicts == ["acme"]
        assert os.stat(path).st_mtime_ns == 1_000_000_000
        with open(path, "rb") as handle:
            assert handle.read() == before

    def test_nothing_requested_creates_no_file(self, store, path):
        ensure(store, "web1", [])
        assert not os.path.exists(path)

    def test_exception_in_transaction_writes_nothing(self, store, path):
        ensure(store, "web1", ["acme"])
        with open(path, "rb") as handle:
            before = handle.read()
        with pytest.raises(RuntimeError):
            with store.transaction("web1") as entries:
                entries["b"] = {"token": "x", "created": NOW, "state": "active"}
                raise RuntimeError("boom")
        with open(path, "rb") as handle:
            assert handle.read() == before

    def test_no_temp_files_left(self, store, path):
        for realm in ("a", "b", "c"):
            ensure(store, "web1", [realm])
        assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]

    def test_failed_rename_keeps_old_file_and_no_temp(self, store, path, monkeypatch):
        ensure(store, "web1", ["acme"])
        with open(path, "rb") as handle:
            before = handle.read()

        def refuse(*_args):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(vfs.os, "replace", refuse)
        with pytest.raises(ts.TokenStoreError, match="cannot write .*: Permission denied"):
            ensure(store, "web1", ["b"])
        with open(path, "rb") as handle:
            assert handle.read() == before
        assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]

    def test_interrupted_write_leaves_no_temp(self, store, path, monkeypatch):
        def interrupt(_fd):
            raise KeyboardInterrupt

        monkeypatch.setattr(vfs.os, "fsync", interrupt)
        with pytest.raises(KeyboardInterrupt):
            ensure(store, "web1", ["acme"])
        assert os.listdir(os.path.dirname(path)) == []

    def test_temp_file_cannot_be_made(self, store, monkeypatch):
        def refuse(**_kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(vfs.tempfile, "mkstemp", refuse)
        with pytest.raises(ts.TokenStoreError, match="cannot write in .*: No space left on device"):
            ensure(store, "web1", ["acme"])


# ------------------------------------------------------------------ failures


class TestFailures:
    @pytest.mark.reliability(area="token_file", case='no vault secret',
                             outcome='fails naming the missing vault secret; nothing written')
    def test_no_secret_fails_and_writes_nothing(self, path):
        for secrets in (None, []):
            store = vfs.VaultFileStore(path, secrets)
            with pytest.raises(ts.TokenStoreError) as exc:
                ensure(store, "web1", ["acme"])
            assert "run with --vault-password-file, --ask-vault-pass or --vault-id" in str(exc.value)
            with pytest.raises(ts.TokenStoreError, match="no vault secret"):
                store.read("web1")
        assert os.listdir(os.path.dirname(path)) == []

    @pytest.mark.reliability(area="token_file", case='wrong vault secret',
                             outcome='fails saying the file cannot be decrypted; file kept byte for byte')
    def test_wrong_secret_fails_and_keeps_file(self, store, path):
        ensure(store, "web1", ["acme"])
        with open(path, "rb") as handle:
            before = handle.read()
        wrong = vfs.VaultFileStore(path, [("default", VaultSecret(b"wrong")), ("ops", VaultSecret(b"also wrong"))])
        with pytest.raises(ts.TokenStoreError, match=r"cannot decrypt .* \(vault ids: default, ops\)"):
            ensure(wrong, "web1", ["acme", "b"])
        with pytest.raises(ts.TokenStoreError, match="cannot decrypt"):
            wrong.read("web1")
        with open(path, "rb") as handle:
            assert handle.read() == before

    @pytest.mark.reliability(area="token_file", case='token file not encrypted (hand-edited plaintext)',
                             outcome='refused; nothing overwritten')
    def test_plaintext_file_is_refused(self, store, path):
        with open(path, "w") as handle:
            handle.write("zulip_scim_tokens: {}\n")
        with pytest.raises(ts.TokenStoreError, match="is not ansible-vault encrypted; refusing"):
            ensure(store, "web1", ["acme"])
        with open(path) as handle:
            assert handle.read() == "zulip_scim_tokens: {}\n"

    @pytest.mark.reliability(area="token_file", case='corrupted vault envelope',
                             outcome='refused with what to fix; nothing overwritten')
    def test_damaged_envelope(self, store, path):
        with open(path, "wb") as handle:
            handle.write(b"$ANSIBLE_VAULT;1.1;AES256\nnot hex at all\n")
        with pytest.raises(ts.TokenStoreError, match="is damaged: not a valid ansible-vault envelope"):
            store.read("web1")

    def test_missing_directory(self, tmp_path):
        store = vfs.VaultFileStore(str(tmp_path / "nope" / "t.vault.yml"), SECRETS)
        with pytest.raises(ts.TokenStoreError, match=r"directory .*/nope does not exist"):
            ensure(store, "web1", ["acme"])
        assert not (tmp_path / "nope").exists()

    def test_path_is_a_directory(self, tmp_path):
        with pytest.raises(ts.TokenStoreError, match="is a directory"):
            vfs.VaultFileStore(str(tmp_path), SECRETS).read("web1")

    def test_unreadable_file(self, store, path, monkeypatch):
        ensure(store, "web1", ["acme"])

        def refuse(*_args, **_kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(vfs, "open", refuse, raising=False)
        with pytest.raises(ts.TokenStoreError, match="cannot read .*: Permission denied"):
            store.read("web1")

    def test_directory_cannot_be_locked(self, store, monkeypatch):
        def refuse(*_args, **_kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(vfs.os, "open", refuse)
        with pytest.raises(ts.TokenStoreError, match="cannot open .* to lock it: Permission denied"):
            ensure(store, "web1", ["acme"])

    @pytest.mark.reliability(area="token_file", case='token file that is not UTF-8',
                             outcome='refused; nothing overwritten')
    def test_not_utf8(self, store, path):
        encrypt(path, "")
        with open(path, "wb") as handle:
            handle.write(VaultLib(SECRETS).encrypt(b"zulip_scim_tokens: \xff\n", secret=SECRETS[0][1]))
        with pytest.raises(ts.TokenStoreError, match=r"not UTF-8 text \(byte 19\)"):
            store.read("web1")


SECRET = "Sup3rSecretTok3n_value-do-not-print"


class TestBadStructure:
    @pytest.mark.parametrize(
        "text, message",
        [
            ("- a\n- b\n", r": expected a mapping with the key zulip_scim_tokens, found list"),
            ("zulip_scim_tokens: {}\nother: 1\n", r": unknown top-level key\(s\) 'other'"),
            ("zulip_scim_tokens: [1]\n", r": zulip_scim_tokens: expected a mapping of host to realms, found list"),
            ("zulip_scim_tokens:\n  1: {}\n", r"host names must be non-empty strings, found 1"),
            ("zulip_scim_tokens:\n  web1:\n    acme:\n      token: %s\n      state: active\n" % SECRET,
             r": zulip_scim_tokens\['web1'\]\['acme'\]: missing key\(s\) created"),
            ("zulip_scim_tokens:\n  web1:\n    acme: %s\n" % SECRET,
             r"zulip_scim_tokens\['web1'\]\['acme'\]: expected a mapping, found str"),
            ("zulip_scim_tokens:\n  web1:\n    %s: {}\n" % SECRET,
             r"zulip_scim_tokens\['web1'\]: <a 35-character key, not shown> is not a valid Zulip subdomain"),
            ("zulip_scim_tokens:\n  web1:\n    acme:\n      token: [%s]\n      created: x\n      state: active\n" % SECRET,
             r"\['acme'\]\.token: expected a non-empty string, found list"),
            # YAML errors: position and kind, never the offending line (it may hold a token)
            ("zulip_scim_tokens:\n  web1:\n    acme:\n      token: %s\n     created: x\n" % SECRET,
             r": not valid YAML at line \d+, column \d+ \((ParserError|ScannerError): "),
            ("zulip_scim_tokens:\n  web1:\n    acme: {token: %s\n" % SECRET, r": not valid YAML at line \d+, column \d+"),
            ("zulip_scim_tokens:\n  web1:\n    acme: 1\n    acme: 2 %s\n" % SECRET,
             r": not valid YAML at line 4, column 5 \(DuplicateKeyError: a key that appears twice in one mapping\)$"),
            ("zulip_scim_tokens: !!python/object:os.system %s\n" % SECRET, r": not valid YAML at line \d+, column \d+ \(ConstructorError: "),
        ],
    )
    @pytest.mark.reliability(area="token_file", case='hand-edited file with a bad structure',
                             outcome='refused naming where, never the value; nothing overwritten')
    def test_structure_errors_say_where_not_what(self, store, path, text, message):
        encrypt(path, text)
        with open(path, "rb") as handle:
            before = handle.read()
        with pytest.raises(ts.TokenStoreError, match=message) as exc:
            ensure(store, "web1", ["acme"])
        assert str(exc.value).startswith(path + ": ")
        assert SECRET not in str(exc.value)
        # no chained YAML error either: Ansible prints chains, and those quote the line
        assert exc.value.__cause__ is None
        assert exc.value.__context__ is None or exc.value.__suppress_context__
        with open(path, "rb") as handle:
            assert handle.read() == before

    def test_non_marked_yaml_error(self, monkeypatch):
        def broken(*_args, **_kwargs):
            raise yaml.YAMLError("plain %s" % SECRET)

        monkeypatch.setattr(vfs.yaml, "load", broken)
        with pytest.raises(ts.TokenStoreError, match=r"^w: not valid YAML \(YAMLError\)$"):
            vfs.parse_document("x", "w")

    def test_yaml_error_without_position(self, monkeypatch):
        def broken(*_args, **_kwargs):
            raise yaml.MarkedYAMLError(problem="something odd")

        monkeypatch.setattr(vfs.yaml, "load", broken)
        # PyYAML's problem text is never shown (it can name an alias or a tag, i.e. a token): the class only.
        with pytest.raises(ts.TokenStoreError, match=r"^w: not valid YAML \(MarkedYAMLError\)$"):
            vfs.parse_document("x", "w")

    def test_merge_keys_are_not_duplicates(self):
        text = "zulip_scim_tokens:\n  web1:\n    acme:\n      <<: {state: active, created: x}\n      token: T\n"
        assert vfs.parse_document(text, "w")["web1"]["acme"] == {"state": "active", "created": "x", "token": "T"}


# ------------------------------------------------------------------ vault ids


class TestVaultIds:
    def test_new_file_uses_encrypt_identity(self, path):
        secrets = [("default", VaultSecret(b"one")), ("prod", VaultSecret(b"two"))]
        ensure(vfs.VaultFileStore(path, secrets, encrypt_vault_id="prod"), "web1", ["acme"])
        assert header_vault_id(path) == "prod"
        decrypt(path, [("prod", VaultSecret(b"two"))])
        with pytest.raises(Exception):
            decrypt(path, [("default", VaultSecret(b"one"))])

    def test_new_file_without_identity_uses_first_secret(self, path):
        secrets = [("ops", VaultSecret(b"one")), ("prod", VaultSecret(b"two"))]
        ensure(vfs.VaultFileStore(path, secrets), "web1", ["acme"])
        assert header_vault_id(path) == "ops"

    def test_unknown_encrypt_identity(self, path):
        store = vfs.VaultFileStore(path, SECRETS, encrypt_vault_id="prod")
        with pytest.raises(ts.TokenStoreError, match="no vault secret with the vault id 'prod'"):
            ensure(store, "web1", ["acme"])
        assert not os.path.exists(path)

    def test_existing_file_keeps_its_vault_id(self, path):
        old = [("old", VaultSecret(b"old-pw"))]
        encrypt(path, "zulip_scim_tokens: {}\n", secrets=old, vault_id="old")
        secrets = [("prod", VaultSecret(b"two"))] + old
        ensure(vfs.VaultFileStore(path, secrets, encrypt_vault_id="prod"), "web1", ["acme"])
        assert header_vault_id(path) == "old"
        decrypt(path, old)


# ------------------------------------------------------------------ concurrency


def _worker(path: str, host: str, realms: list[str], barrier) -> None:
    store = vfs.VaultFileStore(path, [("default", VaultSecret(PASSWORD))])
    barrier.wait()
    for realm in realms:
        ensure(store, host, [realm])


def _hold_lock(path: str, started, release) -> None:
    store = vfs.VaultFileStore(path, [("default", VaultSecret(PASSWORD))])
    with store.transaction("holder") as entries:
        started.set()
        release.wait(10)
        entries["held"] = {"token": "HeldToken", "created": NOW, "state": "active"}


class TestConcurrency:
    ctx = multiprocessing.get_context("fork")

    def _run(self, jobs):
        barrier = self.ctx.Barrier(len(jobs))
        procs = [self.ctx.Process(target=_worker, args=job + (barrier,)) for job in jobs]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0] * len(procs)

    def test_parallel_hosts_lose_no_update(self, path):
        realms = ["r%d" % i for i in range(4)]
        hosts = ["web%d" % i for i in range(6)]
        self._run([(path, host, realms) for host in hosts])
        data = yaml.safe_load(decrypt(path))["zulip_scim_tokens"]
        assert sorted(data) == hosts
        assert all(sorted(data[host]) == realms for host in hosts)
        tokens = [entry["token"] for host in hosts for entry in data[host].values()]
        assert len(set(tokens)) == len(tokens) == 24
        assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]

    def test_parallel_realms_of_one_host_lose_no_update(self, path):
        self._run([(path, "web1", ["p%d-%d" % (proc, i) for i in range(3)]) for proc in range(5)])
        assert len(vfs.VaultFileStore(path, SECRETS).read("web1")) == 15

    def test_writer_waits_for_the_lock(self, store, path):
        started, release = self.ctx.Event(), self.ctx.Event()
        holder = self.ctx.Process(target=_hold_lock, args=(path, started, release))
        holder.start()
        assert started.wait(10)
        waiter = self.ctx.Process(target=_worker, args=(path, "waiter", ["acme"], self.ctx.Barrier(1)))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive(), "the second writer must block while the first holds the lock"
        assert not os.path.exists(path)
        release.set()
        holder.join(10)
        waiter.join(10)
        assert holder.exitcode == 0 and waiter.exitcode == 0
        data = yaml.safe_load(decrypt(path))["zulip_scim_tokens"]
        assert sorted(data) == ["holder", "waiter"]
