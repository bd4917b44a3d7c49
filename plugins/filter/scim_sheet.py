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

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    GROUPS_SYNC_SINCE,
    IDPS,
    ZulipError,
    check_external_host,
    idp_of,
    parse_version,
    realm_label,
    subdomain_message,
    subdomain_problem,
)

# The value each IdP needs in SCIM_CONFIG, and why.
NAME_FORMATTED_FOR = {
    "okta": (False, "Okta sends name.givenName and name.familyName"),
    "entra_id": (True, "Entra ID sends name.formatted"),
}
IDP_TITLES = {"okta": "Okta", "entra_id": "Microsoft Entra ID", "other": "any SCIM 2.0 client"}


def realm_host(subdomain: str, external_host: str) -> str:
    """The realm's host[:port], checked again here: it goes into a URL that an IdP administrator copies."""
    if subdomain_problem(subdomain):
        raise AnsibleFilterError("scim_connection_sheet: %s" % subdomain_message(subdomain))
    host = "%s.%s" % (subdomain, external_host) if subdomain else external_host
    try:
        return check_external_host(host, "scim_connection_sheet: the host of realm %s" % realm_label(subdomain))
    except ZulipError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _groups_line(idp: str, version: tuple[int, int]) -> str:
    if version < GROUPS_SYNC_SINCE:
        return "- Groups: not over SCIM before Zulip 11.0; provision users only."
    if idp == "okta":
        return ("- Groups: \"Push Groups\" syncs groups and their members (Zulip 11.0+); Zulip never deletes a group "
                "over SCIM and has no nested groups.")
    if idp == "entra_id":
        return "- Groups: leave group provisioning off (Provision Microsoft Entra ID Groups: No)."
    return "- Groups: /scim/v2/Groups (Zulip 11.0+); no group DELETE, no nested groups."


def _idp_lines(idp: str, base_url: str, label: str) -> list[str]:
    token = "the token of realm %s" % label
    if idp == "okta":
        return [
            "- Okta admin console: Applications > Browse App Catalog > \"SCIM 2.0 Test App (Header Auth)\" > Add; "
            "Provisioning tab > Configure API Integration > Enable API integration.",
            "- Base URL: `%s`" % base_url,
            "- API Token: `Bearer ` followed by %s" % token,
            "- Application username format: Email",
            "- To App: enable Create Users, Update User Attributes, Deactivate Users.",
        ]
    if idp == "entra_id":
        return [
            "- Microsoft Entra admin center: Enterprise applications > New application > Create your own "
            "application > \"Integrate any other application you don't find in the gallery (Non-gallery)\".",
            "- Provisioning > Provisioning Mode: Automatic.",
            "- Tenant URL: `%s/?aadOptscim062020`" % base_url,
            "- Secret Token: %s itself, without `Bearer`" % token,
            "- Attribute mappings: userName from mail; keep active and name.formatted.",
        ]
    return [
        "- SCIM 2.0 base URL: `%s`" % base_url,
        "- Every request: header `Authorization: Bearer ` followed by %s" % token,
        "- userName is the user's email address.",
    ]


def realm_section(realm: dict, external_host: str, version: tuple[int, int]) -> tuple[list[str], str | None]:
    """The sheet's lines for one realm, and a warning when its SCIM_CONFIG does not fit its IdP."""
    subdomain = realm.get("subdomain", "")
    idp = idp_of(realm)
    label = realm_label(subdomain)
    base_url = "https://%s/scim/v2" % realm_host(subdomain, external_host)
    lines = ["", "## Realm %s: %s" % (label, IDP_TITLES[idp]), ""]
    lines += _idp_lines(idp, base_url, label)
    lines.append(_groups_line(idp, version))
    warning = None
    expected = NAME_FORMATTED_FOR.get(idp)
    actual = bool(realm.get("name_formatted_included", False))
    lines.append("- Zulip side: SCIM client name `%s`, name_formatted_included %s."
                 % (realm.get("client_name", ""), "true" if actual else "false"))
    if expected is not None and expected[0] != actual:
        warning = ("realm %s: name_formatted_included is %s, but %s (set it to %s), so Zulip would refuse "
                   "to create users" % (label, str(actual).lower(), expected[1], str(expected[0]).lower()))
        lines.append("- WARNING: " + warning + ".")
    return lines, warning


def sheet_and_warnings(realms: t.Any, external_host: t.Any, host: t.Any, version: t.Any,
                       read_token: t.Any) -> tuple[str, list[str]]:
    if not isinstance(realms, list) or not all(isinstance(r, dict) for r in realms):
        raise AnsibleFilterError("scim_connection_sheet: expected a list of realm items")
    if not external_host:
        raise AnsibleFilterError("scim_connection_sheet: EXTERNAL_HOST is unknown: set zulip_scim_external_host")
    # Both come from files the zulip user writes (through zulip_info) or from the inventory: data, so
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
