"""The locks that keep two runs apart, and what an interrupted run leaves for the next one.

Each "other run" here is a real process that holds the lock (flock on the
directory) the way a second ansible-playbook run would, so the tests see the
kernel's locking, the holder as /proc/locks shows it, and the release when that
process is killed.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible.parsing.vault import VaultSecret

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as action_plugin
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _lock as lock
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_config
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "modules"))
sys.path.insert(0, str(HERE / "action"))
import _module_runner as runner  # noqa: E402
import test_zulip_scim_token as action_tests  # noqa: E402

SECRETS = [("default", VaultSecret(b"lock test password"))]
TOKEN = "acme-TOKEN-0123456789abcdef-lock"
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


class Holder:
    """Another run: a process that holds the flock on ``directory``."""

    def __init__(self, directory: Path, seconds: float = 60) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), str(seconds)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[callable]:
    made: list[Holder] = []

    def make(directory: Path, seconds: float = 60) -> Holder:
        made.append(Holder(directory, seconds))
        return made[-1]

    yield make
    for one in made:
        one.kill()


# ---------------------------------------------------------------- the lock itself


class TestLockedDirectory:
    def test_free_lock_is_taken_and_released(self, tmp_path: Path) -> None:
        with lock.locked_directory(str(tmp_path), timeout=1):
            fd = os.open(tmp_path, os.O_RDONLY)
            with pytest.raises(BlockingIOError):  # held while inside
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.close(fd)
        with lock.locked_directory(str(tmp_path), timeout=0):
            pass

    def test_a_held_lock_times_out_naming_the_holder(self, tmp_path: Path, holder) -> None:
        other = holder(tmp_path)
        started = time.monotonic()
        with pytest.raises(lock.LockTimeout) as caught:
            with lock.locked_directory(str(tmp_path), timeout=0.5, what="the Zulip settings"):
                pytest.fail("the body ran although another process held the lock")
        assert 0.5 <= time.monotonic() - started < 5
        message = str(caught.value)
        assert message.startswith("another run holds the lock on %s (the Zulip settings): process %d ("
                                  % (tmp_path, other.proc.pid)), message
        assert "running since 20" in message and "waited 0.5 s and changed nothing" in message
        assert "lock_timeout" in message and "nothing needs to be removed by hand" in message

    def test_the_lock_is_waited_for_until_the_holder_ends(self, tmp_path: Path, holder) -> None:
        holder(tmp_path, seconds=0.5)
        started = time.monotonic()
        with lock.locked_directory(str(tmp_path), timeout=30):
            waited = time.monotonic() - started
        assert 0.2 < waited < 10

    def test_a_killed_holder_leaves_no_stale_lock(self, tmp_path: Path, holder) -> None:
        holder(tmp_path).kill()
        with lock.locked_directory(str(tmp_path), timeout=0):
            pass

    def test_holders_are_read_from_proc_locks_without_waiters(self, tmp_path: Path) -> None:
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            key = lock._device_key(fd)
            table = tmp_path / "locks"
            table.write_text("1: FLOCK  ADVISORY  WRITE 4242 %s 0 EOF\n"
                             "1: -> FLOCK  ADVISORY  WRITE 4343 %s 0 EOF\n"
                             "2: POSIX  ADVISORY  WRITE 99 00:01:1 0 EOF\n" % (key, key))
            assert lock.holder_pids(fd, str(table)) == [4242]
            assert lock.holder_pids(fd, str(tmp_path / "none")) == []
        finally:
            os.close(fd)
        assert lock.describe_holders([]) == "another process"

    def test_a_missing_directory_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(lock.ZulipError, match="cannot open .* to lock it"):
            with lock.locked_directory(str(tmp_path / "gone")):
                pass


# ---------------------------------------------------------------- zulip_scim_config on the host


def config_host(tmp_path: Path) -> tuple[Path, dict]:
    etc = tmp_path / "etc" / "zulip"
    etc.mkdir(parents=True)
    (etc / "settings.py").write_text('from .config import get_secret\nEXTERNAL_HOST = "zulip.example.com"\n')
    (etc / "zulip-secrets.conf").write_text("[secrets]\navatar_salt = x\n")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "version.py").write_text('ZULIP_VERSION = "11.2"\n')
    args = dict(realms=[{"subdomain": "acme"}], tokens={"acme": TOKEN}, settings_path=str(etc / "settings.py"),
                secrets_path=str(etc / "zulip-secrets.conf"), deploy_path=str(deploy))
    return etc, args


def snapshot(etc: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(etc.iterdir())}


def config(args: dict) -> runner.ModuleExit | runner.ModuleFail:
    outcome = runner.run_module(zulip_scim_config.main, args)
    assert TOKEN not in repr(outcome.result)
    return outcome


@pytest.mark.reliability(area="concurrency", case="zulip_scim_config while another run holds the lock on /etc/zulip (unit)",
                         outcome="waits lock_timeout, then fails naming the holder's process; both files unchanged")
def test_config_waits_for_another_run_then_fails_having_changed_nothing(tmp_path: Path, holder) -> None:
    etc, args = config_host(tmp_path)
    before = snapshot(etc)
    other = holder(etc)
    outcome = config(dict(args, lock_timeout=1))
    assert outcome.failed
    assert "another run holds the lock on %s" % etc in outcome.result["msg"]
    assert "process %d" % other.proc.pid in outcome.result["msg"]
    assert snapshot(etc) == before
    other.kill()
    assert not config(dict(args, lock_timeout=1)).failed  # the lock ended with its process


@pytest.mark.reliability(area="interrupt", case="temporary file of zulip-secrets.conf left by a writer killed before its rename (unit)",
                         outcome="removed by the next run under the lock; other files kept")
def test_temporary_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    etc, args = config_host(tmp_path)
    stale = etc / ".zulip-secrets.conf.k1LL3d_x.tmp"
    stale.write_text("[secrets]\nscim_bearer_token_acme = %s\n" % TOKEN)
    stale_kept = etc / "..settings.py.zulip-scim-previous.abCD_123.tmp"  # a kept copy's temporary file
    stale_kept.write_text("half a copy")
    kept = [etc / ".zulip-secrets.conf.tests-tmp", etc / "zulip-secrets.conf.k1LL3d_x.tmp",
            etc / ".settings.py.short.tmp"]
    for path in kept:
        path.write_text("not ours")
    assert not config(args).failed
    assert not stale.exists() and not stale_kept.exists() and all(path.exists() for path in kept)
    assert files.remove_stale_temps(str(etc / "settings.py")) == []


# ---------------------------------------------------------------- the token file on the controller


@pytest.mark.reliability(area="token_file", case="token file whose directory another run holds locked",
                         outcome="fails after lock_timeout naming the holder and what to do; file not rewritten or "
                                 "truncated; no token generated")
def test_a_locked_token_file_is_never_touched(tmp_path: Path, holder) -> None:
    task_vars = {"inventory_hostname": "web1", "inventory_dir": str(tmp_path), "playbook_dir": str(tmp_path)}
    path = tmp_path / ".zulip_scim_tokens.vault.yml"
    first = action_tests.make_action({"realms": ["acme"]}, secrets=SECRETS).run(task_vars=task_vars)
    assert not first.get("failed"), first
    before = path.read_bytes()
    stat_before = path.stat()
    other = holder(tmp_path)
    generated: list[str] = []

    def counting_factory(size: int = ts.MIN_TOKEN_BYTES):
        make = ts.token_factory(size)
        return lambda: generated.append("one") or make()

    action = action_tests.make_action({"realms": ["acme", "beta"], "rotate": ["acme"], "lock_timeout": 1},
                                      secrets=SECRETS)
    original = action_plugin.token_factory
    action_plugin.token_factory = counting_factory
    try:
        result = action.run(task_vars=task_vars)
    finally:
        action_plugin.token_factory = original
    assert result["failed"] and not result["changed"]
    assert "the token file %s is in use by another run" % path in result["msg"]
    assert "process %d" % other.proc.pid in result["msg"] and "Let that run finish" in result["msg"]
    assert "Nothing was read, generated or written" in result["msg"]
    assert "_ansible_no_log" not in result  # the message stays visible
    assert path.read_bytes() == before and path.stat().st_ino == stat_before.st_ino
    assert generated == []
    assert first["tokens"]["acme"] not in result["msg"]


@pytest.mark.reliability(area="concurrency",
                         case="a run with nothing to change in the token file while another run holds its lock (unit)",
                         outcome="returns the stored tokens at once, without waiting for the lock; the file untouched")
def test_a_run_with_nothing_to_change_does_not_wait_for_the_lock(tmp_path: Path, holder) -> None:
    task_vars = {"inventory_hostname": "web1", "inventory_dir": str(tmp_path), "playbook_dir": str(tmp_path)}
    path = tmp_path / ".zulip_scim_tokens.vault.yml"
    first = action_tests.make_action({"realms": ["acme", ""]}, secrets=SECRETS).run(task_vars=task_vars)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    holder(tmp_path)  # holds the lock far longer than lock_timeout
    started = time.monotonic()
    result = action_tests.make_action({"realms": ["acme", ""], "lock_timeout": 5}, secrets=SECRETS).run(task_vars=task_vars)
    assert time.monotonic() - started < 2, "waited for the lock with nothing to change"
    assert not result.get("failed") and not result["changed"], result
    assert result["tokens"] == first["tokens"]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    # The same lock still stops a run that must write (here: a new realm).
    result = action_tests.make_action({"realms": ["acme", "", "beta"], "lock_timeout": 1}, secrets=SECRETS).run(
        task_vars=task_vars)
    assert result["failed"] and "is in use by another run" in result["msg"]


@pytest.mark.reliability(area="concurrency", case="two processes rotating in one token file at once (unit)",
                         outcome="the second waits for the first; both rotations kept in order, none lost")
def test_two_writers_of_the_token_file_take_turns(tmp_path: Path, holder) -> None:
    path = str(tmp_path / "tokens.vault.yml")
    store = vfs.VaultFileStore(path, SECRETS, lock_timeout=30)
    with store.transaction("web1") as entries:
        ts.apply_request(entries, ts.make_request(["acme"]), now="2026-01-01T00:00:00Z", new_token=ts.token_factory())
    holder(tmp_path, seconds=0.7)  # another run in the middle of its read-modify-write
    started = time.monotonic()
    with store.transaction("web1") as entries:
        ts.apply_request(entries, ts.make_request(["acme"], rotate=["acme"]), now="2026-01-01T00:00:01Z",
                         new_token=ts.token_factory())
    assert time.monotonic() - started > 0.3
    assert len(store.read("web1")["acme"]["previous"]) == 1


@pytest.mark.reliability(area="interrupt", case="temporary file beside the vault file left by a run killed in mid-write (unit)",
                         outcome="removed by the next write under the lock; the vault file intact")
def test_a_killed_writers_temporary_file_beside_the_vault_file_goes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.vault.yml"
    store = vfs.VaultFileStore(str(path), SECRETS)
    stale = tmp_path / ".tokens.vault.yml.abcd_123.tmp"
    stale.write_bytes(b"half a vault file")
    other = tmp_path / ".tokens.vault.yml.notours"
    other.write_text("x")
    with store.transaction("web1") as entries:
        ts.apply_request(entries, ts.make_request(["acme"]), now="2026-01-01T00:00:00Z", new_token=ts.token_factory())
    assert not stale.exists() and other.exists()
    assert set(store.read("web1")) == {"acme"}


@pytest.mark.reliability(area="token_file", case="token file whose directory cannot be opened to lock it (unit)",
                         outcome="a store error naming the directory and the reason; nothing read or written")
def test_a_lock_that_cannot_be_opened_is_a_store_error(tmp_path: Path, monkeypatch) -> None:
    store = vfs.VaultFileStore(str(tmp_path / "t.vault.yml"), SECRETS)

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lock.os, "open", refuse)
    with pytest.raises(ts.TokenStoreError, match="cannot open .* to lock it: Permission denied"):
        with store.transaction("web1"):
            pass


# ---------------------------------------------------------------- zulip_server


@pytest.mark.reliability(area="concurrency", case="restart-server while another run holds the lock on /etc/zulip (unit)",
                         outcome="no second restart at the same time: waits lock_timeout, then fails naming the "
                                 "holder, restart-server not run")
def test_restart_waits_for_the_lock_and_never_runs_beside_another(tmp_path: Path, holder, monkeypatch) -> None:
    from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_server

    monkeypatch.setattr(zulip_server.os, "geteuid", lambda: 0)
    etc, args = config_host(tmp_path)
    script = tmp_path / "deploy" / "scripts" / "restart-server"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 99\n")
    script.chmod(0o755)
    server_args = dict(deploy_path=args["deploy_path"], settings_path=args["settings_path"], lock_timeout=1)
    other = holder(etc)
    fake = runner.FakeRunCommand(lambda argv: (0, "Zulip restarted successfully!\n", ""))
    outcome = runner.run_module(zulip_server.main, server_args, run_command=fake)
    assert outcome.failed and "another run holds the lock on %s" % etc in outcome.result["msg"]
    assert "process %d" % other.proc.pid in outcome.result["msg"]
    assert fake.argvs == []
    other.kill()
    fake = runner.FakeRunCommand(lambda argv: (0, "Zulip restarted successfully!\n", ""))
    assert not runner.run_module(zulip_server.main, server_args, run_command=fake).failed
    assert len(fake.argvs) == 1
