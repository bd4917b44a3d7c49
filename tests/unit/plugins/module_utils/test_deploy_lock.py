"""Zulip's deployment lock (plugins/module_utils/_deploy_lock.py): looked at, waited for, never taken.

Zulip's upgrade-zulip makes the directory ``lock`` in /home/zulip/deployments with mkdir and removes it
when it ends (scripts/lib/zulip_tools.py get_deployment_lock / release_deployment_lock; 5.6, 9.2, 10.0-dev).
Here the deployments directory is a temporary one, ``deploy_path`` its ``current``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError


@pytest.fixture
def deployments(tmp_path: Path) -> Path:
    path = tmp_path / "deployments"
    (path / "2026-11-28-15-05-00").mkdir(parents=True)
    (path / "current").symlink_to(path / "2026-11-28-15-05-00")
    return path


def current(deployments: Path) -> str:
    return str(deployments / "current")


class FakeClock:
    """A clock that only moves when the code under test sleeps; records the sleeps."""

    def __init__(self, on_sleep=None):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def test_the_lock_is_beside_the_current_link(deployments: Path) -> None:
    assert deploy_lock.lock_path(current(deployments)) == str(deployments / "lock")
    assert deploy_lock.lock_path("/home/zulip/deployments/current") == "/home/zulip/deployments/lock"
    assert deploy_lock.lock_path("/home/zulip/deployments/current/") == "/home/zulip/deployments/lock"


def test_absent_lock_proceeds_at_once(deployments: Path) -> None:
    fake = FakeClock()
    found = deploy_lock.wait_until_free(current(deployments), 300, "x", fake.clock, fake.sleep)
    assert found.absent and fake.sleeps == []
    assert not (deployments / "lock").exists()  # nothing made


def test_no_deployments_directory_means_no_upgrade(tmp_path: Path) -> None:
    assert deploy_lock.look(str(tmp_path / "nowhere" / "current")).absent


def test_a_deploy_path_without_a_directory_is_a_clear_error() -> None:
    with pytest.raises(ZulipError, match="cannot tell where Zulip's deployment lock is from deploy_path '/'"):
        deploy_lock.look("/")


def test_a_held_lock_is_waited_for_then_fails_naming_it(deployments: Path) -> None:
    (deployments / "lock").mkdir()
    fake = FakeClock()
    with pytest.raises(deploy_lock.DeployLocked) as caught:
        deploy_lock.wait_until_free(current(deployments), 5, "restart-server was not run", fake.clock, fake.sleep)
    message = str(caught.value)
    assert message.startswith("Zulip's deployment lock %s exists since " % (deployments / "lock"))
    assert "Waited 5 s" in message and "restart-server was not run" in message
    assert "rmdir %s" % (deployments / "lock") in message and "zulip_scim_deploy_lock_timeout" in message
    # It polled for the whole wait, never longer, and left Zulip's lock where it was.
    assert sum(fake.sleeps) == pytest.approx(5) and max(fake.sleeps) <= deploy_lock.POLL_SECONDS
    assert (deployments / "lock").is_dir()


def test_timeout_zero_looks_once(deployments: Path) -> None:
    (deployments / "lock").mkdir()
    fake = FakeClock()
    with pytest.raises(deploy_lock.DeployLocked, match="Waited 0 s"):
        deploy_lock.wait_until_free(current(deployments), 0, "x", fake.clock, fake.sleep)
    assert fake.sleeps == []


def test_a_lock_removed_during_the_wait_lets_the_run_go_on(deployments: Path) -> None:
    lock = deployments / "lock"
    lock.mkdir()
    fake = FakeClock(on_sleep=lambda n: n == 3 and lock.rmdir())
    found = deploy_lock.wait_until_free(current(deployments), 300, "x", fake.clock, fake.sleep)
    assert found.absent and len(fake.sleeps) == 3


def test_real_time_wait_is_bounded(deployments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (deployments / "lock").mkdir()
    monkeypatch.setattr(deploy_lock, "POLL_SECONDS", 0.05)
    started = time.monotonic()
    with pytest.raises(deploy_lock.DeployLocked):
        deploy_lock.wait_until_free(current(deployments), 0.4, "x")
    assert 0.4 <= time.monotonic() - started < 3


def test_real_time_upgrade_ending_during_the_wait(deployments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = deployments / "lock"
    lock.mkdir()
    monkeypatch.setattr(deploy_lock, "POLL_SECONDS", 0.05)
    ender = threading.Timer(0.3, lock.rmdir)
    ender.start()
    try:
        started = time.monotonic()
        assert deploy_lock.wait_until_free(current(deployments), 10, "x").absent
        assert time.monotonic() - started < 5
    finally:
        ender.cancel()


@pytest.mark.parametrize("kind", ["symlink to a directory", "dangling symlink", "regular file", "fifo"])
def test_anything_but_a_directory_is_refused_at_once_and_not_followed(deployments: Path, tmp_path: Path,
                                                                      kind: str) -> None:
    lock = deployments / "lock"
    target = tmp_path / "elsewhere"
    if kind == "symlink to a directory":
        target.mkdir()
        lock.symlink_to(target)
    elif kind == "dangling symlink":
        lock.symlink_to(tmp_path / "missing")
    elif kind == "regular file":
        lock.write_text("not a lock\n")
    else:
        os.mkfifo(lock)
    fake = FakeClock()
    with pytest.raises(ZulipError) as caught:
        deploy_lock.wait_until_free(current(deployments), 300, "nothing was changed", fake.clock, fake.sleep)
    assert not isinstance(caught.value, deploy_lock.DeployLocked)
    message = str(caught.value)
    words = {"symlink to a directory": "a symbolic link", "dangling symlink": "a symbolic link",
             "regular file": "a regular file", "fifo": "a FIFO (named pipe)"}[kind]
    assert message.startswith("%s is %s (owned by " % (lock, words))
    assert "not the directory Zulip's upgrade-zulip makes" in message and "nothing was changed" in message
    assert fake.sleeps == []  # no wait on something that is not Zulip's lock
    assert os.path.lexists(lock)  # left as found
    if kind == "symlink to a directory":
        assert list(target.iterdir()) == []


def test_a_planted_link_on_the_way_to_the_deployments_directory_is_refused(tmp_path: Path) -> None:
    # The zulip user owns /home/zulip: a link it made there to a directory with a "lock" is not followed.
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)  # writable by others, so a link in it is not one only root could have made
    real = tmp_path / "real"
    (real / "lock").mkdir(parents=True)
    (home / "deployments").symlink_to(real)
    with pytest.raises(ZulipError, match="cannot look for Zulip's deployment lock .*symbolic link"):
        deploy_lock.look(str(home / "deployments" / "current"))


def test_check_mode_report(deployments: Path) -> None:
    assert deploy_lock.report(current(deployments), 300) is None
    (deployments / "lock").mkdir()
    words = deploy_lock.report(current(deployments), 300)
    assert words.startswith("Zulip's deployment lock %s exists since " % (deployments / "lock"))
    assert "a real run would wait up to 300 s" in words
    (deployments / "lock").rmdir()
    (deployments / "lock").symlink_to("/etc")
    assert "is a symbolic link" in deploy_lock.report(current(deployments), 300)


def test_the_message_names_the_owner(deployments: Path) -> None:
    (deployments / "lock").mkdir()
    found = deploy_lock.look(current(deployments))
    assert found.is_zulips_lock and found.uid == os.geteuid()
    assert "(made by %s)" % deploy_lock._owner(os.geteuid()) in deploy_lock.held_message(found, 1, "x")
    assert deploy_lock._owner(None) == "?"
    assert deploy_lock._owner(4242424) == "uid 4242424"
