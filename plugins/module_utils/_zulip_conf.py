# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Where a Zulip host serves its own web front end, read from ``/etc/zulip/zulip.conf``.

Behind a reverse proxy, ``[application_server] http_only = true`` makes
Zulip's nginx serve plain HTTP, on ``nginx_listen_port`` (80 by default);
otherwise it serves HTTPS on that port (443 by default). Zulip's puppet
(``app_frontend.pp``) decides it that way, so this reads the same keys the
same way, and the checks of the collection reach the front end without the
operator naming it.
"""

from __future__ import annotations

import configparser

from ansible_collections.zulip_ops.zulip.plugins.module_utils._safe_dir import read_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

ZULIP_CONF_PATH = "/etc/zulip/zulip.conf"
SECTION = "application_server"
# The words Zulip's puppet function zulipconf() takes as true for a boolean key (case-insensitive).
_TRUE_WORDS = ("1", "y", "t", "true", "yes", "enable", "enabled")


class FrontEnd:
    """How nginx on the Zulip host listens: plain HTTP or HTTPS, and on which port."""

    def __init__(self, http_only: bool = False, port: int | None = None):
        self.http_only = http_only
        self.port = port

    @property
    def url(self) -> str:
        """The loopback URL of the front end; the default port is left out."""
        scheme, default_port = ("http", 80) if self.http_only else ("https", 443)
        port = default_port if self.port is None else self.port
        return "%s://127.0.0.1%s" % (scheme, "" if port == default_port else ":%d" % port)


def parse_front_end(text: str, path: str = ZULIP_CONF_PATH) -> FrontEnd:
    """The front end that a zulip.conf with this content configures."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise ZulipError("cannot read %s: %s" % (path, exc.message.splitlines()[0])) from None
    if not parser.has_section(SECTION):
        return FrontEnd()
    http_only = parser.get(SECTION, "http_only", fallback="").strip().lower() in _TRUE_WORDS
    port_text = parser.get(SECTION, "nginx_listen_port", fallback="").strip()
    if not port_text:
        return FrontEnd(http_only)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ZulipError("%s: [%s] nginx_listen_port = %s is not a port number"
                         % (path, SECTION, port_text))
    return FrontEnd(http_only, int(port_text))


def read_front_end(path: str = ZULIP_CONF_PATH) -> FrontEnd:
    """The front end zulip.conf configures; a missing file is a default front end."""
    try:
        # Bounded and typed (see _safe_dir): the zulip user owns zulip.conf and /etc/zulip.
        found = read_file(path)
        text = found.content.decode("utf-8") if found is not None else None
    except (OSError, UnicodeError) as exc:
        raise ZulipError("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc)) from None
    if text is None:
        return FrontEnd()
    # As open() in text mode read it before: universal newlines.
    return parse_front_end(text.replace("\r\n", "\n").replace("\r", "\n"), path)


def api_url_of(given: str | None, zulip_conf_path: str = ZULIP_CONF_PATH) -> str:
    """``given`` when set (an explicit URL always wins), else what zulip.conf says."""
    if given:
        return given
    return read_front_end(zulip_conf_path).url
