# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that turn the scim role's realm list into module arguments."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Keys of a realm item that zulip_scim_config takes as they are.
_CONFIG_KEYS = (
    "subdomain",
    "client_name",
    "name_formatted_included",
    "create_guests_without_streams",
    "custom_profile_field_map",
    "state",
)


def scim_realms(realms: list, default_client_name: str = "okta", disable=()) -> list:
    """The role's realm list with every default filled in.

    ``disable`` lists subdomains to turn off (state absent) whatever the
    inventory says: that is how disable_scim.yml works.
    """
    result = []
    for realm in realms:
        if not isinstance(realm, dict) or "subdomain" not in realm:
            raise AnsibleFilterError("each realm needs a subdomain, got %r" % (realm,))
        item = {"client_name": default_client_name, "state": "present", "name_formatted_included": False}
        item.update((key, value) for key, value in realm.items() if value is not None)
        if item["subdomain"] in disable:
            item["state"] = "absent"
        result.append(item)
    return result


def scim_rejected_tokens(*token_maps: dict) -> list:
    """``{realm: token}`` maps -> ``rejected_tokens`` of zulip_scim_check."""
    return [{"realm": realm, "token": token} for tokens in token_maps for realm, token in sorted(tokens.items())]


def scim_clients(realms: list) -> list:
    """Realm items -> ``clients`` of zulip_scim_client."""
    return [
        {"realm": realm["subdomain"], "name": realm["client_name"], "state": realm.get("state", "present")}
        for realm in realms
    ]


def scim_config_realms(realms: list, tokens: dict) -> list:
    """Realm items -> ``realms`` of zulip_scim_config, each present one with its token.

    Keys left unset (None) are dropped so the module applies its own defaults
    and never writes a key the server's version may not know.
    """
    result = []
    for realm in realms:
        item = {key: realm[key] for key in _CONFIG_KEYS if realm.get(key) is not None}
        if item.get("state", "present") == "present":
            if realm["subdomain"] not in tokens:
                # Never name the tokens that do exist: only the missing realm.
                raise AnsibleFilterError("no token for realm %r" % (realm["subdomain"],))
            item["token"] = tokens[realm["subdomain"]]
        result.append(item)
    return result


class FilterModule:
    def filters(self) -> dict:
        return {
            "scim_realms": scim_realms,
            "scim_clients": scim_clients,
            "scim_config_realms": scim_config_realms,
            "scim_rejected_tokens": scim_rejected_tokens,
        }
