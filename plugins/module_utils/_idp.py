# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What the collection knows of one identity provider: a row of the table in ``_idps``.

A row says what an IdP administrator enters to connect a realm (the connection sheet),
which ``name_formatted_included`` its user payloads need, and how a ``client_name`` hints
at it. Rows live one per file (``_idp_<name>.py``) and are importable on the Zulip host and
on the controller alike: they hold no API client. Whatever calls an IdP's API runs on the
controller, where its credentials are.
"""

from __future__ import annotations

import dataclasses
import typing as t


@dataclasses.dataclass(frozen=True)
class SheetContext:
    """What a row needs to write its part of the connection sheet; never a token."""

    base_url: str  # https://<realm host>/scim/v2
    token_text: str  # how the sheet names the realm's token ("the token of realm acme")
    groups_synced: bool  # Zulip 11.0+: groups and members over SCIM


@dataclasses.dataclass(frozen=True)
class IdentityProvider:
    """One identity provider. ``name`` is what a realm item's ``idp`` key says."""

    name: str
    title: str
    # The SCIM_CONFIG value its user payloads need, and why (a realm item that leaves
    # name_formatted_included unset gets it); None: no opinion, Zulip's own default (false).
    name_formatted_included: bool | None
    name_formatted_why: str
    # Lower-case words that, in a client_name, name this IdP when a realm item sets no idp.
    client_name_hints: tuple[str, ...]
    connection_lines: t.Callable[[SheetContext], list[str]]
    groups_line: t.Callable[[SheetContext], str]

    def sheet_lines(self, context: SheetContext) -> list[str]:
        return self.connection_lines(context) + [self.groups_line(context)]


def groups_not_before_11(context: SheetContext, when_synced: str) -> str:
    """The groups line every IdP shares before Zulip 11.0, else its own."""
    if not context.groups_synced:
        return "- Groups: not over SCIM before Zulip 11.0; provision users only."
    return when_synced
