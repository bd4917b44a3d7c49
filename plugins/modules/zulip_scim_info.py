#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The host part: this module reads the Zulip host. Its action plugin
# (plugins/action/zulip_scim_info.py) runs it and adds what the token store knows on the
# controller; the store options never reach the host.

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_scim_info
short_description: Show a Zulip host's SCIM state per realm, without changing anything
version_added: 0.2.0
description:
  - Per realm, tells whether SCIM is C(managed) (its C(SCIM_CONFIG) entry is in the block this collection writes),
    C(hand-written) (an entry outside that block) or C(off) (no entry in force), read the way Python runs
    C(settings.py); where the entry takes its token from (a C(get_secret) name and whether C(zulip-secrets.conf)
    sets it, or a token written into C(settings.py)); on Zulip 5.x, the realm's SCIM client rows; and, from the
    controller's token store, the token's state and age.
  - Never returns, logs or compares a token. Never writes, on the host or in the store, and never restarts
    anything, also outside check mode.
  - The realms shown are those of O(realms), every realm in force in C(settings.py), every realm whose token secret
    (C(scim_bearer_token_<subdomain>)) is set, every realm with a SCIM client row (5.x) and every realm the store
    holds for the host.
  - On Zulip 5.x the client rows are read with one read-only C(psql) query as the C(zulip) user; when C(psql) cannot
    answer, with C(manage.py shell) (seconds) and a warning. O(clients=false) skips both.
  - C(settings.py) belongs to the C(zulip) user; what it holds is read as data. Realm keys that are no valid
    subdomain are listed in RV(ignored_keys), writes of C(SCIM_CONFIG) this module cannot follow
    (C(SCIM_CONFIG.update(...)), one inside an C(if)) by line in RV(unfollowed_lines), each with a warning.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.info_module
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.version
  - zulip_ops.zulip._shared.user
  - zulip_ops.zulip._shared.manage
  - zulip_ops.zulip._shared.token_store
options:
  realms:
    description:
      - Subdomains to show also when they have no SCIM state at all (then C(off)). V("") is the root-domain realm.
    type: list
    elements: str
    default: []
  clients:
    description: On Zulip 5.x, read the SCIM client rows.
    type: bool
    default: true
  token_store:
    description:
      - Read the token store (O(store), O(path), O(hashicorp)) on the controller for each realm's token state and age.
      - A store that cannot be read (no vault password given, say) gives a warning and RV(realms) without
        C(store) values; the host's part is still returned.
    type: bool
    default: true
  host:
    description: The host's name in the token store. Defaults to C(inventory_hostname).
    type: str
seealso:
  - module: zulip_ops.zulip.zulip_scim_preflight
    description: Checks a host before a run and tells whether the run has anything to change.
  - module: zulip_ops.zulip.zulip_scim_token
    description: Its O(zulip_ops.zulip.zulip_scim_token#module:audit=true) lists the store's entries alone.
"""

EXAMPLES = r"""
- name: Show the SCIM state of every realm of the host
  zulip_ops.zulip.zulip_scim_info:
  register: scim

- name: Say which realms are hand-written or have a token older than 180 days
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.state }}, token {{ item.value.store.age_days | default('not in the store') }} days old"
  loop: "{{ scim.realms | dict2items }}"
  when: item.value.state == 'hand-written' or (item.value.store.age_days | default(0)) > 180

- name: Only the host, without opening the token store (no vault password needed)
  zulip_ops.zulip.zulip_scim_info:
    realms: [acme]
    token_store: false
"""

RETURN = r"""
realms:
  description:
    - Per realm (keyed by subdomain, V("") the root domain), its state on the host and in the store.
    - C(state) is C(managed), C(hand-written) or C(off); C(line) the line of its entry in C(settings.py);
      C(client_name) its C(scim_client_name).
    - C(token) (null when C(off)) says how the entry gives its token, C(kind) C(secret) (a C(get_secret) name,
      C(secret)), C(literal) (the token written in C(settings.py); move it with a takeover) or C(other), and
      whether it is C(set).
    - C(unused_secret) names this collection's token secret of the realm when it is set but no entry in force
      uses it.
    - C(clients) lists the realm's SCIM client names, on Zulip 5.x only (null otherwise, or with O(clients=false)).
    - C(store) is the store's C(state) (C(active), C(pending) while a rotation is under way, C(retired)),
      C(created), C(age_days) and C(replaced_tokens) for the realm, or null when the store holds nothing for it
      or was not read.
  returned: success
  type: dict
  sample:
    acme:
      state: managed
      line: 812
      client_name: okta
      token: {kind: secret, secret: scim_bearer_token_acme, set: true}
      unused_secret: null
      clients: null
      store: {state: active, created: "2026-11-28T16:40:00Z", age_days: 9, replaced_tokens: 1}
    beta:
      state: hand-written
      line: 790
      client_name: entra
      token: {kind: literal, secret: null, set: true}
      unused_secret: null
      clients: null
      store: null
