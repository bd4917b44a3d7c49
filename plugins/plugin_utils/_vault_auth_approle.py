# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Vault auth method ``approle``: log in with a role ID and a secret ID at ``auth/<approle_mount>/login``."""

from __future__ import annotations

import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_common import (
    VaultAuthMethod,
    VaultLogin,
    auth_error,
    auth_mount,
    check_one_credential,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import VaultSettings

NAME = "approle"


def prepare(settings: VaultSettings) -> VaultLogin:
    if not (settings.role_id and settings.secret_id):
        raise auth_error("auth_method approle needs role_id and secret_id (zulip_scim_vault_role_id, zulip_scim_vault_secret_id)")
    role_id = check_one_credential(settings.role_id, "role_id")
    secret_id = check_one_credential(settings.secret_id, "secret_id")
    mount = auth_mount(settings.approle_mount, "approle", "approle_mount")
    return VaultLogin(
        what="AppRole login at auth/%s" % mount,
        refused="the role_id or secret_id is wrong, or the secret ID has expired or was used up",
        request=lambda client: client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount),
    )


# role_id and secret_id were always ignored by the other methods (no refusal that could break a setup).
METHOD = VaultAuthMethod(name=NAME, options=(), prepare=prepare)
