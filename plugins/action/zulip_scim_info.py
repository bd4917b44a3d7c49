# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin: a host's SCIM state (the module of the same name, on the host) and its tokens' state and age
(the token store, on the controller). Reads only. The documentation lives in ``plugins/modules/zulip_scim_info.py``.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import STORE_ARGUMENT_SPEC
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import TokenStoreError, audit_entries, utc_now
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_stores import open_store, text as _text

HOST_MODULE = "zulip_ops.zulip.zulip_scim_info"
# Options for the controller only: which store, how to reach it. The host never gets them.
CONTROLLER_SPEC: dict[str, dict[str, t.Any]] = dict(
    STORE_ARGUMENT_SPEC, token_store={"type": "bool", "default": True}, host={"type": "str"})


def store_audit(store: t.Any, host: str) -> dict[str, dict[str, t.Any]]:
    """The store's state, creation time, age and history length per realm of ``host``; never a token."""
    return {item.pop("realm"): item for item in audit_entries(store.read(host), utc_now())}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def read_store(self, args: dict[str, t.Any], task_vars: dict[str, t.Any],
                   result: dict[str, t.Any]) -> tuple[str | None, dict[str, dict[str, t.Any]]]:
        """(where, per-realm audit) of the store, or (None, {}) with a warning when it cannot be read."""
        host = _text(args.get("host") or task_vars.get("inventory_hostname"))
        try:
            store = open_store(args, task_vars, self._loader)
            return store.location, store_audit(store, host or "")
        except TokenStoreError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - anything else might quote a credential
            problem = "%s (details withheld: they could hold a credential)" % type(exc).__name__
        result.setdefault("warnings", []).append(
            "the token store was not read, so no token ages are shown: %s; token_store=false skips it" % problem)
        return None, {}

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        location, audit = None, {}
        # The controller's options are checked here, the host's by the module on the host.
        checked = ArgumentSpecValidator(CONTROLLER_SPEC).validate(
            {key: value for key, value in args.items() if key in CONTROLLER_SPEC})
        if checked.error_messages:
            result.update(failed=True, changed=False, msg="; ".join(checked.error_messages))
            return result
        store_args = checked.validated_parameters
        if store_args["token_store"]:
            location, audit = self.read_store(store_args, task_vars, result)
        host_args = {key: value for key, value in args.items() if key not in CONTROLLER_SPEC}
        asked = host_args.get("realms")
        if audit and (asked is None or isinstance(asked, list)):  # else the module says what is wrong with it
            host_args["realms"] = list(asked or []) + [realm for realm in sorted(audit) if realm not in (asked or [])]
        answer = self._execute_module(module_name=HOST_MODULE, module_args=host_args, task_vars=task_vars)
        warnings = result.pop("warnings", [])
        result.update(answer)
        if warnings:
            result["warnings"] = list(answer.get("warnings") or []) + warnings
        if answer.get("failed"):
            return result
        for realm, described in (result.get("realms") or {}).items():
            described["store"] = audit.get(realm)
        result.update(changed=False, store=location)
        return result
