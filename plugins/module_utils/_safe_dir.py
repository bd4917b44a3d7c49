# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""File work as root in directories that another user owns, which no planted name can misdirect.

The modules run as root, but ``/etc/zulip`` and the deployment belong to the
``zulip`` user, who may plant any name there: a symbolic link to a root file,
a FIFO, a hard link, a huge file, a file swapped in between two steps. So
nothing in such a directory is ever reached through a path:

* :func:`open_directory` walks a directory's path from ``/`` one component at
  a time (``openat`` with ``O_DIRECTORY|O_NOFOLLOW``) and returns a
  :class:`SafeDir` that holds the directory's descriptor. Every later step
  (read, create, rename, unlink, fsync, the host lock) works relative to that
  descriptor, so the directory cannot change under it.
* A symbolic link on the way to the directory is followed only when only root
  could have made it: the link is owned by root and sits in a root-owned
  directory that neither group nor others may write (``/home -> var/home``,
  an ``/etc/zulip`` that root links elsewhere). Any other link is refused,
  naming it. A ``..`` in a path (or in a followed link) is taken lexically.
* A file itself is never followed: a ``settings.py`` that is a link is refused.
* :meth:`SafeDir.read` opens with ``O_NOFOLLOW|O_NONBLOCK``, ``fstat``\\ s the
  descriptor and takes only a regular file with one link (a hard link could be
  someone else's file) of at most :data:`MAX_READ_BYTES`, reading at most one
  byte more: a FIFO cannot hang the run, ``/dev/zero`` cannot fill memory.
* :meth:`SafeDir.create` makes a new file with ``O_CREAT|O_EXCL|O_NOFOLLOW``:
  a name planted before cannot be opened through, the call fails instead.
* :func:`open_deployment` reads the ``current`` link of Zulip's deployments
  (owned by ``zulip``) as data: it must name a directory right beside it,
  which is then opened like any other.

A refusal is a :class:`FileRefused`, an ``OSError`` whose ``strerror`` says
what was found ("it is a FIFO (named pipe), not a regular file"), so every
caller's "cannot read PATH: REASON" message names the path and the reason.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat

# The largest file read: settings.py, zulip.conf, zulip-secrets.conf and version.py are a few KiB.
MAX_READ_BYTES = 4 * 1024 * 1024
# As many links as the kernel follows in one path (MAXSYMLINKS): more is a loop.
MAX_LINKS = 40

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NOCTTY | _CLOEXEC


class FileRefused(OSError):
    """A name was not what may be used there (a link, a FIFO, a hard link, too large); nothing was changed."""

    def __init__(self, path: str, reason: str, code: int = errno.EINVAL):
        super().__init__(code, reason, path)


@dataclasses.dataclass(frozen=True)
class FileContent:
    """A regular file as it was read: its bytes, owner, mode and which inode it was."""

    content: bytes
    mode: int
    uid: int
    gid: int
    # Which file it was: device, inode, type and mode, owner, size, mtime, ctime. The lost-update check
    # compares it before a rename; more than (st_dev, st_ino), since a deleted file's inode number can
    # come back at once for the next file made (a link swapped in).
    inode: tuple

    def __repr__(self) -> str:
        # Never the content: it may be a file full of secrets.
        return "FileContent(%d bytes, mode=%o, uid=%d, gid=%d)" % (len(self.content), self.mode, self.uid, self.gid)


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words for a message."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "not a regular file"


def _link_refusal(path: str) -> FileRefused:
    return FileRefused(path, "it is a symbolic link, which is not followed here (the directory's owner could point "
                             "it at any file root can reach); put the file itself there", errno.ELOOP)


def _check_regular(path: str, info: os.stat_result, limit: int) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise _link_refusal(path)
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(path, "it is %s, not a regular file" % describe_kind(info.st_mode))
    if info.st_nlink != 1:
        raise FileRefused(path, "it has %d hard links (another name of it may be a file of another user), "
                                "so it is not used; make it a file of its own" % info.st_nlink, errno.EMLINK)
    if info.st_size > limit:
        raise FileRefused(path, "it is larger than %s" % _size_words(limit), errno.EFBIG)


def _size_words(limit: int) -> str:
    return "%d MiB" % (limit // (1024 * 1024)) if limit % (1024 * 1024) == 0 else "%d bytes" % limit


def _trusted_link(directory_info: os.stat_result, link_info: os.stat_result) -> bool:
    """Only root could have made this link: root's, in a root-owned directory no one else may write."""
    return (link_info.st_uid == 0 and directory_info.st_uid == 0
            and not directory_info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _components(path: str) -> list[str]:
    return [part for part in os.path.normpath(os.path.abspath(path)).split("/") if part]


class SafeDir:
    """An open directory; every operation is relative to its descriptor, never a path.

    ``path`` is the path as asked for (for messages), ``real`` where it was found
    after the root-made links on the way.
    """

    def __init__(self, fd: int, path: str, real: str):
        self.fd = fd
        self.path = path
        self.real = real

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def detach(self) -> int:
        """The descriptor, now the caller's to close."""
        fd, self.fd = self.fd, -1
        return fd

    def __repr__(self) -> str:
        return "SafeDir(%r)" % self.path

    def child(self, name: str) -> str:
        """The path of a name in this directory, for messages."""
        return os.path.join(self.path, name)

    def identity(self) -> tuple[int, int]:
        info = os.fstat(self.fd)
        return info.st_dev, info.st_ino

    def lstat(self, name: str) -> os.stat_result | None:
        """What the name is, not following a link; None when there is no such name."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.lstat(name) is not None

    def read(self, name: str, limit: int = MAX_READ_BYTES) -> FileContent | None:
        """A regular file of this directory, bounded; None when there is no such name.

        Raises :class:`FileRefused` for anything else (a link, a FIFO, a device,
        a directory, a socket, a hard link, a file larger than ``limit``), and
        OSError for other failures. It never blocks and reads at most limit + 1 bytes.
        """
        path = self.child(name)
        before = self.lstat(name)
        if before is None:
            return None
        _check_regular(path, before, limit)  # a FIFO or a device is not even opened
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # became a link after the lstat
                raise _link_refusal(path) from None
            raise
        try:
            info = os.fstat(fd)
            _check_regular(path, info, limit)  # the descriptor is what is read: check it again
            content = _read_at_most(fd, limit + 1)
        finally:
            os.close(fd)
        if len(content) > limit:  # grew while read
            raise FileRefused(path, "it is larger than %s" % _size_words(limit), errno.EFBIG)
        return FileContent(content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, file_identity(info))

    def create(self, name: str, mode: int = 0o600) -> int:
        """A new, empty file opened for writing; FileExistsError when the name is taken (even by a link)."""
        return os.open(name, _CREATE_FLAGS, mode, dir_fd=self.fd)

    def rename(self, source: str, target: str) -> None:
        """Rename within this directory: a link at ``target`` is replaced, never followed."""
        os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> bool:
        """Remove a name (a link itself, never what it points to); False when it was not there."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def fsync(self) -> None:
        # Makes a rename or unlink durable: without it a power cut can bring back the old name.
        os.fsync(self.fd)

    def rename_into(self, source: str, target: SafeDir, name: str) -> None:
        """Move ``source`` of this directory to ``name`` in ``target``: a link at ``name`` is replaced, never followed."""
        os.replace(source, name, src_dir_fd=self.fd, dst_dir_fd=target.fd)

    def make_private(self, name: str) -> SafeDir:
        """A new directory ``name`` here that only this process's user can enter (0700); FileExistsError when taken.

        The directory it is in may belong to another user, who may rename the new one away and put
        another there between the mkdir and the open: what was opened must be a directory of this user
        that no one else may enter, else it is refused.
        """
        os.mkdir(name, 0o700, dir_fd=self.fd)
        fd = _open_component(self.fd, name, self.child(name))
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
            os.close(fd)
            raise FileRefused(self.child(name), "it was replaced by another user's directory right after it was made",
                              errno.EPERM)
        return SafeDir(fd, self.child(name), os.path.join(self.real, name))

    def remove_private(self, name: str, private: SafeDir) -> None:
        """Remove the private directory ``name`` (emptied first), when that name still is ``private``."""
        for entry in private.names():
            private.unlink(entry)
        # The directory's owner may have renamed it meanwhile: it is removed under the name it has now.
        for candidate in [name] + self.names():
            now = self.lstat(candidate)
            if now is not None and stat.S_ISDIR(now.st_mode) and (now.st_dev, now.st_ino) == private.identity():
                os.rmdir(candidate, dir_fd=self.fd)
                return

    def subdirectory(self, name: str) -> SafeDir:
        """A directory of this one, never through a link."""
        fd = _open_component(self.fd, name, self.child(name))
        return SafeDir(fd, self.child(name), os.path.join(self.real, name))


def file_identity(info: os.stat_result) -> tuple:
    """What tells one file from another one put at the same name (see FileContent.inode)."""
    return (info.st_dev, info.st_ino, info.st_mode, info.st_uid, info.st_gid, info.st_size,
            info.st_mtime_ns, info.st_ctime_ns)


def _read_at_most(fd: int, size: int) -> bytes:
    chunks = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _open_component(parent_fd: int, name: str, path: str) -> int:
    """One directory of a walk; FileRefused when it is not a directory, with the reason."""
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            exc.filename = path
            raise
    info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise FileRefused(path, "%s is a symbolic link; a link on the way to a directory is followed only when root "
                                "made it in a directory that only root may write, which is not the case here; use the "
                                "real directory's path" % path, errno.ELOOP)
    raise FileRefused(path, "%s is %s, not a directory" % (path, describe_kind(info.st_mode)), errno.ENOTDIR)


def open_directory(path: str) -> SafeDir:
    """Open a directory by walking its path from ``/`` (see the module's rules on links).

    Raises FileNotFoundError (``filename`` the missing component), FileRefused,
    or another OSError.
    """
    wanted = os.path.normpath(os.path.abspath(path))
    todo = _components(wanted)
    done: list[str] = []
    links = 0
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        while todo:
            name = todo.pop(0)
            here = "/" + "/".join(done + [name])
            info = os.stat(name, dir_fd=fd, follow_symlinks=False) if _is_link(fd, name) else None
            if info is not None and _trusted_link(os.fstat(fd), info):
                links += 1
                if links > MAX_LINKS:
                    raise FileRefused(wanted, "too many levels of symbolic links", errno.ELOOP)
                target = os.path.normpath(os.path.join("/" + "/".join(done), os.readlink(name, dir_fd=fd)))
                todo = _components(target) + todo
                done = []
                os.close(fd)
                fd = -1
                fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
                continue
            child = _open_component(fd, name, here)
            os.close(fd)
            fd = child
            done.append(name)
        result = SafeDir(fd, wanted, "/" + "/".join(done))
        fd = -1
        return result
    finally:
        if fd >= 0:
            os.close(fd)


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False  # the open that follows says which component is missing


def split_file_path(path: str) -> tuple[str, str]:
    """(directory, name) of a file's path; the name must be a real name."""
    directory, name = os.path.split(os.path.normpath(os.path.abspath(path)))
    if name in ("", ".", ".."):
        raise FileRefused(path, "it does not name a file", errno.EISDIR)
    return directory, name


def open_parent(path: str) -> tuple[SafeDir, str]:
    """The directory a file's path is in, opened safely, and the file's name in it."""
    directory, name = split_file_path(path)
    return open_directory(directory), name


def read_file(path: str, limit: int = MAX_READ_BYTES) -> FileContent | None:
    """A regular file by its path, bounded and typed (see SafeDir.read); None when it or its directory is missing."""
    directory, name = split_file_path(path)
    try:
        safe = open_directory(directory)
    except FileNotFoundError:
        return None
    with safe:
        return safe.read(name, limit)


def open_deployment(deploy_path: str) -> SafeDir:
    """A Zulip deployment directory, also when ``deploy_path`` is the zulip-owned ``current`` link.

    The link is not followed as a path: it is read as data and must name a
    directory right beside it (``2026-11-28-15-05-00`` or
    ``/home/zulip/deployments/2026-11-28-15-05-00``), which is then opened
    without following anything. So the deployment is always a directory in the
    deployments directory, whatever the link says.
    """
    parent, name = split_file_path(deploy_path)
    with open_directory(parent) as deployments:
        info = deployments.lstat(name)
        if info is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), deployments.child(name))
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=deployments.fd)
            name = _beside(target, deployments)
            if name is None:
                raise FileRefused(deployments.child(os.path.basename(deploy_path)),
                                  "it is a link to %r, not to a deployment directory beside it" % target, errno.ELOOP)
        return deployments.subdirectory(name)


def _beside(target: str, directory: SafeDir) -> str | None:
    """The name a link's target gives in ``directory``, when it names a plain entry there; else None."""
    if "/" in target.rstrip("/"):
        head, tail = os.path.split(os.path.normpath(target))
        if os.path.normpath(head) not in (directory.path, directory.real):
            return None
    else:
        tail = target.rstrip("/")
    return tail if tail not in ("", ".", "..") else None


def read_deployment_file(deploy_path: str, name: str, limit: int = MAX_READ_BYTES) -> FileContent:
    """A file of a Zulip deployment (``version.py``), through :func:`open_deployment`, bounded and typed.

    Raises FileNotFoundError when it is missing, FileRefused or another OSError
    (``filename`` says which path).
    """
    with open_deployment(deploy_path) as deployment:
        found = deployment.read(name, limit)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), deployment.child(name))
        return found
