# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""A credential file of the controller (a Vault token, a JWT, a PEM key or certificate), read safely.

Opened without blocking (a FIFO planted at the path cannot hang the run), read only when it is a
regular file, and never past ``limit`` + 1 bytes, so that the caller can tell a file that is too
large. A failure says why, never what the file holds.
"""

from __future__ import annotations

import errno
import os
import stat


class UnreadableFile(Exception):
    """Why the file cannot be read (``reason``: "cannot be read (...)" or "is not a regular file")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_regular_file(path: str, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of the regular file ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise UnreadableFile("cannot be read (%s)" % (exc.strerror or errno.errorcode.get(exc.errno, "error"))) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFile("is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile("cannot be read (%s)" % (exc.strerror or "error")) from None
    finally:
        os.close(fd)
    return b"".join(chunks)
