# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What zulip_scim_config would change on a host, computed without writing, in one place.

zulip_scim_config plans and then writes; zulip_scim_preflight makes the same plan, read-only, to tell
whether a run has anything to change at all (option tokens), so that a run with nothing to
change needs a single module run per host. No message here may ever hold a token.
"""

from __future__ import annotations

import os

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _takeover
from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import name_formatted_included_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import SecretsFile
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import (
    RealmEntry,
    SettingsFile,
    UnreadableEntry,
    secret_names_used,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import token_problem, token_weakness
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_optional_keys,
    check_realm_items,
    parse_version,
    read_version,
    realm_label,
    realm_list,
    secret_name,
)


# -- checking the options (no message may ever contain a token) --------------------


def check_realms(realms: list[dict], tokens: dict) -> dict[str, dict]:
    """The listed realms by subdomain, each with its token, after every check that needs no file.

    The realm items are checked by the collection's one rule set (check_realm_items); only the
    token, which no message may show, is checked here.
    """
    check_realm_items(realms, "realms")
    for item in realms:  # unset: what the realm's IdP sends (the takeover compares against it too)
        if item.get("name_formatted_included") is None:
            item["name_formatted_included"] = name_formatted_included_of(item)
    wanted: dict[str, dict] = {}
    for index, item in enumerate(realms):
        realm = dict(item, token=tokens.get(item["subdomain"]))
        if realm["state"] == "present":
            problem = "no token for the realm in tokens" if realm["token"] is None else token_problem(realm["token"])
            if problem:
                raise ZulipError("realms[%d] (%s): %s" % (index, realm_label(realm["subdomain"]), problem))
        wanted[item["subdomain"]] = realm
    return wanted


def entry_for(realm: dict) -> RealmEntry:
    return RealmEntry(
        subdomain=realm["subdomain"],
        secret=secret_name(realm["subdomain"]),
        client_name=realm["client_name"],
        name_formatted_included=realm["name_formatted_included"],
        create_guests_without_streams=realm["create_guests_without_streams"],
        custom_profile_field_map=realm["custom_profile_field_map"],
    )


class _Version:
    """The server's version, read from version.py only if a realm needs it."""

    def __init__(self, given: str | None, deploy_path: str):
        self.deploy_path = deploy_path
        self._value = parse_version(given) if given is not None else None

    def get(self) -> tuple[int, int]:
        if self._value is None:
            self._value = parse_version(read_version(self.deploy_path))
        return self._value


def check_versions(entries: list[RealmEntry], version: _Version) -> None:
    for entry in entries:
        keys = entry.optional_keys()
        if keys:  # version.py is read only when a key needs it
            check_optional_keys(entry.subdomain, keys, version.get())


# -- planning ------------------------------------------------------------------------


class Plan:
    """Everything the run would change, computed without writing."""

    def __init__(self):
        self.settings: SettingsFile | None = None
        self.settings_before: files.Snapshot | None = None
        self.settings_after = b""
        self.secrets_before: files.Snapshot | None = None
        self.secrets_after = b""
        self.secret_values_before: dict[str, str | None] = {}
        self.secret_values_after: dict[str, str | None] = {}
        self.realms_changed: list[str] = []
        self.realms_present: list[str] = []
        self.tokens_replaced: list[str] = []
        self.wanted: dict[str, dict] = {}  # the listed realms, each with its token
        self.takeover = _takeover.Takeover()
        # settings.py and the secrets file as a backup or a kept previous copy may hold them: with a
        # taken-over inline token moved into the secrets file (the same value), never in settings.py.
        self.settings_safe_before = b""
        self.secrets_safe_before: bytes | None = None

    def present_wanted(self) -> list[str]:
        """The listed realms that are to have SCIM, in the order given."""
        return [subdomain for subdomain, realm in self.wanted.items() if realm["state"] == "present"]

    @property
    def settings_changed(self) -> bool:
        return self.settings_after != self.settings_before.content

    @property
    def secrets_changed(self) -> bool:
        before = self.secrets_before.content
        if before is None:
            return bool(self.secrets_after)
        return self.secrets_after != before


def _load_settings(path: str, takeover: bool = False) -> tuple[files.Snapshot, SettingsFile]:
    snapshot = files.read_snapshot(path)
    if not snapshot.exists:
        raise ZulipError("%s does not exist: is Zulip installed on this host?" % path)
    return snapshot, SettingsFile(snapshot.content, path, takeover=takeover)


def _load_secrets(path: str) -> tuple[files.Snapshot, SecretsFile]:
    snapshot = files.read_snapshot(path)
    if not snapshot.exists:
        if snapshot.directory is None:  # read_snapshot found no directory to read it from
            raise ZulipError("%s does not exist and neither does its directory %s" % (path, os.path.dirname(path)))
        return snapshot, SecretsFile("", path)
    return snapshot, SecretsFile(snapshot.content.decode("utf-8", "surrogateescape"), path)


def _new_entries(old: dict, wanted: dict[str, dict], exclusive: bool, path: str) -> dict[str, RealmEntry]:
    """Entries of the block after the run, and which unlisted ones are dropped."""
    entries: dict[str, RealmEntry] = {}
    for subdomain, entry in old.items():
        if subdomain in wanted or exclusive:
            continue
        if isinstance(entry, UnreadableEntry):
            raise ZulipError(
                "%s:%d: the entry of realm %s in the managed block was edited by hand and cannot be "
                "kept (%s); list the realm in 'realms', or use exclusive=true to drop it"
                % (path, entry.line, realm_label(subdomain), entry.reason)
            )
        entries[subdomain] = entry
    for subdomain, realm in wanted.items():
        if realm["state"] == "present":
            entries[subdomain] = entry_for(realm)
    return entries


