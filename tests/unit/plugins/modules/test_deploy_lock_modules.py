"""Zulip's deployment lock in the modules: zulip_scim_preflight (planning), zulip_scim_client and zulip_scim_config
(before a change) and zulip_server (right before each restart) wait while it exists, then fail naming it,
having changed nothing; check mode only warns; no module makes or removes the lock.

The lock is ``lock`` beside ``deploy_path`` (Zulip's /home/zulip/deployments/lock, made by upgrade-zulip).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_client, zulip_scim_config, zulip_server

import _module_runner as runner  # noqa: E402 - found through conftest.py
import test_zulip_scim_config as cfg  # noqa: E402 - its temporary Zulip host

pytestmark = pytest.mark.usefixtures("as_root")

RESTART_OK = (0, "Zulip restarted successfully!\n", "")
NEW_TOKEN = "acme-NEW-TOKEN-abcdefghijklmnop"


@pytest.fixture
def host(tmp_path: Path) -> cfg.Host:
    made = cfg.Host(tmp_path)
    script = made.deploy / "scripts" / "restart-server"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 99  # never run: run_command is faked\n")
    script.chmod(0o755)
    return made


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy_lock, "POLL_SECONDS", 0.05)


def lock_of(host: cfg.Host) -> Path:
    return host.deploy.parent / "lock"


def restart(host: cfg.Host, answers=(RESTART_OK,), check_mode: bool = False, **args) -> runner.Outcome:
    queue = list(answers)
    fake = runner.FakeRunCommand(lambda argv: queue.pop(0))
    base = dict(deploy_path=str(host.deploy), settings_path=str(host.settings), secrets_path=str(host.secrets))
    return runner.run_module(zulip_server.main, dict(base, **args), run_command=fake, check_mode=check_mode)


def configure(host: cfg.Host, token: str, check_mode: bool = False, **extra) -> runner.Outcome:
    return runner.run_module(zulip_scim_config.main, host.args([cfg.acme(token=token)], keep_previous=True, **extra),
                             check_mode=check_mode)


def files_of(host: cfg.Host) -> dict:
    return cfg._content_and_metadata(host.state())


# --------------------------------------------------------------------------- zulip_server

def test_restart_proceeds_without_the_lock(host: cfg.Host) -> None:
    out = restart(host)
    assert not out.failed, out
    assert len(out.run.calls) == 1
    assert not lock_of(host).exists()  # the module made no lock of its own


def test_no_restart_while_zulip_upgrades(host: cfg.Host) -> None:
    lock_of(host).mkdir()
    out = restart(host, deploy_lock_timeout=1)
    assert out.failed and out.run.calls == []
    assert out.result["rolled_back"] is False
    message = out.result["msg"]
    assert message.startswith("Zulip's deployment lock %s exists" % lock_of(host))
    assert "Waited 1 s" in message and "restart-server was not run" in message
    assert lock_of(host).is_dir()  # Zulip's lock is Zulip's


def test_restart_runs_once_the_upgrade_has_ended(host: cfg.Host) -> None:
    lock_of(host).mkdir()
    ender = threading.Timer(0.3, lock_of(host).rmdir)
    ender.start()
    lock_at_restart = []

    def restart_server(argv):
        lock_at_restart.append(lock_of(host).exists())
        return RESTART_OK
    try:
        base = dict(deploy_path=str(host.deploy), settings_path=str(host.settings), secrets_path=str(host.secrets))
        out = runner.run_module(zulip_server.main, dict(base, deploy_lock_timeout=30),
                                run_command=runner.FakeRunCommand(restart_server))
    finally:
        ender.cancel()
    assert not out.failed, out
    assert lock_at_restart == [False]  # it waited for the upgrade to end, then restarted once


@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_a_planted_lock_name_is_refused_not_followed(host: cfg.Host, tmp_path: Path, planted: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    if planted == "symlink":
        lock_of(host).symlink_to(target)
    else:
        lock_of(host).write_text("")
    out = restart(host, deploy_lock_timeout=300)  # refused at once: no 300 s wait
    assert out.failed and out.run.calls == []
    assert "not the directory Zulip's upgrade-zulip makes" in out.result["msg"]
    assert os.path.lexists(lock_of(host)) and list(target.iterdir()) == []


def test_check_mode_only_warns(host: cfg.Host) -> None:
    lock_of(host).mkdir()
    out = restart(host, check_mode=True)
    assert not out.failed and out.run.calls == []
    assert any("deployment lock %s exists" % lock_of(host) in w for w in out.warnings)
    assert lock_of(host).is_dir()


def test_lock_taken_between_the_change_and_the_restart(host: cfg.Host) -> None:
    """An upgrade starts after the files were written: no restart, a clear failure, and the role's
    roll-back (state=rolled_back, deploy_lock_timeout=0) puts the files back without restarting."""
    proven = files_of(host)
    changed = configure(host, NEW_TOKEN)
    assert not changed.failed and changed.result["changed"], changed
    written = files_of(host)
    lock_of(host).mkdir()  # upgrade-zulip starts

    out = restart(host, on_failure="roll_back", deploy_lock_timeout=0)
    assert out.failed and out.run.calls == [] and out.result["rolled_back"] is False
    assert "restart-server was not run" in out.result["msg"]
    assert files_of(host) == written  # nothing half-done: the new files and their kept copies, as written

    back = restart(host, state="rolled_back", deploy_lock_timeout=0)
    assert back.failed and back.run.calls == []
    assert back.result["msg"].startswith("The previous %s and %s were put back, but Zulip was not restarted on them: "
                                         "Zulip's deployment lock %s exists" % (host.secrets, host.settings, lock_of(host)))
    assert files_of(host) == proven
    assert lock_of(host).is_dir()


# --------------------------------------------------------------------------- zulip_scim_config

def test_config_writes_nothing_while_zulip_upgrades(host: cfg.Host) -> None:
    before = host.state()
    lock_of(host).mkdir()
    out = configure(host, NEW_TOKEN, deploy_lock_timeout=0)
    assert out.failed
    assert out.result["msg"].startswith("Zulip's deployment lock %s exists" % lock_of(host))
    assert "nothing was read or written" in out.result["msg"]
    assert host.state() == before
    assert NEW_TOKEN not in out.result["msg"]


def test_config_check_mode_warns_and_plans(host: cfg.Host) -> None:
    before = host.state()
    lock_of(host).mkdir()
    out = configure(host, NEW_TOKEN, check_mode=True)
    assert not out.failed and out.result["changed"]
    assert any("a real run would wait up to 300 s" in w for w in out.warnings)
    assert host.state() == before


def test_config_without_the_lock_writes(host: cfg.Host) -> None:
    out = configure(host, NEW_TOKEN, deploy_lock_timeout=0)
    assert not out.failed and out.result["changed"] and out.warnings == []


# --------------------------------------------------------------------------- zulip_scim_client (5.x)

def test_no_client_row_is_added_while_zulip_upgrades(tmp_path: Path) -> None:
    deploy = tmp_path / "deployments" / "current"
    deploy.mkdir(parents=True)
    (deploy / "version.py").write_text('ZULIP_VERSION = "5.6"\n')
    (deploy.parent / "lock").mkdir()
    zulip = runner.FakeZulip(realms=("acme",))
    args = {"deploy_path": str(deploy), "realms": [{"subdomain": "acme", "client_name": "okta"}], "deploy_lock_timeout": 0}
    out = runner.run_module(zulip_scim_client.main, args, run_command=runner.FakeRunCommand(zulip))
    assert out.failed and "no SCIM client was added or deleted" in out.result["msg"]
    assert not any(c[0] == "add_scim_client" for c in zulip.commands)
    assert zulip.client_pairs == set()
    (deploy.parent / "lock").rmdir()
    out = runner.run_module(zulip_scim_client.main, args, run_command=runner.FakeRunCommand(zulip))
    assert not out.failed and zulip.client_pairs == {("acme", "okta")}


# --------------------------------------------------------------------------- zulip_scim_preflight (planning)

def test_planning_waits_only_when_asked(host: cfg.Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zulip_scim_preflight.scim_http, "probe", lambda *a, **k: pytest.fail("no request expected"))
    lock_of(host).mkdir()
    args = dict(deploy_path=str(host.deploy), settings_path=str(host.settings), zulip_conf_path=str(host.etc / "zulip.conf"))
    out = runner.run_module(zulip_scim_preflight.main, dict(args, deploy_lock_timeout=0))
    assert out.failed and out.result["msg"].startswith("Zulip's deployment lock %s exists" % lock_of(host))
    assert "version" not in out.result  # stopped before reading the server
    warned = runner.run_module(zulip_scim_preflight.main, dict(args, deploy_lock_timeout=0), check_mode=True)
    assert not warned.failed and any("deployment lock" in w for w in warned.warnings)
    unasked = runner.run_module(zulip_scim_preflight.main, args)
    assert not unasked.failed and unasked.warnings == [] and unasked.result["version"] == "9.3"
