# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Where SCIM bearer tokens live on the controller, and what to do with them.

Two halves, kept apart so that a second backend (HashiCorp Vault / OpenBao
KV v2) is one new class:

* ``TokenStore``: the storage interface. A backend only has to give a
  snapshot of one host's entries (``read``) and a locked read-modify-write of
  them (``transaction``) that saves only when the entries changed.
* ``apply_request`` and friends: the pure decisions (generate, rotate,
  retire, adopt) made on a host's entries, a plain ``{realm: entry}`` dict.
  No I/O, no clock, no randomness of their own: time and token generation
  are passed in, so tests can pin them.

An entry, as stored (the same shape for every backend)::

    token: <bearer token>
    created: 2026-11-28T16:40:00Z
    state: active            # or retired
    retired: <time>          # only when state is retired
    pending: <time>          # only while the run that made the token has not proven it on the host
    rolled_back: <time>      # only on a token that was never in force: its run went back
    previous:                # newest first
      - {token: ..., created: ..., replaced: ..., rolled_back: ...}

A rotation is one transaction across the store and the host. The store is
written first, so that the host never holds a token the store does not know,
and a token made for the host (``Request.pending``) is stored ``pending``
until the run has proven it there (``confirm``). When the host goes back
instead (a failed restart or check), the store goes back too (``settle``):
the pending token moves to the history marked ``rolled_back`` (never in
force) and the token the host serves again is current again. ``settle``
decides from the host's tokens alone, so a run killed between the host's
roll-back and the store's is finished by the next run the same way.

