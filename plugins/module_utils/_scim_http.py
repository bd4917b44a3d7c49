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

When the certificate is validated, the TLS handshake names the realm's host too (SNI, and the
name the certificate is checked against), whatever address the URL connects to: the server's
certificate names its users' host name, never 127.0.0.1. Whether to validate is ``_tls``'s rule.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import time

from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _tls as tls
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import token_problem
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, external_host_problem, show_value

# Every request of a module run goes to the same front end, the realms told apart by the Host
# header alone: they share one connection (HTTP/1.1 keep-alive; Zulip's nginx keeps one open for
# 500 requests), so a run makes one TCP and TLS handshake, not one per request (zulip_scim_preflight's proof
# of a host with 3 realms makes 9). With validation, each realm's host name is the TLS server name,
# so that is one connection per realm: a token goes only over a handshake that proved its realm.
# The standard library's client, not ansible.module_utils.urls: no proxy, no redirect is ever
# wanted here, and it keeps the module's payload and import time small.
_CONNECTIONS: dict = {}
_CONTEXTS: dict = {}
# What a connection the server has closed in the meantime answers to a new request: then the request
# is sent once more on a new connection (a GET, nothing is done twice).
_CLOSED_MEANWHILE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


# What the module's message starts with when the handshake refused the certificate (no_front_end_message).
CERTIFICATE_NOT_TRUSTED = "the TLS certificate"


class CertificateNotTrusted(OSError):
    """The server's certificate did not validate for the realm's host name; nothing was sent."""


def _tls_context(validate_certs: bool, ca_path: str | None = None) -> ssl.SSLContext:
    """One context per module run; without validation no CA store is loaded (~20-40 ms each).

    With ``ca_path`` only that bundle is trusted (a private CA), else the system's store.
    """
    key = (validate_certs, ca_path if validate_certs else None)
    if key not in _CONTEXTS:
        if validate_certs:
            context = ssl.create_default_context(cafile=ca_path or None)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _CONTEXTS[key] = context
    return _CONTEXTS[key]


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``netloc`` whose handshake names ``server_name`` (SNI and the certificate check), not
    the address it connects to."""

    def __init__(self, netloc: str, server_name: str, **kwargs) -> None:
        super().__init__(netloc, **kwargs)
        self.server_name = server_name

    def connect(self) -> None:
        # HTTPSConnection.connect with the server name in place of self.host (no proxy tunnel here).
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


@dataclass(frozen=True)
class _Tls:
    """How a connection's handshake goes; ``server_name`` None: the URL's host, as http.client does."""

    validate_certs: bool
    ca_path: str | None = None
    server_name: str | None = None


def _target(api_url: str) -> tuple[str, str, str]:
    """Scheme, host[:port] and path prefix of ``api_url``; ValueError for anything but an http(s) URL."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnusableUrl("unknown url type: %r (expected http://HOST or https://HOST)" % api_url)
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def _connect(scheme: str, netloc: str, tls_settings: _Tls, timeout: float) -> http.client.HTTPConnection:
    if scheme != "https":
        return http.client.HTTPConnection(netloc, timeout=timeout)
    context = _tls_context(tls_settings.validate_certs, tls_settings.ca_path)
    if tls_settings.server_name is None:
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)
    return _NamedHTTPSConnection(netloc, tls_settings.server_name, timeout=timeout, context=context)


def close_connections() -> None:
    """Close what is kept open (a module run ends them anyway; for callers that go on)."""
    while _CONNECTIONS:
        _CONNECTIONS.popitem()[1].close()


def _ask(connection: http.client.HTTPConnection, path: str, headers: dict) -> http.client.HTTPResponse:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()  # the whole answer, so that the connection can take the next request
    return response


