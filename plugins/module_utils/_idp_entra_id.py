# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Microsoft Entra ID: a non-gallery enterprise application with automatic provisioning."""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import (
    IdentityProvider,
    SheetContext,
)

# Entra's provisioning service speaks the SCIM behaviour Zulip expects only with this flag in the URL.
TENANT_URL_FLAG = "?aadOptscim062020"


def tenant_url(base_url: str) -> str:
    """The Tenant URL (Graph's BaseAddress) of a realm: its SCIM base URL with Entra's compatibility flag."""
    return "%s/%s" % (base_url, TENANT_URL_FLAG)


def _connection(context: SheetContext) -> list[str]:
    return [
        "- Microsoft Entra admin center: Enterprise applications > New application > Create your own "
        "application > \"Integrate any other application you don't find in the gallery (Non-gallery)\".",
        "- Provisioning > Provisioning Mode: Automatic.",
        "- Tenant URL: `%s`" % tenant_url(context.base_url),
        "- Secret Token: %s itself, without `Bearer`" % context.token_text,
        "- Attribute mappings: userName from mail; keep active and name.formatted; delete the name.givenName and "
        "name.familyName mappings (Zulip answers 501 to a PATCH of either, so every update of such a user fails).",
    ]


def _groups(context: SheetContext) -> str:
    # Whatever the Zulip version: Entra's group provisioning sends what Zulip does not take.
    return "- Groups: leave group provisioning off (Provision Microsoft Entra ID Groups: No)."


PROVIDER = IdentityProvider(
    name="entra_id",
    title="Microsoft Entra ID",
    name_formatted_included=True,
    name_formatted_why="Entra ID sends name.formatted",
    client_name_hints=("entra", "azure", "aad"),
    connection_lines=_connection,
    groups_line=_groups,
)
