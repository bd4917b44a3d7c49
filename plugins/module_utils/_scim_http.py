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
import ssl
import time

from urllib.parse import urlsplit

# Every request of a module run goes to the same front end, the realms told apart by the Host
# header alone: they share one connection (HTTP/1.1 keep-alive; Zulip's nginx keeps one open for
# 500 requests), so a run makes one TCP and TLS handshake, not one per request (zulip_info's proof
# of a host with 3 realms makes 9). The standard library's client, not ansible.module_utils.urls: no
# proxy, no redirect is ever wanted here, and it keeps the module's payload and import time small.
_CONNECTIONS: dict = {}
_CONTEXTS: dict = {}
# What a connection the server has closed in the meantime answers to a new request: then the request
# is sent once more on a new connection (a GET, nothing is done twice).
_CLOSED_MEANWHILE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _tls_context(validate_certs: bool) -> ssl.SSLContext:
    """One context per module run; without validation no CA store is loaded (~20-40 ms each)."""
    if validate_certs not in _CONTEXTS:
        if validate_certs:
            context = ssl.create_default_context()
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _CONTEXTS[validate_certs] = context
    return _CONTEXTS[validate_certs]


def _target(api_url: str) -> tuple[str, str, str]:
    """Scheme, host[:port] and path prefix of ``api_url``; ValueError for anything but an http(s) URL."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("unknown url type: %r (expected http://HOST or https://HOST)" % api_url)
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def _connect(scheme: str, netloc: str, validate_certs: bool, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=_tls_context(validate_certs))
    return http.client.HTTPConnection(netloc, timeout=timeout)


def close_connections() -> None:
    """Close what is kept open (a module run ends them anyway; for callers that go on)."""
    while _CONNECTIONS:
        _CONNECTIONS.popitem()[1].close()


def _ask(connection: http.client.HTTPConnection, path: str, headers: dict) -> http.client.HTTPResponse:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()  # the whole answer, so that the connection can take the next request
    return response


def _get(api_url: str, headers: dict, validate_certs: bool, timeout: float) -> tuple[int, str]:
    """Status and WWW-Authenticate of ``GET PROBE_PATH``; raises OSError, ValueError or HTTPException."""
    scheme, netloc, prefix = _target(api_url)
    key = (scheme, netloc, validate_certs, timeout)
    reused = key in _CONNECTIONS
    connection = _CONNECTIONS.pop(key, None) or _connect(scheme, netloc, validate_certs, timeout)
    try:
        try:
            response = _ask(connection, prefix + PROBE_PATH, headers)
        except _CLOSED_MEANWHILE:
            if not reused:
                raise
            connection.close()
            connection = _connect(scheme, netloc, validate_certs, timeout)
            response = _ask(connection, prefix + PROBE_PATH, headers)
    except BaseException:
        connection.close()
        raise
    if response.will_close:
        connection.close()
    else:
        _CONNECTIONS[key] = connection
    return response.status, response.getheader("WWW-Authenticate", "") or ""


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
        status, www_authenticate = _get(api_url, headers, validate_certs, timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ProbeResult(None, error=_network_error_text(exc))
    return ProbeResult(status, www_authenticate=www_authenticate)


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
    """The error as the operator should read it ("[Errno 111] Connection refused", "timed out", ...)."""
    return str(exc) or type(exc).__name__
