# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The filter that fills in the defaults of the scim role's realm list.

The items it returns are what zulip_scim_config and zulip_scim_client take as
their ``realms`` (module_utils/_argspec.py REALM_ITEM), so no other glue is needed.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


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


class FilterModule:
    def filters(self) -> dict:
        return {
            "scim_realms": scim_realms,
        }