Nothing in this module may put a token into an exception message: tokens are
secrets, and Ansible prints exception text (with tracebacks at -vvv).
"""

from __future__ import annotations

import secrets
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import token_problem, token_weakness
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    is_valid_subdomain,
    realm_label,
)

ACTIVE = "active"
RETIRED = "retired"
STATES = (ACTIVE, RETIRED)
# Entry key: when a run stored a token it has not yet proven on the host (see the module docstring).
PENDING = "pending"
# Entry and history key: when the token's run went back; the token was never in force.
ROLLED_BACK = "rolled_back"

# 32 bytes = 256 bits: the floor for a credential that never expires.
MIN_TOKEN_BYTES = 32
# The token travels in an HTTP header; nginx refuses header lines over 8 KiB.
MAX_TOKEN_BYTES = 1024

# Replaced tokens kept per realm (newest first): enough to recognise a token an old IdP
# configuration still sends, without a list that grows with every rotation.
DEFAULT_HISTORY = 5
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# The canonical key order of a stored entry and of a history item; anything
# else in a stored entry is refused (the file is machine-written, so an
# unknown key is a typo that would otherwise be dropped silently).
ENTRY_KEYS = ("token", "created", "state", "retired", PENDING, ROLLED_BACK, "previous")
PREVIOUS_KEYS = ("token", "created", "replaced", "retired", ROLLED_BACK)
_ENTRY_REQUIRED = ("token", "created", "state")
_PREVIOUS_REQUIRED = ("token", "created", "replaced")

Entries = t.Dict[str, t.Dict[str, t.Any]]


class TokenStoreError(Exception):
    """A problem the operator must fix; the message says how and never holds a token."""


class TokenStore(t.Protocol):
    """Storage of per-host, per-realm token entries.

    ``location`` names the store in messages and results (a file path, a KV
    mount and path, ...).
    """

    location: str

    def read_token_hint(self, host: str) -> str:
        """The one command an operator runs to see a realm's token of ``host`` (the sheet and the report
        print it; it never holds a token)."""

    def read(self, host: str) -> Entries:
        """A validated snapshot of ``host``'s entries; ``{}`` when there are none.

        Used in check mode: no lock, nothing written.
        """

    def transaction(self, host: str) -> t.ContextManager[Entries]:
        """Locked read-modify-write of ``host``'s entries.

        Yields a mutable ``{realm: entry}`` dict. On a clean exit the store
        saves it if (and only if) it differs from what was read; on an
        exception nothing is saved. Other writers of the same store wait (or,
        for optimistic backends, retry) so no update is lost.
        """


@dataclass(frozen=True)
class Request:
    """What a play asks for one host; build it with ``make_request``."""

    realms: tuple[str, ...]
    rotate: frozenset[str] = frozenset()
    retire: frozenset[str] = frozenset()
    adopt: t.Mapping[str, str] = field(default_factory=dict)
    history: int = DEFAULT_HISTORY
    # Rotate every realm whose token is older than this many days (None: age does not matter).
    rotate_older_than_days: int | None = None
    # Store each token made for the host as pending, until ``confirm`` (the role proves it on the host).
    pending: bool = False
    # Realms with a pending token, each with the token the host has now (None: none): ``settle`` first.
    settle: t.Mapping[str, t.Optional[str]] = field(default_factory=dict)


@dataclass
class Outcome:
    """What ``apply_request`` did. ``tokens``/``previous_tokens`` hold secrets."""

    tokens: dict[str, str] = field(default_factory=dict)
    previous_tokens: dict[str, str] = field(default_factory=dict)
    retired_tokens: dict[str, str] = field(default_factory=dict)
    generated: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    # Adopted realms whose token works but is weak (token_weakness): rotate them.
    weak_adopted: list[str] = field(default_factory=list)
    # Whole days since each requested realm's token was made (None: its time cannot be read).
    ages: dict[str, int | None] = field(default_factory=dict)
    # Requested realms whose token is pending (not yet proven on the host) after the request.
    pending: list[str] = field(default_factory=list)
    # Realms whose pending token was put back (settle): the host serves the token it had before.
    rolled_back: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        # Every mutation apply_request makes lands in one of these lists.
        return bool(self.generated or self.rotated or self.adopted or self.retired or self.rolled_back)


def utc_now() -> str:
    """The timestamp format of the store: UTC, seconds, ``Z``."""
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def age_days(created: t.Any, now: str) -> int | None:
    """Whole days from ``created`` to ``now`` (store timestamps); None when ``created`` is not one."""
    try:
        then = datetime.strptime(str(created), TIME_FORMAT)
        return max(0, (datetime.strptime(now, TIME_FORMAT) - then).days)
    except ValueError:
        return None


def audit_entries(entries: Entries, now: str) -> list[dict[str, t.Any]]:
    """State, creation time, age and history length of every realm in ``entries``; never a token."""
    return [
        {"realm": realm, "state": entry["state"], "created": entry["created"],
         "age_days": age_days(entry["created"], now), "replaced_tokens": len(entry.get("previous") or ())}
        for realm, entry in sorted(entries.items())
    ]


def overdue(entries: Entries, realms: t.Iterable[str], max_age_days: int, now: str) -> dict[str, int]:
    """The active tokens among ``realms`` older than ``max_age_days``, with their ages."""
    found = {}
    for realm in realms:
        entry = entries.get(realm)
        if entry is None or entry.get("state") != ACTIVE:
            continue
        age = age_days(entry.get("created"), now)
        if age is not None and age > max_age_days:
            found[realm] = age
    return found


def token_factory(token_bytes: int = MIN_TOKEN_BYTES) -> t.Callable[[], str]:
    """A generator of URL-safe tokens with ``token_bytes`` bytes of entropy."""
    if (isinstance(token_bytes, bool) or not isinstance(token_bytes, int)
            or not MIN_TOKEN_BYTES <= token_bytes <= MAX_TOKEN_BYTES):
        raise TokenStoreError(
            "token_bytes must be an integer of at least %d (256 bits) and at most %d, got %r"
            % (MIN_TOKEN_BYTES, MAX_TOKEN_BYTES, token_bytes)
        )
    return lambda: secrets.token_urlsafe(token_bytes)


# ---------------------------------------------------------------- requests


def _realm_list(name: str, value: t.Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise TokenStoreError("%s must be a list of realm subdomains" % name)
    bad = [r for r in value if not is_valid_subdomain(r)]
    if bad:
        raise TokenStoreError(
            "%s: not a valid Zulip subdomain: %s (use \"\" for the root domain, otherwise lower-case "
            "letters, digits and inner hyphens, at most 63 characters)" % (name, ", ".join(repr(b) for b in bad))
        )
    # Keep the play's order (results read naturally) but drop repeats.
    return list(dict.fromkeys(value))


def make_request(
    realms: t.Any,
    rotate: t.Any = (),
    retire: t.Any = (),
    adopt: t.Any = None,
    history: t.Any = DEFAULT_HISTORY,
    rotate_older_than_days: t.Any = None,
    pending: bool = False,
    settle: t.Optional[t.Mapping[str, t.Optional[str]]] = None,
) -> Request:
    """Validate the play's arguments; raises ``TokenStoreError`` before anything is read or written."""
    realm_list = _realm_list("realms", realms)
    rotate_list = _realm_list("rotate", rotate)
    retire_list = _realm_list("retire", retire)

    not_requested = [r for r in rotate_list if r not in realm_list]
    if not_requested:
        raise TokenStoreError(
            "rotate lists realms that are not in realms: %s" % ", ".join(realm_label(r) for r in not_requested)
        )
    both = [r for r in retire_list if r in realm_list]
    if both:
        raise TokenStoreError(
            "realms and retire both list: %s (a realm is either enabled or retired)"
            % ", ".join(realm_label(r) for r in both)
        )

    adopt = {} if adopt is None else adopt
    if not isinstance(adopt, t.Mapping):
        raise TokenStoreError("adopt must be a dict of realm subdomain to the token found on the host")
    host_tokens: dict[str, str] = {}
    for realm, token in adopt.items():
        # Only requested realms matter; the host may know realms the play
        # does not manage, and those are none of this request's business.
        if realm not in realm_list or token is None or token == "":
            continue
        problem = token_problem(token)
        if problem:
            # Never echo the value: it is (meant to be) a secret.
            raise TokenStoreError(
                "adopt[%s] is not a usable token (%s, so it cannot be written safely); the value is not "
                "shown. Replace it on the host, or turn adoption off so that a new token is made"
                % (realm_label(realm), problem)
            )
        host_tokens[str(realm)] = str(token)

    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise TokenStoreError("history must be a whole number of replaced tokens to keep (0 or more), got %r"
                              % (history,))
    if rotate_older_than_days is not None and (
            isinstance(rotate_older_than_days, bool) or not isinstance(rotate_older_than_days, int)
            or rotate_older_than_days < 1):
        raise TokenStoreError("a maximum token age must be a whole number of days, 1 or more, got %r"
                              % (rotate_older_than_days,))
    return Request(
        history=history,
        rotate_older_than_days=rotate_older_than_days,
        pending=bool(pending),
        settle={str(realm): (None if token in (None, "") else str(token)) for realm, token in (settle or {}).items()},
        realms=tuple(str(r) for r in realm_list),
        rotate=frozenset(str(r) for r in rotate_list),
        retire=frozenset(str(r) for r in retire_list),
        adopt=host_tokens,
    )


