#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_scim_preflight
short_description: Check a Zulip server before a SCIM run, and tell whether the run has anything to change
version_added: 0.2.0
description:
  - Called C(zulip_ops.zulip.zulip_info) before 0.2.0; that name still works, with a deprecation warning, until 1.0.0.
    To see a host's SCIM state without planning a run, use M(zulip_ops.zulip.zulip_scim_info).
  - Reads the deployment path, the Zulip version (from C(version.py), never by running Python),
    C(EXTERNAL_HOST) from C(settings.py), where the host serves its own front end (from
    C(zulip.conf), see O(api_url)) and what this version supports for SCIM.
  - Optionally checks that a list of realms exists. It asks the server's own SCIM endpoint first
    (an unknown subdomain answers 404, every existing realm something else), which costs no
    C(manage.py) call; only when a realm looks missing or the server does not answer does it run
    C(manage.py list_realms) as the C(zulip) user, and then it fails with the realms the server has.
  - Optionally tells whether a run has anything to change on the host at all, and proves the running
    configuration when it has not (O(check_unchanged)), so that such a run needs no other module run.
  - On a docker-zulip container (found by root-owned files of its image, C(/sbin/entrypoint.sh) and
    C(/root/zulip/README.custom_zulip_files.md)) the module fails before it reads or changes anything else, saying
    why, unless the edits would outlive a restart of the container - C(MANUAL_CONFIGURATION) set in the environment
    the container started with, O(settings_path) and O(secrets_path) on its C(/data) volume
    (C(LINK_SETTINGS_TO_DATA)), and no C(SECRETS_scim_bearer_token_*) variable or C(zulip__scim_bearer_token_*)
    Docker secret. Otherwise docker-zulip's entrypoint writes C(settings.py) afresh at every start. The collection's
    C(docs/docker-zulip.md) says how to get the same result through docker-zulip's own variables.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.info_module
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.api
  - zulip_ops.zulip._shared.manage
  - zulip_ops.zulip._shared.unchanged_check
attributes:
  check_mode:
    details:
      - This action does not modify state; it does the same in check mode, but for O(deploy_lock_timeout), which
        in check mode looks once and warns instead of waiting.
