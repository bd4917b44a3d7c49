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

The copies live in ``/etc/zulip``, where the ``zulip`` user may plant or swap
any name, and that user can force a roll-back (it owns ``restart-server``).
So every step goes through the directory's descriptor (``_safe_dir``): a copy
is made by a temporary file and a rename (a link planted at the copy's name is
replaced, never followed); :func:`restore` reads the copy bounded and typed (a
regular file with one link, else it refuses and changes nothing) and writes
its content back through the same atomic write as any other write, with the
copy's owner and its permission bits without set-id and sticky bits (the copy
was made by root from the file's own owner and mode; a copy swapped in by
``zulip`` can only be a file ``zulip`` could write anyway, and a hard link,
e.g. to a root file, is refused); removing uses the directory's descriptor
too, so only the name itself ever goes.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir

KEPT_SUFFIX = ".zulip-scim-previous"
ABSENT_SUFFIX = ".zulip-scim-absent"
# Bits a restored file never gets from a copy: set-uid, set-gid, sticky.
_RESTORED_MODE_MASK = 0o777


def configuration_paths(params: dict) -> list[str]:
    """The files zulip_scim_config changes (and keeps), in the order it writes them."""
    return [params["secrets_path"], params["settings_path"]]


def kept_names(name: str) -> tuple[str, str]:
    """(copy, marker): the names beside a file's name in its own directory."""
    return "." + name + KEPT_SUFFIX, "." + name + ABSENT_SUFFIX


def _kept_paths(path: str) -> tuple[str, str]:
    """(copy, marker) paths beside the file a path names (a link is not followed: it is refused elsewhere)."""
    directory, name = safe_dir.split_file_path(path)
    copy, marker = kept_names(name)
    return os.path.join(directory, copy), os.path.join(directory, marker)


def _error(path: str, exc: OSError) -> files.FileWriteError:
    return files.FileWriteError("cannot put back the previous %s: %s" % (path, exc.strerror or exc))


def _is_kept(path: str) -> bool:
    try:
        directory, name = safe_dir.open_parent(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise files.FileWriteError("cannot look for the previous %s: %s" % (path, exc.strerror or exc)) from None
    with directory:
        return any(directory.exists(kept_name) for kept_name in kept_names(name))


def kept(paths: list[str]) -> list[str]:
    """The files among ``paths`` whose previous version is kept: a run changed them, unproven."""
    return [path for path in paths if _is_kept(path)]


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


def _is_our_marker(directory: safe_dir.SafeDir, name: str) -> bool:
    """Whether ``name`` is an absent marker this collection made: an empty regular file of root's (the runner's).

    A marker makes a roll-back delete the file, so one the zulip user planted (any other kind, owner or
    content) is refused, never obeyed. None there: False.
    """
    info = directory.lstat(name)
    if info is None:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size or info.st_nlink != 1:
        raise safe_dir.FileRefused(directory.child(name), "it is not the empty marker this collection makes (it is %s "
                                   "of uid %d); it was not made by a run of this collection, so nothing is removed"
                                   % ("a regular file" if stat.S_ISREG(info.st_mode) else safe_dir.describe_kind(info.st_mode),
                                      info.st_uid))
    return True


def _restore_one(path: str) -> None:
    copy_path, marker = _kept_paths(path)
    try:
        directory, name = safe_dir.open_parent(path)
    except OSError as exc:
        raise _error(path, exc) from None
    copy_name, marker_name = kept_names(name)
    with directory:
        try:
            copy = directory.read(copy_name)
            has_marker = copy is None and _is_our_marker(directory, marker_name)
        except OSError as exc:
            raise _error(path, exc) from None
    if copy is not None:
        # The old bytes, owner and mode, through the same atomic write as every other write.
        files.atomic_replace(path, copy.content, stat.S_IMODE(copy.mode) & _RESTORED_MODE_MASK, copy.uid, copy.gid)
        files.remove(copy_path)
    elif has_marker:
        files.remove(path)
        files.remove(marker)


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
            removed = files.remove(kept_path) or removed
    return removed
