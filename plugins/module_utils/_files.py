# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Crash-safe file replacement that keeps owner and mode, can be undone, and follows no planted name.

Zulip's worker reloads ``settings.py`` as soon as it changes, and
``zulip-secrets.conf`` holds every secret of the server, so a file is never
rewritten in place: the new content goes to a temporary file in the same
directory that already carries the final owner, group and mode (set *before*
any byte is written, so a secret is never readable by others, not even for a
moment), is flushed to disk and then renamed over the old one.

The directory (``/etc/zulip``) belongs to the ``zulip`` user, who may plant
links, FIFOs or other files at any name in it, so every step works on the
directory's descriptor (``_safe_dir``), never on a path: the file is read
bounded and typed (a regular file with one link, nothing else); the temporary
file is made in a new directory of root's own (0700, an unpredictable name,
beside the file so that the rename stays on one file system), where no other
user can swap it for a link, a FIFO or a file of its own before the rename;
its owner and mode are set on the descriptor; the rename is relative to the
directories' descriptors, so a link at the final name is replaced, never
followed; and just before the rename, the name must
still be the inode that was read (a lost-update check: a file swapped in
meanwhile makes the write fail, nothing changed). A file that is a symbolic
link is refused, not edited through.

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
import secrets
import stat
import string
import time

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

# mkstemp's alphabet and length, so the names of temporary files stay what remove_stale_temps looks for.
_TEMP_ALPHABET = string.ascii_lowercase + string.digits + "_"
_TEMP_ATTEMPTS = 100


class FileWriteError(ZulipError):
    """A file could not be written, read or restored; nothing secret in the message."""


class _AnyFile:
    """atomic_replace's ``expected`` for a name whose current file does not matter (a copy, a backup)."""

    def __repr__(self) -> str:
        return "ANY_FILE"


# Replace whatever the name is now (the rename replaces a link, never follows it).
ANY_FILE = _AnyFile()


class Snapshot:
    """A file as it was: content and metadata, or the fact that it did not exist.

    ``inode`` tells which file was read (``_safe_dir.file_identity``; None: the name
    was free), ``directory`` is the directory's (st_dev, st_ino); a write checks
    both before its rename.
    """

    def __init__(self, path: str, content: bytes | None, mode: int | None = None,
                 uid: int | None = None, gid: int | None = None,
                 inode: tuple | None = None, directory: tuple[int, int] | None = None):
        self.path = path
        self.content = content
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.inode = inode
        self.directory = directory

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


def read_snapshot(path: str) -> Snapshot:
    """Read a file with its owner and mode; a missing file (or directory) gives an empty snapshot.

    Bounded and typed (``_safe_dir``): a link, FIFO, device, directory, hard
    link or a file over the size limit is refused with a message naming it.
    """
    try:
        directory, name = safe_dir.open_parent(path)
    except FileNotFoundError:
        return Snapshot(path, None)
    except OSError as exc:
        raise FileWriteError("cannot read %s: %s" % (path, _strerror(exc))) from None
    with directory:
        try:
            found = directory.read(name)
            identity = directory.identity()
        except OSError as exc:
            raise FileWriteError("cannot read %s: %s" % (path, _strerror(exc))) from None
    if found is None:
        return Snapshot(path, None, directory=identity)
    return Snapshot(path, found.content, found.mode, found.uid, found.gid, found.inode, identity)


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


def _prepare_temp(fd: int, path: str, mode: int | None, uid: int | None, gid: int | None) -> None:
    """Give the empty temporary file its final owner and mode before any content (on the descriptor)."""
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
    # Permission bits only: a set-id or sticky bit of a file the zulip user made is never copied by root.
    os.fchmod(fd, 0o600 if mode is None else stat.S_IMODE(mode) & 0o777)


# Root's own directories for temporary files, made in /etc/zulip for one write each (a rename must stay on
# one file system) and removed after it: ".zulip-scim-<8 random characters>.tmp".
_PRIVATE_PATTERN = re.compile(r"^\.zulip-scim-[a-z0-9_]{8}\.tmp$")


def _at_a_free_name(make_name, make, what: str, path: str):
    """``make(name)`` at the first name from ``make_name()`` that is free; (what it made, the name).

    A taken name (a planted link, a file, a directory) is never opened: another name is tried.
    """
    for _attempt in range(_TEMP_ATTEMPTS):
        name = make_name()
        try:
            return make(name), name
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileWriteError("cannot create a temporary %s next to %s: %s" % (what, path, _strerror(exc))) from None
    raise FileWriteError("cannot create a temporary %s next to %s: %d names in a row were taken"
                         % (what, path, _TEMP_ATTEMPTS))


