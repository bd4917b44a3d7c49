# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""authentik: a realm is one SCIM provider, whose ``url`` and ``token`` the API sets.

Plain HTTP through JsonClient, no authentik library. Written and tested against authentik's API
version 2026.8.5 (the models of the ``authentik-client`` package of that version, generated from
authentik's ``schema.yml``): there ``PatchedSCIMProviderRequest`` still has ``url`` and ``token``,
and ``SCIMProvider`` (the answer) has ``url`` but never ``token`` (write-only). Should a later
version move the token elsewhere, ``push`` is refused by that version's validation (HTTP 400) or
``verify`` sees no successful sync, and the run puts everything back.

- ``read``: ``GET /api/v3/providers/scim/{id}/`` and its sync status; a provider that
  authenticates with OAuth (``auth_mode`` not ``token``) stays manual.
- ``push``: ``PATCH /api/v3/providers/scim/{id}/`` with ``{"url": base_url, "token": token}``.
  Saving a provider queues a full sync (authentik's post_save signal).
- ``verify``: the provider reads back with the realm's URL, then the sync status
  (``GET .../sync/status/``) shows a successful sync newer than the one ``read`` saw. authentik
  counts a sync task as successful when its status is ``done`` or ``info`` (its sync status view
  takes the last successful task from those two). ``warning``, ``error`` and ``rejected`` after
  the push fail at once: authentik records a SCIM request that failed (a 401 from Zulip among
  them: a transient error per object) as a warning of the task, and a stopped sync as an error.
  No sync within ``sync_timeout`` fails too. A provider with no user or group in scope sends
  nothing and its sync ends ``done``: then the check proves the save, not the token.
- ``restore``: ``PATCH`` back the URL read before and the token in force before (an empty token
  when there was none: authentik then holds no token that Zulip never accepted).

authentik answers 403, not 401, to a wrong or expired API token (its token authentication sets
no ``WWW-Authenticate``), the same as to a token without the permission.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import time
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils._tls import ca_path_problem
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpRealm, IdpState
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_http import JsonClient, Response
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_options import (
    api_root,
    credential,
    realm_error,
    realm_setting,
    scim_token,
    settle,
    shown_url,
)

NAME = "authentik"
API_VERSION = "2026.8.5"  # the authentik-client models the backend and its test double are checked against

OPTIONS: dict[str, dict[str, t.Any]] = {
    # The authentik instance, e.g. https://authentik.example.com (the API is under /api/v3/).
    "url": {"type": "str", "required": True},
    # An API token (Directory > Tokens and App passwords, intent API) of a user who may view and
    # change the realms' SCIM providers; else AUTHENTIK_TOKEN.
    "api_token": {"type": "str", "no_log": True},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "allow_insecure_http": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 30},
    # How long verify waits for the sync that saving the provider queued to succeed.
    "sync_timeout": {"type": "int", "default": 300},
}
ENVIRONMENT = {"api_token": ("AUTHENTIK_TOKEN",)}
REALM_SETTINGS: dict[str, dict[str, t.Any]] = {
    # The SCIM provider's id (its pk: the number in the admin interface's URL of the provider).
    "provider_id": {"type": "int", "required": True},
}

SUCCEEDED = ("done", "info")
FAILED = ("warning", "error", "rejected")
# The status poll: first look soon (the double and a small directory finish fast), then back off.
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class AuthentikSettings:
    url: str
    api_token: str = dataclasses.field(repr=False)
    ca_path: str | None
    validate_certs: bool
    allow_insecure_http: bool
    timeout: int
    sync_timeout: int


class AuthentikBackend:
    name = NAME

    def __init__(self, settings: AuthentikSettings):
        self.settings = settings
        self.client = JsonClient(settings.url + "/api/v3", NAME, self._headers, ca_path=settings.ca_path,
                                 validate_certs=settings.validate_certs,
                                 allow_insecure_http=settings.allow_insecure_http, timeout=settings.timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.settings.api_token}

    # ------------------------------------------------------------------ the steps

    def read(self, realm: IdpRealm) -> IdpState:
        provider_id = _provider_id(realm)
        provider = self._provider(realm, provider_id, "read")
        status = self._sync_status(realm, provider_id, "read")
        name = provider.get("name")
        facts = {"provider_id": provider_id, "url": provider.get("url"), "name": name,
                 "last_successful_sync": status.get("last_successful_sync"),
                 "last_sync_status": status.get("last_sync_status")}
        what = "SCIM provider %s (%s) at %s" % (provider_id, name, shown_url(provider.get("url")))
        auth_mode = provider.get("auth_mode") or "token"
        if auth_mode != "token":
            return IdpState(automated=False, facts=facts, summary=(
                "%s authenticates with auth_mode %s, not a token: Zulip takes a bearer token, so this realm stays "
                "manual" % (what, auth_mode)))
        if provider.get("url") != realm.base_url:
            what += "; the push sets its URL to %s" % realm.base_url
        return IdpState(automated=True, facts=facts, summary=what)

    def before_zulip(self, realm: IdpRealm, state: IdpState) -> None:
        """Nothing: authentik has no pause; a sync that meets the cut-over is retried by the next one."""

    def push(self, realm: IdpRealm, state: IdpState, token: str) -> None:
        answer = self._patch(realm, state, {"url": realm.base_url, "token": _zulip_token(realm, token)}, "push")
        # authentik's clock at the save: a sync task that ended at or after it ran with the new token.
        state.facts["pushed_at"] = _server_time(answer)

    def verify(self, realm: IdpRealm, state: IdpState) -> None:
        provider_id = _provider_id(realm)
        provider = self._provider(realm, provider_id, "verify")
        if provider.get("url") != realm.base_url:
            raise _error(realm, "verify", "the provider reads back with URL %s, not %s" % (
                shown_url(provider.get("url")), realm.base_url))
        self._wait_for_sync(realm, state, provider_id)

    def after(self, realm: IdpRealm, state: IdpState) -> None:
        """Nothing: the sync was queued by the push itself."""

    def restore(self, realm: IdpRealm, state: IdpState, token: str | None) -> None:
        if token is None:
            return  # never pushed to (and nothing paused): nothing to put back
        old_url = state.facts.get("url")
        body: dict[str, t.Any] = {"token": _zulip_token(realm, token)}
        if isinstance(old_url, str) and old_url:
            body["url"] = old_url
        self._patch(realm, state, body, "restore")

    # ------------------------------------------------------------------ requests

    def _call(self, realm: IdpRealm, method: str, path: str, step: str, body: t.Any = None) -> Response:
        answer = self.client.call(method, path, body=body, expect=(200, 400, 403, 404),
                                  step="realm %s, %s" % (realm.subdomain, step))
        if answer.status == 403:
            raise _error(realm, step, "authentik refused the API token (HTTP 403): it is wrong or expired, or its user "
                                      "may not view and change SCIM provider %s" % _provider_id(realm))
        if answer.status == 404:
            raise _error(realm, step, "authentik has no SCIM provider %s (HTTP 404): check the realm's provider_id"
                         % _provider_id(realm))
        if answer.status == 400:
            fields = sorted(k for k in answer.body if isinstance(k, str) and k.isidentifier()) \
                if isinstance(answer.body, dict) else []
            raise _error(realm, step, "authentik refused the request (HTTP 400%s)" % (
                ", about: %s" % ", ".join(fields) if fields else ""))
        if not isinstance(answer.body, dict):
            raise _error(realm, step, "authentik answered %s %s without a JSON object" % (method, path))
        return answer

    def _provider(self, realm: IdpRealm, provider_id: str, step: str) -> dict:
        return self._call(realm, "GET", "/providers/scim/%s/" % provider_id, step).body

    def _sync_status(self, realm: IdpRealm, provider_id: str, step: str) -> dict:
        return self._call(realm, "GET", "/providers/scim/%s/sync/status/" % provider_id, step).body

    def _patch(self, realm: IdpRealm, state: IdpState, body: dict, step: str) -> Response:
        if not state.automated:
            raise _error(realm, step, "the provider is not automated (%s)" % state.summary)
        provider_id = _provider_id(realm)
        answer = self._call(realm, "PATCH", "/providers/scim/%s/" % provider_id, step, body=body)
        if "url" in body and answer.body.get("url") != body["url"]:
            raise _error(realm, step, "authentik kept the URL %s" % shown_url(answer.body.get("url")))
        return answer

    def _wait_for_sync(self, realm: IdpRealm, state: IdpState, provider_id: str) -> None:
        before = (state.facts.get("last_sync_status"), state.facts.get("last_successful_sync"))
        deadline = time.monotonic() + self.settings.sync_timeout
        pause = FIRST_POLL_SECONDS
        seen_running = False
        while True:
            status = self._sync_status(realm, provider_id, "verify")
            running = bool(status.get("is_running"))
            seen_running = seen_running or running
            last, last_ok = status.get("last_sync_status"), status.get("last_successful_sync")
            if not running and _succeeded_since(last_ok, before[1], state.facts.get("pushed_at")):
                return
            news = seen_running or (last, last_ok) != before
            if news and not running and last in FAILED:
                raise _error(realm, "verify", "authentik's sync after the push ended with status %s: see the provider's "
                                              "sync status and its system tasks in authentik" % last)
            if time.monotonic() >= deadline:
                raise _error(realm, "verify", "no successful sync within %d s after the push (sync_timeout); last sync "
                                              "status: %s%s" % (self.settings.sync_timeout, last or "none",
                                                                ", still running" if running else ""))
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, MAX_POLL_SECONDS)


