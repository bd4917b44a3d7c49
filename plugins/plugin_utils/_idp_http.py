# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""JSON over HTTPS for the IdP backends, with the collection's TLS rules and no secret in any error.

A URL that is not on this machine must be https (plain HTTP only by an explicit option), its
certificate is checked (a CA bundle may be given); a response's body is never quoted in an
error (an IdP's error text may echo what it was sent), only its status and the API's own error
code when it has one.
"""

from __future__ import annotations

import json
import ssl
import typing as t
import urllib.error
import urllib.request

from ansible_collections.zulip_ops.zulip.plugins.module_utils._tls import cleartext_problem
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError

DEFAULT_TIMEOUT = 30
# An IdP answer larger than this is not one of the small JSON documents these APIs return.
MAX_BODY = 4 * 1024 * 1024


class Response(t.NamedTuple):
    status: int
    body: t.Any  # parsed JSON, or None for an empty body
    headers: t.Mapping[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header elsewhere: it is an error here."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's API
        return None


def tls_context(url: str, ca_path: str | None, validate_certs: bool) -> ssl.SSLContext | None:
    if not url.lower().startswith("https://"):
        return None
    context = ssl.create_default_context(cafile=ca_path or None)
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class JsonClient:
    """Requests to one API root. ``headers`` is called per request (a token may be refreshed)."""

    def __init__(self, root: str, what: str, headers: t.Callable[[], dict[str, str]], ca_path: str | None = None,
                 validate_certs: bool = True, allow_insecure_http: bool = False, timeout: int = DEFAULT_TIMEOUT,
                 allow_option: str = "allow_insecure_http"):
        problem = None if allow_insecure_http else cleartext_problem(root, allow_option)
        if problem:
            raise IdpError("%s: %s" % (what, problem))
        self.root = root.rstrip("/")
        self.what = what
        self.headers = headers
        self.timeout = timeout
        context = tls_context(root, ca_path, validate_certs)
        handlers: list[t.Any] = [_NoRedirect()]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def call(self, method: str, path: str, body: t.Any = None, expect: t.Collection[int] = (200, 204),
             step: str = "") -> Response:
        """One request; a status outside ``expect`` raises IdpError naming ``step``, the status and the API's code."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self.headers(), Accept="application/json")
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.root + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                status, raw, answer_headers = answer.status, answer.read(MAX_BODY + 1), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            status, raw, answer_headers = exc.code, _read_quietly(exc), dict(exc.headers or {})
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            why = reason if isinstance(reason, str) else type(reason).__name__
            raise IdpError("%s: %s %s failed%s: %s" % (self.what, method, path, _for(step), why)) from None
        parsed = _parse(raw)
        if status not in expect:
            code = _api_code(parsed)
            raise IdpError("%s: %s %s%s answered HTTP %d%s" % (self.what, method, path, _for(step), status, code))
        return Response(status, parsed, answer_headers)


def _for(step: str) -> str:
    return " (%s)" % step if step else ""


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(MAX_BODY + 1)
    except OSError:
        return b""


def _parse(raw: bytes) -> t.Any:
    if not raw or len(raw) > MAX_BODY:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _api_code(parsed: t.Any) -> str:
    """The API's own error code (Graph: error.code; Okta: errorCode; authentik: a field name), never its text."""
    if not isinstance(parsed, dict):
        return ""
    error = parsed.get("error")
    for code in (error.get("code") if isinstance(error, dict) else None, parsed.get("errorCode"),
                 error if isinstance(error, str) else None):
        if isinstance(code, str) and code.replace("_", "").replace(".", "").isalnum() and len(code) <= 64:
            return " (%s)" % code
    return ""
