# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The filters that check and fill in the scim role's realm variables.

The items ``scim_realms`` returns are what zulip_scim_config and zulip_scim_client
take as their ``realms`` (module_utils/_argspec.py REALM_ITEM), so no other glue
is needed. Both filters check with the collection's one rule set
(module_utils/_zulip.py), so the role stops on the controller, before it touches
a host, with the message a module would give.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import REALM_ITEM
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_clients import clients_to_change
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_realm_items,
    check_realm_names,
    realm_list,
    show_value,
)

REALMS_NAME = "zulip_scim_realms"
DISABLE_NAME = "zulip_scim_disable_realms"


def _unknown_keys(realms: list) -> None:
    """A key no module takes is a typo (``clientname``) that would otherwise be dropped."""
    for index, realm in enumerate(realms):
        if not isinstance(realm, dict):
            continue  # check_realm_items names it
        unknown = sorted(str(key) for key in realm if key not in REALM_ITEM)
        if unknown:
            raise ZulipError("%s[%d]: unknown key(s) %s; a realm item has only %s"
                             % (REALMS_NAME, index, ", ".join(show_value(k) for k in unknown),
                                ", ".join(REALM_ITEM)))


def scim_realms(realms: t.Any, default_client_name: str = "okta", disable: t.Any = (), host: str = "") -> list:
    """The role's realm list, checked, with every default filled in.

    ``disable`` lists subdomains to turn off (state absent) whatever the
    inventory says: that is how disable_scim.yml works; each must be in the list.
    With ``host``, an empty list fails, naming that host. Every rule about the two
    lists is applied here, in this order, so that the role needs no task for it.
    """
    try:
        disable = check_realm_names(list(disable) if isinstance(disable, tuple) else disable, DISABLE_NAME)
        if not isinstance(realms, (list, tuple)):
            check_realm_items(realms, REALMS_NAME)  # fails, naming the type
        _unknown_keys(realms)
        result = []
        for realm in realms:
            if not isinstance(realm, dict):
                result.append(realm)  # check_realm_items names it below
                continue
            item = {"client_name": default_client_name, "state": "present", "name_formatted_included": False}
            item.update((key, value) for key, value in realm.items() if value is not None)
            if item.get("subdomain") in disable:
                item["state"] = "absent"
            result.append(item)
        check_realm_items(result, REALMS_NAME)
        if host and not result:
            raise ZulipError('%s lists no realm for %s; list at least one (subdomain "" is the root domain)'
                             % (REALMS_NAME, host))
        # A realm to turn off that the list does not have would be turned off nowhere: say so.
        check_realm_names(disable, DISABLE_NAME, [item["subdomain"] for item in result], "listed in " + REALMS_NAME)
    except ZulipError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return result


def scim_realm_names(value: t.Any, name: str, allowed: t.Any = None, allowed_what: str = "") -> list:
    """``value`` (the variable ``name``) as a list of realm subdomains, each valid and, with ``allowed``, one of those."""
    try:
        return check_realm_names(value, name, None if allowed is None else list(allowed), allowed_what)
    except ZulipError as exc:
        raise AnsibleFilterError(str(exc)) from None


def scim_realm_labels(subdomains: t.Any) -> str:
    """Subdomains in plain words for a message: ``acme, "" (root domain)``."""
    if isinstance(subdomains, str) or not isinstance(subdomains, (list, tuple)):
        raise AnsibleFilterError("scim_realm_labels: expected a list of subdomains, not %s" % show_value(subdomains))
    return realm_list([str(subdomain) for subdomain in subdomains]) if subdomains else ""


def scim_clients_to_change(realms: list, listing: t.Any) -> bool:
    """Whether zulip_scim_client must run (module_utils/_scim_clients.py clients_to_change)."""
    return clients_to_change(realms, listing)


class FilterModule:
    def filters(self) -> dict:
        return {
            "scim_clients_to_change": scim_clients_to_change,
            "scim_realms": scim_realms,
            "scim_realm_names": scim_realm_names,
            "scim_realm_labels": scim_realm_labels,
        }
