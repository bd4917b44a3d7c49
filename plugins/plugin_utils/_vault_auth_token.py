# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Vault auth method ``token``: a token the operator already has, used as it is.

Where it comes from, first found wins:

1. the option ``token``, or the file named by the option ``token_file``
   (both at once is refused: which one was meant?);
2. ``BAO_TOKEN``, then ``VAULT_TOKEN`` (the bao CLI reads the same two in this order;
   the vault CLI reads only ``VAULT_TOKEN``);
3. ``~/.vault-token`` (``$HOME`` of the controller's environment), the file
   ``bao login`` and ``vault login`` write.

Options win over the environment, and the environment over the CLI's token
file, as with the CLIs themselves.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_common import (
    VaultAuthMethod,
    VaultLogin,
    auth_error,
    check_one_credential,
    from_environment,
    read_credential_file,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import VaultSettings

NAME = "token"
TOKEN_VARIABLES = ("BAO_TOKEN", "VAULT_TOKEN")
CLI_TOKEN_FILE = ".vault-token"


def cli_token_file(environ: t.Mapping[str, str]) -> str | None:
    """``$HOME/.vault-token``; None without ``HOME`` (as the CLIs, which then have no token file either)."""
    home = environ.get("HOME")
    return os.path.join(home, CLI_TOKEN_FILE) if home else None


def _token_and_source(settings: VaultSettings) -> tuple[str, str]:
    if settings.token and settings.token_file:
        raise auth_error("token and token_file are both set; give one of them")
    if settings.token:
        return settings.token, "token (zulip_scim_vault_token)"
    if settings.token_file:
        return read_credential_file(settings.token_file, "token_file"), "token_file %s" % settings.token_file
    found = from_environment(settings.environ, *TOKEN_VARIABLES)
    if found:
        return found[0], "the environment variable %s" % found[1]
    default_file = cli_token_file(settings.environ)
    # A missing ~/.vault-token only means "never logged in"; any other trouble with it is reported.
    if default_file and os.path.lexists(default_file):
        return read_credential_file(default_file, "the token file"), "the token file %s" % default_file
    raise auth_error(
        "no token; set token (zulip_scim_vault_token) or token_file (zulip_scim_vault_token_file), or "
        "BAO_TOKEN / VAULT_TOKEN, or log in with 'bao login' / 'vault login' (they write ~/.vault-token); "
        "or use auth_method approle, jwt or kubernetes")


def prepare(settings: VaultSettings) -> VaultLogin:
    token, source = _token_and_source(settings)
    return VaultLogin(what="from %s" % source, token=check_one_credential(token, source))


# token itself is not refused with another method: the scim role and AWX may always pass one.
METHOD = VaultAuthMethod(name=NAME, options=("token_file",), prepare=prepare)
