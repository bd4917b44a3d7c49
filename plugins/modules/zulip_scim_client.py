#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_scim_client
short_description: Ensure Zulip 5.x SCIM client rows exist or are gone
version_added: 0.1.0
description:
  - On Zulip 5.x a realm's SCIM configuration needs a database row made by
    C(manage.py add_scim_client NAME -r SUBDOMAIN), whose name matches the C(scim_client_name)
    of the realm's C(SCIM_CONFIG) entry. This module makes those rows exist (or go away) for
    many realms at once.
  - It lists every realm and client with one read-only C(psql) query as the O(user) user against
    Zulip's local database C(zulip) (peer authentication, a read-only transaction; a fraction of a
    second, where C(manage.py) starts Django for seconds). When C(psql) is missing or cannot connect
    (a remote database), it warns and lists them with one C(manage.py shell) call instead. Then it runs
    C(add_scim_client) once per missing client, and deletes unwanted clients with one more
    C(manage.py shell) call. C(add_scim_client) is not idempotent on the server (a second run
    fails with an IntegrityError), so it is only ever run for a client the listing did not show.
  - Zulip 6.0 and later have no SCIM client table; there the module changes nothing, runs no
    C(manage.py) and says why.
  - C(manage.py) refuses root, so every call runs as the O(user) user.
  - Before it adds or deletes a row it looks at Zulip's deployment lock, and waits while a Zulip upgrade
    runs (see O(deploy_lock_timeout)).
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.changing_module
  - zulip_ops.zulip._shared.deploy_lock
  - zulip_ops.zulip._shared.realms
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.version
  - zulip_ops.zulip._shared.user
  - zulip_ops.zulip._shared.manage
attributes:
  check_mode:
    details: Lists the clients (a read-only query) and reports what it would add or delete.
notes:
  - Of each item of O(realms) only O(realms[].subdomain), O(realms[].client_name) and O(realms[].state)
    matter here (the SCIM client row); the other keys belong to the realm's C(SCIM_CONFIG) entry, so the
    same list serves M(zulip_ops.zulip.zulip_scim_config). A realm may be listed more than once, to remove
    an old client and add a new one.
seealso:
  - module: zulip_ops.zulip.zulip_scim_config
  - module: zulip_ops.zulip.zulip_scim_preflight
"""

EXAMPLES = r"""
- name: SCIM clients for two realms (Zulip 5.x; a no-op on 6.0+)
  zulip_ops.zulip.zulip_scim_client:
    realms:
      - subdomain: acme
        client_name: okta
      - subdomain: ""
        client_name: entra-id

- name: Remove a client
  zulip_ops.zulip.zulip_scim_client:
    realms:
      - subdomain: beta
        client_name: okta
        state: absent
"""

RETURN = r"""
created:
  description: Clients added (or that would be added in check mode).
  returned: success
  type: list
  elements: dict
  sample: [{"subdomain": "acme", "client_name": "okta"}]
deleted:
  description: Clients deleted (or that would be deleted in check mode).
  returned: success
  type: list
  elements: dict
client_table:
  description: Whether this Zulip version has SCIM client rows at all.
  returned: success
  type: bool
listing:
  description: How the clients were listed, the C(psql) call (rc, seconds; C(error) when it could not answer
    and C(manage.py shell) was used instead).
  returned: on Zulip 5.x
  type: dict
  sample: {"tool": "psql", "rc": 0, "seconds": 0.13}
