# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Okta: Zulip's help centre connects it through the "SCIM 2.0 Test App (Header Auth)"."""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import (
    IdentityProvider,
    SheetContext,
    groups_not_before_11,
)


def _connection(context: SheetContext) -> list[str]:
    return [
        "- Okta admin console: Applications > Browse App Catalog > \"SCIM 2.0 Test App (Header Auth)\" > Add; "
        "Provisioning tab > Configure API Integration > Enable API integration.",
        "- Base URL: `%s`" % context.base_url,
        "- API Token: `Bearer ` followed by %s" % context.token_text,
        "- Application username format: Email",
        "- To App: enable Create Users, Update User Attributes, Deactivate Users.",
    ]


def _groups(context: SheetContext) -> str:
    return groups_not_before_11(context, "- Groups: \"Push Groups\" syncs groups and their members (Zulip 11.0+); "
                                         "Zulip never deletes a group over SCIM and has no nested groups.")


PROVIDER = IdentityProvider(
    name="okta",
    title="Okta",
    name_formatted_included=False,
    name_formatted_why="Okta sends name.givenName and name.familyName",
    client_name_hints=("okta",),
    connection_lines=_connection,
    groups_line=_groups,
)