def _get(api_url: str, headers: dict, tls_settings: _Tls, timeout: float) -> tuple[int, str]:
    """Status and WWW-Authenticate of ``GET PROBE_PATH``; raises OSError, ValueError or HTTPException."""
    scheme, netloc, prefix = _target(api_url)
    # Per connection target: a connection is only reused for the same handshake (server name, CA).
    key = (scheme, netloc, tls_settings, timeout)
    reused = key in _CONNECTIONS
    connection = _CONNECTIONS.pop(key, None) or _connect(scheme, netloc, tls_settings, timeout)
    try:
        try:
            response = _ask(connection, prefix + PROBE_PATH, headers)
        except _CLOSED_MEANWHILE:
            if not reused:
                raise
            connection.close()
            connection = _connect(scheme, netloc, tls_settings, timeout)
            response = _ask(connection, prefix + PROBE_PATH, headers)
    except ssl.SSLCertVerificationError as exc:
        connection.close()
        raise CertificateNotTrusted(_untrusted_text(tls_settings, exc)) from None
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
    validate_certs: bool | None = False,
    timeout: float = 10.0,
    ca_path: str | None = None,
) -> ProbeResult:
    """``GET /scim/v2/Users?count=1`` for one realm, with or without a token.

    ``validate_certs`` None is ``_tls``'s automatic choice; a validated certificate must name
    ``host`` (without its port), and is checked against ``ca_path`` when given.
    """
    # Checked before any header holds them: http.client's own refusal of a bad header quotes it, token and all.
    check_header_values(host, token)
    headers = {"Host": host, "Accept": "application/scim+json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    tls_settings = _tls_settings(api_url, host, validate_certs, ca_path)
    try:
        status, www_authenticate = _get(api_url, headers, tls_settings, timeout)
    except CertificateNotTrusted as exc:
        return ProbeResult(None, error=str(exc))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ProbeResult(None, error=_network_error_text(exc))
    return ProbeResult(status, www_authenticate=www_authenticate)


def _tls_settings(api_url: str, host: str, validate_certs: bool | None, ca_path: str | None) -> _Tls:
    if not tls.should_validate(validate_certs, api_url, ca_path):
        # Nothing is checked: the URL's host as server name, so every realm shares the one connection.
        return _Tls(False)
    return _Tls(True, ca_path or None, tls.server_name(host))


def _untrusted_text(tls_settings: _Tls, exc: ssl.SSLCertVerificationError) -> str:
    """OpenSSL's reason ("self-signed certificate", "Hostname mismatch, ...") and what to do."""
    reason = getattr(exc, "verify_message", "") or "certificate verify failed"
    trusted = "the CAs of %s" % tls_settings.ca_path if tls_settings.ca_path else "the system's CAs"
    return ("%s is not trusted for %s (%s; checked with %s): give the CA that signed it with ca_path "
            "(zulip_scim_api_ca_path in the scim role), or set validate_certs to false "
            "(zulip_scim_api_validate_certs) where the network to the server is trusted"
            % (CERTIFICATE_NOT_TRUSTED, tls_settings.server_name, reason, trusted))


def probe_until_settled(
    api_url: str,
    host: str,
    token: str | None,
    validate_certs: bool | None,
    timeout: float,
    attempts: int,
    delay: float,
    after_restart: bool = False,
    ca_path: str | None = None,
) -> ProbeResult:
    """Probe again while the server is still coming up.

    502-504 come from nginx while Zulip restarts behind it, so they are waited
    for. No answer at all is waited for only ``after_restart``: otherwise
    nothing listens at ``api_url`` and waiting would only delay the error.
    """
    result = probe(api_url, host, token, validate_certs, timeout, ca_path=ca_path)
    for dummy in range(max(attempts, 1) - 1):
        if result.status is None and (not after_restart or result.error.startswith(CERTIFICATE_NOT_TRUSTED)):
            break
        if result.status is not None and result.status not in TRANSIENT_STATUSES:
            break
        time.sleep(delay)
        result = probe(api_url, host, token, validate_certs, timeout, ca_path=ca_path)
    return result


def no_front_end_message(api_url: str, error: str) -> str:
    """What to say when nothing answers at ``api_url``; the role's variable is named for operators."""
    if error.startswith(CERTIFICATE_NOT_TRUSTED):
        # Something answers, but no token went to it.
        return "%s: %s; no token was sent" % (api_url, error)
    return ("nothing answers at %s (%s): set api_url (zulip_scim_api_url in the scim role) to the URL "
            "where this host serves Zulip, or check that Zulip runs" % (api_url, error))


class UnusableUrl(ValueError):
    """``api_url`` is no http(s) URL; the message is this module's own, so it may be shown."""


def check_header_values(host: str, token: str | None) -> None:
    """ZulipError unless ``host`` is a host[:port] and ``token`` (when given) a token that can be sent.

    The message names the realm's host, never the token. The callers check first, naming the
    realm as the operator knows it; this is the last check before a header holds either.
    """
    problem = external_host_problem(host)
    if problem:
        raise ZulipError("%s is not a valid host for the Host header: %s; no request was sent" % (show_value(host), problem))
    if token is not None:
        problem = token_problem(token)
        if problem:
            raise ZulipError("the token for %s cannot be sent in an Authorization header (%s); no request was sent"
                             % (host, problem))


def _network_error_text(exc: BaseException) -> str:
    """The error as the operator should read it ("[Errno 111] Connection refused", "timed out", ...).

    Never ``str(exc)``: what building or sending a request raises can quote the request, e.g.
    http.client's "Invalid header value b'Bearer ...'" holds the token. So only fixed texts: an
    OSError's strerror or errno name, an ssl error's reason, else the exception's class name.
    """
    if isinstance(exc, UnusableUrl):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)  # OpenSSL's name for it, e.g. WRONG_VERSION_NUMBER
        return "TLS error: %s" % (reason if isinstance(reason, str) and reason else type(exc).__name__)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        name = exc.strerror if isinstance(exc.strerror, str) else errno.errorcode.get(exc.errno, "")
        return "[Errno %d] %s" % (exc.errno, name) if name else "[Errno %d]" % exc.errno
    return type(exc).__name__