manage_calls:
  description: The C(manage.py) calls made, with exit codes and durations in seconds.
  returned: success
  type: list
  elements: dict
  sample: [{"args": ["shell", "-c", "..."], "rc": 0, "seconds": 2.1}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_clients import (
    MANAGE_LIST_CODE as LIST_CODE,
    OUTPUT_MARKER,
    parse_manage as parse_listing,
    read_listing,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ManageRunner,
    ZulipError,
    check_realm_items,
    has_scim_client_table,
    parse_version,
    read_version,
    realm_label,
)

__all__ = ["LIST_CODE", "OUTPUT_MARKER", "parse_listing"]  # the manage.py fallback, for its tests


def delete_code(clients: list[tuple[str, str]]) -> str:
    """One ``manage.py shell`` program that deletes every client given."""
    lines = ["from zerver.models import SCIMClient"]
    for realm, name in clients:
        lines.append("SCIMClient.objects.filter(realm__string_id=%r, name=%r).delete()" % (realm, name))
    return "\n".join(lines) + "\n"


def clients_of(realms: list[dict]) -> list[dict]:
    """(realm, name, state) of each realm item's SCIM client, checked before anything runs."""
    check_realm_items(realms, "realms", one_per_realm=False)
    return [{"realm": r["subdomain"], "name": r["client_name"], "state": r["state"]} for r in realms]


def plan(clients: list[dict], realms: list[str], existing: set[tuple[str, str]]) -> tuple[list, list]:
    """The clients to add and to delete; fails on unknown realms before any change."""
    missing_realms = sorted({c["realm"] for c in clients if c["state"] == "present"} - set(realms))
    if missing_realms:
        raise ZulipError(
            "realm(s) %s do not exist on this Zulip server; it has: %s"
            % (", ".join(realm_label(r) for r in missing_realms), ", ".join(realm_label(r) for r in realms))
        )
    to_add = [(c["realm"], c["name"]) for c in clients if c["state"] == "present" and (c["realm"], c["name"]) not in existing]
    to_delete = [(c["realm"], c["name"]) for c in clients if c["state"] == "absent" and (c["realm"], c["name"]) in existing]
    return to_add, to_delete


def as_dicts(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"subdomain": realm, "client_name": name} for realm, name in pairs]


def render_rows(rows: set[tuple[str, str]]) -> str:
    return "".join("%s\t%s\n" % (realm_label(realm), name) for realm, name in sorted(rows))


def apply(runner: ManageRunner, to_add: list, to_delete: list, result: dict) -> None:
    """Make the changes, reporting only those that really happened."""
    result.update(created=[], deleted=[])
    for realm, name in to_add:
        runner.run(["add_scim_client", name, "-r", realm])
        result["created"].extend(as_dicts([(realm, name)]))
        result["changed"] = True
    if to_delete:
        runner.run(["shell", "-c", delete_code(to_delete)])
        result["deleted"] = as_dicts(to_delete)


ARGUMENT_SPEC = argument_spec(("realms", "version", "user", "manage_timeout", "deploy_lock_timeout"))


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    runner = ManageRunner(module, module.params["deploy_path"], module.params["user"], module.params["manage_timeout"])
    result: dict = {"changed": False, "created": [], "deleted": [], "manage_calls": runner.calls}
    try:
        clients = clients_of(module.params["realms"])
        version_text = module.params["version"] or read_version(module.params["deploy_path"])
        result["client_table"] = has_scim_client_table(parse_version(version_text))
        if not result["client_table"]:
            module.exit_json(
                msg="Zulip %s has no SCIM client table (removed in 6.0): the SCIM_CONFIG entry is the whole "
                "configuration, nothing to do" % version_text,
                **result,
            )
        (realms, existing), result["listing"] = read_listing(module, runner)
        to_add, to_delete = plan(clients, realms, existing)
        result.update(created=as_dicts(to_add), deleted=as_dicts(to_delete))
        if module._diff:
            after = (existing | set(to_add)) - set(to_delete)
            result["diff"] = {"before": render_rows(existing), "after": render_rows(after),
                              "before_header": "SCIM clients", "after_header": "SCIM clients"}
        if to_add or to_delete:
            # Not while a Zulip upgrade runs (it migrates the database the rows are in); check mode only warns.
            deploy_lock.honour(module, module.params["deploy_path"], module.params["deploy_lock_timeout"],
                               "no SCIM client was added or deleted")
        if not module.check_mode:
            # Replaces the plan with what really happened, also when a call fails half-way.
            apply(runner, to_add, to_delete, result)
        result["changed"] = bool(result["created"] or result["deleted"])
    except ZulipError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
