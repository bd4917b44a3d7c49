# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What SCIM state a host's ``settings.py`` leaves each realm in, for ``zulip_scim_info``.

Read the way Python runs the file: top to bottom, a later ``SCIM_CONFIG = {...}``
replaces everything before it, ``SCIM_CONFIG["realm"] = {...}`` one realm. A realm
in force is ``managed`` when its entry is inside the block this collection writes,
``hand-written`` when outside, and a realm not in force is ``off``. Unlike
``SettingsFile`` (which edits the block and refuses what it cannot edit), this only
describes: any file that compiles is read, and writes it cannot follow
(``SCIM_CONFIG.update(...)``, one inside an ``if``) are named by line instead.

The file belongs to the zulip user: every value read from it is data. Realm keys
that are no valid subdomain are reported shortened, never used; no token is kept.
"""

from __future__ import annotations

import ast
import typing as t
from dataclasses import dataclass

from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import SecretsFile
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import (
    SETTING,
    literal_str,
    scim_config_writes,
    token_reference,
    compile_error,
    find_block,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ROOT_SECRET_SUFFIX,
    SECRET_PREFIX,
    ZulipError,
    client_name_problem,
    is_valid_subdomain,
    secret_name,
    show_value,
)

MANAGED = "managed"
HAND_WRITTEN = "hand-written"
OFF = "off"


@dataclass(frozen=True)
class RealmInForce:
    """One realm's entry in the SCIM_CONFIG that Zulip ends up with; the token itself is never kept."""

    subdomain: str
    line: int
    token_kind: str  # "secret" (get_secret("NAME")), "literal" (the token in settings.py) or "other"
    secret: str | None  # the [secrets] name, for token_kind "secret"
    client_name: str | None


@dataclass(frozen=True)
class SettingsState:
    """The realms in force, the writes that were not followed, and realm keys that are no subdomain."""

    in_force: dict[str, RealmInForce]
    block: tuple[int, int] | None  # 1-based lines of the BEGIN and END markers
    unfollowed_lines: list[int]
    bad_keys: list[str]

    def state_of(self, subdomain: str) -> str:
        entry = self.in_force.get(subdomain)
        if entry is None:
            return OFF
        inside = self.block is not None and self.block[0] < entry.line < self.block[1]
        return MANAGED if inside else HAND_WRITTEN


def _dict_literal_str(node: ast.AST, key: str) -> str | None:
    if not isinstance(node, ast.Dict):
        return None
    for name, value in zip(node.keys, node.values):
        if literal_str(name) == key:
            return literal_str(value)
    return None


def _entry(subdomain: str, node: ast.AST, line: int) -> RealmInForce:
    reference = None
    if isinstance(node, ast.Dict):
        for name, value in zip(node.keys, node.values):
            if literal_str(name) == "bearer_token":
                reference = token_reference(value)
    kind = reference[0] if reference else "other"
    client = _dict_literal_str(node, "scim_client_name")
    return RealmInForce(subdomain, line, kind, reference[1] if kind == "secret" else None,
                        client if client is not None and client_name_problem(client) is None else None)


def _setting_target(statement: ast.stmt) -> ast.AST | None:
    """The one target of a top-level ``SCIM_CONFIG... = value``, else None."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        return statement.targets[0]
    if isinstance(statement, ast.AnnAssign) and statement.value is not None:
        return statement.target
    return None


class _Reader:
    def __init__(self) -> None:
        self.in_force: dict[str, RealmInForce] = {}
        self.followed: set[int] = set()  # ids of the write nodes understood
        self.bad_keys: list[str] = []

    def _set(self, key: ast.AST, value: ast.AST, line: int) -> None:
        subdomain = literal_str(key)
        if subdomain is None or not is_valid_subdomain(subdomain):
            self.bad_keys.append(show_value(subdomain) if subdomain is not None else "line %d: not a string" % line)
            return
        self.in_force[subdomain] = _entry(subdomain, value, line)

    def statement(self, statement: ast.stmt) -> None:
        target = _setting_target(statement)
        value = getattr(statement, "value", None)
        if isinstance(target, ast.Name) and target.id == SETTING and isinstance(value, ast.Dict):
            self.followed.add(id(target))
            self.in_force = {}
            for key, item in zip(value.keys, value.values):
                if key is None:  # {**other}: not followed
                    self.followed.discard(id(target))
                    continue
                self._set(key, item, item.lineno)
        elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
              and target.value.id == SETTING and value is not None):
            self.followed.add(id(target))
            self._set(target.slice, value, statement.lineno)


def read_settings_state(data: bytes, path: str) -> SettingsState:
    """The SCIM state ``data`` (a settings.py) leaves; fails only when it does not compile or its markers are broken."""
    problem = compile_error(data, path)
    if problem:
        raise ZulipError("%s does not compile: %s" % (path, problem))
    tree = compile(data, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    reader = _Reader()
    for statement in tree.body:
        reader.statement(statement)
    unfollowed = sorted({node.lineno for node in scim_config_writes(tree) if id(node) not in reader.followed})
    block = find_block(data, path)
    return SettingsState(reader.in_force, (block[0] + 1, block[1] + 1) if block else None, unfollowed,
                         reader.bad_keys)


def realms_with_token_secrets(secrets: SecretsFile | None) -> list[str]:
    """Realms whose token secret, named the way this collection names it, is set in ``[secrets]``."""
    if secrets is None:
        return []
    found = []
    for name in secrets.entries:
        if not name.startswith(SECRET_PREFIX):
            continue
        subdomain = name[len(SECRET_PREFIX):]
        subdomain = "" if subdomain == ROOT_SECRET_SUFFIX else subdomain
        if is_valid_subdomain(subdomain) and secrets.get(name):
            found.append(subdomain)
    return found


def describe_realm(subdomain: str, settings: SettingsState, secrets: SecretsFile | None) -> dict[str, t.Any]:
    """One realm for the module's result: never a token, only where it is and whether it is set."""
    entry = settings.in_force.get(subdomain)
    conventional = secret_name(subdomain)
    described: dict[str, t.Any] = {
        "state": settings.state_of(subdomain),
        "line": entry.line if entry else None,
        "client_name": entry.client_name if entry else None,
        "token": None,
        # A token secret with this collection's name that no entry in force uses (left behind).
        "unused_secret": None,
    }
    if entry is not None:
        secret = entry.secret if entry.token_kind == "secret" else None
        described["token"] = {
            "kind": entry.token_kind,
            "secret": secret,
            "set": bool(secret and secrets is not None and secrets.get(secret)) if entry.token_kind == "secret"
            else entry.token_kind == "literal",
        }
    in_use = entry is not None and entry.secret == conventional
    if not in_use and secrets is not None and secrets.get(conventional):
        described["unused_secret"] = conventional
    return described
