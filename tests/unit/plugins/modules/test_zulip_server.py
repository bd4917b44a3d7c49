"""Unit tests for plugins/modules/zulip_server.py, run through main()."""

from __future__ import annotations


import pytest

from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_server


import _module_runner as H  # noqa: E402 - found through conftest.py

pytestmark = pytest.mark.usefixtures("as_root")

SUCCESS = (
    "2026-11-28 15:05:00,000 restart-server: Running syntax and database checks\n"
    "System check identified no issues (15 silenced).\n"
    "2026-11-28 15:05:09,000 restart-server: Restarting Zulip\n"
    "2026-11-28 15:05:17,000 restart-server: Done!\n"
    "Zulip restarted successfully!\n"
)


@pytest.fixture
def deploy(tmp_path):
    """A timestamped deployment behind a ``current`` symlink, with its script."""
    deployment = tmp_path / "deployments" / "2026-11-28-15-05-00"
    (deployment / "scripts").mkdir(parents=True)
    script = deployment / "scripts" / "restart-server"
    script.write_text("#!/bin/sh\nexit 99  # never run by these tests\n")
    script.chmod(0o755)
    current = tmp_path / "deployments" / "current"
    current.symlink_to(deployment)
    return current


def run(args, answer=(0, SUCCESS, ""), **kwargs):
    fake = H.FakeRunCommand(lambda argv: answer)
    return H.run_module(zulip_server.main, args, run_command=fake, **kwargs)


def test_restart_as_root_drops_to_zulip_through_the_current_symlink(deploy):
    out = run({"deploy_path": str(deploy)})
    assert not out.failed, out
    # the path goes through "current" (restart-server repoints current at where it was started from)
    assert out.run.argvs == [["runuser", "-u", "zulip", "--", str(deploy / "scripts" / "restart-server")]]
    assert out.run.calls[0]["kwargs"] == {"cwd": "/", "environ_update": {"LC_ALL": "C.UTF-8"}}
    r = out.result
    assert r["changed"] is True
    assert r["rc"] == 0
    assert r["stdout_lines"] == SUCCESS.splitlines()
    assert r["stdout_lines"][-1] == "Zulip restarted successfully!"
    assert isinstance(r["seconds"], float) and r["seconds"] >= 0


def test_restart_as_zulip_runs_the_script_directly(deploy, monkeypatch):
    monkeypatch.setattr(zulip_server.os, "geteuid", lambda: 1000)
    out = run({"deploy_path": str(deploy), "options": ["--less-graceful"]})
    assert out.run.argvs == [[str(deploy / "scripts" / "restart-server"), "--less-graceful"]]


def test_options_and_user(deploy):
    out = run({"deploy_path": str(deploy), "user": "zulipadm", "options": ["--fill-cache", "--skip-client-reloads"]})
    assert out.run.argvs == [["runuser", "-u", "zulipadm", "--", str(deploy / "scripts" / "restart-server"),
                              "--fill-cache", "--skip-client-reloads"]]


def test_seconds_are_measured(deploy, monkeypatch):
    ticks = iter([50.0, 67.4321])
    monkeypatch.setattr(zulip_server._restart.time, "monotonic", lambda: next(ticks))
    out = run({"deploy_path": str(deploy)})
    assert out.result["seconds"] == 17.43


def test_check_mode_runs_nothing(deploy):
    out = run({"deploy_path": str(deploy)}, check_mode=True)
    assert not out.failed, out
    assert out.run.calls == []
    assert out.result["changed"] is True
    assert out.result["msg"] == "would run %s" % (deploy / "scripts" / "restart-server")


def test_failure_reports_rc_and_output(deploy):
    broken = ("2026-11-28 15:05:00,000 restart-server: Running syntax and database checks\n",
              "  File \"/etc/zulip/settings.py\", line 12\n    SCIM_CONFIG = {\n                  ^\n"
              "SyntaxError: '{' was never closed\n")
    out = run({"deploy_path": str(deploy)}, answer=(1, broken[0], broken[1]))
    assert out.failed
    r = out.result
    assert r["rc"] == 1
    assert r["msg"].startswith("restart-server failed (rc=1): ")
    assert "SyntaxError: '{' was never closed" in r["msg"]
    assert r["stdout_lines"][0].endswith("Running syntax and database checks")
    assert r["stdout_lines"][-1] == "SyntaxError: '{' was never closed"
    assert "seconds" in r


def test_pre_9_root_refusal_is_reported(deploy):
    out = run({"deploy_path": str(deploy)}, answer=(1, "Must be run as user 'zulip'.\n", ""))
    assert out.failed
    assert out.result["msg"] == "restart-server failed (rc=1): Must be run as user 'zulip'."


def test_failure_message_keeps_the_last_20_lines(deploy):
    lines = ["line %d" % i for i in range(50)]
    out = run({"deploy_path": str(deploy)}, answer=(2, "\n".join(lines) + "\n", ""))
    assert out.failed
    assert out.result["msg"] == "restart-server failed (rc=2): " + "\n".join(lines[-20:])
    assert out.result["stdout_lines"] == lines


def test_missing_script_fails_without_running(tmp_path):
    (tmp_path / "current").mkdir()
    out = run({"deploy_path": str(tmp_path / "current")})
    assert out.failed
    assert out.result["msg"] == "no Zulip restart script at %s" % (tmp_path / "current" / "scripts" / "restart-server")
    assert out.run.calls == []


def test_missing_script_fails_in_check_mode_too(tmp_path):
    out = run({"deploy_path": str(tmp_path)}, check_mode=True)
    assert out.failed
    assert out.run.calls == []


def test_script_that_is_a_directory_is_missing(tmp_path):
    (tmp_path / "scripts" / "restart-server").mkdir(parents=True)
    out = run({"deploy_path": str(tmp_path)})
    assert out.failed
    assert out.result["msg"].startswith("no Zulip restart script at")


def test_only_state_restarted_is_accepted(deploy):
    out = run({"deploy_path": str(deploy), "state": "stopped"})
    assert out.failed
    assert "state" in out.result["msg"]
    assert out.run.calls == []


def test_restart_command_as_root():
    assert zulip_server._restart.restart_command("/home/zulip/deployments/current", "zulip", []) == [
        "runuser", "-u", "zulip", "--", "/home/zulip/deployments/current/scripts/restart-server"]


def test_restart_command_does_not_alias_options(monkeypatch):
    options = ["--less-graceful"]
    argv = zulip_server._restart.restart_command("/d", "zulip", options)
    argv.append("x")
    assert options == ["--less-graceful"]


def test_stdout_without_final_newline_is_not_glued_to_stderr(deploy):
    out = run({"deploy_path": str(deploy)}, answer=(0, "Zulip restarted successfully!", "warning: x\n"))
    assert out.result["stdout_lines"] == ["Zulip restarted successfully!", "warning: x"]


def test_runs_as_a_script(deploy):
    out = H.run_script(zulip_server, {"deploy_path": str(deploy)}, check_mode=True)
    assert not out.failed, out
    assert out.result["changed"] is True
