# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The file primitives against what the zulip user can plant in the directory it owns (issue 23).

Each test makes an attacker-owned directory (the ``nobody`` user stands in for ``zulip``), plants
something there (a link at a name the collection is about to use, a FIFO, a device, a hard link,
an oversize file, a swap between read and write) and checks that root's work is refused or goes
around it, and that canary files outside the directory, owned by root, are unchanged (content,
owner and mode). Every test here failed on the code before issue 23 (a followed link, a hang, a
missing refusal) or tests a primitive that did not exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _lock as lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import read_secrets_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import external_host_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, read_version
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import read_front_end

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plants files owned by another user: needs root")

ATTACKER = 65534  # nobody: stands in for the zulip user
SETTINGS = b'EXTERNAL_HOST = "zulip.example.com"\n'
CANARY = b"root's own file\n"


class Canaries:
    """Root-only files outside the attacker's directory, compared by content, owner and mode."""

    def __init__(self, root: Path):
        vault = root / "root-only"
        vault.mkdir(mode=0o700)
        self.paths = [vault / "secret", vault / "profile"]
        for path in self.paths:
            path.write_bytes(CANARY)
            os.chmod(path, 0o600)
        self.before = self.state()

    def state(self) -> dict:
        # Not st_nlink: a test that plants a hard link to a canary adds one itself.
        return {path: (path.read_bytes(), os.lstat(path).st_uid, os.lstat(path).st_gid,
                       stat.S_IMODE(os.lstat(path).st_mode)) for path in self.paths}

    def untouched(self) -> bool:
        return self.state() == self.before

    @property
    def first(self) -> Path:
        return self.paths[0]


class ZulipDir:
    """/etc/zulip as Zulip's puppet makes it: the directory and its files owned by the zulip user."""

    def __init__(self, root: Path):
        self.path = root / "etc" / "zulip"
        self.path.mkdir(parents=True)
        os.chown(self.path, ATTACKER, ATTACKER)
        os.chmod(self.path, 0o755)
        self.settings = self.path / "settings.py"
        self.secrets = self.path / "zulip-secrets.conf"
        self.plant_file(self.settings, SETTINGS, 0o644)
        self.plant_file(self.secrets, b"[secrets]\nx = y\n", 0o640)

    def plant_file(self, path: Path, content: bytes, mode: int = 0o644) -> None:
        path.write_bytes(content)
        os.chown(path, ATTACKER, ATTACKER)
        os.chmod(path, mode)

    def plant_link(self, name: str, target: Path | str) -> Path:
        link = self.path / name
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(target)
        os.lchown(link, ATTACKER, ATTACKER)
        return link

    def names(self) -> list[str]:
        return sorted(os.listdir(self.path))


@pytest.fixture
def canaries(tmp_path: Path) -> Canaries:
    return Canaries(tmp_path)


@pytest.fixture
def zulip(tmp_path: Path, canaries: Canaries) -> ZulipDir:
    return ZulipDir(tmp_path)


def predictable_names(monkeypatch, *suffixes: str) -> None:
    """The temporary (and backup fallback) names the code will use, known to the test as to an attacker."""
    queue = list(suffixes)
    monkeypatch.setattr(files, "_random_suffix", lambda: queue.pop(0))


# ---------------------------------------------------------------- links planted at names root creates


def test_a_link_planted_at_the_temporary_name_is_never_opened(zulip, canaries, monkeypatch):
    predictable_names(monkeypatch, "aaaaaaaa", "bbbbbbbb")
    zulip.plant_link(".zulip-scim-aaaaaaaa.tmp", canaries.first)
    snapshot = files.read_snapshot(str(zulip.settings))
    files.write_all([files.Write(snapshot, b"NEW = 1\n")])
    assert zulip.settings.read_bytes() == b"NEW = 1\n"
    assert os.stat(zulip.settings).st_uid == ATTACKER  # owner kept
    assert canaries.untouched()
    assert zulip.names() == [".zulip-scim-aaaaaaaa.tmp", "settings.py", "zulip-secrets.conf"]


