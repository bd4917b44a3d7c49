# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin: the IdP side of a realm's token, over the IdP's API, on the controller.

The documentation lives in ``plugins/modules/zulip_scim_idp.py``; the steps and their order
in ``plugins/plugin_utils/_idp_api.py``.
"""

from __future__ import annotations

import os
import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import realm_list
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_steps import (
    AutomatedRealm,
    automated_realms,
    state_from_result,
    state_to_result,
    step,
)

OPERATIONS = ("check", "before", "push", "restore")

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "operation": {"type": "str", "choices": list(OPERATIONS), "required": True},
    "realms": {"type": "list", "elements": "dict", "required": True},
    "connections": {"type": "dict", "default": {}, "no_log": True},
    "external_host": {"type": "str"},
    "host_external_host": {"type": "str"},
    "states": {"type": "dict", "default": {}},
    # realm -> token: the new one (push) or the one in force before (restore). Secrets.
    "tokens": {"type": "dict", "default": {}, "no_log": True},
    # Only these realms (default: every automated realm).
    "only": {"type": "list", "elements": "str"},
    # Realms whose rotation an earlier run began and did not finish (zulip_scim_token's resumed).
    "resumed": {"type": "list", "elements": "str", "default": []},
}


def _text(value: t.Any) -> str | None:
    if value is None:
        return None
    return str.__str__(value) if isinstance(value, str) else str(value)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars or {})
        del tmp
        try:
            realms = automated_realms(args["realms"], args["connections"], _text(args["external_host"]), os.environ,
                                      _text(args["host_external_host"]), [str(r) for r in args["resumed"]])
            if args["only"] is not None:
                realms = [r for r in realms if r.realm.subdomain in args["only"]]
            result.update(self.operate(args, realms))
        except IdpError as exc:
            # Written never to hold a token or a credential; they stay visible.
            result.update(failed=True, changed=False, msg=str(exc))
        except Exception as exc:  # noqa: BLE001 - anything else might quote a token or a credential
            result.update(failed=True, changed=False,
                          msg="zulip_scim_idp failed with %s; details are withheld because they could contain a "
                              "token or a credential" % type(exc).__name__)
        return result

    def operate(self, args: dict[str, t.Any], realms: list[AutomatedRealm]) -> dict[str, t.Any]:
        operation = args["operation"]
        if operation == "check":
            return self.check(realms)
        for realm in realms:
            realm.state = state_from_result(args["states"].get(realm.realm.subdomain), realm.label)
        in_force = [r for r in realms if r.state is not None and r.state.automated]
        if operation == "before":
            return self.before(in_force)
        tokens = {str(k): _text(v) for k, v in args["tokens"].items()}
        if operation == "push":
            return self.push([r for r in in_force if tokens.get(r.realm.subdomain)], tokens)
        return self.restore(in_force, tokens)

    def check(self, realms: list[AutomatedRealm]) -> dict[str, t.Any]:
        """Read-only, in check mode too: wrong credentials or ids fail here, before anything changes."""
        states = {}
        for realm in realms:
            realm.state = step(realm, "read", lambda r=realm: r.backend.read(r.realm))
            states[realm.realm.subdomain] = state_to_result(realm.state)
        manual = sorted(s for s, v in states.items() if not v["automated"])
        words = ["%s: %s" % (r.label, r.state.summary) for r in realms if r.state]
        if manual:
            words.append("the IdP's API cannot set the token of %s: connect those by hand (the connection sheet)"
                         % realm_list(manual))
        return {"changed": False, "states": states, "automated": sorted(set(states) - set(manual)),
                "manual": manual, "msg": "; ".join(words) or "no realm's IdP is automated"}

    def before(self, realms: list[AutomatedRealm]) -> dict[str, t.Any]:
        """Make each IdP stop sending while Zulip changes its token (Entra: pause the job)."""
        if not self._task.check_mode:
            for realm in realms:
                step(realm, "before Zulip changes", lambda r=realm: r.backend.before_zulip(r.realm, r.state))
        return {"changed": bool(realms), "states": {r.realm.subdomain: state_to_result(r.state) for r in realms}}

    def push(self, realms: list[AutomatedRealm], tokens: dict[str, str | None]) -> dict[str, t.Any]:
        """The new token to each IdP, proven there, and its sending resumed; the first failure stops, named.

        ``attempted`` (in a failure too) lists the realms whose IdP may hold the new token: a restore
        gives those, and only those, the token in force before."""
        attempted: list[str] = []
        if not self._task.check_mode:
            for realm in realms:
                token = tokens[realm.realm.subdomain] or ""
                attempted.append(realm.realm.subdomain)
                try:
                    step(realm, "push", lambda r=realm, tk=token: r.backend.push(r.realm, r.state, tk))
                    step(realm, "verify", lambda r=realm: r.backend.verify(r.realm, r.state))
                    step(realm, "resume", lambda r=realm: r.backend.after(r.realm, r.state))
                except IdpError as exc:
                    return {"failed": True, "changed": True, "msg": str(exc), "attempted": sorted(attempted)}
        pushed = sorted(r.realm.subdomain for r in realms)
        verb = "would get" if self._task.check_mode else "got and proved"
        words = "the IdP%s of %s %s the new token" % ("" if len(pushed) == 1 else "s", (realm_list(pushed) if pushed else "no realm"), verb)
        return {"changed": bool(pushed), "pushed": pushed, "attempted": sorted(attempted), "msg": words,
                "states": {r.realm.subdomain: state_to_result(r.state) for r in realms}}

    def restore(self, realms: list[AutomatedRealm], tokens: dict[str, str | None]) -> dict[str, t.Any]:
        """Each IdP back as it was: the token in force before (when given) and its sending as before.
        Every realm is tried; the failures are named together at the end."""
        failures = []
        restored = []
        if not self._task.check_mode:
            for realm in realms:
                try:
                    step(realm, "restore", lambda r=realm: r.backend.restore(r.realm, r.state, tokens.get(r.realm.subdomain)))
                    restored.append(realm.realm.subdomain)
                except IdpError as exc:
                    failures.append(str(exc))
        if failures:
            raise IdpError("could not put every IdP back: %s" % "; ".join(failures))
        return {"changed": bool(restored), "restored": sorted(restored),
                "msg": "the IdPs of %s are back as they were" % (realm_list(sorted(restored)) if restored else "no realm")}
