# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""scim_connection_sheet: what an IdP administrator enters to connect a Zulip realm, never the token.

What each IdP needs is what Zulip's help centre tells admins (Okta's "SCIM 2.0
Test App (Header Auth)", a Microsoft Entra ID non-gallery app, or any SCIM 2.0
client); the realm's host is ``<subdomain>.<EXTERNAL_HOST>``, or EXTERNAL_HOST
itself for the root domain.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp import SheetContext
from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import IDPS, idp_of, provider
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    GROUPS_SYNC_SINCE,
    ZulipError,
    check_external_host,
    parse_version,
    realm_label,
    subdomain_message,
    subdomain_problem,
)
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_apis import automated


def realm_host(subdomain: str, external_host: str) -> str:
    """The realm's host[:port], checked again here: it goes into a URL that an IdP administrator copies."""
    if subdomain_problem(subdomain):
        raise AnsibleFilterError("scim_connection_sheet: %s" % subdomain_message(subdomain))
    host = "%s.%s" % (subdomain, external_host) if subdomain else external_host
    try:
        return check_external_host(host, "scim_connection_sheet: the host of realm %s" % realm_label(subdomain))
    except ZulipError as exc:
        raise AnsibleFilterError(str(exc)) from None


def realm_section(realm: dict, external_host: str, version: tuple[int, int]) -> tuple[list[str], str | None]:
    """The sheet's lines for one realm, and a warning when its SCIM_CONFIG does not fit its IdP."""
    subdomain = realm.get("subdomain", "")
    idp = provider(idp_of(realm))
    label = realm_label(subdomain)
    context = SheetContext(base_url="https://%s/scim/v2" % realm_host(subdomain, external_host),
                           token_text="the token of realm %s" % label, groups_synced=version >= GROUPS_SYNC_SINCE)
    lines = ["", "## Realm %s: %s" % (label, idp.title), ""]
    if realm.get("idp_settings") and automated(idp.name):
        lines.append("- Automated: each run that changes the token gives it to %s over its API "
                     "(zulip_scim_idp_connections); enter nothing by hand. What it sets:" % idp.title)
    lines += idp.sheet_lines(context)
    warning = None
    actual = bool(realm.get("name_formatted_included", False))
    lines.append("- Zulip side: SCIM client name `%s`, name_formatted_included %s."
                 % (realm.get("client_name", ""), "true" if actual else "false"))
    if idp.name_formatted_included is not None and idp.name_formatted_included != actual:
        warning = ("realm %s: name_formatted_included is %s, but %s (set it to %s), so Zulip would refuse "
                   "to create users" % (label, str(actual).lower(), idp.name_formatted_why,
                                        str(idp.name_formatted_included).lower()))
        lines.append("- WARNING: " + warning + ".")
    return lines, warning


def sheet_and_warnings(realms: t.Any, external_host: t.Any, host: t.Any, version: t.Any,
                       read_token: t.Any) -> tuple[str, list[str]]:
    if not isinstance(realms, list) or not all(isinstance(r, dict) for r in realms):
        raise AnsibleFilterError("scim_connection_sheet: expected a list of realm items")
    if not external_host:
        raise AnsibleFilterError("scim_connection_sheet: EXTERNAL_HOST is unknown: set zulip_scim_external_host")
    # Both come from files the zulip user writes (through zulip_scim_preflight) or from the inventory: data, so
    # checked here as well as on the host before a line of the sheet is written.
    try:
        check_external_host(external_host, "EXTERNAL_HOST (or zulip_scim_external_host)")
        version_numbers = parse_version(str(version))
    except ZulipError as exc:  # not a host[:port], or not a Zulip version
        raise AnsibleFilterError("scim_connection_sheet: %s" % exc) from None
    lines = [
        "# SCIM connection sheet: %s" % host,
        "",
        "Zulip %s, EXTERNAL_HOST %s. What to enter in the identity provider for each realm; the bearer token "
        "is not in this sheet. Read a realm's token with:" % (version, external_host),
        "",
        "    %s" % read_token,
    ]
    warnings = []
    for realm in realms:
        if realm.get("state", "present") != "present":
            continue
        section, warning = realm_section(realm, str(external_host), version_numbers)
        lines += section
        if warning:
            warnings.append(warning)
    return "\n".join(lines) + "\n", warnings


def scim_connection_sheet(realms: t.Any, external_host: t.Any, host: t.Any, version: t.Any,
                          read_token: t.Any) -> str:
    return sheet_and_warnings(realms, external_host, host, version, read_token)[0]


def scim_sheet_warnings(realms: t.Any, external_host: t.Any, host: t.Any, version: t.Any,
                        read_token: t.Any) -> list[str]:
    return sheet_and_warnings(realms, external_host, host, version, read_token)[1]


class FilterModule:
    def filters(self) -> dict:
        return {"scim_connection_sheet": scim_connection_sheet, "scim_sheet_warnings": scim_sheet_warnings}


__all__ = ["FilterModule", "IDPS"]