def test_every_temporary_name_taken_fails_cleanly(zulip, canaries, monkeypatch):
    monkeypatch.setattr(files, "_random_suffix", lambda: "aaaaaaaa")
    zulip.plant_link(".zulip-scim-aaaaaaaa.tmp", canaries.first)
    with pytest.raises(files.FileWriteError, match="names in a row were taken"):
        files.atomic_replace(str(zulip.settings), b"x")
    assert zulip.settings.read_bytes() == SETTINGS and canaries.untouched()


# As the zulip user (nobody here), in the moment between root's write of the temporary file and its rename:
# swap the temporary file for a link to the canary, and swap root's private directory for one of its own.
_SWAPPER = r"""
import os, sys
etc, canary = sys.argv[1], sys.argv[2]
outcome = []
for name in os.listdir(etc):
    if name.startswith(".zulip-scim-") and name.endswith(".tmp"):
        private = os.path.join(etc, name)
        try:
            os.symlink(canary, private + "/evil")
            os.replace(private + "/evil", private + "/settings.py.tmp")
            outcome.append("swapped the temporary file")
        except OSError as exc:
            outcome.append("temporary file: errno %d" % exc.errno)
        os.rename(private, private + ".moved")
        os.mkdir(private)
        os.symlink(canary, private + "/settings.py.tmp")
        outcome.append("replaced the directory")
print("; ".join(outcome))
"""


@pytest.mark.reliability(area="attack", case="the zulip user swaps root's temporary file for a link (or its directory for "
                         "one of its own) between the write and the rename into /etc/zulip",
                         outcome="it cannot: the temporary file lives in a directory only root may enter, and the rename "
                         "goes through that directory's descriptor; settings.py gets root's content, canaries untouched")
def test_the_temporary_file_cannot_be_swapped_before_the_rename(zulip, canaries, monkeypatch):
    real_check = files._check_unchanged  # pylint: disable=protected-access
    said = []

    def attack_then_check(*args):
        done = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", _SWAPPER, str(zulip.path),
                               str(canaries.first)], capture_output=True, text=True, check=False, timeout=60)
        said.append(done.stdout.strip() or done.stderr[-300:])
        return real_check(*args)

    monkeypatch.setattr(files, "_check_unchanged", attack_then_check)
    for folder in zulip.path.parents:  # pytest's folders are root's 0700: let the attacker reach its directory
        if folder == Path("/tmp"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o001)
    snapshot = files.read_snapshot(str(zulip.settings))
    files.write_all([files.Write(snapshot, b"NEW = 1\n")])
    assert said == ["temporary file: errno 13; replaced the directory"]  # EACCES: root's directory, 0700
    assert not zulip.settings.is_symlink() and zulip.settings.read_bytes() == b"NEW = 1\n"
    assert os.stat(zulip.settings).st_uid == ATTACKER
    assert canaries.untouched()


def test_a_link_planted_at_the_backup_name_is_never_written_through(zulip, canaries, monkeypatch):
    """The reported exploit: Ansible's backup_local followed a link at settings.py.<PID>.<date@time>~."""
    predictable_names(monkeypatch, "CCCCCCCC")
    monkeypatch.setattr(files.time, "strftime", lambda fmt: "2026-11-28@15:05:00")
    planted = "settings.py.%d.2026-11-28@15:05:00~" % os.getpid()
    zulip.plant_link(planted, canaries.first)
    made = files.create_exclusive(str(zulip.settings), SETTINGS, 0o644, ATTACKER, ATTACKER,
                                  files.backup_names("settings.py"))
    assert made == str(zulip.path / ("settings.py.%d.2026-11-28@15:05:00.CCCCCCCC~" % os.getpid()))
    assert Path(made).read_bytes() == SETTINGS and not Path(made).is_symlink()
    info = os.stat(made)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (ATTACKER, ATTACKER, 0o644)
    assert (zulip.path / planted).is_symlink() and canaries.untouched()