# ---------------------------------------------------------------- decisions


def _known_tokens(entries: Entries) -> set[str]:
    """Every token the host has ever had, active, retired or replaced."""
    known = set()
    for entry in entries.values():
        known.add(entry["token"])
        known.update(item["token"] for item in entry.get("previous", ()))
    return known


def _fresh_token(new_token: t.Callable[[], str], known: set[str]) -> str:
    # A collision of 256-bit random tokens will not happen; the loop makes
    # "tokens are unique per host" a guarantee instead of a probability.
    while True:
        token = new_token()
        if token not in known:
            known.add(token)
            return token


def _push_previous(entry: dict[str, t.Any], now: str) -> None:
    """Move the entry's current token to the front of its history."""
    item = {"token": entry["token"], "created": entry["created"], "replaced": now}
    if entry["state"] == RETIRED and "retired" in entry:
        item["retired"] = entry["retired"]
    if ROLLED_BACK in entry:
        item[ROLLED_BACK] = entry[ROLLED_BACK]
    entry["previous"] = [item] + list(entry.get("previous", ()))


def _set_active(entries: Entries, realm: str, token: str, now: str, pending: bool = False) -> dict[str, t.Any]:
    """Make ``token`` the realm's active token, keeping any old token in the history.

    ``pending``: the host does not serve the token yet (a token made here, not one adopted from it).
    """
    entry = entries.get(realm)
    if entry is None:
        entry = entries[realm] = {"token": token, "created": now, "state": ACTIVE}
    else:
        _push_previous(entry, now)
        entry["token"] = token
        entry["created"] = now
        entry["state"] = ACTIVE
        for key in ("retired", PENDING, ROLLED_BACK):
            entry.pop(key, None)
    if pending:
        entry[PENDING] = now
    return entry


