# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Talking to a Zulip server's SCIM API from the Zulip host itself.

The requests go to the server's own web front end (the URL ``_zulip_conf``
derives, by default ``https://127.0.0.1``) with the realm's host name in the ``Host`` header,
because Zulip picks the realm by host name. A token is only ever placed in the
``Authorization`` header; no message built here contains one.
"""

from __future__ import annotations

import http.client
import inspect
import time

from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import Request, open_url

try:
    from ansible.module_utils.urls import make_context
except ImportError:  # pragma: no cover - older ansible-core
    make_context = None

# A module run probes several realms, a few times each (zulip_scim_check: 3 requests a realm). A new
# TLS context per request loads the system's CA store again, ~40 ms each on the test hosts: one
# context per module run instead, where ansible-core lets a request take one (2.17+; else per call).
_REUSE_CONTEXT = make_context is not None and "context" in inspect.signature(Request.open).parameters
_CONTEXTS: dict = {}


def _tls_context(validate_certs: bool):
    if validate_certs not in _CONTEXTS:
        _CONTEXTS[validate_certs] = make_context(validate_certs=validate_certs)
    return _CONTEXTS[validate_certs]


def _get(url: str, headers: dict, validate_certs: bool, timeout: float):
    if _REUSE_CONTEXT and url.startswith("https:"):
        return Request().open("GET", url, headers=headers, validate_certs=validate_certs, timeout=timeout,
                              follow_redirects="none", use_proxy=False, context=_tls_context(validate_certs))
    return open_url(url, method="GET", headers=headers, validate_certs=validate_certs, timeout=timeout,
                    follow_redirects="none", use_proxy=False)


PROBE_PATH = "/scim/v2/Users?count=1"
# Zulip answers these while the server is (re)starting behind nginx.
TRANSIENT_STATUSES = (502, 503, 504)


class ProbeResult:
    """Outcome of one request: an HTTP status, or ``None`` with the network error."""

    def __init__(self, status: int | None, error: str = "", www_authenticate: str = ""):
        self.status = status
        self.error = error
        self.www_authenticate = www_authenticate

    def describe(self) -> str:
        return "HTTP %d" % self.status if self.status is not None else "no answer (%s)" % self.error


def realm_host(subdomain: str, external_host: str) -> str:
    """The host name Zulip serves a realm on; the root domain has no subdomain."""
    return "%s.%s" % (subdomain, external_host) if subdomain else external_host


def probe(
    api_url: str,
    host: str,
    token: str | None = None,
    validate_certs: bool = False,
    timeout: float = 10.0,
) -> ProbeResult:
    """``GET /scim/v2/Users?count=1`` for one realm, with or without a token."""
    headers = {"Host": host, "Accept": "application/scim+json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    try:
        response = _get(api_url.rstrip("/") + PROBE_PATH, headers, validate_certs, timeout)
        response.read()
        return ProbeResult(response.getcode())
    except HTTPError as exc:
        return ProbeResult(exc.code, www_authenticate=exc.headers.get("WWW-Authenticate", "") if exc.headers else "")
    except (URLError, OSError, ValueError, http.client.HTTPException) as exc:
        return ProbeResult(None, error=_network_error_text(exc))


def probe_until_settled(
    api_url: str,
    host: str,
    token: str | None,
    validate_certs: bool,
    timeout: float,
    attempts: int,
    delay: float,
    after_restart: bool = False,
) -> ProbeResult:
    """Probe again while the server is still coming up.

    502-504 come from nginx while Zulip restarts behind it, so they are waited
    for. No answer at all is waited for only ``after_restart``: otherwise
    nothing listens at ``api_url`` and waiting would only delay the error.
    """
    result = probe(api_url, host, token, validate_certs, timeout)
    for dummy in range(max(attempts, 1) - 1):
        if result.status is None and not after_restart:
            break
        if result.status is not None and result.status not in TRANSIENT_STATUSES:
            break
        time.sleep(delay)
        result = probe(api_url, host, token, validate_certs, timeout)
    return result


def no_front_end_message(api_url: str, error: str) -> str:
    """What to say when nothing answers at ``api_url``; the role's variable is named for operators."""
    return ("nothing answers at %s (%s): set api_url (zulip_scim_api_url in the scim role) to the URL "
            "where this host serves Zulip, or check that Zulip runs" % (api_url, error))


def _network_error_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)