def test_a_link_planted_at_the_kept_copy_name_is_replaced_not_followed(zulip, canaries, monkeypatch):
    """keep() checked for a kept copy, then the zulip user planted a link at its name."""
    snapshot = files.read_snapshot(str(zulip.settings))
    zulip.plant_link(".settings.py.zulip-scim-previous", canaries.first)
    monkeypatch.setattr(previous, "kept", lambda paths: [])  # the check ran before the plant
    assert previous.keep([snapshot]) == [str(zulip.settings)]
    copy = zulip.path / ".settings.py.zulip-scim-previous"
    assert not copy.is_symlink() and copy.read_bytes() == SETTINGS
    assert os.stat(copy).st_uid == ATTACKER
    assert canaries.untouched()


@pytest.mark.parametrize("plant", ["symlink", "hard link", "fifo", "directory"])
def test_a_planted_kept_copy_is_refused_on_restore_and_nothing_changes(zulip, canaries, plant, no_hang):
    """The zulip user can force a roll-back (it owns restart-server): restore must refuse what it planted."""
    copy = zulip.path / ".settings.py.zulip-scim-previous"
    if plant == "symlink":
        zulip.plant_link(copy.name, canaries.first)
    elif plant == "hard link":
        os.link(canaries.first, copy)
    elif plant == "fifo":
        os.mkfifo(copy)
    else:
        copy.mkdir()
    with no_hang(10):
        errors = previous.restore([str(zulip.settings)])
    assert len(errors) == 1 and errors[0].startswith("cannot put back the previous %s: it " % zulip.settings)
    assert zulip.settings.read_bytes() == SETTINGS and not zulip.settings.is_symlink()
    assert os.stat(zulip.settings).st_nlink == 1
    assert canaries.untouched()


def test_restore_writes_the_kept_bytes_through_the_atomic_write(zulip, canaries):
    snapshot = files.read_snapshot(str(zulip.settings))
    previous.keep([snapshot])
    copy = zulip.path / ".settings.py.zulip-scim-previous"
    os.chmod(copy, 0o4755)  # the zulip user may set any bit on its own copy: no set-id file comes back
    zulip.plant_file(zulip.settings, b"BROKEN = 1\n")
    assert previous.restore([str(zulip.settings)]) == []
    info = os.stat(zulip.settings)
    assert zulip.settings.read_bytes() == SETTINGS
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (ATTACKER, ATTACKER, 0o755)
    assert not copy.exists() and canaries.untouched()


def test_the_absent_marker_removes_names_only(zulip, canaries):
    """A file that did not exist before: its name goes, a link there is removed, not its target."""
    marker = zulip.path / ".zulip-secrets.conf.zulip-scim-absent"
    marker.write_bytes(b"")
    zulip.secrets.unlink()
    zulip.plant_link(zulip.secrets.name, canaries.first)
    assert previous.restore([str(zulip.secrets)]) == []
    assert not os.path.lexists(zulip.secrets) and not marker.exists()
    assert canaries.untouched()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "zulip's file"])
@pytest.mark.reliability(area="attack", case="the zulip user plants an absent marker (.settings.py.zulip-scim-absent) "
                         "and forces a roll-back",
                         outcome="the marker is refused as not the collection's (not root's empty file): settings.py "
                         "is not deleted; the roll-back fails naming it")
def test_a_planted_absent_marker_never_makes_root_delete_the_file(zulip, canaries, kind):
    marker = zulip.path / ".settings.py.zulip-scim-absent"
    if kind == "symlink":
        zulip.plant_link(marker.name, canaries.first)
    elif kind == "fifo":
        os.mkfifo(marker)
    elif kind == "directory":
        marker.mkdir()
    else:
        zulip.plant_file(marker, b"")
    if kind != "symlink":
        os.lchown(marker, ATTACKER, ATTACKER)
    errors = previous.restore([str(zulip.settings)])
    assert len(errors) == 1 and "not the empty marker this collection makes" in errors[0], errors
    assert zulip.settings.read_bytes() == SETTINGS and canaries.untouched()


