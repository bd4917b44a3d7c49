# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The modules, through main(), against what the zulip user plants in /etc/zulip (issue 23).

The primitives are tested one attack at a time in module_utils/test_safe_files.py; this runs
the modules the way a play does, with the plant in place, and checks that a root-only canary
outside /etc/zulip is unchanged, that nothing in /etc/zulip changed on a refusal, and that no
run hangs.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_token_info, zulip_server

import _module_runner as runner  # noqa: E402 - found through conftest.py
import test_zulip_scim_config as cfg  # noqa: E402 - its temporary Zulip host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chowns files to another user: needs root")

CANARY = b"root's shell start-up file\n"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    vault = tmp_path / "root"
    vault.mkdir(mode=0o700)
    path = vault / ".bashrc"
    path.write_bytes(CANARY)
    os.chmod(path, 0o600)
    return path


def canary_state(path: Path) -> tuple:
    info = os.lstat(path)
    return path.read_bytes(), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture
def host(tmp_path: Path) -> cfg.Host:
    made = cfg.Host(tmp_path)
    os.chown(made.etc, cfg.ZULIP_UID, cfg.ZULIP_GID)  # as Zulip's puppet makes /etc/zulip
    return made


def etc_state(host: cfg.Host) -> dict:
    """Every name in /etc/zulip with what lstat says (never reading through a planted link or a FIFO)."""
    state = {}
    for name in sorted(os.listdir(host.etc)):
        info = os.lstat(host.etc / name)
        content = (host.etc / name).read_bytes() if stat.S_ISREG(info.st_mode) else os.path.islink(host.etc / name)
        state[name] = (content, info.st_ino, info.st_uid, info.st_gid, info.st_mode, info.st_mtime_ns)
    return state


def plant_link(link: Path, target: Path) -> None:
    link.symlink_to(target)
    os.lchown(link, cfg.ZULIP_UID, cfg.ZULIP_GID)


def test_links_at_the_next_backup_names_are_never_written_through(host, canary):
    """The reported exploit: links at settings.py.<PID>.<date@time>~ for the next seconds, to a root file.

    With Ansible's backup_local, root wrote settings.py's content into the root file and gave it to zulip.
    """
    before = canary_state(canary)
    now = time.time()
    planted = []
    for second in range(-1, 30):
        stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(now + second))
        link = host.etc / ("settings.py.%d.%s~" % (os.getpid(), stamp))
        plant_link(link, canary)
        planted.append(link)
    result = cfg.ok(host, [cfg.acme()], backup=True)
    backup = Path(result["backup_file"])
    assert backup.parent == host.etc and not backup.is_symlink()
    assert backup.read_bytes() == cfg.SETTINGS.encode()
    info = os.stat(backup)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (cfg.ZULIP_UID, cfg.ZULIP_GID, 0o644)
    assert all(link.is_symlink() for link in planted)
    assert canary_state(canary) == before


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink"])
def test_a_planted_settings_py_fails_every_reading_module_clearly_and_quickly(host, canary, kind, no_hang):
    before = canary_state(canary)
    host.settings.unlink()
    if kind == "fifo":
        os.mkfifo(host.settings)
    else:
        plant_link(host.settings, Path("/dev/zero") if kind == "dev-zero" else canary)
    state = etc_state(host)
    with no_hang():
        outcome = cfg.run(host, [cfg.acme()])
        assert outcome.failed
        msg = outcome.result["msg"]
        info = runner.run_module(zulip_scim_preflight.main, dict(deploy_path=str(host.deploy), settings_path=str(host.settings),
                                                                 zulip_conf_path=str(host.etc / "zulip.conf"),
                                                                 check_settings=True))
        tokens = runner.run_module(zulip_scim_token_info.main,
                                   dict(realms=["acme"], settings_path=str(host.settings),
                                        secrets_path=str(host.secrets)))
    reason = "it is a FIFO (named pipe)" if kind == "fifo" else "it is a symbolic link"
    for text in (msg, info.result["msg"], tokens.result["msg"]):
        assert text.startswith("cannot read %s: %s" % (host.settings, reason)), text
    assert etc_state(host) == state
    assert canary_state(canary) == before


def test_a_planted_secrets_link_is_not_followed(host, canary):
    before = canary_state(canary)
    host.secrets.unlink()
    plant_link(host.secrets, canary)
    state = etc_state(host)
    outcome = cfg.run(host, [cfg.acme()])
    assert outcome.failed and etc_state(host) == state
    assert outcome.result["msg"].startswith("cannot read %s: it is a symbolic link" % host.secrets)
    assert canary_state(canary) == before


def test_a_kept_copy_planted_as_a_link_makes_the_roll_back_refuse(host, canary, monkeypatch):
    """zulip can force a roll-back (it owns restart-server); before issue 23 the link was renamed over settings.py."""
    before = canary_state(canary)
    plant_link(host.etc / ".settings.py.zulip-scim-previous", canary)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    args = dict(deploy_path=str(host.deploy), settings_path=str(host.settings), secrets_path=str(host.secrets),
                state="rolled_back")
    script = host.deploy / "scripts" / "restart-server"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 99  # never run: run_command is faked\n")
    outcome = runner.run_module(zulip_server.main, args, run_command=runner.FakeRunCommand(lambda argv: (0, "", "")))
    assert outcome.failed
    assert "Putting back the previous" in outcome.result["msg"] and "symbolic link" in outcome.result["msg"]
    assert not host.settings.is_symlink() and host.settings.read_bytes() == cfg.SETTINGS.encode()
    assert canary_state(canary) == before