def _retire(entries: Entries, realm: str, now: str, outcome: Outcome) -> None:
    entry = entries.get(realm)
    if entry is None:
        return
    # Reported on every run, so each run can prove the token no longer works.
    outcome.retired_tokens[realm] = entry["token"]
    # Retired already: keep the first retirement time.
    if entry["state"] != ACTIVE:
        return
    entry["state"] = RETIRED
    entry["retired"] = now
    # Retired is the realm's state from now on, whether its last token was ever proven or not.
    entry.pop(PENDING, None)
    outcome.retired.append(realm)


def _ensure_active(
    entries: Entries, realm: str, host_token: str | None, now: str,
    new_token: t.Callable[[], str], known: set[str], outcome: Outcome, pending: bool = False,
) -> bool:
    """Give the realm an active token; True when one was made or adopted in this run."""
    entry = entries.get(realm)
    if entry is not None and entry["state"] == ACTIVE:
        if host_token is not None and host_token != entry["token"]:
            # The store is the source of truth; the caller overwrites the host.
            outcome.conflicts.append(realm)
        return False

    # No active token. A token the host already uses keeps a working IdP
    # working, unless the store knows it already: a token it retired or
    # replaced (a re-enabled realm must not come back with a token a
    # forgotten IdP config still holds), or another realm's token (one IdP
    # could then provision into both realms).
    if host_token is not None and host_token not in known:
        _set_active(entries, realm, host_token, now)
        known.add(host_token)
        outcome.adopted.append(realm)
        if token_weakness(host_token):
            outcome.weak_adopted.append(realm)
        return True
    if host_token is not None:
        outcome.conflicts.append(realm)
    _set_active(entries, realm, _fresh_token(new_token, known), now, pending)
    outcome.generated.append(realm)
    return True


def _rotate(entries: Entries, realm: str, now: str, new_token: t.Callable[[], str],
            known: set[str], outcome: Outcome, pending: bool = False) -> None:
    entry = entries[realm]
    old = entry["token"]
    _set_active(entries, realm, _fresh_token(new_token, known), now, pending)
    outcome.rotated.append(realm)
    outcome.previous_tokens[realm] = old


# ---------------------------------------------------------------- pending tokens


def pending_realms(entries: Entries, realms: t.Iterable[str]) -> list[str]:
    """The realms among ``realms`` whose token is pending: made by a run that has not proven it yet."""
    return [realm for realm in realms if PENDING in (entries.get(realm) or {})]