def test_forget_removes_the_copies_beside_the_named_file_not_beside_a_link_target(tmp_path, zulip, canaries):
    """Before issue 23 the kept copies of a linked settings.py were looked for beside its target."""
    elsewhere = canaries.first.parent
    victim = elsewhere / ".settings.py.zulip-scim-previous"
    victim.write_bytes(CANARY)
    zulip.settings.unlink()
    zulip.plant_link("settings.py", elsewhere / "settings.py")
    own = zulip.path / ".settings.py.zulip-scim-previous"
    zulip.plant_file(own, b"old")
    assert previous.forget([str(zulip.settings)]) is True
    assert victim.read_bytes() == CANARY and not own.exists()
    assert canaries.untouched()


def test_stale_temporary_files_are_removed_but_a_planted_link_is_not_followed(zulip, canaries):
    stale = zulip.path / ".settings.py.abcdefgh.tmp"
    stale.write_bytes(b"left by a killed run")
    link = zulip.plant_link(".settings.py.ijklmnop.tmp", canaries.first)
    assert files.remove_stale_temps(str(zulip.settings)) == [str(stale)]
    assert link.is_symlink() and canaries.untouched()


# ---------------------------------------------------------------- a swap between read and write


def test_settings_swapped_for_a_link_between_read_and_write_is_refused(zulip, canaries):
    snapshot = files.read_snapshot(str(zulip.settings))
    zulip.settings.unlink()
    zulip.plant_link("settings.py", canaries.first)
    with pytest.raises(files.FileWriteError, match="changed while this run worked"):
        files.write_all([files.Write(snapshot, b"ATTACKER_CONTENT = 1\n")])
    assert zulip.settings.is_symlink() and canaries.untouched()
    assert zulip.names() == ["settings.py", "zulip-secrets.conf"]  # no temporary file left


def test_settings_swapped_for_another_file_between_read_and_write_is_a_lost_update(zulip, canaries):
    snapshot = files.read_snapshot(str(zulip.settings))
    other = zulip.path / "other"
    zulip.plant_file(other, b"EDITED = 1\n")
    os.replace(other, zulip.settings)
    with pytest.raises(files.FileWriteError, match="changed while this run worked"):
        files.write_all([files.Write(snapshot, b"NEW = 1\n")])
    assert zulip.settings.read_bytes() == b"EDITED = 1\n"


def test_a_file_created_where_none_was_read_is_a_lost_update(zulip):
    path = zulip.path / "new.conf"
    snapshot = files.read_snapshot(str(path))
    zulip.plant_file(path, b"planted")
    with pytest.raises(files.FileWriteError, match="changed while this run worked"):
        files.write_all([files.Write(snapshot, b"ours", mode=0o640)])
    assert path.read_bytes() == b"planted"


def test_a_failed_second_write_restores_the_first_without_following_a_planted_link(zulip, canaries):
    first = files.read_snapshot(str(zulip.secrets))
    second = files.read_snapshot(str(zulip.settings))
    zulip.settings.unlink()
    zulip.plant_link("settings.py", canaries.first)  # makes the second write fail
    with pytest.raises(files.FileWriteError, match="restored to the previous content"):
        files.write_all([files.Write(first, b"[secrets]\nnew = 1\n"), files.Write(second, b"NEW = 1\n")])
    assert zulip.secrets.read_bytes() == b"[secrets]\nx = y\n"
    assert canaries.untouched()


# ---------------------------------------------------------------- bounded, typed reads


def _plant(zulip: ZulipDir, canaries: Canaries, name: str, kind: str) -> Path:
    path = zulip.path / name
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        zulip.plant_link(name, canaries.first)
    elif kind == "dev-zero":
        zulip.plant_link(name, "/dev/zero")
    elif kind == "char device":
        os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero's numbers
    elif kind == "directory":
        path.mkdir()
    elif kind == "hard link":
        os.link(canaries.first, path)
    elif kind == "oversize":
        with open(path, "wb") as handle:
            handle.truncate(safe_dir.MAX_READ_BYTES + 1)  # sparse: costs no disk
    return path


