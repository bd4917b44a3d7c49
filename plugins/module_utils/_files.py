# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Crash-safe file replacement that keeps owner and mode, and can be undone.

Zulip's worker reloads ``settings.py`` as soon as it changes, and
``zulip-secrets.conf`` holds every secret of the server, so a file is never
rewritten in place: the new content goes to a temporary file in the same
directory that already carries the final owner, group and mode (set *before*
any byte is written, so a secret is never readable by others, not even for a
moment), is flushed to disk and then renamed over the old one.

What was there before is kept in memory as a :class:`Snapshot`;
:func:`restore` puts it back the same way. A caller that changes several files
uses :func:`write_all`, which undoes the files already written when a later
one fails, and can call :func:`restore_all` later (after a failed restart, for
example) with the snapshots it returned.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import tempfile

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError


class FileWriteError(ZulipError):
    """A file could not be written, read or restored; nothing secret in the message."""


class Snapshot:
    """A file as it was: content and metadata, or the fact that it did not exist."""

    def __init__(self, path: str, content: bytes | None, mode: int | None = None,
                 uid: int | None = None, gid: int | None = None):
        self.path = path
        self.content = content
        self.mode = mode
        self.uid = uid
        self.gid = gid

    @property
    def exists(self) -> bool:
        return self.content is not None

    def __repr__(self) -> str:
        # Never show the content: it may be a file full of secrets.
        return "Snapshot(%r, exists=%r)" % (self.path, self.exists)


class Write:
    """One planned write: the new content, and how the file looked before it."""

    def __init__(self, snapshot: Snapshot, content: bytes, mode: int | None = None,
                 uid: int | None = None, gid: int | None = None):
        # For a new file, mode/uid/gid say what it gets; an existing file keeps its own.
        self.snapshot = snapshot
        self.content = content
        self.mode = snapshot.mode if snapshot.exists else mode
        self.uid = snapshot.uid if snapshot.exists else uid
        self.gid = snapshot.gid if snapshot.exists else gid

    @property
    def path(self) -> str:
        return self.snapshot.path


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def real_path(path: str) -> str:
    """The file a path names: a symlinked settings.py is edited, not replaced by a copy."""
    return os.path.realpath(path)


