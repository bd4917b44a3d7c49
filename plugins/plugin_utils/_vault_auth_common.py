# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What every HashiCorp Vault / OpenBao auth method of the token store shares.

An auth method turns the ``hashicorp`` options and the controller's
environment into a ``VaultLogin`` before any request is made, so a missing
role or an unreadable credential file stops the task before anything
changes. Every credential (token, secret ID, JWT) stays inside the
``VaultLogin`` (hidden from its repr) and never reaches a message.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._controller_files import UnreadableFile, read_regular_file
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import TokenStoreError

if t.TYPE_CHECKING:  # pragma: no cover - the store imports this module, not the other way round
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import VaultSettings

# A token or a JWT is a few KiB at most; a bigger file is the wrong file.
MAX_CREDENTIAL_BYTES = 64 * 1024
# header.payload.signature, each base64url without padding (RFC 7519, compact serialisation).
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class VaultLogin:
    """How the store authenticates. ``what`` and ``refused`` are for messages and never hold a credential."""

    # Where the token comes from ("from the environment variable BAO_TOKEN"), or the login that
    # makes it ("JWT login at auth/jwt as role ci"); starts the login's error messages.
    what: str
    # What a refusal of the login means, for the error message (login methods only).
    refused: str = ""
    # A token used as it is (auth_method token): no login request.
    token: str = field(default="", repr=False)
    # The login request (client -> answer) of the other methods; it sets the client's token.
    request: t.Callable[[t.Any], t.Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class VaultAuthMethod:
    """One entry of the auth method table (_vault_auth.py)."""

    name: str
    # Options only this method reads: set with another auth_method, they show a forgotten auth_method.
    options: tuple[str, ...]
    prepare: t.Callable[[VaultSettings], VaultLogin]


def auth_error(message: str) -> TokenStoreError:
    return TokenStoreError("hashicorp_vault store: %s" % message)


def from_environment(environ: t.Mapping[str, str], *variables: str) -> tuple[str, str] | None:
    """The first of ``variables`` that is set and not empty, as (value, name)."""
    for name in variables:
        value = environ.get(name)
        if value:
            return value, name
    return None


def auth_mount(value: str | None, default: str, option: str) -> str:
    """An auth method's mount path (it goes into the URL): plain segments, no ``..``."""
    segments = [s for s in (value or default).strip().split("/") if s]
    if not segments or any(s in (".", "..") or not re.fullmatch(r"[A-Za-z0-9._-]+", s) for s in segments):
        raise auth_error("%s must be the path an auth method is mounted at (letters, digits, . _ - and /)" % option)
    return "/".join(segments)


def check_one_credential(value: str, source: str) -> str:
    """``value`` stripped; refused (without showing it) when empty or when it holds whitespace or control characters."""
    value = value.strip()
    if not value:
        raise auth_error("%s is empty" % source)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise auth_error("%s does not hold one credential (whitespace or control characters inside); "
                         "its content is not shown" % source)
    return value


def check_jwt(value: str, source: str) -> str:
    """A JWT in compact form, else a refusal that does not show it."""
    value = check_one_credential(value, source)
    if not _JWT_SHAPE.fullmatch(value):
        raise auth_error("%s is not a JWT (three base64url parts separated by dots); its content is not shown" % source)
    return value


def read_credential_file(path: str, source: str) -> str:
    """The one credential in the file ``path`` (a token or a JWT), stripped.

    Opened without blocking (a FIFO planted at the path cannot hang the run)
    and only when it is a regular file; read up to ``MAX_CREDENTIAL_BYTES``.
    Errors name the path and the reason, never the content.
    """
    try:
        data = read_regular_file(path, MAX_CREDENTIAL_BYTES)
    except UnreadableFile as exc:
        raise auth_error("%s %s %s" % (source, path, exc.reason)) from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise auth_error("%s %s is larger than %d bytes: not a credential file" % (source, path, MAX_CREDENTIAL_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise auth_error("%s %s is not UTF-8 text" % (source, path)) from None
    return check_one_credential(text, "%s %s" % (source, path))