def _in_force_before(entry: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The history item of the token the pending one replaced, when that one was in force (active)."""
    before = (entry.get("previous") or [None])[0]
    return before if before is not None and "retired" not in before else None


def host_went_back(entry: dict[str, t.Any], host_token: str | None) -> bool:
    """Whether the host serves what it served before ``entry``'s pending token was made.

    Before it, the realm had the token at the head of the history, or (a first enable, or a
    retired realm enabled again) none in force: then the host has no token, or still the retired one.
    """
    if PENDING not in entry or host_token == entry["token"]:
        return False
    before = (entry.get("previous") or [None])[0]
    if _in_force_before(entry) is not None:
        return host_token == before["token"]
    return host_token is None or (before is not None and host_token == before["token"])


def _put_back(entry: dict[str, t.Any], now: str) -> None:
    """The pending token was never in force: into the history, marked; the realm as it was before it."""
    failed = {"token": entry["token"], "created": entry["created"], "replaced": now, ROLLED_BACK: now}
    history = list(entry.get("previous") or ())
    before = _in_force_before(entry)
    entry.clear()
    if before is not None:
        # The token the host serves again: current again, with its own creation time.
        entry.update(token=before["token"], created=before["created"], state=ACTIVE)
        entry["previous"] = [failed] + history[1:]
        return
    # No token was in force (a first enable, or a retired realm's): the realm has none in force again.
    # The token stays the entry's, retired and marked, so it is never adopted or given to the host; the
    # next run that enables the realm makes a new one.
    entry.update(token=failed["token"], created=failed["created"], state=RETIRED, retired=now)
    entry[ROLLED_BACK] = now
    if history:
        entry["previous"] = history


def settle(entries: Entries, host_tokens: t.Mapping[str, t.Optional[str]], now: str) -> list[str]:
    """Put the store back for each pending realm whose host went back (``host_went_back``).

    ``host_tokens``: the token each realm has on the host now (None: none). A realm whose host
    has the pending token keeps it pending: the host may not have proven it yet, and the run that
    proves it confirms it. Any other token on the host is not the store's to take: the realm stays
    pending, and the run writes the store's token to the host as for any conflict.
    """
    back = []
    for realm in sorted(host_tokens):
        entry = entries.get(realm)
        if entry is not None and host_went_back(entry, host_tokens[realm]):
            _put_back(entry, now)
            back.append(realm)
    return back


def confirm(entries: Entries, proven: t.Mapping[str, str], history: int = DEFAULT_HISTORY) -> list[str]:
    """The host was proven to serve ``proven`` (realm -> token): those pending tokens are in force now.

    Only a pending token that is exactly the proven one: another run may have changed the store since.
    """
    done = []
    for realm in sorted(proven):
        entry = entries.get(realm)
        if entry is not None and PENDING in entry and entry["token"] == proven[realm]:
            del entry[PENDING]
            done.append(realm)
    _bound_history(entries, set(done), history)
    return done


def apply_request(
    entries: Entries,
    request: Request,
    *,
    now: str,
    new_token: t.Callable[[], str],
) -> Outcome:
    """Bring one host's ``entries`` (mutated in place) in line with ``request``.

    * ``retire``: an active entry becomes ``state: retired`` with a ``retired``
      time; its token is kept.
    * each realm in ``realms`` ends with an active token, which is, in order of
      preference: the stored active token; the host's token from ``adopt``
      (only when there is no active stored token, and never a token the store
      already holds for the host: retired, replaced, or another realm's); a
      freshly generated one. A retired entry is re-activated with a NEW token,
      the retired one moving to ``previous``.
    * ``rotate``: the active token is replaced by a new one and moved to the
      front of ``previous``. Not when this run generated the token (it is
      fresh already); an adopted token is rotated (it was live on the host).

    ``conflicts`` lists realms whose host token differs from the token
    returned for reasons other than this run's rotation.
    """
    outcome = Outcome()
    outcome.rolled_back = settle(entries, request.settle, now)
    known = _known_tokens(entries)
    for realm in sorted(request.retire):
        _retire(entries, realm, now, outcome)
    for realm in request.realms:
        host_token = request.adopt.get(realm)
        # A token still pending is new already (an earlier run made it, and no IdP has it): this run
        # proves it or puts it back, it does not rotate it again.
        unproven = PENDING in (entries.get(realm) or {})
        made = _ensure_active(entries, realm, host_token, now, new_token, known, outcome, request.pending)
        adopted_now = realm in outcome.adopted
        too_old = (request.rotate_older_than_days is not None and not made
                   and realm in overdue(entries, [realm], request.rotate_older_than_days, now))
        if ((realm in request.rotate and (not made or adopted_now)) or too_old) and not unproven:
            _rotate(entries, realm, now, new_token, known, outcome, request.pending)
        if unproven and _in_force_before(entries[realm]) is not None:
            # Once it is proven, the token it replaces must get 401, as after this run's own rotation.
            outcome.previous_tokens[realm] = entries[realm]["previous"][0]["token"]
        outcome.tokens[realm] = entries[realm]["token"]
        outcome.ages[realm] = age_days(entries[realm]["created"], now)
    outcome.pending = pending_realms(entries, request.realms)
    _bound_history(entries, set(outcome.generated + outcome.rotated + outcome.adopted + outcome.retired
                                + outcome.rolled_back), request.history)
    return outcome


def _bound_history(entries: Entries, realms: set[str], keep: int) -> None:
    """Keep the newest ``keep`` replaced tokens of the realms this run changed.

    Only those: a run that changes nothing must not rewrite the store to trim it. A pending token
    keeps the one it replaced whatever ``keep`` says: ``settle`` may have to put it back.
    """
    for realm in realms:
        entry = entries.get(realm)
        bound = max(keep, 1) if entry is not None and PENDING in entry else keep
        if entry is not None and len(entry.get("previous") or ()) > bound:
            entry["previous"] = list(entry["previous"][:bound])


# ---------------------------------------------------------------- structure


def show_key(key: t.Any) -> str:
    """A key that failed a check, for a message.

    A long unknown key may be a token pasted at the wrong indentation, so only
    short keys (typos such as ``Acme`` or ``stat``) are shown.
    """
    if isinstance(key, str) and len(key) > 24:
        return "<a %d-character key, not shown>" % len(key)
    return repr(key)


def _check_keys(value: t.Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise TokenStoreError("%s: expected a mapping, found %s" % (where, type(value).__name__))
    unknown = sorted(show_key(k) for k in value if k not in allowed)
    if unknown:
        raise TokenStoreError("%s: unknown key(s) %s (allowed: %s)" % (where, ", ".join(unknown), ", ".join(allowed)))
    missing = [k for k in required if k not in value]
    if missing:
        raise TokenStoreError("%s: missing key(s) %s" % (where, ", ".join(missing)))


def _check_text(value: t.Any, where: str, token: bool = False) -> None:
    if not isinstance(value, str) or value == "":
        # The value itself is never shown: under "token" it is a secret.
        raise TokenStoreError("%s: expected a non-empty string, found %s" % (where, type(value).__name__))
    problem = token_problem(value) if token else None
    if problem:
        raise TokenStoreError("%s: not a usable token (%s); the value is not shown" % (where, problem))


def _check_entry(entry: t.Any, where: str) -> None:
    _check_keys(entry, where, ENTRY_KEYS, _ENTRY_REQUIRED)
    _check_text(entry["token"], where + ".token", token=True)
    _check_text(entry["created"], where + ".created")
    if entry["state"] not in STATES:
        raise TokenStoreError("%s.state: expected one of %s" % (where, ", ".join(STATES)))
    for key in ("retired", PENDING, ROLLED_BACK):
        if key in entry:
            _check_text(entry[key], "%s.%s" % (where, key))
    previous = entry.get("previous", [])
    if not isinstance(previous, list):
        raise TokenStoreError("%s.previous: expected a list, found %s" % (where, type(previous).__name__))
    for index, item in enumerate(previous):
        item_where = "%s.previous[%d]" % (where, index)
        _check_keys(item, item_where, PREVIOUS_KEYS, _PREVIOUS_REQUIRED)
        for key in item:
            _check_text(item[key], "%s.%s" % (item_where, key), token=(key == "token"))


def check_host_entries(entries: t.Any, where: str) -> Entries:
    """Validate one host's ``{realm: entry}`` mapping as read from a store.

    ``where`` locates it in messages (``zulip_scim_tokens.web1``). A stored
    ``previous: null`` is an empty history; returns ``entries``.
    """
    if not isinstance(entries, dict):
        raise TokenStoreError("%s: expected a mapping of realm to entry, found %s" % (where, type(entries).__name__))
    for realm, entry in entries.items():
        if not is_valid_subdomain(realm):
            raise TokenStoreError("%s: %s is not a valid Zulip subdomain" % (where, show_key(realm)))
        realm_where = "%s[%r]" % (where, realm)
        if isinstance(entry, dict) and "previous" in entry and entry["previous"] is None:
            entry["previous"] = []
        _check_entry(entry, realm_where)
    return entries


def canonical_entry(entry: dict[str, t.Any]) -> dict[str, t.Any]:
    """The entry with keys in the documented order (stable files, readable diffs)."""
    out = {k: entry[k] for k in ENTRY_KEYS if k in entry and k != "previous"}
    if entry.get("previous"):
        out["previous"] = [{k: item[k] for k in PREVIOUS_KEYS if k in item} for item in entry["previous"]]
    return out
