# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files

OTHER_UID = 4321
OTHER_GID = 4322


def _meta(path):
    info = os.stat(path)
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "zulip-secrets.conf"
    path.write_bytes(b"[secrets]\nold = value\n")
    os.chmod(path, 0o640)
    os.chown(path, OTHER_UID, OTHER_GID)
    return path


def test_read_snapshot_of_missing_file(tmp_path):
    snapshot = files.read_snapshot(str(tmp_path / "nope"))
    assert not snapshot.exists
    assert snapshot.content is None


def test_read_snapshot_keeps_content_and_metadata(secret_file):
    snapshot = files.read_snapshot(str(secret_file))
    assert snapshot.exists
    assert snapshot.content == b"[secrets]\nold = value\n"
    assert (snapshot.mode, snapshot.uid, snapshot.gid) == (0o640, OTHER_UID, OTHER_GID)
    # The repr must never show content: it may be a file of secrets.
    assert "value" not in repr(snapshot)


def test_read_snapshot_of_directory_fails(tmp_path):
    with pytest.raises(files.FileWriteError, match="cannot read"):
        files.read_snapshot(str(tmp_path))


def test_read_snapshot_of_non_regular_file_fails():
    with pytest.raises(files.FileWriteError, match="not a regular file"):
        files.read_snapshot("/dev/null")


def test_atomic_replace_keeps_owner_and_mode(secret_file):
    snapshot = files.read_snapshot(str(secret_file))
    files.atomic_replace(str(secret_file), b"new", snapshot.mode, snapshot.uid, snapshot.gid)
    assert secret_file.read_bytes() == b"new"
    assert _meta(secret_file) == (0o640, OTHER_UID, OTHER_GID)
    assert [p.name for p in secret_file.parent.iterdir()] == [secret_file.name]


