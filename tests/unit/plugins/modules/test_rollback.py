"""A failed restart or check puts the previous configuration back (zulip_scim_config keep_previous,
zulip_server on_failure/rolled_back/forget_previous, zulip_scim_check forget_previous), and an
interrupted run is restarted and checked again. Through each module's main()."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_check, zulip_scim_config, zulip_server

import _module_runner as runner  # noqa: E402 - found through conftest.py
import test_zulip_scim_config as cfg  # noqa: E402 - its temporary Zulip host

pytestmark = pytest.mark.usefixtures("as_root")

RESTART_OK = (0, "Zulip restarted successfully!\n", "")
CHECK_FAILED = (1, "", "SystemCheckError: System check identified some issues\n")
NEW_TOKEN = "acme-NEW-TOKEN-abcdefghijklmnop"


def fault(case: str, outcome: str):
    return pytest.mark.reliability(area="fault", case=case, outcome=outcome)


@pytest.fixture
def host(tmp_path: Path) -> cfg.Host:
    made = cfg.Host(tmp_path)
    script = made.deploy / "scripts" / "restart-server"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 99  # never run: run_command is faked\n")
    script.chmod(0o755)
    return made


def configure(host: cfg.Host, token: str, **extra) -> dict:
    outcome = runner.run_module(zulip_scim_config.main,
                                host.args([cfg.acme(token=token)], keep_previous=True, **extra))
    assert not outcome.failed, outcome
    return outcome.result


def restart(host: cfg.Host, answers: list[tuple[int, str, str]], **args) -> runner.Outcome:
    queue = list(answers)
    fake = runner.FakeRunCommand(lambda argv: queue.pop(0))
    base = dict(deploy_path=str(host.deploy), settings_path=str(host.settings), secrets_path=str(host.secrets))
    return runner.run_module(zulip_server.main, dict(base, **args), run_command=fake)


def files_of(host: cfg.Host) -> dict:
    return cfg._content_and_metadata(host.state())


def proven_state(host: cfg.Host) -> dict:
    """The host after a first, proven run: configured, nothing kept."""
    configure(host, cfg.TOKEN_ACME)
    previous.forget([str(host.secrets), str(host.settings)])
    return files_of(host)


def kept_names(host: cfg.Host) -> list[str]:
    return sorted(p.name for p in host.etc.iterdir() if "zulip-scim-" in p.name)


def test_a_change_keeps_the_files_as_they_were_with_owner_and_mode(host: cfg.Host) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mode, p.stat().st_uid, p.stat().st_gid)
              for p in (host.settings, host.secrets)}
    result = configure(host, cfg.TOKEN_ACME)
    assert result["changed"] and not result["unproven"]
    assert kept_names(host) == [".settings.py.zulip-scim-previous", ".zulip-secrets.conf.zulip-scim-previous"]
    for path, (content, mode, uid, gid) in before.items():
        copy = host.etc / ("." + path.name + ".zulip-scim-previous")
        info = copy.stat()
        assert (copy.read_bytes(), info.st_mode, info.st_uid, info.st_gid) == (content, mode, uid, gid)


def test_without_keep_previous_nothing_is_kept(host: cfg.Host) -> None:
    outcome = runner.run_module(zulip_scim_config.main, host.args([cfg.acme()]))
    assert outcome.result["changed"] and kept_names(host) == []


def test_check_mode_keeps_nothing(host: cfg.Host) -> None:
    outcome = runner.run_module(zulip_scim_config.main, host.args([cfg.acme()], keep_previous=True), check_mode=True)
    assert outcome.result["changed"] and kept_names(host) == []


@fault("restart-server fails (its check fails) after the new files were written",
       "settings.py and zulip-secrets.conf put back byte for byte with owner and mode, Zulip restarted on them, "
       "the task fails naming the cause and what was put back")
def test_failed_restart_puts_the_previous_files_back_and_restarts_on_them(host: cfg.Host) -> None:
    proven = proven_state(host)
    configure(host, NEW_TOKEN)  # a rotation
    assert files_of(host) != proven
    out = restart(host, [CHECK_FAILED, RESTART_OK], on_failure="roll_back")
    assert out.failed and out.result["rolled_back"] is True
    message = out.result["msg"]
    assert message.startswith("restart-server failed (rc=1): ")
    assert "SystemCheckError" in message and "put back byte for byte" in message
    assert str(host.settings) in message and str(host.secrets) in message
    assert files_of(host) == proven
    assert kept_names(host) == []
    assert len(out.run.calls) == 2  # the failed restart, then the one on the old files
    assert NEW_TOKEN not in message and cfg.TOKEN_ACME not in message


@fault("restart-server fails, and fails again on the previous files",
       "files put back, the task fails saying Zulip may not be serving and where to look")
def test_restart_that_fails_again_on_the_old_files_says_so(host: cfg.Host) -> None:
    proven = proven_state(host)
    configure(host, NEW_TOKEN)
    out = restart(host, [CHECK_FAILED, (1, "", "supervisor: ERROR (spawn error)\n")], on_failure="roll_back")
    assert out.failed and out.result["rolled_back"] is False
    assert "did not restart on them either" in out.result["msg"] and "spawn error" in out.result["msg"]
    assert files_of(host) == proven


def test_on_failure_fail_keeps_the_new_files(host: cfg.Host) -> None:
    proven_state(host)
    configure(host, NEW_TOKEN)
    changed = files_of(host)
    out = restart(host, [CHECK_FAILED])
    assert out.failed and files_of(host) == changed and len(out.run.calls) == 1


def test_failed_restart_with_nothing_kept_says_nothing_was_put_back(host: cfg.Host) -> None:
    proven = proven_state(host)
    out = restart(host, [CHECK_FAILED], on_failure="roll_back")
    assert out.failed and "nothing was put back" in out.result["msg"] and files_of(host) == proven


@fault("the restart succeeds but the SCIM check after it fails",
       "state=rolled_back puts the previous files back byte for byte and restarts Zulip on them")
def test_rolled_back_after_a_failed_check(host: cfg.Host) -> None:
    proven = proven_state(host)
    configure(host, NEW_TOKEN)
    assert restart(host, [RESTART_OK], on_failure="roll_back").result["changed"]
    assert kept_names(host), "the restart must leave the copies for the check"
    out = restart(host, [RESTART_OK], state="rolled_back")
    assert not out.failed and out.result["rolled_back"] and out.result["changed"]
    assert files_of(host) == proven and kept_names(host) == []


def test_rolled_back_with_nothing_kept_changes_nothing(host: cfg.Host) -> None:
    proven = proven_state(host)
    out = restart(host, [], state="rolled_back")
    assert not out.failed and not out.result["changed"] and out.run.calls == []
    assert files_of(host) == proven


def test_forget_previous_after_a_restart_that_no_check_follows(host: cfg.Host) -> None:
    configure(host, cfg.TOKEN_ACME)
    assert not restart(host, [RESTART_OK], forget_previous=True).failed
    assert kept_names(host) == []


@fault("a run interrupted after writing the files, before the restart or the check",
       "the next run finds the kept copies, reports a change (unproven) so that Zulip is restarted and "
       "checked again, and keeps the oldest copy: the files as Zulip last ran them")
def test_an_interrupted_run_is_restarted_and_checked_again(host: cfg.Host) -> None:
    proven = proven_state(host)
    configure(host, NEW_TOKEN)  # ...and the controller died here
    again = configure(host, NEW_TOKEN)
    assert again["changed"] and again["unproven"]
    assert not (again["settings_changed"] or again["secrets_changed"])
    other = "acme-THIRD-TOKEN-abcdefghijklmno"
    configure(host, other)  # another change before anything was proven
    assert restart(host, [RESTART_OK], state="rolled_back").result["rolled_back"]
    assert files_of(host) == proven, "the oldest copy, what Zulip last ran, comes back"


def test_a_file_that_did_not_exist_is_removed_again(host: cfg.Host) -> None:
    host.secrets.unlink()
    configure(host, cfg.TOKEN_ACME)
    assert host.secrets.exists()
    assert restart(host, [RESTART_OK], state="rolled_back").result["rolled_back"]
    assert not host.secrets.exists() and kept_names(host) == []


def check(host: cfg.Host, answer_status: int, monkeypatch: pytest.MonkeyPatch, check_mode: bool = False,
          forget: bool = True) -> runner.Outcome:
    """zulip_scim_check with forget_previous, the HTTP answers faked: the stored token gets answer_status."""
    from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http

    def probe(api_url, host_header, token, *args, **kwargs):
        status = answer_status if token == cfg.TOKEN_ACME else 401
        return scim_http.ProbeResult(status)

    monkeypatch.setattr(scim_http, "probe_until_settled", probe)
    return runner.run_module(zulip_scim_check.main, dict(
        realms=["acme"], settings_path=str(host.settings), secrets_path=str(host.secrets),
        deploy_path=str(host.deploy), external_host="zulip.example.test", api_url="https://127.0.0.1",
        forget_previous=forget), check_mode=check_mode)


def test_a_passed_check_forgets_the_previous_files(host: cfg.Host, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(host, cfg.TOKEN_ACME)
    out = check(host, 200, monkeypatch)
    assert not out.failed and out.result["forgot_previous"] and out.result["changed"]
    assert kept_names(host) == []
    again = check(host, 200, monkeypatch)
    assert not again.result["changed"], "nothing kept: nothing to forget, no change"


def test_check_mode_says_what_it_would_forget_and_deletes_nothing(host: cfg.Host,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: check mode reported no change although a real run would delete the kept copies.
    configure(host, cfg.TOKEN_ACME)
    kept = kept_names(host)
    out = check(host, 200, monkeypatch, check_mode=True)
    assert not out.failed and out.result["changed"] and out.result["forgot_previous"]
    assert kept_names(host) == kept and len(kept) == 2
    previous.forget([str(host.secrets), str(host.settings)])
    nothing = check(host, 200, monkeypatch, check_mode=True)
    assert not nothing.result["changed"] and not nothing.result["forgot_previous"]


def test_without_forget_previous_it_changes_nothing(host: cfg.Host, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(host, cfg.TOKEN_ACME)
    kept = kept_names(host)
    out = check(host, 200, monkeypatch, forget=False)
    assert not out.failed and not out.result["changed"] and kept_names(host) == kept


def test_the_documented_attributes_say_it_deletes_with_forget_previous() -> None:
    import yaml

    doc = yaml.safe_load(zulip_scim_check.DOCUMENTATION)
    assert "zulip_ops.zulip._shared.info_module" not in doc["extends_documentation_fragment"]
    assert doc["attributes"]["diff_mode"]["support"] == "none"
    assert "forget_previous" in " ".join(doc["attributes"]["check_mode"]["details"])
    assert "not read-only" in " ".join(doc["description"])


def test_a_failed_check_leaves_them_for_the_roll_back(host: cfg.Host, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(host, cfg.TOKEN_ACME)
    out = check(host, 401, monkeypatch)
    assert out.failed and len(kept_names(host)) == 2


@pytest.fixture
def full_disk_host(tmp_path: Path):
    """A Zulip host whose /etc/zulip is on a small tmpfs that is then filled up: a real ENOSPC."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        made = cfg.Host(disk)
        with open(disk / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 512)
            except OSError:
                pass  # full
        yield made
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@fault("the disk is full when the files are written",
       "the task fails naming the file and 'No space left on device'; settings.py and zulip-secrets.conf keep "
       "every byte, no temporary file or partial copy is left")
@pytest.mark.parametrize("keep_previous", [True, False], ids=["keep_previous", "no_copy"])
def test_a_full_disk_leaves_both_files_whole(full_disk_host: cfg.Host, keep_previous: bool) -> None:
    before = full_disk_host.state()
    outcome = runner.run_module(zulip_scim_config.main,
                                full_disk_host.args([cfg.acme()], keep_previous=keep_previous))
    assert outcome.failed
    assert "No space left on device" in outcome.result["msg"]
    assert full_disk_host.state() == before, "a file changed, or a temporary file or copy was left"
    assert cfg.TOKEN_ACME not in outcome.result["msg"]
