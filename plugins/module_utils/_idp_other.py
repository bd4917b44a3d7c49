# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Any other SCIM 2.0 client (Keycloak's SCIM extensions, OneLogin, a script): the base URL and the header."""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import (
    IdentityProvider,
    SheetContext,
    groups_not_before_11,
)


def _connection(context: SheetContext) -> list[str]:
    return [
        "- SCIM 2.0 base URL: `%s`" % context.base_url,
        "- Every request: header `Authorization: Bearer ` followed by %s" % context.token_text,
        "- userName is the user's email address.",
        "- Updates: Zulip takes a PUT of the whole user, and a PATCH replace of userName, active or name.formatted; it "
        "answers 500 to a PATCH of the whole name object, and 501 to PATCH add and remove.",
    ]


def _groups(context: SheetContext) -> str:
    return groups_not_before_11(context, "- Groups: /scim/v2/Groups (Zulip 11.0+); no group DELETE, no nested groups.")


PROVIDER = IdentityProvider(
    name="other",
    title="any SCIM 2.0 client",
    name_formatted_included=None,
    name_formatted_why="",
    client_name_hints=(),
    connection_lines=_connection,
    groups_line=_groups,
)
