# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin: copy one host's SCIM token entries from one token store to the other.

Runs on the controller only. The documentation lives in
``plugins/modules/zulip_scim_token_copy.py``.
"""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import realm_label
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import (
    Entries,
    TokenStore,
    TokenStoreError,
    canonical_entry,
    make_request,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import (
    HASHICORP_OPTIONS,
    HASHICORP_VAULT,
    STORES,
    VAULT_FILE,
)
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_stores import open_store, text as _text

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "to": {"type": "str", "choices": list(STORES), "required": True},
    "host": {"type": "str"},
    "realms": {"type": "list", "elements": "str"},
    "path": {"type": "path"},
    "hashicorp": {"type": "dict", "default": {}, "options": HASHICORP_OPTIONS},
}


def _other(store: str) -> str:
    return VAULT_FILE if store == HASHICORP_VAULT else HASHICORP_VAULT


def _chosen(source: Entries, realms: list[str] | None) -> list[str]:
    """The realms to copy: all the source has, or those asked for (each must be in the source)."""
    if realms is None:
        return sorted(source)
    wanted = list(make_request(realms).realms)
    missing = [realm for realm in wanted if realm not in source]
    if missing:
        raise TokenStoreError("the source store has no entry for realm(s) %s" % ", ".join(map(realm_label, missing)))
    return wanted


def copy_entries(source: Entries, target: Entries, realms: list[str]) -> tuple[list[str], list[str]]:
    """Copy ``realms`` from ``source`` into ``target`` (mutated); (copied, already the same).

    An entry the target holds already and that differs is a conflict: nothing
    is copied then, because either side may be the one the IdP uses.
    """
    # Compared in canonical form: an empty history may be written out or left out.
    differ = [realm for realm in realms
              if realm in target and canonical_entry(target[realm]) != canonical_entry(source[realm])]
    if differ:
        raise TokenStoreError(
            "the target store already holds other entries for realm(s) %s; nothing was copied. Decide which "
            "token the IdP uses, and remove the other entry by hand" % ", ".join(map(realm_label, differ)))
    copied = [realm for realm in realms if realm not in target]
    for realm in copied:
        target[realm] = canonical_entry(source[realm])
    return copied, [realm for realm in realms if realm not in copied]


def copy_host(source_store: TokenStore, target_store: TokenStore, host: str, realms: list[str] | None,
              check_mode: bool) -> tuple[list[str], list[str]]:
    source = source_store.read(host)
    chosen = _chosen(source, realms)
    if check_mode:
        return copy_entries(source, target_store.read(host), chosen)
    with target_store.transaction(host) as target:
        return copy_entries(source, target, chosen)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        del tmp
        try:
            host = _text(args["host"] or task_vars.get("inventory_hostname"))
            if not host:
                raise TokenStoreError("cannot tell which host the tokens are for: set host")
            source = open_store(dict(args, store=_other(args["to"])), task_vars, self._loader)
            target = open_store(dict(args, store=args["to"]), task_vars, self._loader)
            copied, same = copy_host(source, target, host, args["realms"], bool(self._task.check_mode))
        except TokenStoreError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        except Exception as exc:  # noqa: BLE001 - anything else might quote a token
            result.update(failed=True, changed=False, msg="zulip_scim_token_copy failed with %s; details are "
                          "withheld because they could contain a token" % type(exc).__name__)
            return result
        result.update(changed=bool(copied), host=host, copied=copied, unchanged=same,
                      source=source.location, target=target.location)
        return result