def _secret_updates(old: dict, wanted: dict[str, dict], exclusive: bool) -> dict[str, str | None]:
    """Secrets to set (token) or remove (None): listed realms, and realms dropped by exclusive."""
    updates: dict[str, str | None] = {}
    if exclusive:
        for subdomain in old:
            if subdomain not in wanted:
                updates[secret_name(subdomain)] = None
    for subdomain, realm in wanted.items():
        updates[secret_name(subdomain)] = realm["token"] if realm["state"] == "present" else None
    return updates


def _plan_takeover(plan: Plan, params: dict, secrets: SecretsFile, version: _Version) -> None:
    """Check a hand-written SCIM_CONFIG against the realms and tokens; fills plan.takeover."""
    if plan.settings.hand is None:
        return
    plan.takeover = _takeover.plan(plan.settings, params["realms"], version.get(), secrets, params["secrets_path"])
    # The token store must hold the token the host uses now, or the IdP is cut off.
    differing = [realm for realm in plan.takeover.realms
                 if plan.wanted[realm]["token"] != plan.takeover.tokens[realm]]
    if differing:
        raise ZulipError(
            "taking over realms %s would replace the token the host uses now by another one from tokens (the "
            "token store holds a different token), and their IdP would get HTTP 401; remove those realms' "
            "entries from the token store so that the host's token is adopted, or take over first and rotate "
            "afterwards. Nothing was changed." % realm_list(differing))


def _renamed_secret_removals(plan: Plan) -> dict[str, None]:
    """Old secret names get_secret() used before the takeover, unless settings.py still reads them."""
    still_used = secret_names_used(plan.settings_after)
    return {old: None for old in plan.takeover.old_secrets.values() if old not in still_used}


def _safe_copies(plan: Plan, secrets_before: SecretsFile) -> None:
    """settings.py and the secrets file as they were, with the taken-over inline tokens moved."""
    taken = plan.takeover.realms
    plan.settings_safe_before = plan.settings.scrubbed({realm: secret_name(realm) for realm in taken})
    secrets_before.apply({secret_name(realm): plan.takeover.tokens[realm] for realm in taken})
    plan.secrets_safe_before = secrets_before.render().encode("utf-8", "surrogateescape")
    leaks = {name: _takeover.token_lines(data, plan.takeover.tokens.values())
             for name, data in (("now", plan.settings_after), ("backup", plan.settings_safe_before))}
    if any(leaks.values()):
        lines = _takeover.token_lines(plan.settings_before.content, plan.takeover.tokens.values())
        raise ZulipError(
            "a token of the hand-written SCIM_CONFIG also appears elsewhere in %s (lines %s, e.g. in a comment); "
            "remove it there first, so that no copy of it is left. Nothing was changed."
            % (plan.settings.path, ", ".join(str(n) for n in lines)))


def make_plan(params: dict) -> Plan:
    wanted = check_realms(params["realms"], params["tokens"])
    version = _Version(params["version"], params["deploy_path"])
    plan = Plan()
    plan.wanted = wanted
    plan.settings_before, plan.settings = _load_settings(params["settings_path"], params["takeover"])
    old = plan.settings.entries
    entries = _new_entries(old, wanted, params["exclusive"], params["settings_path"])
    # Only what this run asks for is checked: entries kept from the block were accepted before.
    check_versions([entries[s] for s in wanted if s in entries], version)

    plan.secrets_before, secrets = _load_secrets(params["secrets_path"])
    _plan_takeover(plan, params, secrets, version)
    plan.settings_after = plan.settings.with_entries(list(entries.values()))
    updates = _secret_updates(old, wanted, params["exclusive"])
    updates.update(_renamed_secret_removals(plan))
    plan.secret_values_before = {key: secrets.get(key) for key in updates}
    secrets.apply(updates)
    plan.secret_values_after = {key: secrets.get(key) for key in updates}
    plan.secrets_after = secrets.render().encode("utf-8", "surrogateescape")
    if plan.settings.hand is not None:
        _safe_copies(plan, _load_secrets(params["secrets_path"])[1])
    else:
        plan.settings_safe_before = plan.settings_before.content
        plan.secrets_safe_before = plan.secrets_before.content

    plan.realms_present = sorted(entries)
    # A taken-over realm changed even when its entry reads the same: it moved into the block.
    plan.realms_changed = sorted(
        subdomain for subdomain in set(old) | set(entries) | set(wanted)
        if old.get(subdomain) != entries.get(subdomain)
        or plan.secret_values_before.get(secret_name(subdomain)) != plan.secret_values_after.get(secret_name(subdomain))
        or subdomain in plan.takeover.realms + plan.takeover.dropped
    )
    # A host token that gives way to another one: the IdP using it stops working.
    plan.tokens_replaced = sorted(
        subdomain for subdomain, realm in wanted.items()
        if realm["state"] == "present"
        and plan.secret_values_before.get(secret_name(subdomain)) not in (None, realm["token"])
    )
    return plan


def weak_token_warnings(wanted: dict[str, dict]) -> list[str]:
    """One warning per present realm whose token is weak; never the token itself."""
    warnings = []
    for realm in wanted.values():
        weakness = token_weakness(realm["token"]) if realm["state"] == "present" else None
        if weakness:
            warnings.append("realm %s: %s; it is written so that the IdP keeps working, but replace it "
                            "with a longer one" % (realm_label(realm["subdomain"]), weakness))
    return warnings
