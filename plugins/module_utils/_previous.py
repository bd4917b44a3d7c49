# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The previous configuration, kept on the host until the new one is proven.

A run that changes ``settings.py`` and ``zulip-secrets.conf`` is not done
when the files are written: Zulip only reads them when ``restart-server``
succeeds, and only the SCIM check proves the new tokens work. Until then the
files as they were before are kept beside them, byte for byte, with their own
owner and mode (``.settings.py.zulip-scim-previous``; a file that did not
exist is kept as an empty ``....zulip-scim-absent`` marker), so that:

- a failed restart or check can put them back with one rename each
  (:func:`restore`) and restart Zulip on what it ran before;
- a run that was interrupted after writing (a killed controller, a cut SSH
  connection) leaves proof of that behind: the next run sees a kept copy
  (:func:`kept`), restarts and checks again instead of trusting files that
  Zulip may never have loaded.

A kept copy is never replaced by a newer one: the oldest is the file as
Zulip last ran it. It is deleted (:func:`forget`) as soon as the new files are
proven. The copy of ``zulip-secrets.conf`` holds the same secrets with the
same owner and mode (0640 zulip:zulip) as the file itself, and exists only
between the write and the proof.
"""

from __future__ import annotations

import os

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files

KEPT_SUFFIX = ".zulip-scim-previous"
ABSENT_SUFFIX = ".zulip-scim-absent"


def configuration_paths(params: dict) -> list[str]:
    """The files zulip_scim_config changes (and keeps), in the order it writes them."""
    return [params["secrets_path"], params["settings_path"]]


def _kept_paths(path: str) -> tuple[str, str]:
    """(copy, marker) beside the file a path names (a symlinked settings.py: beside its target)."""
    target = files.real_path(path)
    base = os.path.join(os.path.dirname(target), "." + os.path.basename(target))
    return base + KEPT_SUFFIX, base + ABSENT_SUFFIX


def kept(paths: list[str]) -> list[str]:
    """The files among ``paths`` whose previous version is kept: a run changed them, unproven."""
    return [path for path in paths if any(os.path.lexists(p) for p in _kept_paths(path))]


def keep(snapshots: list[files.Snapshot]) -> list[str]:
    """Keep these files as they are now, each unless an older unproven version of it is kept.

    A file kept by an interrupted run stays as that run found it: it has not been proven since,
    and a file that run did not change is the same now as then. Returns the paths kept now;
    every copy is made before the caller writes anything.
    """
    made = []
    for snapshot in snapshots:
        if kept([snapshot.path]):
            continue
        copy_path, marker = _kept_paths(snapshot.path)
        if snapshot.exists:
            files.atomic_replace(copy_path, snapshot.content, snapshot.mode, snapshot.uid, snapshot.gid)
        else:
            files.atomic_replace(marker, b"", 0o600)
        made.append(snapshot.path)
    return made


def _restore_one(path: str) -> None:
    copy_path, marker = _kept_paths(path)
    target = files.real_path(path)
    directory = os.path.dirname(target) or "."
    try:
        if os.path.lexists(copy_path):
            os.replace(copy_path, target)  # one rename: the old bytes, owner and mode, all at once
        elif os.path.lexists(marker):
            if os.path.lexists(target):
                os.unlink(target)
            os.unlink(marker)
        else:
            return
        files.fsync_directory(directory)
    except OSError as exc:
        raise files.FileWriteError("cannot put back the previous %s: %s" % (path, exc.strerror or exc)) from None


def restore(paths: list[str]) -> list[str]:
    """Put every kept file back; returns the errors (empty on success). Tries every file."""
    errors = []
    for path in paths:
        try:
            _restore_one(path)
        except files.FileWriteError as exc:
            errors.append(str(exc))
    return errors


def forget(paths: list[str]) -> bool:
    """Delete the kept copies: the new configuration is proven. Returns whether any existed."""
    removed = False
    for path in paths:
        for kept_path in _kept_paths(path):
            try:
                os.unlink(kept_path)
                removed = True
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise files.FileWriteError("cannot remove %s: %s" % (kept_path, exc.strerror or exc)) from None
    return removed