def _server_time(answer: Response) -> str | None:
    """The answer's Date header as an ISO time (None without a readable one)."""
    value = next((v for k, v in answer.headers.items() if k.lower() == "date"), None)
    try:
        return email.utils.parsedate_to_datetime(value).isoformat() if value else None
    except (TypeError, ValueError):
        return None


def _parse_time(value: t.Any) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _succeeded_since(last_ok: t.Any, before: t.Any, pushed_at: str | None) -> bool:
    """A successful sync newer than the push (by authentik's clock); without a Date header, newer than read's."""
    if not last_ok or last_ok == before:
        return False
    ended, pushed = _parse_time(last_ok), _parse_time(pushed_at)
    return ended is None or pushed is None or ended >= pushed


def _error(realm: IdpRealm, step: str, message: str) -> IdpError:
    return realm_error(NAME, realm, step, message)


def _provider_id(realm: IdpRealm) -> str:
    return realm_setting(NAME, realm, "provider_id", r"[1-9][0-9]{0,9}", "the SCIM provider's id (a positive number)",
                         REALM_SETTINGS)


def _zulip_token(realm: IdpRealm, token: t.Any) -> str:
    return scim_token(NAME, realm, token)


def connect(options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> AuthentikBackend:
    """The backend for ``options`` (see OPTIONS); checks them, makes no request."""
    values = settle(NAME, OPTIONS, options, environ, ENVIRONMENT)
    if not values.get("api_token"):
        raise IdpError("%s: no API token; set api_token or AUTHENTIK_TOKEN" % NAME)
    bad_ca = ca_path_problem(values["ca_path"], "ca_path")
    if bad_ca:
        raise IdpError("%s: %s" % (NAME, bad_ca))
    return AuthentikBackend(AuthentikSettings(
        url=api_root(NAME, "url", values["url"]),
        api_token=credential(NAME, "api_token", values["api_token"]),
        ca_path=values["ca_path"], validate_certs=values["validate_certs"],
        allow_insecure_http=values["allow_insecure_http"], timeout=values["timeout"],
        sync_timeout=values["sync_timeout"]))