def make_private_directory(directory: safe_dir.SafeDir, path: str) -> tuple[safe_dir.SafeDir, str]:
    """A new directory only root may enter, in ``directory``; (it, its name)."""
    return _at_a_free_name(lambda: ".zulip-scim-%s.tmp" % _random_suffix(), directory.make_private, "directory", path)


def _random_suffix() -> str:
    """8 characters no other user can guess (a planted name at the next temporary file's name)."""
    return "".join(secrets.choice(_TEMP_ALPHABET) for dummy in range(8))


def create_new(directory: safe_dir.SafeDir, make_name, path: str) -> tuple[int, str]:
    """A new file at a fresh name from ``make_name()`` (O_CREAT|O_EXCL|O_NOFOLLOW); (fd, name)."""
    return _at_a_free_name(make_name, directory.create, "file", path)


def _write_through(fd: int, content: bytes) -> None:
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _changed_message(path: str) -> str:
    return ("%s changed while this run worked (another process replaced or created it after it was read); "
            "nothing was written to it, run again" % path)


def _check_unchanged(directory: safe_dir.SafeDir, name: str, path: str, expected) -> None:
    """The lost-update check: the name is still the inode that was read (or still free)."""
    if expected is ANY_FILE:
        return
    if expected.exists and expected.inode is None:
        return  # a snapshot made by hand, not read: nothing to compare
    if expected.directory is not None and directory.identity() != expected.directory:
        raise FileWriteError(_changed_message(path))
    now = directory.lstat(name)
    if (None if now is None else safe_dir.file_identity(now)) != expected.inode:
        raise FileWriteError(_changed_message(path))


def atomic_replace(path: str, content: bytes, mode: int | None = None,
                   uid: int | None = None, gid: int | None = None, expected=ANY_FILE) -> None:
    """Replace ``path`` with ``content`` in one rename; owner and mode are set first.

    ``mode``/``uid``/``gid`` of None keep what a fresh temporary file has
    (0600, the current user). ``expected`` is the :class:`Snapshot` the
    content was made from: the name must still be the file it read (or still
    be free), else nothing is written. :data:`ANY_FILE` replaces whatever is
    there (a link is replaced, never followed).
    """
    try:
        directory, name = safe_dir.open_parent(path)
    except OSError as exc:
        raise FileWriteError("cannot create a temporary file next to %s: %s" % (path, _strerror(exc))) from None
    with directory:
        private, private_name = make_private_directory(directory, path)
        try:
            with private:
                try:
                    _write_private(private, name + ".tmp", path, content, (mode, uid, gid))
                    _check_unchanged(directory, name, path, expected)
                    # From root's own directory: no other user can swap the temporary file for a link, a FIFO
                    # or a file of its own between the write and the rename (in /etc/zulip the zulip user could).
                    private.rename_into(name + ".tmp", directory, name)
                finally:
                    directory.remove_private(private_name, private)  # with the temporary file when not renamed
            directory.fsync()
        except OSError as exc:
            raise FileWriteError("cannot write %s: %s" % (path, _strerror(exc))) from None


def _write_private(private: safe_dir.SafeDir, temp: str, path: str, content: bytes, owner_mode: tuple) -> None:
    """The new content in a new file of root's private directory, owner and mode set before any byte."""
    mode, uid, gid = owner_mode
    fd = private.create(temp)
    try:
        _prepare_temp(fd, path, mode, uid, gid)
        written, fd = fd, -1  # the file object owns it from here on
        _write_through(written, content)
    finally:
        if fd >= 0:
            os.close(fd)


def create_exclusive(path: str, content: bytes, mode: int | None, uid: int | None, gid: int | None,
                     make_name) -> str:
    """A new file beside ``path`` at the first free name ``make_name()`` gives; returns its path.

    For copies that must never replace anything (a backup): O_CREAT|O_EXCL|O_NOFOLLOW
    in the directory's descriptor, owner and mode set on the descriptor before any byte.
    """
    try:
        directory, _name = safe_dir.open_parent(path)
    except OSError as exc:
        raise FileWriteError("cannot create a file next to %s: %s" % (path, _strerror(exc))) from None
    with directory:
        fd, made = create_new(directory, make_name, path)
        try:
            try:
                _prepare_temp(fd, path, mode, uid, gid)
                written, fd = fd, -1
                _write_through(written, content)
            finally:
                if fd >= 0:
                    os.close(fd)
            directory.fsync()
        except (OSError, FileWriteError) as exc:
            directory.unlink(made)
            if isinstance(exc, FileWriteError):
                raise
            raise FileWriteError("cannot write %s: %s" % (directory.child(made), _strerror(exc))) from None
        return directory.child(made)


