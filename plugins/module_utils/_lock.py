# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""An exclusive lock on a directory, waited for with a timeout, that names its holder.

Two runs of the collection against the same Zulip host (two operators, a cron
job and an operator) or against the same token file must not interleave their
read-modify-writes: the later writer would put back what it read before the
other one wrote, and a realm, a token or a restart would be lost.

The lock is ``fcntl.flock`` on the DIRECTORY of the files (``/etc/zulip``, the
token file's folder), not on a file: the files are replaced by rename on every
write, so a lock on a file's inode would guard a file that no longer is the
one in use, and a lock file would be one more file left in ``/etc/zulip`` or
next to the operator's inventory. ``flock`` is released by the kernel when the
holder's process ends, also by ``SIGKILL`` or a cut SSH connection, so a
crashed run never leaves a stale lock behind.

On the Zulip host the directory is ``/etc/zulip``, which the ``zulip`` user
owns: it is opened by ``_safe_dir`` (no link another user made is followed),
so the lock is on the same directory all the collection's file work happens
in, never on one that a link in it points to.

Waiting is bounded: after ``timeout`` seconds the caller gets a
:class:`LockTimeout` that names the process holding the lock (from
``/proc/locks``, where the system has it) and what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

DEFAULT_TIMEOUT = 120
POLL_SECONDS = 0.1


class LockTimeout(ZulipError):
    """Another process held the lock for longer than the caller wanted to wait."""


def _device_key(fd: int) -> str:
    """How /proc/locks names the locked inode: ``MAJOR:MINOR:INODE``, the device in hex."""
    info = os.fstat(fd)
    return "%02x:%02x:%d" % (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)


def holder_pids(fd: int, proc_locks: str = "/proc/locks") -> list[int]:
    """Processes holding (not waiting for) a lock on the inode of ``fd``; [] when unknown."""
    key = _device_key(fd)
    try:
        with open(proc_locks, encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []  # not Linux, or /proc not mounted: the message says less
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters carry "->" after the number.
        if len(fields) < 6 or fields[1] == "->" or fields[5] != key:
            continue
        with contextlib.suppress(ValueError):
            pids.append(int(fields[4]))
    return sorted(set(p for p in pids if p > 0))


def _started_at(pid: int) -> str | None:
    """When process ``pid`` started, UTC, from /proc (None when that cannot be told)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
            stat = handle.read()
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, StopIteration, IndexError):
        return None
    started = boot + ticks / os.sysconf("SC_CLK_TCK")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))


def _program(pid: int) -> str:
    # The program's name only, never its arguments: an operator's command line may hold secrets.
    try:
        with open("/proc/%d/comm" % pid, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip() or "?"
    except OSError:
        return "?"


def describe_holders(pids: list[int]) -> str:
    """``process 1234 (ansible-playboo) running since 2026-11-28T15:05:00Z``, or a plain fallback."""
    if not pids:
        return "another process"
    parts = []
    for pid in pids:
        since = _started_at(pid)
        parts.append("process %d (%s)%s" % (pid, _program(pid), " running since %s" % since if since else ""))
    return ", ".join(parts)


def _open_directory(directory: str) -> int:
    try:
        return os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise ZulipError("cannot open %s to lock it: %s" % (directory, exc.strerror or exc)) from None


def _acquire(fd: int, timeout: float, clock: t.Callable[[], float] = time.monotonic) -> bool:
    """Try until ``timeout`` seconds have passed; True once the lock is ours."""
    deadline = clock() + max(0.0, timeout)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if clock() >= deadline:
                return False
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _locked_descriptor(fd: int, directory: str, timeout: float, what: str) -> t.Iterator[None]:
    """Hold an exclusive flock on an open directory for the ``with`` body; closes ``fd`` after it."""
    try:
        if not _acquire(fd, timeout):
            holders = describe_holders(holder_pids(fd))
            raise LockTimeout(
                "another run holds the lock on %s%s: %s; waited %g s and changed nothing. Let that run finish "
                "(or stop it) and run again; a lock ends with the process that holds it, so nothing needs to "
                "be removed by hand (to wait longer, raise lock_timeout, zulip_scim_lock_timeout in the role)"
                % (directory, " (%s)" % what if what else "", holders, timeout)
            )
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def locked_directory(directory: str, timeout: float = DEFAULT_TIMEOUT, what: str = "") -> t.ContextManager[None]:
    """Hold an exclusive flock on ``directory`` for the ``with`` body (the controller's token file folder).

    ``what`` says in the timeout message what the lock guards. Raises
    :class:`LockTimeout` after ``timeout`` seconds; nothing has been read or
    written by the caller then.
    """
    return _locked_descriptor(_open_directory(directory), directory, timeout, what)


def open_settings_directory(settings_path: str) -> safe_dir.SafeDir:
    """The directory settings.py is in, opened without following any link another user could have made.

    A ``settings.py`` that is a link is not followed to another directory: the
    lock is taken on the directory the path names, where every file of the
    collection is read and written (and a linked settings.py is refused).
    """
    directory, _name = safe_dir.split_file_path(settings_path)
    return safe_dir.open_directory(directory)


def has_settings_directory(settings_path: str) -> bool:
    """Whether the directory of settings.py exists (a host without Zulip has nothing to lock)."""
    try:
        open_settings_directory(settings_path).close()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # it is there but refused: locked_settings says why
    return True


def locked_settings(settings_path: str, timeout: float = DEFAULT_TIMEOUT) -> t.ContextManager[None]:
    """The one lock of a host's Zulip settings and secrets, taken by every module that writes them or restarts.

    Taken on the descriptor of settings.py's directory as ``_safe_dir`` opens it.
    """
    directory, _name = safe_dir.split_file_path(settings_path)
    try:
        opened = open_settings_directory(settings_path)
    except OSError as exc:
        raise ZulipError("cannot open %s to lock it: %s" % (directory, exc.strerror or exc)) from None
    return _locked_descriptor(opened.detach(), directory, timeout, "the Zulip settings and secrets")
