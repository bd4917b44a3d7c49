# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The one rule for what a SCIM bearer token may be, used everywhere a token enters.

A token goes into ``zulip-secrets.conf`` (an INI value), into the token store
(YAML) and into an HTTP ``Authorization`` header. So two questions, asked
separately:

* Can it be written safely? Printable ASCII without white space or quotes:
  anything else could end an INI line, break a header or a quoted value. A
  token that fails this is refused before anything is changed.
* Is it strong? At least :data:`MIN_STRONG_LENGTH` characters. A shorter one
  that a host already uses still works with its IdP, so it is kept (never
  silently replaced) and reported as one that should be rotated.

No message here ever contains the token.
"""

from __future__ import annotations

MIN_STRONG_LENGTH = 16
# Quotes are refused so that a token can never end a quoted value wherever it is written.
_FORBIDDEN = frozenset("\"'")


def token_problem(token: object) -> str | None:
    """Why ``token`` cannot be written safely, or None when it can."""
    if not isinstance(token, str) or not token:
        return "the token is empty"
    if any(not ("!" <= ch <= "~") or ch in _FORBIDDEN for ch in token):
        # "!".."~" is printable ASCII without the space.
        return "the token contains whitespace, quotes, control or non-ASCII characters"
    return None


def token_weakness(token: str) -> str | None:
    """Why a writable token is weak (it should be rotated), or None."""
    if len(token) < MIN_STRONG_LENGTH:
        return "the token is shorter than %d characters" % MIN_STRONG_LENGTH
    return None