def backup_names(name: str):
    """Names for a backup of ``name``: ``settings.py.<PID>.<date@time>~`` as Ansible names one, then,
    when that is taken (planted), the same with 8 random characters before the ``~``."""
    stamp = "%s.%s.%s" % (name, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S"))
    tried = []

    def next_name() -> str:
        tried.append(stamp)
        return stamp + "~" if len(tried) == 1 else "%s.%s~" % (stamp, _random_suffix())
    return next_name


def _temp_pattern(name: str) -> re.Pattern:
    """The names atomic_replace gives its temporary files for ``name`` (8 random characters)."""
    return re.compile(r"^\.%s\.[A-Za-z0-9_]{8}\.tmp$" % re.escape(name))


def remove_stale_temps(path: str) -> list[str]:
    """Remove temporary files a killed writer left next to ``path``; returns their paths.

    A process killed with SIGKILL between creating its temporary file and the
    rename cannot clean up, and the temporary file of zulip-secrets.conf holds
    every secret of the server. Call this only while holding the lock that all
    writers of ``path`` take (module_utils/_lock.py): then no live writer can
    own such a file. Only regular files are removed, by name in the directory's
    descriptor (a link is never followed).
    """
    try:
        directory, name = safe_dir.open_parent(path)
    except OSError:
        return []
    removed = []
    pattern = _temp_pattern(name)
    with directory:
        for candidate in directory.names():
            if _PRIVATE_PATTERN.match(candidate) and _remove_stale_private(directory, candidate):
                removed.append(directory.child(candidate))
                continue
            # Temporary files of versions before the private directories: beside the file itself.
            info = directory.lstat(candidate) if pattern.match(candidate) else None
            if info is None or not stat.S_ISREG(info.st_mode):
                continue
            try:
                directory.unlink(candidate)
            except OSError as exc:
                raise FileWriteError("cannot remove the stale temporary file %s: %s"
                                     % (directory.child(candidate), _strerror(exc))) from None
            removed.append(directory.child(candidate))
    return removed


def _remove_stale_private(directory: safe_dir.SafeDir, name: str) -> bool:
    """Remove a private directory a killed writer left (root's own, 0700), with what is in it; whether it was one."""
    info = directory.lstat(name)
    if info is None or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return False  # not one of ours: planted by another user, and left alone
    try:
        private = directory.subdirectory(name)
    except OSError:
        return False
    with private:
        if private.identity() != (info.st_dev, info.st_ino):
            return False
        try:
            directory.remove_private(name, private)
        except OSError as exc:
            raise FileWriteError("cannot remove the stale temporary directory %s: %s"
                                 % (directory.child(name), _strerror(exc))) from None
    return True


def remove(path: str) -> bool:
    """Remove a name (a link itself, never its target) by the directory's descriptor; whether it was there."""
    try:
        directory, name = safe_dir.open_parent(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise FileWriteError("cannot remove %s: %s" % (path, _strerror(exc))) from None
    with directory:
        try:
            gone = directory.unlink(name)
            if gone:
                directory.fsync()
        except OSError as exc:
            raise FileWriteError("cannot remove %s: %s" % (path, _strerror(exc))) from None
    return gone


def restore(snapshot: Snapshot) -> None:
    """Put a file back as the snapshot saw it (remove it if it did not exist).

    It replaces what this run wrote there, whatever that is now: the name is
    replaced or unlinked in the directory's descriptor, never followed.
    """
    if snapshot.exists:
        atomic_replace(snapshot.path, snapshot.content, snapshot.mode, snapshot.uid, snapshot.gid)
        return
    remove(snapshot.path)


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

    Each write checks that its file is still the one read (see atomic_replace).
    Returns the snapshots of the files written, for a later :func:`restore_all`.
    """
    done: list[Snapshot] = []
    for write in writes:
        try:
            atomic_replace(write.path, write.content, write.mode, write.uid, write.gid, write.snapshot)
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
