# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Okta's OAuth 2.0 for an API service app: client credentials with ``private_key_jwt``.

The client proves itself with a JWT it signs with its private key (RS256 for an RSA key,
ES256 for a P-256 key): ``iss`` and ``sub`` the client id, ``aud`` the org's token endpoint
``<org_url>/oauth2/v1/token``, a short ``exp`` and a fresh ``jti`` (Okta refuses a ``jti`` it
has seen). The access token it gets is sent as ``Authorization: Bearer`` and kept until shortly
before it expires. DPoP-bound tokens are not supported: a service app that requires DPoP is
refused with a message that says so. Signing needs the Python package ``cryptography`` (ansible-core
depends on it), imported only here.
"""

from __future__ import annotations

import base64
import json
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError

TOKEN_PATH = "/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 300
# A token this close to its end is not used any more (a rotation makes a few requests).
MARGIN_SECONDS = 60
MAX_KEY_BYTES = 64 * 1024
MAX_ANSWER = 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class PrivateKeyJwt:
    """Access tokens for one service app. ``opener`` is the JsonClient's (same TLS rules, no redirects)."""

    def __init__(self, idp: str, org_url: str, client_id: str, key_path: str, passphrase: str | None,
                 key_id: str | None, scopes: str, opener: t.Any, timeout: int):
        self.idp = idp
        self.token_url = org_url + TOKEN_PATH
        self.client_id = client_id
        self.key_id = key_id
        self.scopes = scopes
        self.opener = opener
        self.timeout = timeout
        self._key, self._alg = _load_key(idp, key_path, passphrase)
        self._token: str | None = None
        self._until = 0.0

    def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._until:
            self._token, lifetime = self._fetch()
            self._until = time.monotonic() + max(0, lifetime - MARGIN_SECONDS)
        return {"Authorization": "Bearer " + self._token}

    def assertion(self) -> str:
        now = int(time.time())
        header = {"alg": self._alg, "typ": "JWT"}
        if self.key_id:
            header["kid"] = self.key_id
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now,
                  "exp": now + ASSERTION_SECONDS, "jti": str(uuid.uuid4())}
        signing_input = "%s.%s" % (_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()))
        return "%s.%s" % (signing_input, _b64(_sign(self._key, self._alg, signing_input.encode("ascii"))))

    def _fetch(self) -> tuple[str, int]:
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": self.scopes,
                                       "client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion()})
        request = urllib.request.Request(self.token_url, data=form.encode("ascii"), method="POST", headers={
            "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                status, raw = answer.status, answer.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read(MAX_ANSWER + 1) if exc.fp else b""
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IdpError("%s: the token request to %s failed: %s" % (
                self.idp, self.token_url, reason if isinstance(reason, str) else type(reason).__name__)) from None
        body = _json(raw)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if status == 200 and isinstance(token, str) and token and isinstance(lifetime, int):
            return token, lifetime
        raise IdpError("%s: Okta refused the service app's token request (HTTP %d%s)%s" % (
            self.idp, status, _error_code(body), _hint(body)))


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode("utf-8")) if raw and len(raw) <= MAX_ANSWER else None
    except (UnicodeDecodeError, ValueError):
        value = None
    return value if isinstance(value, dict) else {}


def _error_code(body: dict) -> str:
    code = body.get("error")
    return ", %s" % code if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64 else ""


def _hint(body: dict) -> str:
    code = body.get("error")
    if code == "invalid_dpop_proof" or code == "use_dpop_nonce":
        return ": the service app requires DPoP, which the collection does not support yet; turn DPoP off for it " \
               "or use an API token"
    if code == "invalid_client":
        return ": check client_id, the key (its public part must be registered with the app) and key_id"
    if code == "invalid_scope":
        return ": grant the app the scopes asked for (scopes) in Okta API Scopes"
    return ""


def _load_key(idp: str, path: str, passphrase: str | None) -> tuple[t.Any, str]:
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives.serialization import load_pem_private_key  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise IdpError("%s: private_key_jwt needs the Python package cryptography on the controller" % idp) from None
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise IdpError("%s: private_key_path %s: %s" % (idp, path, exc.strerror or type(exc).__name__)) from None
    try:
        key = load_pem_private_key(data, passphrase.encode("utf-8") if passphrase else None)
    except (ValueError, TypeError):
        raise IdpError("%s: private_key_path %s is not a PEM private key (or its passphrase is wrong or missing)"
                       % (idp, path)) from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key, "ES256"
    raise IdpError("%s: private_key_path %s: an RSA key of 2048 bits or more, or a P-256 EC key, is needed" % (idp, path))


def _sign(key: t.Any, alg: str, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec, padding  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # pylint: disable=import-outside-toplevel
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