def test_owner_and_mode_are_set_before_any_content(secret_file, monkeypatch):
    """The temporary file must never hold content while readable by others or owned by root."""
    seen = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd, *args, **kwargs):
        info = os.fstat(fd)
        seen.append((info.st_size, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", spying_fdopen)
    files.atomic_replace(str(secret_file), b"secret stuff", 0o640, OTHER_UID, OTHER_GID)
    assert seen == [(0, 0o640, OTHER_UID, OTHER_GID)]


def test_atomic_replace_without_metadata_gives_private_file(tmp_path):
    path = tmp_path / "new"
    files.atomic_replace(str(path), b"x")
    assert _meta(path)[0] == 0o600


def test_atomic_replace_replaces_a_symlink_and_never_writes_through_it(tmp_path):
    """Before issue 23 the link was followed: root wrote to whatever it pointed at."""
    target = tmp_path / "real.py"
    target.write_bytes(b"a")
    link = tmp_path / "settings.py"
    link.symlink_to(target)
    files.atomic_replace(str(link), b"b")
    assert not link.is_symlink() and link.read_bytes() == b"b"
    assert target.read_bytes() == b"a"


def test_atomic_replace_in_missing_directory(tmp_path):
    with pytest.raises(files.FileWriteError, match="cannot create a temporary file"):
        files.atomic_replace(str(tmp_path / "missing" / "f"), b"x")


def test_failed_chown_leaves_no_trace(secret_file, monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "fchown", refuse)
    with pytest.raises(files.FileWriteError, match="cannot give the new .* owner 1:2"):
        files.atomic_replace(str(secret_file), b"new", 0o640, 1, 2)
    assert secret_file.read_bytes() == b"[secrets]\nold = value\n"
    assert [p.name for p in secret_file.parent.iterdir()] == [secret_file.name]


def test_failed_rename_leaves_no_trace(secret_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(files.FileWriteError, match="cannot write .*No space left"):
        files.atomic_replace(str(secret_file), b"new", 0o640, OTHER_UID, OTHER_GID)
    assert secret_file.read_bytes() == b"[secrets]\nold = value\n"
    assert [p.name for p in secret_file.parent.iterdir()] == [secret_file.name]


def test_failed_fdopen_closes_and_removes_temp(secret_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(files.os, "fdopen", refuse)
    with pytest.raises(files.FileWriteError, match="Too many open files"):
        files.atomic_replace(str(secret_file), b"new")
    assert [p.name for p in secret_file.parent.iterdir()] == [secret_file.name]


def test_restore_puts_back_content_and_metadata(secret_file):
    snapshot = files.read_snapshot(str(secret_file))
    files.atomic_replace(str(secret_file), b"changed", 0o600, 0, 0)
    files.restore(snapshot)
    assert secret_file.read_bytes() == b"[secrets]\nold = value\n"
    assert _meta(secret_file) == (0o640, OTHER_UID, OTHER_GID)


def test_restore_of_missing_file_removes_it(tmp_path):
    path = tmp_path / "created"
    snapshot = files.read_snapshot(str(path))
    files.atomic_replace(str(path), b"x")
    files.restore(snapshot)
    assert not path.exists()
    files.restore(snapshot)  # already gone: nothing to do


def test_restore_of_missing_file_that_cannot_be_removed(tmp_path, monkeypatch):
    path = tmp_path / "created"
    snapshot = files.read_snapshot(str(path))
    path.write_bytes(b"x")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "unlink", refuse)
    with pytest.raises(files.FileWriteError, match="cannot remove"):
        files.restore(snapshot)


def test_write_all_returns_snapshots_for_a_later_rollback(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"a0")
    writes = [files.Write(files.read_snapshot(str(first)), b"a1"),
              files.Write(files.read_snapshot(str(second)), b"b1", mode=0o640)]
    snapshots = files.write_all(writes)
    assert (first.read_bytes(), second.read_bytes()) == (b"a1", b"b1")
    assert _meta(second)[0] == 0o640
    # What a "roll back after a failed restart" would do:
    assert files.restore_all(snapshots) == []
    assert first.read_bytes() == b"a0"
    assert not second.exists()


def test_write_all_undoes_earlier_writes_when_a_later_one_fails(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"a0")
    second.write_bytes(b"b0")
    writes = [files.Write(files.read_snapshot(str(first)), b"a1"),
              files.Write(files.read_snapshot(str(second)), b"b1")]
    real = files.atomic_replace
    calls = []

    def failing_for_b(path, content, *args):
        calls.append((os.path.basename(path), content))
        if path == str(second):
            raise files.FileWriteError("cannot write %s: disk full" % path)
        return real(path, content, *args)

    monkeypatch.setattr(files, "atomic_replace", failing_for_b)
    with pytest.raises(files.FileWriteError, match="disk full; .*/a restored to the previous content"):
        files.write_all(writes)
    assert calls == [("a", b"a1"), ("b", b"b1"), ("a", b"a0")]
    assert first.read_bytes() == b"a0"


def test_write_all_reports_a_failed_undo(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"a0")
    writes = [files.Write(files.read_snapshot(str(first)), b"a1"),
              files.Write(files.read_snapshot(str(second)), b"b1")]
    real = files.atomic_replace

    def fail_after_first(path, content, *args):
        if content == b"a1":
            return real(path, content, *args)
        raise files.FileWriteError("cannot write %s: broken" % path)

    monkeypatch.setattr(files, "atomic_replace", fail_after_first)
    with pytest.raises(files.FileWriteError, match="ALSO failed"):
        files.write_all(writes)


def test_write_all_first_failure_has_nothing_to_undo(tmp_path):
    writes = [files.Write(files.read_snapshot(str(tmp_path / "missing" / "a")), b"x")]
    with pytest.raises(files.FileWriteError) as info:
        files.write_all(writes)
    assert "restored" not in str(info.value)


def test_owner_ids(monkeypatch):
    assert files.owner_ids("no-such-user-here") is None
    root = files.owner_ids("root")
    assert root == (0, 0)

    class Entry:
        pw_uid, pw_gid = 1000, 1001

    monkeypatch.setattr(files.pwd, "getpwnam", lambda name: Entry())

    def no_group(name):
        raise KeyError(name)

    monkeypatch.setattr(files.grp, "getgrnam", no_group)
    assert files.owner_ids("zulip") == (1000, 1001)
