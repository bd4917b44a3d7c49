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

import json
import typing as t

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import REALM_ITEM
from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import name_formatted_included_of
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
DISABLE_ALL_NAME = "zulip_scim_disable_all_realms"


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


def _switch(value: t.Any, name: str) -> bool:
    """A true/false variable; ``-e name=true`` gives a string, so Ansible's words count, anything else is refused."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ZulipError("%s must be true or false, not %s" % (name, show_value(value))) from None


def _check_turn_off_choice(disable: list, disable_all: bool) -> None:
    """A list and the switch together: which did the operator mean? Neither is guessed."""
    if disable_all and disable:
        raise ZulipError("%s and %s: true are both set; set one of them: the list to turn some realms off, "
                         "the switch to turn off every realm the host lists. Nothing was changed"
                         % (DISABLE_NAME, DISABLE_ALL_NAME))


def _refuse_unnamed(listed: list, host: str) -> t.NoReturn:
    """A run that turns realms off (the role's disable entry point) names them, one way or the other.

    A retired token is never made again: a mistyped command that turned every realm off would cut
    every IdP off, each to be reconfigured by hand.
    """
    raise ZulipError(
        "turning SCIM off needs the realms named, and none were%s: name them, for example -e '%s' (%s lists: "
        "%s), or turn off every realm it lists with -e '%s'. Nothing was changed"
        % (" for " + host if host else "", json.dumps({DISABLE_NAME: ["acme"]}), host or REALMS_NAME,
           realm_list(listed), json.dumps({DISABLE_ALL_NAME: True})))


def scim_realms(realms: t.Any, default_client_name: str = "okta", disable: t.Any = (), host: str = "",
                disable_all: t.Any = False, disable_required: t.Any = False) -> list:
    """The role's realm list, checked, with every default filled in.

    ``disable`` lists subdomains to turn off (state absent) whatever the
    inventory says, ``disable_all`` turns off every one; with ``disable_required``
    (the role's disable entry point) one of them must be given. With ``host``, an
    empty list fails, naming that host. Every rule about these variables is
    applied here, in this order, so that the role needs no task for it.
    """
    try:
        disable = check_realm_names(list(disable) if isinstance(disable, tuple) else disable, DISABLE_NAME)
        disable_all = _switch(disable_all, DISABLE_ALL_NAME)
        _check_turn_off_choice(disable, disable_all)
        if not isinstance(realms, (list, tuple)):
            check_realm_items(realms, REALMS_NAME)  # fails, naming the type
        _unknown_keys(realms)
        result = []
        for realm in realms:
            if not isinstance(realm, dict):
                result.append(realm)  # check_realm_items names it below
                continue
            item = {"client_name": default_client_name, "state": "present"}
            item.update((key, value) for key, value in realm.items() if value is not None)
            if item.get("name_formatted_included") is None:  # what the realm's IdP sends
                item["name_formatted_included"] = name_formatted_included_of(item)
            if disable_all or item.get("subdomain") in disable:
                item["state"] = "absent"
            result.append(item)
        check_realm_items(result, REALMS_NAME)
        if host and not result:
            raise ZulipError('%s lists no realm for %s; list at least one (subdomain "" is the root domain)'
                             % (REALMS_NAME, host))
        listed = [item["subdomain"] for item in result]
        if _switch(disable_required, "disable_required") and not (disable or disable_all):
            _refuse_unnamed(listed, host)
        # A realm to turn off that the list does not have would be turned off nowhere: say so.
        check_realm_names(disable, DISABLE_NAME, listed, "listed in " + REALMS_NAME)
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
