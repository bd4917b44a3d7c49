# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The auth methods of the HashiCorp Vault / OpenBao token store, chosen by name from one table.

One file per method (``_vault_auth_<name>.py``); each turns the settings into
a ``VaultLogin`` before any request. A new method is a new file and one line
in ``AUTH_METHODS``; the argument spec's choices come from this table.
"""

from __future__ import annotations

import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import show_key
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_approle import METHOD as APPROLE
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_common import VaultAuthMethod, VaultLogin, auth_error
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_jwt import METHOD as JWT
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_kubernetes import METHOD as KUBERNETES
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_token import METHOD as TOKEN

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import VaultSettings

# In the order the documentation lists them; token is the default.
AUTH_METHODS: dict[str, VaultAuthMethod] = {method.name: method for method in (TOKEN, APPROLE, JWT, KUBERNETES)}
AUTH_METHOD_NAMES: tuple[str, ...] = tuple(AUTH_METHODS)


def auth_method(name: str) -> VaultAuthMethod:
    try:
        return AUTH_METHODS[name]
    except (KeyError, TypeError):
        raise auth_error("auth_method %s is not one of %s" % (show_key(name), ", ".join(AUTH_METHOD_NAMES))) from None


def prepare_login(settings: VaultSettings) -> VaultLogin:
    """The login ``settings`` describe, checked and with its credential read; no request is made."""
    method = auth_method(settings.auth_method)
    for other in AUTH_METHODS.values():
        stray = [option for option in other.options if other is not method and getattr(settings, option)]
        if stray:
            # An option of another method: most likely auth_method was forgotten.
            raise auth_error("%s %s for auth_method %s, but auth_method is %s" % (
                ", ".join(stray), "is" if len(stray) == 1 else "are", other.name, method.name))
    return method.prepare(settings)
