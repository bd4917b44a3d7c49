# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The identity providers the collection knows, by name: one row each, one file per row.

A new IdP is a file ``_idp_<name>.py`` with a ``PROVIDER`` and a line here. The realm items'
``idp`` choices, the connection sheet and the ``name_formatted_included`` default all read
this table.
"""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils import (
    _idp_authentik,
    _idp_entra_id,
    _idp_okta,
    _idp_other,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import IdentityProvider

# "other" last: a client_name is matched against the rows in this order.
PROVIDERS: dict[str, IdentityProvider] = {
    row.PROVIDER.name: row.PROVIDER for row in (_idp_okta, _idp_entra_id, _idp_authentik, _idp_other)
}
IDPS = tuple(PROVIDERS)
OTHER = _idp_other.PROVIDER.name


def provider(name: str) -> IdentityProvider:
    """The row of ``name`` (a checked realm item's idp)."""
    return PROVIDERS[name]


def idp_of(item: dict) -> str:
    """The realm's identity provider: its idp key, else what its client_name names, else "other"."""
    if item.get("idp"):
        return str(item["idp"])
    name = str(item.get("client_name") or "").lower()
    for row in PROVIDERS.values():
        if any(hint in name for hint in row.client_name_hints):
            return row.name
    return OTHER


def name_formatted_included_of(item: dict) -> bool:
    """The realm's name_formatted_included: as set, else what its IdP's payloads need, else false.

    An idp the table does not know counts as "other" here: the realm item check refuses it by name.
    """
    value = item.get("name_formatted_included")
    if value is not None:
        return bool(value)
    row = PROVIDERS.get(idp_of(item), PROVIDERS[OTHER])
    return bool(row.name_formatted_included)
