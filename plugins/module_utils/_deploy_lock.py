# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Zulip's deployment lock: looked at, waited for, never taken.

Zulip's ``upgrade-zulip`` and ``upgrade-zulip-from-git`` take a lock before
they unpack a new deployment, migrate the database and restart the server, and
hold it until they end: ``get_deployment_lock`` in ``scripts/lib/zulip_tools.py``
makes the directory ``lock`` in ``DEPLOYMENTS_DIR`` (``/home/zulip/deployments``)
with ``mkdir``, and ``release_deployment_lock`` removes it. A restart in the
middle of an upgrade can start a half-upgraded server, and a change made then
is planned against a version that is about to be replaced.

So every module that changes the host, or restarts Zulip, looks for that
directory first, beside ``deploy_path`` (the ``current`` link of Zulip's
deployments directory), and waits a bounded time while it is there. It never
makes or removes the directory itself: a run killed at any point leaves no lock
of Zulip's behind, and a stale one (an upgrade killed by a signal it could not
catch leaves it) is for the operator to remove, as Zulip's own message says.

The deployments directory belongs to the ``zulip`` user, so what is found at
the name is data: the directory is opened by ``_safe_dir`` (a link it planted on
the way is refused) and the name is only ``lstat``-ed. A directory is Zulip's
lock; anything else there (a link, a file) is refused with its kind named, not
followed and not taken for a lock.

Looking is not locking: an upgrade can start right after the last look, before
the restart it allowed. That race is Zulip's to close (``restart-server`` takes
no lock); docs/upgrades.md says so.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import stat
import time
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

# The name Zulip's get_deployment_lock makes in DEPLOYMENTS_DIR (the same in 5.6, 9.2 and 10.0-dev).
LOCK_NAME = "lock"
# Zulip's own upgrade waits 300 s for the lock before it gives up; a run waits as long by default.
DEFAULT_TIMEOUT = 300
POLL_SECONDS = 1.0


class DeployLocked(ZulipError):
    """Zulip's deployment lock was still there when the wait ended; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class LockLook:
    """What one look found at Zulip's deployment lock's name."""

    path: str
    # None when nothing is there; else what is there, in words ("a directory", "a symbolic link", ...).
    kind: str | None = None
    uid: int | None = None
    made: float | None = None  # the mtime of what is there (when the lock was made)

    @property
    def absent(self) -> bool:
        return self.kind is None

    @property
    def is_zulips_lock(self) -> bool:
        return self.kind == "a directory"

    def since(self) -> str:
        if self.made is None:
            return ""
        return " since %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.made))


def lock_path(deploy_path: str) -> str:
    """Where Zulip's lock is: ``lock`` in the deployments directory that holds ``deploy_path``."""
    directory, _name = safe_dir.split_file_path(deploy_path)
    return os.path.join(directory, LOCK_NAME)


def look(deploy_path: str) -> LockLook:
    """One look, never following anything; a missing deployments directory has no lock."""
    try:
        path = lock_path(deploy_path)
    except OSError as exc:
        raise ZulipError("cannot tell where Zulip's deployment lock is from deploy_path %r: %s"
                         % (deploy_path, exc.strerror or exc)) from None
    try:
        deployments = safe_dir.open_directory(os.path.dirname(path))
    except FileNotFoundError:
        return LockLook(path)
    except OSError as exc:
        raise ZulipError("cannot look for Zulip's deployment lock %s: %s" % (path, exc.strerror or exc)) from None
    with deployments:
        info = deployments.lstat(LOCK_NAME)
    if info is None:
        return LockLook(path)
    return LockLook(path, safe_dir.describe_kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else "a regular file",
                    info.st_uid, info.st_mtime)


def _owner(uid: int | None) -> str:
    if uid is None:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid


def not_a_lock(found: LockLook, action: str) -> str:
    return ("%s is %s (owned by %s), not the directory Zulip's upgrade-zulip makes as its deployment lock: it is "
            "not followed and not taken for a lock, and %s. Zulip's own upgrade would stop at it too (its mkdir "
            "fails). Find out who put it there and remove it, then run again."
            % (found.path, found.kind, _owner(found.uid), action))


def held_message(found: LockLook, waited: float, action: str) -> str:
    return ("Zulip's deployment lock %s exists%s (made by %s): a Zulip upgrade (upgrade-zulip) is running on this "
            "host. Waited %g s for it to end; %s. Run again once the upgrade has finished. If no upgrade is running "
            "(an upgrade killed outright leaves the directory behind), remove it as Zulip's own message says: "
            "rmdir %s. To wait longer, raise deploy_lock_timeout (zulip_scim_deploy_lock_timeout in the role)."
            % (found.path, found.since(), _owner(found.uid), waited, action, found.path))


def wait_until_free(deploy_path: str, timeout: float, action: str,
                    clock: t.Callable[[], float] | None = None,
                    sleep: t.Callable[[float], None] | None = None) -> LockLook:
    """Look until Zulip's lock is gone, at most ``timeout`` seconds (0: one look), every POLL_SECONDS.

    ``action`` says what was not done, for the message ("restart-server was not run").
    Raises :class:`DeployLocked` when the lock outlasts the wait, ZulipError at once
    when something other than a directory is at the lock's name.
    """
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    started = None  # the clock is read only once a lock is seen: the usual look costs one lstat
    while True:
        found = look(deploy_path)
        if found.absent:
            return found
        if not found.is_zulips_lock:
            raise ZulipError(not_a_lock(found, action))
        now = clock()
        started = now if started is None else started
        left = started + max(0.0, timeout) - now
        if left <= 0:
            raise DeployLocked(held_message(found, max(0.0, timeout), action))
        sleep(min(POLL_SECONDS, left))


def report(deploy_path: str, timeout: float) -> str | None:
    """Check mode: one look, no wait; a warning when a real run would wait or stop, else None."""
    try:
        found = look(deploy_path)
    except ZulipError as exc:
        return str(exc)
    if found.absent:
        return None
    if not found.is_zulips_lock:
        return not_a_lock(found, "a real run would stop here")
    return ("Zulip's deployment lock %s exists%s: a Zulip upgrade is running; a real run would wait up to %g s for "
            "it to end, then stop without changing anything" % (found.path, found.since(), timeout))


def honour(module, deploy_path: str, timeout: float, action: str) -> None:
    """The look before a change: in check mode a warning only, else wait (see wait_until_free)."""
    if module.check_mode:
        warning = report(deploy_path, timeout)
        if warning:
            module.warn(warning)
        return
    wait_until_free(deploy_path, timeout, action)
