# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin: the SCIM bearer tokens of one host, from the controller's token store.

Runs on the controller only (no connection to the host is needed). The
documentation lives in ``plugins/modules/zulip_scim_token.py``.
"""

from __future__ import annotations

import copy
import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import DEFAULT_TIMEOUT as LOCK_TIMEOUT
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import MIN_STRONG_LENGTH
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import realm_label
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import (
    ACTIVE,
    DEFAULT_HISTORY,
    Entries,
    MIN_TOKEN_BYTES,
    Outcome,
    Request,
    TokenStore,
    TokenStoreError,
    apply_request,
    audit_entries,
    confirm,
    make_request,
    overdue,
    pending_realms,
    settle,
    token_factory,
    utc_now,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import STORE_ARGUMENT_SPEC
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_stores import open_store, text as _text

display = Display()

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = argument_spec(
    host={"type": "str"},
    realms={"type": "list", "elements": "str", "required": True},
    rotate={"type": "list", "elements": "str", "default": []},
    retire={"type": "list", "elements": "str", "default": []},
    adopt={"type": "dict", "default": {}, "no_log": True},
    # "token" in the name would make Ansible ask for no_log; it is a size.
    token_bytes={"type": "int", "default": MIN_TOKEN_BYTES, "no_log": False},
    adopt_from_host={"type": "bool", "default": False},
    lock_timeout={"type": "int", "default": LOCK_TIMEOUT},
    history={"type": "int", "default": DEFAULT_HISTORY},
    max_age_days={"type": "int", "default": 0},
    max_age_action={"type": "str", "choices": ["warn", "fail", "rotate"], "default": "warn"},
    rotate_overdue={"type": "bool", "default": False},
    audit={"type": "bool", "default": False},
    # A rotation as one transaction across store and host (_token_store: pending tokens).
    operation={"type": "str", "choices": ["ensure", "settle", "confirm"], "default": "ensure"},
    until_proven={"type": "bool", "default": False},
    settle_from_host={"type": "bool", "default": False},
    proven={"type": "dict", "default": {}, "no_log": True},
    # path, store and hashicorp: which token store (module_utils/_token_store_spec.py).
    **STORE_ARGUMENT_SPEC,
)

HOST_TOKEN_MODULE = "zulip_ops.zulip.zulip_scim_token_info"


class _WouldWrite(Exception):
    """Raised instead of making a token in the trial of run_request: that request needs the lock."""


def _no_new_token() -> str:
    raise _WouldWrite()


def run_request(store: TokenStore, host: str, request: Request, new_token: t.Callable[[], str],
                check_mode: bool, seen: Entries) -> Outcome:
    """Apply ``request`` to ``host``'s entries: on a copy in check mode, else saved in a locked transaction.

    ``seen`` is what the store held a moment ago (read without the lock). A request that leaves it as
    it is, every run that changes nothing, returns at once: it needs neither the lock, for which every
    host of a fleet would otherwise queue, nor a second decryption. The file is only ever replaced
    whole, so ``seen`` is a state the store really had.
    """
    if check_mode:
        return apply_request(copy.deepcopy(seen), request, now=utc_now(), new_token=new_token)
    trial = copy.deepcopy(seen)
    try:
        outcome = apply_request(trial, request, now=utc_now(), new_token=_no_new_token)
    except _WouldWrite:
        outcome = None
    if outcome is not None and trial == seen:
        return outcome
    with store.transaction(host) as entries:
        return apply_request(entries, request, now=utc_now(), new_token=new_token)


def result_from(outcome: Outcome, host: str, location: str) -> dict[str, t.Any]:
    return {
        "changed": outcome.changed,
        # The same as changed, kept when a task's changed_when overrides that (the scim role's look-up).
        "store_changed": outcome.changed,
        "host": host,
        "path": location,
        "tokens": outcome.tokens,
        "previous_tokens": outcome.previous_tokens,
        "retired_tokens": outcome.retired_tokens,
        "generated": outcome.generated,
        "rotated": outcome.rotated,
        "adopted": outcome.adopted,
        "retired": outcome.retired,
        "conflicts": outcome.conflicts,
        # The whole result holds secrets: Ansible censors it in every
        # callback and at every verbosity; `register` still gets the values.
        "_ansible_no_log": True,
    }


def ages_in_words(found: t.Mapping[str, int]) -> str:
    return ", ".join("%s (%d days)" % (realm_label(realm), age) for realm, age in found.items())


def age_policy(seen: Entries, host: str, request: Request, args: t.Mapping[str, t.Any]) -> tuple[Request, dict[str, int]]:
    """Apply O(max_age_days) before anything is written: fail, rotate the overdue realms, or only report them."""
    limit = args["max_age_days"]
    if limit < 0:
        raise TokenStoreError("max_age_days must be 0 (no age policy) or a number of days, got %d" % limit)
    if not limit:
        return request, {}
    found = overdue(seen, [r for r in request.realms if r not in request.rotate], limit, utc_now())
    if found and args["max_age_action"] == "fail":
        raise TokenStoreError(
            "token(s) of %s older than %d days (zulip_scim_token_max_age_days): %s. Nothing was changed. Rotate "
            "them: ansible-playbook ... --tags rotate_scim_token --limit %s, then give the IdP the new token(s); "
            "or set zulip_scim_token_max_age_action: warn" % (host, limit, ages_in_words(found), host))
    if args["max_age_action"] == "rotate" and args["rotate_overdue"]:
        # The same request (pending, settle and all), checked again with the age limit.
        request = make_request(list(request.realms), sorted(request.rotate), sorted(request.retire),
                               dict(request.adopt), request.history, limit, request.pending, dict(request.settle))
    return request, found


def run_on_entries(store: TokenStore, host: str, check_mode: bool, seen: Entries,
                   change: t.Callable[[Entries], list[str]]) -> list[str]:
    """``change`` (settle or confirm) on ``host``'s entries: on a copy in check mode or when it finds nothing to do.

    Like run_request: a trial on ``seen`` first, so that nothing to do takes neither the lock nor a write.
    """
    done = change(copy.deepcopy(seen))
    if check_mode or not done:
        return done
    with store.transaction(host) as entries:
        return change(entries)


def settle_words(host: str, back: list[str], still: list[str]) -> str:
    """What ``settle`` did, for the operator; never a token."""
    words = []
    if back:
        words.append("The token store went back too: on %s the new token of %s was never in force (kept in its "
                     "history, marked rolled_back); the token the host serves is the store's again."
                     % (host, ", ".join(realm_label(realm) for realm in back)))
    if still:
        words.append("On %s the host has the new token of %s, not proven yet: it stays pending in the token "
                     "store, and the next run proves it or puts it back." % (host, ", ".join(realm_label(r) for r in still)))
    return " ".join(words) or "The token store holds no pending token for %s: nothing to put back." % host


def realms_without_token(seen: Entries, realms: list[str]) -> list[str]:
    return [realm for realm in realms if (seen.get(realm) or {}).get("state") != ACTIVE]


def weak_adoption_warnings(outcome: Outcome, host: str) -> list[str]:
    """Adopted tokens that work but are weak: kept, so the IdP keeps working, and to be rotated."""
    return [
        "zulip_scim_token: realm %s on %s: the adopted token is shorter than %d characters; it was kept so "
        "that the IdP keeps working, but rotate it (ansible-playbook ... --tags rotate_scim_token --limit %s "
        "-e '{\"zulip_scim_rotate_realms\": [\"%s\"]}') and give the IdP the new token"
        % (realm_label(realm), host, MIN_STRONG_LENGTH, host, realm)
        for realm in outcome.weak_adopted if realm not in outcome.rotated
    ]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # Only used to read the host's tokens, and only when the store lacks one.
    _requires_connection = True
    _supports_check_mode = True

    def host_tokens(self, realms: list[str], args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, str]:
        """The tokens the host uses now for ``realms`` (one module run on the host)."""
        answer = self._execute_module(
            module_name=HOST_TOKEN_MODULE,
            module_args={"realms": realms, "settings_path": args["settings_path"], "secrets_path": args["secrets_path"]},
            task_vars=task_vars,
        )
        if answer.get("failed"):
            raise TokenStoreError("cannot read the host's SCIM tokens: %s" % answer.get("msg", "no message"))
        return {realm: _text(token) for realm, token in (answer.get("tokens") or {}).items()}

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        del tmp

        try:
            host = _text(args["host"] or task_vars.get("inventory_hostname"))
            if not host:
                raise TokenStoreError("cannot tell which host the tokens are for: set host")
            if args["audit"]:
                store = open_store(args, task_vars, self._loader)
                result.update(changed=False, host=host, path=store.location, audit=audit_entries(store.read(host), utc_now()),
                              read_token=store.read_token_hint(host))
                return result
            if args["operation"] != "ensure":
                result.update(self.finish(host, args, task_vars))
                return result
            request = make_request(args["realms"], args["rotate"], args["retire"], args["adopt"], args["history"],
                                   pending=args["until_proven"])
            new_token = token_factory(args["token_bytes"])
            store = open_store(args, task_vars, self._loader)
            seen = store.read(host)  # once, for every decision below
            request = self.with_host_tokens(request, seen, args, task_vars)
            request, too_old = age_policy(seen, host, request, args)
            outcome = run_request(store, host, request, new_token, bool(self._task.check_mode), seen)
        except TokenStoreError as exc:
            # These messages are written never to hold a token; they stay visible.
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        except Exception as exc:  # noqa: BLE001 - anything else might quote a token
            result.update(
                failed=True,
                changed=False,
                msg="zulip_scim_token failed with %s; details are withheld because they could contain a "
                "token" % type(exc).__name__,
            )
            return result

        for realm in outcome.rolled_back:
            display.warning(
                "zulip_scim_token: realm %s on %s: the token store's token was made by a run that did not finish, "
                "and the host serves the token it had before: that one is the realm's token again, and the other "
                "is kept in the history as never in force (rolled_back)." % (realm_label(realm), host))
        for realm in outcome.conflicts:
            display.warning(
                "zulip_scim_token: realm %s on %s: the host's token differs from the token store's; the "
                "store's token is returned and wins. An IdP still configured with the host's token will "
                "get 401 once the host is updated." % (realm_label(realm), host)
            )
        for warning in weak_adoption_warnings(outcome, host):
            display.warning(warning)
        still_old = {realm: age for realm, age in too_old.items() if realm not in outcome.rotated}
        if still_old:
            display.warning(
                "zulip_scim_token: on %s, token(s) older than %d days: %s; rotate them (ansible-playbook ... "
                "--tags rotate_scim_token --limit %s) and give the IdP the new token(s)"
                % (host, args["max_age_days"], ages_in_words(still_old), host))
        result.update(result_from(outcome, host, store.location))
        result.update(ages=outcome.ages, overdue=too_old, pending=outcome.pending, rolled_back=outcome.rolled_back,
                      read_token=store.read_token_hint(host), resumed=pending_realms(seen, request.realms))
        return result

    def with_host_tokens(self, request: Request, seen: Entries, args: dict[str, t.Any],
                         task_vars: dict[str, t.Any]) -> Request:
        """``request`` with what the host has, read once: for adoption, and for settling pending tokens."""
        missing = realms_without_token(seen, list(request.realms)) if args["adopt_from_host"] else []
        pending = pending_realms(seen, request.realms) if args["settle_from_host"] else []
        if not missing and not pending:
            return request
        on_host = self.host_tokens(sorted(set(missing) | set(pending)), args, task_vars)
        adopt = dict({realm: on_host[realm] for realm in missing if realm in on_host}, **args["adopt"])
        return make_request(args["realms"], args["rotate"], args["retire"], adopt, args["history"],
                            pending=args["until_proven"], settle={realm: on_host.get(realm) for realm in pending})

    def finish(self, host: str, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        """O(operation=settle) or O(operation=confirm): the end of a run's transaction, store side."""
        realms = list(make_request(args["realms"]).realms)
        store = open_store(args, task_vars, self._loader)
        seen = store.read(host)
        check_mode = bool(self._task.check_mode)
        if args["operation"] == "confirm":
            proven = {str(realm): _text(token) for realm, token in args["proven"].items() if realm in realms}
            done = run_on_entries(store, host, check_mode, seen, lambda entries: confirm(entries, proven, args["history"]))
            return {"changed": bool(done), "host": host, "path": store.location, "confirmed": done,
                    "msg": "pending tokens now in force: %s" % (", ".join(map(realm_label, done)) or "none")}
        pending = pending_realms(seen, realms)
        on_host = self.host_tokens(pending, args, task_vars) if pending else {}
        now = utc_now()
        back = run_on_entries(store, host, check_mode, seen,
                              lambda entries: settle(entries, {realm: on_host.get(realm) for realm in pending}, now))
        still = [realm for realm in pending if realm not in back]
        return {"changed": bool(back), "host": host, "path": store.location, "rolled_back": back, "pending": still,
                "msg": settle_words(host, back, still)}