def read_snapshot(path: str) -> Snapshot:
    """Read a file with its owner and mode; a missing file gives an empty snapshot."""
    target = real_path(path)
    try:
        with open(target, "rb") as handle:
            info = os.fstat(handle.fileno())
            content = handle.read()
    except FileNotFoundError:
        return Snapshot(path, None)
    except OSError as exc:
        raise FileWriteError("cannot read %s: %s" % (path, _strerror(exc))) from None
    if not stat.S_ISREG(info.st_mode):
        raise FileWriteError("%s is not a regular file" % path)
    return Snapshot(path, content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def owner_ids(user: str) -> tuple[int, int] | None:
    """uid and gid for a user name (group of the same name, else the user's group).

    None when there is no such user: a test machine or a host without Zulip.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    try:
        gid = grp.getgrnam(user).gr_gid
    except KeyError:
        gid = entry.pw_gid
    return entry.pw_uid, gid


def fsync_directory(directory: str) -> None:
    # Makes the rename itself durable: without it a power cut can bring back the old name.
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare_temp(fd: int, path: str, mode: int | None, uid: int | None, gid: int | None) -> None:
    """Give the empty temporary file its final owner and mode before any content."""
    current = os.fstat(fd)
    want_uid = current.st_uid if uid is None else uid
    want_gid = current.st_gid if gid is None else gid
    if (want_uid, want_gid) != (current.st_uid, current.st_gid):
        try:
            os.fchown(fd, want_uid, want_gid)
        except OSError as exc:
            # Silently handing the file to another owner would lock Zulip out of it.
            raise FileWriteError(
                "cannot give the new %s owner %d:%d (%s); run the module as root"
                % (path, want_uid, want_gid, _strerror(exc))
            ) from None
    # chmod after chown: chown may clear set-id bits.
    os.fchmod(fd, 0o600 if mode is None else mode)


def atomic_replace(path: str, content: bytes, mode: int | None = None,
                   uid: int | None = None, gid: int | None = None) -> None:
    """Replace ``path`` with ``content`` in one rename; owner and mode are set first.

    ``mode``/``uid``/``gid`` of None keep what a fresh temporary file has
    (0600, the current user).
    """
    target = real_path(path)
    directory = os.path.dirname(target) or "."
    try:
        fd, temp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(target) + ".",
                                    suffix=".tmp")
    except OSError as exc:
        raise FileWriteError("cannot create a temporary file next to %s: %s"
                             % (path, _strerror(exc))) from None
    try:
        try:
            _prepare_temp(fd, path, mode, uid, gid)
            with os.fdopen(fd, "wb") as handle:
                fd = -1  # the file object owns it now
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
            temp = None
        finally:
            if fd >= 0:
                os.close(fd)
            if temp is not None:
                os.unlink(temp)
        fsync_directory(directory)
    except OSError as exc:
        raise FileWriteError("cannot write %s: %s" % (path, _strerror(exc))) from None


def _temp_pattern(target: str) -> re.Pattern:
    """The names atomic_replace gives its temporary files for ``target`` (mkstemp: 8 random characters)."""
    return re.compile(r"^\.%s\.[A-Za-z0-9_]{8}\.tmp$" % re.escape(os.path.basename(target)))


def remove_stale_temps(path: str) -> list[str]:
    """Remove temporary files a killed writer left next to ``path``; returns their names.

    A process killed with SIGKILL between creating its temporary file and the
    rename cannot clean up, and the temporary file of zulip-secrets.conf holds
    every secret of the server. Call this only while holding the lock that all
    writers of ``path`` take (module_utils/_lock.py): then no live writer can
    own such a file.
    """
    target = real_path(path)
    directory = os.path.dirname(target) or "."
    pattern = _temp_pattern(target)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in sorted(names):
        candidate = os.path.join(directory, name)
        if pattern.match(name) and os.path.isfile(candidate) and not os.path.islink(candidate):
            try:
                os.unlink(candidate)
            except OSError as exc:
                raise FileWriteError("cannot remove the stale temporary file %s: %s"
                                     % (candidate, _strerror(exc))) from None
            removed.append(candidate)
    return removed


def restore(snapshot: Snapshot) -> None:
    """Put a file back as the snapshot saw it (remove it if it did not exist)."""
    if snapshot.exists:
        atomic_replace(snapshot.path, snapshot.content, snapshot.mode, snapshot.uid, snapshot.gid)
        return
    target = real_path(snapshot.path)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileWriteError("cannot remove %s: %s" % (snapshot.path, _strerror(exc))) from None
    fsync_directory(os.path.dirname(target) or ".")


def restore_all(snapshots: list[Snapshot]) -> list[str]:
    """Restore files in reverse order of writing; returns the errors (empty on success).

    Every file is tried even when one fails, so as much as possible is undone.
    """
    errors = []
    for snapshot in reversed(snapshots):
        try:
            restore(snapshot)
        except FileWriteError as exc:
            errors.append(str(exc))
    return errors


def write_all(writes: list[Write]) -> list[Snapshot]:
    """Apply writes in order; on a failure undo the ones done and raise.

    Returns the snapshots of the files written, for a later :func:`restore_all`.
    """
    done: list[Snapshot] = []
    for write in writes:
        try:
            atomic_replace(write.path, write.content, write.mode, write.uid, write.gid)
        except FileWriteError as exc:
            problems = restore_all(done)
            message = str(exc)
            if done:
                restored = ", ".join(s.path for s in done)
                if problems:
                    message += "; restoring %s ALSO failed: %s" % (restored, "; ".join(problems))
                else:
                    message += "; %s restored to the previous content" % restored
            raise FileWriteError(message) from None
        done.append(write.snapshot)
    return done


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split on "\\n" only.

    That is how Python's tokenizer and configparser read a file; str.splitlines()
    would also split on \\x0c, \\u2028 and others and change those files.
    """
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def detect_newline(lines: list[str]) -> str:
    """The file's own line end ("\\r\\n" or "\\n"), so added lines match it."""
    for line in lines:
        if line.endswith("\n"):
            return "\r\n" if line.endswith("\r\n") else "\n"
    return "\n"