version:
  description: The Zulip version, from C(version.py) unless O(version) was given.
  returned: success
  type: str
  sample: "9.2"
client_table:
  description: Whether this Zulip version keeps SCIM client rows (5.x).
  returned: success
  type: bool
managed_block:
  description: First and last line of the managed block in C(settings.py) (its markers), or null.
  returned: success
  type: list
  elements: int
  sample: [805, 820]
unfollowed_lines:
  description: Lines of C(settings.py) that change C(SCIM_CONFIG) in a way this module does not evaluate.
  returned: success
  type: list
  elements: int
  sample: []
ignored_keys:
  description: C(SCIM_CONFIG) keys that are no valid subdomain (shortened), which no realm can use.
  returned: success
  type: list
  elements: str
  sample: []
store:
  description: The token store that was read, or null.
  returned: success
  type: str
  sample: /srv/ansible/inventory/.zulip_scim_tokens.vault.yml
manage_calls:
  description: The C(manage.py) calls made (only when C(psql) could not list the client rows).
  returned: success
  type: list
  elements: dict
  sample: []
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_clients import read_listing
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_state import (
    SettingsState,
    describe_realm,
    read_settings_state,
    realms_with_token_secrets,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import SecretsFile, read_secrets_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import read_zulip_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import STORE_ARGUMENT_SPEC
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ManageRunner,
    ZulipError,
    check_subdomains,
    client_name_problem,
    has_scim_client_table,
    is_valid_subdomain,
    parse_version,
    read_version,
    realm_label,
    show_value,
)

ARGUMENT_SPEC = argument_spec(
    ("version", "user", "manage_timeout"),
    realms={"type": "list", "elements": "str", "default": []},
    clients={"type": "bool", "default": True},
    # Used by the action plugin on the controller; the host never gets them.
    token_store={"type": "bool", "default": True},
    host={"type": "str"},
    **STORE_ARGUMENT_SPEC,
)


def client_rows(module: AnsibleModule, runner: ManageRunner) -> dict[str, list[str]]:
    """The SCIM client names per realm (5.x). The rows are the zulip user's data: a name no client could have
    is shown shortened, a realm that is no subdomain left out."""
    (_realms, existing), _call = read_listing(module, runner)
    rows: dict[str, list[str]] = {}
    for realm, name in sorted(existing):
        if is_valid_subdomain(realm):
            rows.setdefault(realm, []).append(name if client_name_problem(name) is None else show_value(name))
    return rows


def shown_realms(asked: list[str], settings: SettingsState, secrets: SecretsFile | None,
                 clients: dict[str, list[str]] | None) -> list[str]:
    found = set(asked) | set(settings.in_force) | set(realms_with_token_secrets(secrets)) | set(clients or {})
    return sorted(found)


def describe_host(module: AnsibleModule, runner: ManageRunner) -> dict[str, t.Any]:
    params = module.params
    check_subdomains(params["realms"])
    version_text = params["version"] or read_version(params["deploy_path"])
    client_table = has_scim_client_table(parse_version(version_text))
    settings = read_settings_state(read_zulip_file(params["settings_path"]), params["settings_path"])
    secrets = read_secrets_file(params["secrets_path"])
    clients = client_rows(module, runner) if client_table and params["clients"] else None
    realms = {}
    for realm in shown_realms(params["realms"], settings, secrets, clients):
        realms[realm] = describe_realm(realm, settings, secrets)
        realms[realm]["clients"] = (clients or {}).get(realm, []) if clients is not None else None
    for line in settings.unfollowed_lines:
        module.warn("%s:%d changes SCIM_CONFIG in a way zulip_scim_info does not evaluate; the states shown may "
                    "be incomplete" % (params["settings_path"], line))
    for key in settings.bad_keys:
        module.warn("SCIM_CONFIG in %s has the key %s, which is no valid subdomain" % (params["settings_path"], key))
    for realm, described in realms.items():
        if (described["token"] or {}).get("kind") == "literal":
            module.warn("realm %s has its bearer token written into %s; move it into %s with a takeover "
                        "(docs/takeover.md)" % (realm_label(realm), params["settings_path"], params["secrets_path"]))
    return {"realms": realms, "version": version_text, "client_table": client_table,
            "managed_block": list(settings.block) if settings.block else None,
            "unfollowed_lines": settings.unfollowed_lines, "ignored_keys": settings.bad_keys}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    runner = ManageRunner(module, module.params["deploy_path"], module.params["user"], module.params["manage_timeout"])
    try:
        result = describe_host(module, runner)
    except ZulipError as exc:
        module.fail_json(msg=str(exc), manage_calls=runner.calls)
    module.exit_json(changed=False, store=None, manage_calls=runner.calls, **result)


if __name__ == "__main__":
    main()