REFUSALS = {
    "fifo": "it is a FIFO (named pipe), not a regular file",
    "symlink": "it is a symbolic link, which is not followed here",
    "dev-zero": "it is a symbolic link, which is not followed here",
    "char device": "it is a character device, not a regular file",
    "directory": "it is a directory, not a regular file",
    "hard link": "it has ",  # 2 or more hard links
    "oversize": "it is larger than 4 MiB",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_settings_that_is_not_a_plain_file_is_refused_quickly(zulip, canaries, kind, no_hang):
    path = _plant(zulip, canaries, "settings.py", kind)
    started = time.monotonic()
    with no_hang(10), pytest.raises(files.FileWriteError) as caught:
        files.read_snapshot(str(path))
    assert time.monotonic() - started < 2
    assert str(caught.value).startswith("cannot read %s: %s" % (path, REFUSALS[kind]))
    assert CANARY.decode() not in str(caught.value)
    assert canaries.untouched()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "oversize", "hard link"])
def test_every_reader_of_a_zulip_file_refuses(zulip, canaries, kind, no_hang):
    """settings.py (EXTERNAL_HOST), zulip-secrets.conf and zulip.conf: each reader, no hang, a clear error."""
    readers = [
        ("settings.py", lambda p: external_host_of(str(p))),
        ("zulip-secrets.conf", lambda p: read_secrets_file(str(p))),
        ("zulip.conf", lambda p: read_front_end(str(p))),
    ]
    for name, reader in readers:
        path = _plant(zulip, canaries, name, kind)
        with no_hang(10), pytest.raises(ZulipError) as caught:
            reader(path)
        assert str(caught.value).startswith("cannot read %s: %s" % (path, REFUSALS[kind])), caught.value
    assert canaries.untouched()


def test_a_file_read_is_capped_even_when_it_grows(zulip, monkeypatch):
    """Only limit + 1 bytes are ever read, whatever fstat said."""
    monkeypatch.setattr(safe_dir, "MAX_READ_BYTES", 16)
    zulip.plant_file(zulip.settings, b"x" * 17)
    with safe_dir.open_directory(str(zulip.path)) as directory:
        with pytest.raises(safe_dir.FileRefused, match="larger than 16 bytes"):
            directory.read("settings.py", 16)
        assert directory.read("zulip-secrets.conf", 16).content == b"[secrets]\nx = y\n"


# ---------------------------------------------------------------- the directory and the deployment


def test_a_linked_directory_made_by_the_zulip_user_is_refused(tmp_path, zulip, canaries):
    link = tmp_path / "etc" / "zulip-link"
    link.symlink_to(canaries.first.parent)
    os.lchown(link, ATTACKER, ATTACKER)
    refused = "secret: .*/zulip-link is a symbolic link; a link on the way to a directory is followed only when root made it"
    with pytest.raises(files.FileWriteError, match=refused):
        files.read_snapshot(str(link / "secret"))
    with pytest.raises(files.FileWriteError, match="cannot create a temporary file next to"):
        files.atomic_replace(str(link / "secret"), b"attacker")
    assert canaries.untouched()


def test_a_link_inside_the_zulip_directory_is_never_followed_even_when_root_owns_it(zulip, canaries):
    sub = zulip.path / "sub"
    sub.symlink_to(canaries.first.parent)  # root-owned, but in a directory the zulip user writes
    with pytest.raises(files.FileWriteError, match="symbolic link"):
        files.atomic_replace(str(sub / "secret"), b"attacker")
    assert canaries.untouched()


