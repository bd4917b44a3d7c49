# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The rules for taking over a SCIM_CONFIG written by hand (``takeover``), in one place.

``_settings_file`` reads the hand-written assignments; this decides, before
anything is changed, whether they can move into the managed block as the
inventory lists the realms, and what moves where:

* every realm in force must be listed (``state: present`` takes it over,
  ``state: absent`` drops it): one that is not is refused, because the block
  replaces every assignment and would otherwise drop it silently, cutting its
  IdP off;
* its token is known without running settings.py: a string, or
  ``get_secret("name")`` with that secret set in zulip-secrets.conf;
* the keys the role manages must agree with the inventory, so that the next
  run changes nothing and nothing the IdP relies on (``name_formatted_included``,
  the 5.x client row's name) changes under it;
* keys the server's version does not read are dropped with a warning: Zulip
  ignores them, so dropping them changes nothing it does.

No message here holds a token.
"""

from __future__ import annotations

from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import SecretsFile
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import HandEntry, SettingsFile
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import token_problem
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    OPTIONAL_KEY_SINCE,
    ZulipError,
    realm_label,
    realm_list,
    secret_name,
    version_label,
)

# Hand-written key -> the realm item's key that says the same in the inventory.
MANAGED_KEYS = {
    "scim_client_name": "client_name",
    "name_formatted_included": "name_formatted_included",
    "create_guests_without_streams": "create_guests_without_streams",
    "custom_profile_field_map": "custom_profile_field_map",
}


class Takeover:
    """What a takeover moves: per realm taken over, its token and the secret it was read from."""

    def __init__(self):
        self.realms: list[str] = []  # taken over into the block (state: present)
        self.dropped: list[str] = []  # listed with state: absent: their hand-written entry just goes
        self.tokens: dict[str, str] = {}  # the token in force per realm taken over: never print it
        self.old_secrets: dict[str, str] = {}  # realm -> the secret name get_secret() used, if not ours
        self.warnings: list[str] = []
        self.lines: list[int] = []
        self.path = ""

    def message(self, check_mode: bool = False) -> str:
        """The takeover in plain words, for the end of the run (check mode: what it would do); empty without one."""
        if not (self.realms or self.dropped or self.lines):
            return ""
        text = ("Would take over the hand-written SCIM_CONFIG of %s (%s): %s would move into the managed block, "
                "the same token(s) into zulip-secrets.conf and the token store" if check_mode else
                "Took over the hand-written SCIM_CONFIG of %s (%s): %s moved into the managed block, the same "
                "token(s) now in zulip-secrets.conf and the token store (the IdP keeps working)") % (
                    self.path, ", ".join("line %d" % n for n in self.lines), realm_list(self.realms))
        if self.dropped:
            text += "; dropped (state: absent): %s" % realm_list(self.dropped)
        for realm, old in sorted(self.old_secrets.items()):
            text += "; secret %s renamed to %s" % (old, secret_name(realm))
        return text

    def summary(self, check_mode: bool = False) -> dict:
        """What may be returned and printed: no token."""
        return {"realms": self.realms, "dropped": self.dropped, "lines": self.lines,
                "message": self.message(check_mode),
                "renamed_secrets": {realm: {"from": old, "to": secret_name(realm)}
                                    for realm, old in self.old_secrets.items()}}


def _value_problem(entry: HandEntry, item: dict, version: tuple[int, int], warnings: list[str]) -> list[str]:
    """Keys of the hand-written entry that disagree with the inventory's realm item."""
    problems = []
    realm = realm_label(entry.subdomain)
    for key, value in sorted(entry.keys.items()):
        since = OPTIONAL_KEY_SINCE.get(key)
        if key not in MANAGED_KEYS or (since and version < since):
            warnings.append("realm %s: the hand-written key %s is not read by Zulip %s; it is not carried into "
                            "the managed block" % (realm, key, version_label(version)))
            continue
        wanted = item.get(MANAGED_KEYS[key])
        if value != wanted:
            problems.append("realm %s: the hand-written %s is %r but zulip_scim_realms says %r; set %s: %s for "
                            "the realm in zulip_scim_realms to keep what the server runs now"
                            % (realm, key, value, wanted, MANAGED_KEYS[key], _yaml(value)))
    for key in ("create_guests_without_streams", "custom_profile_field_map"):
        if key not in entry.keys and item.get(key) is not None:
            problems.append("realm %s: zulip_scim_realms sets %s, which the hand-written entry does not; "
                            "take the host over first, then add it" % (realm, key))
    return problems


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"%s"' % value.replace('"', '\\"')
    return repr(value)


def _token_of(entry: HandEntry, secrets: SecretsFile | None, secrets_path: str) -> tuple[str | None, str | None]:
    """(the token in force, why it cannot be taken) for one hand-written entry."""
    realm = realm_label(entry.subdomain)
    if entry.token.kind == "literal":
        token = entry.token.value
    else:
        token = secrets.get(entry.token.value) if secrets is not None else None
        if not token:
            return None, ("realm %s: bearer_token is get_secret(\"%s\") but %s has no such secret (the server "
                          "answers HTTP 500 for this realm now); add it or remove the realm"
                          % (realm, entry.token.value, secrets_path))
    problem = token_problem(token)
    if problem:
        return None, "realm %s: the hand-written token cannot be taken over: %s" % (realm, problem)
    return token, None


def plan(settings: SettingsFile, realms: list[dict], version: tuple[int, int],
         secrets: SecretsFile | None, secrets_path: str) -> Takeover:
    """What taking the hand-written SCIM_CONFIG over would do; raises, naming every problem, if it cannot."""
    takeover = Takeover()
    hand = settings.hand
    if hand is None:
        return takeover
    takeover.lines = sorted({first for first, _last in hand.spans})
    takeover.path = settings.path
    listed = {item["subdomain"]: item for item in realms}
    problems = []
    unlisted = [name for name in hand.names if name not in listed]
    if unlisted:
        problems.append(
            "realms %s are in the hand-written SCIM_CONFIG but not in zulip_scim_realms; the managed block replaces "
            "every hand-written assignment, so they would lose SCIM: list them (state: present to take them over, "
            "state: absent to turn them off)" % realm_list(unlisted))
    for name in hand.names:
        entry, item = hand.entries.get(name), listed.get(name)
        if entry is None or item is None:
            continue
        if item.get("state", "present") == "absent":
            takeover.dropped.append(name)
            continue
        token, problem = _token_of(entry, secrets, secrets_path)
        if problem:
            problems.append(problem)
            continue
        problems += _value_problem(entry, item, version, takeover.warnings)
        takeover.realms.append(name)
        takeover.tokens[name] = token
        if entry.token.kind == "secret" and entry.token.value != secret_name(name):
            takeover.old_secrets[name] = entry.token.value
    if problems:
        where = ", ".join("%s:%d" % (settings.path, line) for line in takeover.lines)
        raise ZulipError("the hand-written SCIM_CONFIG of %s (%s) cannot be taken over: %s. Nothing was changed."
                         % (settings.path, where, "; ".join(problems)))
    return takeover


def token_lines(data: bytes, tokens) -> list[int]:
    """1-based lines of ``data`` that hold any of ``tokens`` (e.g. one quoted again in a comment)."""
    needles = [token.encode("utf-8", "surrogateescape") for token in tokens if token]
    return [number for number, line in enumerate(data.split(b"\n"), 1) if any(n in line for n in needles)]
