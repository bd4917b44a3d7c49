# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""authentik: a SCIM provider (a backchannel provider of the Zulip application)."""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import (
    IdentityProvider,
    SheetContext,
    groups_not_before_11,
)


def _connection(context: SheetContext) -> list[str]:
    # authentik's default user mapping sends its username as userName; Zulip's userName is the email.
    return [
        "- authentik admin interface: Applications > Providers > Create > SCIM Provider; add it to the Zulip "
        "application as a backchannel provider.",
        "- URL: `%s`" % context.base_url,
        "- Token: %s itself, without `Bearer` (authentik sends the header)" % context.token_text,
        "- User property mappings: the default SCIM user mapping, plus one returning "
        "`{\"userName\": request.user.email}` (Zulip's userName is the email address).",
    ]


def _groups(context: SheetContext) -> str:
    return groups_not_before_11(context, "- Groups: authentik syncs groups and their members (Zulip 11.0+); "
                                         "Zulip never deletes a group over SCIM.")


PROVIDER = IdentityProvider(
    name="authentik",
    title="authentik",
    # Its default mapping sends the whole name as name.formatted, and a split of it as givenName/familyName.
    name_formatted_included=True,
    name_formatted_why="authentik sends the user's whole name as name.formatted",
    client_name_hints=("authentik",),
    connection_lines=_connection,
    groups_line=_groups,
)