def test_a_link_that_only_root_could_make_is_followed(tmp_path, zulip):
    """/etc/zulip -> /srv/zulip-etc made by root in a root-owned 0755 directory (as docker images do)."""
    trusted = tmp_path / "root-etc"
    trusted.mkdir(mode=0o755)
    (trusted / "zulip").symlink_to(zulip.path)
    snapshot = files.read_snapshot(str(trusted / "zulip" / "settings.py"))
    assert snapshot.content == SETTINGS
    files.write_all([files.Write(snapshot, b"NEW = 1\n")])
    assert zulip.settings.read_bytes() == b"NEW = 1\n"


def test_the_host_lock_is_on_the_named_directory_not_where_a_linked_settings_py_points(tmp_path, zulip):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    zulip.settings.unlink()
    zulip.plant_link("settings.py", elsewhere / "settings.py")
    with lock.locked_settings(str(zulip.settings), timeout=0):
        fd = os.open(elsewhere, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: the lock is on /etc/zulip
        finally:
            os.close(fd)
        fd = os.open(zulip.path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_the_host_lock_refuses_a_linked_directory(tmp_path, zulip):
    link = tmp_path / "etc" / "zulip-link"
    link.symlink_to(zulip.path)
    os.lchown(link, ATTACKER, ATTACKER)
    with pytest.raises(ZulipError, match="cannot open .* to lock it: .*zulip-link is a symbolic link"):
        with lock.locked_settings(str(link / "settings.py"), timeout=0):
            pass


def _deployments(tmp_path: Path, canaries: Canaries) -> Path:
    deployments = tmp_path / "home" / "zulip" / "deployments"
    deployment = deployments / "2026-11-28-15-05-00"
    deployment.mkdir(parents=True)
    for directory in (tmp_path / "home" / "zulip", deployments, deployment):
        os.chown(directory, ATTACKER, ATTACKER)
    (deployment / "version.py").write_text('ZULIP_VERSION = "9.2"\n')
    return deployments


@pytest.mark.parametrize("target", ["2026-11-28-15-05-00", "ABSOLUTE"])
def test_current_is_read_as_a_name_beside_it(tmp_path, canaries, target):
    deployments = _deployments(tmp_path, canaries)
    link = deployments / "current"
    link.symlink_to(str(deployments / "2026-11-28-15-05-00") if target == "ABSOLUTE" else target)
    assert read_version(str(link)) == "9.2"


@pytest.mark.parametrize("target", ["../../..", "/etc", "ROOT_ONLY", "./2026-11-28-15-05-00/.."])
def test_current_pointing_elsewhere_is_refused(tmp_path, canaries, target):
    deployments = _deployments(tmp_path, canaries)
    (canaries.first.parent / "version.py").write_text('ZULIP_VERSION = "6.6"\n')
    link = deployments / "current"
    link.symlink_to(str(canaries.first.parent) if target == "ROOT_ONLY" else target)
    os.lchown(link, ATTACKER, ATTACKER)
    with pytest.raises(ZulipError, match="cannot read %s .it is a link to" % link):
        read_version(str(link))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "symlink", "oversize", "directory"])
def test_version_py_that_is_not_a_plain_file_is_refused(tmp_path, canaries, kind, no_hang):
    deployments = _deployments(tmp_path, canaries)
    (deployments / "current").symlink_to("2026-11-28-15-05-00")
    fake = ZulipDir.__new__(ZulipDir)
    fake.path = deployments / "2026-11-28-15-05-00"
    path = _plant(fake, canaries, "version.py", kind)
    with no_hang(10), pytest.raises(ZulipError) as caught:
        read_version(str(deployments / "current"))
    assert "(%s" % REFUSALS[kind] in str(caught.value) and str(path) in str(caught.value)
    assert canaries.untouched()


def test_a_set_id_bit_the_zulip_user_set_on_settings_py_is_not_copied_by_a_write(zulip, canaries):
    os.chmod(zulip.settings, 0o6755)  # the zulip user owns the file: it may set any bit
    snapshot = files.read_snapshot(str(zulip.settings))
    files.write_all([files.Write(snapshot, SETTINGS + b"X = 1\n")])
    info = os.stat(zulip.settings)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (ATTACKER, 0o755)
    assert canaries.untouched()