options:
  realms:
    description:
      - Subdomains of realms that must exist. V("") is the root-domain realm.
      - The module fails, listing the realms the server has, when one of them does not exist.
    type: list
    elements: str
    default: []
  check_config:
    description:
      - Realm items as M(zulip_ops.zulip.zulip_scim_config) takes them in O(zulip_ops.zulip.zulip_scim_config#module:realms).
        The module fails, the way that module would, when a present one sets a key this Zulip version
        does not read (C(create_guests_without_streams) before 9.0, C(custom_profile_field_map) before 12.0).
        Lets a play stop before it changes anything.
      - A present item whose C(custom_profile_field_map) is not yet what C(settings.py) holds (needs
        O(check_settings=true) to know; otherwise every map is checked) has each field it names looked up in the
        realm, in one C(manage.py shell) call as the C(zulip) user; the module fails, listing the realm's fields,
        when one does not exist, because Zulip refuses every SCIM request that sets it (HTTP 400). A run that
        changes no map makes no call.
      - Only C(subdomain), C(state) and those keys are looked at.
    type: list
    elements: dict
    default: []
  check_settings:
    description:
      - Also fail unless M(zulip_ops.zulip.zulip_scim_config) could edit O(settings_path), that is, the
        file compiles, its managed block's markers are intact, and no C(SCIM_CONFIG) is set outside the
        block. Lets a play stop before it changes anything.
    type: bool
    default: false
  takeover:
    description:
      - With O(check_settings=true), accept a C(SCIM_CONFIG) written by hand outside the block when
        M(zulip_ops.zulip.zulip_scim_config) could take it over with
        O(zulip_ops.zulip.zulip_scim_config#module:takeover=true) for the realm items of O(check_config)
        (every realm in force listed, each token known and the managed keys agreeing); fail otherwise,
        naming every problem. Returns what would be taken over in RV(takeover).
      - Without it, a hand-written C(SCIM_CONFIG) fails, naming the lines, the realms and the role variable
        C(zulip_scim_takeover).
    type: bool
    default: false
  scim_clients:
    description:
      - On Zulip 5.x, also list the realms and SCIM client rows, with one read-only C(psql) query as the
        C(zulip) user against Zulip's local database C(zulip) (a fraction of a second; no C(manage.py)).
        A play then needs no M(zulip_ops.zulip.zulip_scim_client) run when every client is as it should be.
      - When C(psql) is missing or cannot connect, RV(scim_clients) is null and nothing fails; the module that
        changes the rows lists them again, with C(manage.py) if it has to.
    type: bool
    default: false
  require_front_end:
    description:
      - Fail when nothing answers at the SCIM API URL while checking O(realms), instead of warning and asking
        C(manage.py) (which still answers whether the realms exist).
      - For a play that proves the tokens through the front end after a change; it stops before that change,
        since the check after it could only fail.
    type: bool
    default: false
  check_unchanged:
    description:
      - Also tell whether the run has anything left to change on this host (RV(unchanged)). It plans, without
        writing, what M(zulip_ops.zulip.zulip_scim_config) would do with the realm items of O(check_config) as its
        O(zulip_ops.zulip.zulip_scim_config#module:realms), and O(tokens), O(exclusive) and O(takeover), the same
        plan from the same code; on Zulip 5.x also whether M(zulip_ops.zulip.zulip_scim_client) would change a
        row (needs O(scim_clients=true)).
      - When nothing would change and no earlier run was left unproven, prove it right away, as
        O(zulip_ops.zulip.zulip_scim_config#module:check_unchanged=true) would. Each present realm's token from the
        secrets file must get HTTP 200, no token and a random one HTTP 401, every token of O(rejected_tokens)
        HTTP 401. Those answers also prove that the realms of O(realms) exist, so they are not asked again.
      - A run with nothing to change then needs this one module run per host and nothing else. Whatever keeps
        RV(unchanged) false (a change to make, a plan that would fail, a failed check) fails nothing here; the
        modules that make the change say it, with their own messages, after this one.
    type: bool
    default: false
  tokens:
    description:
      - With O(check_unchanged=true), each present realm's bearer token by subdomain, as
        O(zulip_ops.zulip.zulip_scim_config#module:tokens) takes them. Never shown, never written.
    type: dict
    default: {}
  exclusive:
    description:
      - With O(check_unchanged=true), as O(zulip_ops.zulip.zulip_scim_config#module:exclusive).
    type: bool
    default: false
  deploy_lock_timeout:
    description:
      - When set, look at Zulip's deployment lock before reading anything (the directory C(lock) that
        C(upgrade-zulip) makes beside O(deploy_path), C(/home/zulip/deployments/lock), while it upgrades), and
        wait at most this many seconds while it exists; then fail, naming it. V(0) looks once. For a play that
        plans a change, so that it neither plans against a server being upgraded nor changes anything during the upgrade.
      - The module only looks, never makes or removes it. Anything but a directory at that name (a link, a file)
        fails at once and is not followed.
      - In check mode it looks once, without waiting, and warns.
      - When not set, the lock is not looked at.
    type: int
seealso:
  - module: zulip_ops.zulip.zulip_scim_client
  - module: zulip_ops.zulip.zulip_scim_config
"""

EXAMPLES = r"""
- name: Read the Zulip server and check that two realms exist
  zulip_ops.zulip.zulip_scim_preflight:
    realms:
      - acme
      - ""
  register: zulip

- name: Warn about CVE-2022-41914
  ansible.builtin.debug:
    msg: "Zulip {{ zulip.version }} compares SCIM tokens in non-constant time"
  when: not zulip.scim.constant_time_tokens

- name: Tell whether anything is to change, and prove the running configuration when nothing is
  zulip_ops.zulip.zulip_scim_preflight:
    realms: [acme]
    check_config: [{subdomain: acme, client_name: okta}]
    check_settings: true
    check_unchanged: true
    tokens: {acme: "{{ acme_token }}"}
  register: zulip

- name: Write and restart only when something is to change
  zulip_ops.zulip.zulip_scim_config:
    realms: [{subdomain: acme, client_name: okta}]
    tokens: {acme: "{{ acme_token }}"}
  notify: Restart Zulip
  when: not zulip.unchanged
"""

RETURN = r"""
takeover:
  description:
    - With O(check_settings=true), what a takeover would move from a hand-written C(SCIM_CONFIG) (see
      O(takeover)) - the realms, the realms dropped (V(absent)), the lines of the assignments and the secrets
      that would be renamed. Empty lists when there is nothing to take over. Never a token.
  returned: when O(check_settings=true)
  type: dict
  sample: {"realms": ["acme"], "dropped": [], "lines": [42], "renamed_secrets": {}}
deploy_path:
  description: The deployment directory that O(deploy_path) resolves to.
  returned: success
  type: str
  sample: /home/zulip/deployments/2026-11-28-15-05-00
version:
  description: C(ZULIP_VERSION) of the deployment.
  returned: success
  type: str
  sample: "9.0"
version_info:
  description: Major and minor version numbers.
  returned: success
  type: list
  elements: int
  sample: [9, 0]
api_url:
  description:
    - The URL of the host's own front end that this module used, O(api_url) or derived from
      O(zulip_conf_path). Pass it on to M(zulip_ops.zulip.zulip_scim_check).
  returned: success
  type: str
  sample: http://127.0.0.1:9991
external_host:
  description: C(EXTERNAL_HOST) used to name realms; empty when it could not be read.
  returned: success
  type: str
  sample: zulip.example.com
settings_external_host:
  description:
    - C(EXTERNAL_HOST) as C(settings.py) says it, even when O(external_host) is given; empty when it is not a
      plain string that is a host name.
    - M(zulip_ops.zulip.zulip_scim_idp) refuses to point an IdP at the inventory's host when this differs.
  returned: success
  type: str
  sample: zulip.example.com
scim:
  description: What this version supports for SCIM.
  returned: success
  type: dict
  contains:
    client_table:
      description: Whether SCIM clients are database rows made by C(manage.py add_scim_client) (5.x).
      type: bool
    supported_keys:
      description: Optional C(SCIM_CONFIG) keys this version reads.
      type: list
      elements: str
    constant_time_tokens:
      description: False on 5.0 to 5.6, which are affected by CVE-2022-41914.
      type: bool
    config_default:
      description: Whether the server defines an empty C(SCIM_CONFIG) itself (11.0+).
      type: bool
realms:
  description: For each realm of O(realms), whether it exists.
  returned: success
  type: dict
  sample: {"acme": true, "": true}
realms_available:
  description: The realms C(manage.py list_realms) reported, when it had to be run.
  returned: when C(manage.py list_realms) ran
  type: list
  elements: str
  sample: ["zulipinternal", "acme", ""]
scim_clients:
  description:
    - With O(scim_clients) on Zulip 5.x, every realm (C(realms), string_ids) and SCIM client row (C(clients),
      [subdomain, name] pairs) of the database; null on 6.0+, without O(scim_clients), or when C(psql) could
      not answer (C(scim_clients_error) says why).
  returned: success
  type: dict
  sample: {"realms": ["zulipinternal", "acme"], "clients": [["acme", "okta"]]}
unchanged:
  description:
    - With O(check_unchanged=true), whether nothing is left to change on the host and the running Zulip was
      proven to serve it (RV(checks)). V(false) without that option.
  returned: success
  type: bool
  sample: true
pending:
  description:
    - With O(check_unchanged=true) and RV(unchanged=false), why, in words (never a token), for example
      C(settings.py or the secrets file would change).
  returned: when RV(unchanged=false) with O(check_unchanged=true)
  type: str
  sample: /etc/zulip/settings.py or /etc/zulip/zulip-secrets.conf would change
checks:
  description:
    - With RV(unchanged=true), the HTTP status each request got, per realm, as
      RV(zulip_ops.zulip.zulip_scim_check#module:realms) of M(zulip_ops.zulip.zulip_scim_check).
  returned: when RV(unchanged=true)
  type: dict
  sample: {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401}}
manage_calls:
  description: The C(manage.py) calls this module made, with their exit codes and durations.
  returned: success
  type: list
  elements: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _docker_zulip as docker_zulip
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_check as scim_check
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _tls as tls
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import API_OPTIONS, argument_spec, with_realm_defaults
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import api_url_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _takeover
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import read_secrets_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._config_plan import make_plan, weak_token_warnings
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_clients import clients_to_change, read_with_psql
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import SettingsFile, external_host_of, read_zulip_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    CONSTANT_TIME_TOKEN_SINCE,
    OPTIONAL_KEY_SINCE,
    SCIM_CONFIG_DEFAULT_SINCE,
    ManageRunner,
    ZulipError,
    check_optional_keys,
    has_scim_client_table,
    optional_keys_of,
    check_subdomains,
    parse_version,
    read_version,
    realm_label,
)

SYSTEM_REALM = "zulipinternal"


def parse_list_realms(output: str) -> list[str]:
    """string_ids from ``manage.py list_realms``'s fixed-width table.

    The columns are cut by the header's positions because the root-domain
    realm's string_id is empty, so splitting on white space would shift it.
    """
    lines = output.splitlines()
    header_index = next((i for i, line in enumerate(lines) if "string_id" in line and line.lstrip().startswith("id")), None)
    if header_index is None:
        raise ZulipError("manage.py list_realms printed no realm table")
    header = lines[header_index]
    start = header.index("string_id")
    realms = []
    for line in lines[header_index + 1:]:
        if not line.strip() or not line.split()[0].isdigit():
            continue
        realms.append(_string_id_at(line, start))
    return realms


def _string_id_at(line: str, start: int) -> str:
    # A string_id has no spaces but may be wider than its column, so take the
    # whole word that starts there; the root realm shows as blank or as ''.
    if not line[start:start + 1].strip():
        return ""
    word = line[start:].split()[0]
    return "" if word in ("''", '""') else word


def scim_capabilities(version: tuple[int, int]) -> dict:
    return {
        "client_table": has_scim_client_table(version),
        "supported_keys": sorted(k for k, since in OPTIONAL_KEY_SINCE.items() if version >= since),
        "constant_time_tokens": version >= CONSTANT_TIME_TOKEN_SINCE,
        "config_default": version >= SCIM_CONFIG_DEFAULT_SINCE,
    }


def probe_realms(params: dict, api_url: str, realms: list[str], external_host: str) -> tuple[dict, str]:
    """True/False per realm from the SCIM endpoint (None when it did not tell), and any network error."""
    found, no_answer = {}, ""
    for subdomain in realms:
        result = scim_http.probe(
            api_url,
            scim_http.realm_host(subdomain, external_host),
            validate_certs=params["validate_certs"],
            timeout=params["timeout"],
            ca_path=params["ca_path"],
        )
        no_answer = no_answer or result.error
        # A restarting server (502-504 from nginx) says nothing about the realm.
        undecided = result.status is None or result.status in scim_http.TRANSIENT_STATUSES
        found[subdomain] = None if undecided else result.status != 404
    return found, no_answer


def check_realms(module: AnsibleModule, runner: ManageRunner, external_host: str, result: dict) -> None:
    realms = module.params["realms"]
    check_subdomains(realms)
    found, no_answer = dict.fromkeys(realms), ""
    if external_host:
        found, no_answer = probe_realms(module.params, result["api_url"], realms, external_host)
    if no_answer:
        # manage.py still answers the question, but every later SCIM check would fail.
        if module.params["require_front_end"]:
            raise ZulipError(scim_http.no_front_end_message(result["api_url"], no_answer)
                             + "; nothing was changed")
        module.warn(scim_http.no_front_end_message(result["api_url"], no_answer))
    if all(found.values()):
        result["realms"] = found
        return
    # The web answer was not conclusive: ask the database, which is authoritative.
    available = parse_list_realms(runner.run(["list_realms"])[1])
    result["realms_available"] = available
    result["realms"] = {r: r in available for r in realms}
    missing = [r for r in realms if r not in available]
    if missing:
        raise ZulipError(
            "realm(s) %s do not exist on this Zulip server; it has: %s"
            % (", ".join(realm_label(r) for r in missing),
               ", ".join(realm_label(r) for r in available if r != SYSTEM_REALM) or "no realms")
        )


def deployment_directory(deploy_path: str) -> str:
    """The deployment ``deploy_path`` (the zulip-owned ``current`` link) names, read as data, never followed."""
    try:
        with safe_dir.open_deployment(deploy_path) as deployment:
            return deployment.path
    except OSError as exc:
        raise ZulipError("no Zulip deployment at %s: %s" % (deploy_path, exc.strerror or exc)) from None


def check_settings(path: str, takeover: bool = False) -> SettingsFile:
    """Fails the way zulip_scim_config would, before anything is changed."""
    return SettingsFile(read_zulip_file(path), path, takeover=takeover)


# -- custom_profile_field_map: Zulip refuses every request touching a field the realm lacks (HTTP 400)

PROFILE_FIELDS_MARKER = "ZULIP_OPS_PROFILE_FIELDS "
PROFILE_FIELDS_QUERY = (
    "import json\n"
    "from zerver.models import CustomProfileField, get_realm\n"
    "print(%r + json.dumps({s: [f.name for f in CustomProfileField.objects.filter(realm=get_realm(s))]\n"
    "                       for s in json.loads(%r)}))\n"
)


def profile_field_var_name(name: str) -> str:
    """How custom_profile_field_map names a field: its name lower-cased, spaces as "_"."""
    return name.lower().replace(" ", "_")


def changed_field_maps(items: list[dict], settings: SettingsFile | None) -> dict[str, dict]:
    """The present realms whose custom_profile_field_map is set and not yet what the block holds.

    Only those are checked, so a run that changes nothing pays no manage.py call.
    """
    current = settings.entries if settings is not None else {}
    changed = {}
    for item in items:
        mapping = item.get("custom_profile_field_map")
        if item.get("state", "present") != "present" or not mapping:
            continue
        subdomain = item.get("subdomain", "")
        if getattr(current.get(subdomain), "custom_profile_field_map", None) != mapping:
            changed[subdomain] = mapping
    return changed


def profile_field_names(runner: ManageRunner, subdomains: list[str]) -> dict[str, list[str]]:
    """Each realm's custom profile field names, in one manage.py call."""
    out = runner.run(["shell", "-c", PROFILE_FIELDS_QUERY % (PROFILE_FIELDS_MARKER, json.dumps(subdomains))])[1]
    for line in out.splitlines():
        if line.startswith(PROFILE_FIELDS_MARKER):
            return json.loads(line[len(PROFILE_FIELDS_MARKER):])
    raise ZulipError("manage.py shell did not list the realms' custom profile fields: %s" % out.strip()[-500:])


def check_profile_fields(runner: ManageRunner, maps: dict[str, dict]) -> None:
    if not maps:
        return
    names = profile_field_names(runner, sorted(maps))
    for subdomain, mapping in maps.items():
        have = names.get(subdomain, [])
        known = {profile_field_var_name(name) for name in have}
        missing = sorted({str(value) for value in mapping.values()} - known)
        if missing:
            raise ZulipError(
                "realm %s: custom_profile_field_map names custom profile field(s) the realm does not have: %s; "
                "Zulip would refuse every SCIM request that sets them (HTTP 400). The realm has: %s. Create the "
                "field(s) in Zulip (Settings > Custom profile fields) or fix the map; nothing was changed"
                % (realm_label(subdomain), ", ".join(missing),
                   ", ".join("%s (%s)" % (name, profile_field_var_name(name)) for name in have) or "no fields"))


def settings_external_host(settings_path: str, given: str | None, in_use: str) -> str:
    """EXTERNAL_HOST as settings.py says it ("" when it is not a checked plain string): what an IdP's base URL,
    which comes from the inventory, must agree with (action zulip_scim_idp)."""
    if not given:
        return in_use
    try:
        return external_host_of(settings_path)
    except ZulipError:
        return ""


def realm_items(items: list[dict]) -> list[dict]:
    """The items with the defaults zulip_scim_config's realm items get, so that both compare the same values."""
    return [with_realm_defaults(item) for item in items]


def check_takeover(module: AnsibleModule, settings: SettingsFile, version: tuple[int, int]) -> dict:
    """What zulip_scim_config would take over; fails, the way it would, when it could not."""
    items = realm_items(module.params["check_config"])
    secrets = read_secrets_file(module.params["secrets_path"]) if settings.hand else None
    plan = _takeover.plan(settings, items, version, secrets, module.params["secrets_path"])
    for warning in plan.warnings:
        module.warn(warning)
    return plan.summary(check_mode=True)  # a plan: nothing is taken over yet


def check_config(items: list[dict], version: tuple[int, int]) -> None:
    """Fails the way zulip_scim_config would on a key this version lacks, before anything is changed."""
    for item in items:
        if item.get("state", "present") == "present":
            check_optional_keys(item.get("subdomain", ""), optional_keys_of(item), version)


def list_scim_clients(module: AnsibleModule, result: dict) -> None:
    """The 5.x client rows, read-only and without Django; null (and why) when psql cannot tell."""
    result["scim_clients"] = None
    if not (module.params["scim_clients"] and result["scim"]["client_table"]):
        return
    listing, call = read_with_psql(module)
    if listing is None:
        result["scim_clients_error"] = call["error"]
        return
    realms, clients = listing
    result["scim_clients"] = {"realms": realms, "clients": sorted([realm, name] for realm, name in clients)}


# -- check_unchanged: one module run for a run with nothing to change ------------------


def pending_change(module: AnsibleModule, result: dict):
    """What is left to change, in words (never a token), or the plan when nothing is."""
    params = module.params
    if previous.kept(previous.configuration_paths(params)):
        return "an earlier run changed the configuration and was not proven afterwards", None
    items = realm_items(params["check_config"])
    if result["scim"]["client_table"] and clients_to_change(items, result.get("scim_clients")):
        return "SCIM client rows to add or remove, or not listed", None
    try:
        plan = make_plan(dict(params, realms=items, version=result["version"]))
    except ZulipError as exc:
        # zulip_scim_config, which runs next, fails with the same message.
        return "zulip_scim_config would fail: %s" % exc, None
    if plan.settings_changed or plan.secrets_changed or plan.settings.hand is not None:
        return "%s or %s would change" % (params["settings_path"], params["secrets_path"]), None
    return None, plan


def check_unchanged(module: AnsibleModule, result: dict) -> None:
    """RV unchanged: nothing to change and the running Zulip proven to serve it; else RV pending says why."""
    pending, plan = pending_change(module, result)
    if plan is not None:
        try:
            # The front end's URL and EXTERNAL_HOST as main() found them, not read again.
            found = dict(module.params, api_url=result["api_url"], external_host=result["external_host"])
            result["checks"] = scim_check.prove(found, plan.present_wanted(), module.params["rejected_tokens"])
        except ZulipError as exc:
            # zulip_scim_config proves it again and fails with the whole story.
            pending = "the check of the unchanged configuration failed: %s" % exc
    result["unchanged"] = pending is None
    if pending is not None:
        result["pending"] = pending
        return
    # zulip_scim_config, which would have said it, does not run.
    for warning in weak_token_warnings(plan.wanted):
        module.warn(warning)


ARGUMENT_SPEC = argument_spec(
    API_OPTIONS + ("manage_timeout", "rejected_tokens"),
    realms=dict(type="list", elements="str", default=[]),
    # The role's realm items as they are; only subdomain, state and the version-gated keys matter.
    check_config=dict(type="list", elements="dict", default=[]),
    check_settings=dict(type="bool", default=False),
    takeover=dict(type="bool", default=False),
    require_front_end=dict(type="bool", default=False),
    scim_clients=dict(type="bool", default=False),
    check_unchanged=dict(type="bool", default=False),
    tokens=dict(type="dict", default={}, no_log=True),
    exclusive=dict(type="bool", default=False),
    # Not the shared option: an info module looks only when a play that plans a change asks it to.
    deploy_lock_timeout=dict(type="int"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    deploy_path = module.params["deploy_path"]
    runner = ManageRunner(module, deploy_path, timeout=module.params["manage_timeout"])
    result: dict = {"changed": False, "manage_calls": runner.calls}
    try:
        tls.check_api_options(module.params)
        # First, before the host is read for the run: a docker-zulip container would undo every edit.
        docker_zulip.check_host(module.params["settings_path"], module.params["secrets_path"])
        if module.params["deploy_lock_timeout"] is not None:
            # Before the version is read: a server being upgraded is planned for once the upgrade has ended.
            deploy_lock.honour(module, deploy_path, module.params["deploy_lock_timeout"], "nothing was read or changed")
        version_text = read_version(deploy_path)
        version = parse_version(version_text)
        settings = None
        if module.params["check_settings"]:
            settings = check_settings(module.params["settings_path"], module.params["takeover"])
            result["takeover"] = check_takeover(module, settings, version)
        check_config(module.params["check_config"], version)
        check_profile_fields(runner, changed_field_maps(module.params["check_config"], settings))
        external_host = external_host_of(module.params["settings_path"], module.params["external_host"])
        result.update(
            api_url=api_url_of(module.params["api_url"], module.params["zulip_conf_path"]),
            deploy_path=deployment_directory(deploy_path),
            version=version_text,
            version_info=list(version),
            external_host=external_host,
            settings_external_host=settings_external_host(module.params["settings_path"], module.params["external_host"],
                                                          external_host),
            scim=scim_capabilities(version),
        )
        if not result["scim"]["constant_time_tokens"]:
            module.warn(
                "Zulip %s compares SCIM bearer tokens in non-constant time (CVE-2022-41914, fixed in 5.7 "
                "and 6.0): upgrade before relying on SCIM" % version_text
            )
        list_scim_clients(module, result)
        result["unchanged"] = False
        if module.params["check_unchanged"]:
            check_unchanged(module, result)
        proven = result.get("checks", {})
        if all(realm in proven for realm in module.params["realms"]):
            # Each took its token, so it exists (and with no realms there is nothing to ask).
            result["realms"] = dict.fromkeys(module.params["realms"], True)
        else:
            check_realms(module, runner, external_host, result)
    except ZulipError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
