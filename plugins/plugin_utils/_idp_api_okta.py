# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Okta: a realm is one app, whose default provisioning connection the API may set.

Plain HTTP through JsonClient, no Okta library. Okta's management API (okta-management-openapi-spec,
``dist/current/management-oneOfInheritance.yaml``; the ``okta`` SDK's ``ProvisioningConnection*``
models) documents token connections for a few app types only (Org2Org, Zscaler 2.0). For other
apps, the custom SCIM apps and the "SCIM 2.0 Test App (Header Auth)" that Zulip's guide uses among
them, Okta answers the read with an ``UNKNOWN`` auth scheme and status: such a realm stays manual,
and ``read`` says so before anything changes.

- ``read``: ``GET /api/v1/apps/{appId}/connections/default``; automated only when the connection's
  auth scheme is ``TOKEN``. A connection that names a base URL other than the realm's is refused:
  Okta would send the token there.
- ``push``: ``POST /api/v1/apps/{appId}/connections/default?activate=true`` with
  ``{"profile": {"authScheme": "TOKEN", "token": <token>}}`` (plus ``baseUrl``, the realm's, when
  the connection has one).
- ``verify``: read back: status ``ENABLED``, auth scheme ``TOKEN``, the realm's base URL if any.
  (Okta tests a connection when it activates it; the API has no separate check.)
- ``restore``: the old token pushed again (and the connection deactivated again if it was not
  enabled); without an old token, the connection is deactivated, so that Okta does not use a
  token Zulip never accepted.

Authentication: an API token (``Authorization: SSWS <token>``) of an admin who may manage the
app, or OAuth 2.0 for an API service app (client credentials with ``private_key_jwt``, scope
``okta.apps.manage``; _idp_okta_oauth.py). DPoP-bound tokens are not supported yet.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils._tls import ca_path_problem
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpRealm, IdpState
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_http import JsonClient, Response
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_okta_oauth import PrivateKeyJwt
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_options import (
    api_root,
    credential,
    realm_error,
    realm_setting,
    scim_token,
    settle,
    shown_url,
)

NAME = "okta"
SDK_VERSION = "3.4.6"  # the okta package whose models the backend and its test double are checked against

OPTIONS: dict[str, dict[str, t.Any]] = {
    # The org's URL, e.g. https://example.okta.com (no path).
    "org_url": {"type": "str", "required": True},
    # An API token (Security > API > Tokens) of an admin who may manage the realms' apps; else
    # OKTA_API_TOKEN or OKTA_CLIENT_TOKEN (the variable Okta's SDKs read).
    "api_token": {"type": "str", "no_log": True},
    # Or OAuth 2.0 for an API service app (private_key_jwt): its client id, the private key whose
    # public part is registered with it (PEM, RSA or P-256), the key's id there, and the scopes.
    "client_id": {"type": "str"},
    "private_key_path": {"type": "path"},
    "private_key_passphrase": {"type": "str", "no_log": True},
    "key_id": {"type": "str"},
    "scopes": {"type": "str", "default": "okta.apps.manage"},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "allow_insecure_http": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 30},
}
ENVIRONMENT = {"api_token": ("OKTA_API_TOKEN", "OKTA_CLIENT_TOKEN")}
REALM_SETTINGS: dict[str, dict[str, t.Any]] = {
    # The app's id (the 0oa... in the admin console's URL of the app).
    "app_id": {"type": "str", "required": True},
}

TOKEN = "TOKEN"
ENABLED = "ENABLED"
# What Okta's error codes mean here (its errorCode; errorSummary is never quoted: it may echo input).
CODES = {"E0000011": "the API token is wrong or expired", "E0000006": "the API token's admin may not manage this app",
         "E0000007": "no such app", "E0000001": "Okta refused the request as invalid"}


@dataclasses.dataclass(frozen=True)
class OAuthApp:
    """An API service app (private_key_jwt); the key's passphrase is the only secret here."""

    client_id: str
    private_key_path: str
    private_key_passphrase: str | None = dataclasses.field(repr=False)
    key_id: str | None
    scopes: str


@dataclasses.dataclass(frozen=True)
class OktaSettings:
    org_url: str
    api_token: str | None = dataclasses.field(repr=False)
    oauth: OAuthApp | None
    ca_path: str | None
    validate_certs: bool
    allow_insecure_http: bool
    timeout: int


class OktaBackend:
    name = NAME

    def __init__(self, settings: OktaSettings):
        self.settings = settings
        self.client = JsonClient(settings.org_url, NAME, self._headers, ca_path=settings.ca_path,
                                 validate_certs=settings.validate_certs,
                                 allow_insecure_http=settings.allow_insecure_http, timeout=settings.timeout)
        app = settings.oauth
        # The token request goes through the same opener: the same TLS rules, no redirects.
        self.oauth = None if app is None else PrivateKeyJwt(
            NAME, settings.org_url, app.client_id, app.private_key_path, app.private_key_passphrase, app.key_id,
            app.scopes, self.client.opener, settings.timeout)

    def _headers(self) -> dict[str, str]:
        if self.oauth is not None:
            return self.oauth.headers()
        return {"Authorization": "SSWS " + str(self.settings.api_token)}

    # ------------------------------------------------------------------ the steps

    def read(self, realm: IdpRealm) -> IdpState:
        app_id = _app_id(realm)
        connection = self._connection(realm, app_id, "read")
        scheme, status, base_url = _scheme(connection), connection.get("status"), connection.get("baseUrl")
        facts = {"app_id": app_id, "auth_scheme": scheme, "status": status, "base_url": base_url}
        what = "app %s: provisioning connection %s, auth scheme %s" % (app_id, status, scheme)
        if scheme != TOKEN:
            why = ("Okta's API does not set this app's connection (custom SCIM apps, such as the SCIM 2.0 Test App, answer "
                   "UNKNOWN)" if scheme == "UNKNOWN" else "it does not take a token")
            return IdpState(automated=False, facts=facts, summary="%s; %s, so this realm stays manual" % (what, why))
        if base_url is not None and base_url != realm.base_url:
            raise _error(realm, "read", "the app's connection sends to %s, not to the realm's %s; correct it in Okta first"
                         % (shown_url(base_url), realm.base_url))
        return IdpState(automated=True, facts=facts, summary=what)

    def before_zulip(self, realm: IdpRealm, state: IdpState) -> None:
        """Nothing: Okta retries a failed provisioning task; there is no pause to set."""

    def push(self, realm: IdpRealm, state: IdpState, token: str) -> None:
        self._update(realm, state, _zulip_token(realm, token), activate=True, step="push")

    def verify(self, realm: IdpRealm, state: IdpState) -> None:
        connection = self._connection(realm, _app_id(realm), "verify")
        scheme, status, base_url = _scheme(connection), connection.get("status"), connection.get("baseUrl")
        if scheme != TOKEN or status != ENABLED:
            raise _error(realm, "verify", "the connection reads back as %s with auth scheme %s, not ENABLED with TOKEN"
                         % (status, scheme))
        if state.facts.get("base_url") is not None and base_url != realm.base_url:
            raise _error(realm, "verify", "the connection reads back with base URL %s, not %s"
                         % (shown_url(base_url), realm.base_url))

    def after(self, realm: IdpRealm, state: IdpState) -> None:
        """Nothing: the push activated the connection."""

    def restore(self, realm: IdpRealm, state: IdpState, token: str | None) -> None:
        if token is None:
            return  # never pushed to (and nothing paused): nothing to put back
        self._update(realm, state, _zulip_token(realm, token), activate=state.facts.get("status") == ENABLED,
                     step="restore")
        if state.facts.get("status") != ENABLED:
            self._call(realm, "POST", "/api/v1/apps/%s/connections/default/lifecycle/deactivate" % _app_id(realm),
                       "restore", expect_body=False)

    # ------------------------------------------------------------------ requests

    def _call(self, realm: IdpRealm, method: str, path: str, step: str, body: t.Any = None,
              expect_body: bool = True) -> Response:
        answer = self.client.call(method, path, body=body, expect=(200, 204, 400, 401, 403, 404),
                                  step="realm %s, %s" % (realm.subdomain, step))
        if answer.status >= 400:
            code = answer.body.get("errorCode") if isinstance(answer.body, dict) else None
            meaning = CODES.get(code) if isinstance(code, str) else None
            raise _error(realm, step, "Okta answered HTTP %d%s: %s" % (
                answer.status, " (%s)" % code if meaning else "",
                meaning or {401: "the API token was refused", 403: "not allowed", 404: "not found"}.get(
                    answer.status, "refused")) + (" (app %s)" % _app_id(realm) if answer.status == 404 else ""))
        if expect_body and not isinstance(answer.body, dict):
            raise _error(realm, step, "Okta answered %s %s without a JSON object" % (method, path))
        return answer

    def _connection(self, realm: IdpRealm, app_id: str, step: str) -> dict:
        return self._call(realm, "GET", "/api/v1/apps/%s/connections/default" % app_id, step).body

    def _update(self, realm: IdpRealm, state: IdpState, token: str, activate: bool, step: str) -> None:
        if not state.automated:
            raise _error(realm, step, "the app is not automated (%s)" % state.summary)
        body: dict[str, t.Any] = {"profile": {"authScheme": TOKEN, "token": token}}
        if state.facts.get("base_url") is not None:
            body["baseUrl"] = realm.base_url
        path = "/api/v1/apps/%s/connections/default%s" % (_app_id(realm), "?activate=true" if activate else "")
        self._call(realm, "POST", path, step, body=body)


def _scheme(connection: dict) -> str:
    """The connection's auth scheme: the profile's (TOKEN, OAUTH2, UNKNOWN); a top-level one must agree."""
    profile = connection.get("profile")
    inner = profile.get("authScheme") if isinstance(profile, dict) else None
    outer = connection.get("authScheme")
    if outer is not None and outer != inner:
        return "%s/%s" % (outer, inner)
    return str(inner) if inner is not None else "(none)"


def _error(realm: IdpRealm, step: str, message: str) -> IdpError:
    return realm_error(NAME, realm, step, message)


def _app_id(realm: IdpRealm) -> str:
    return realm_setting(NAME, realm, "app_id", r"[A-Za-z0-9]{1,64}", "the app's id (letters and digits, like 0oa...)",
                         REALM_SETTINGS)


def _zulip_token(realm: IdpRealm, token: t.Any) -> str:
    return scim_token(NAME, realm, token)


def connect(options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> OktaBackend:
    """The backend for ``options`` (see OPTIONS); checks them and reads the private key, makes no request."""
    values = settle(NAME, OPTIONS, options, environ, ENVIRONMENT)
    bad_ca = ca_path_problem(values["ca_path"], "ca_path")
    if bad_ca:
        raise IdpError("%s: %s" % (NAME, bad_ca))
    org_url = api_root(NAME, "org_url", values["org_url"])
    if org_url.split("://", 1)[1].count("/"):
        raise IdpError("%s: org_url must be the org's URL without a path (https://example.okta.com)" % NAME)
    oauth = _oauth_app(values, options or {})
    api_token = None if oauth else values.get("api_token")
    if oauth is None and not api_token:
        raise IdpError("%s: no credential; set api_token (or OKTA_API_TOKEN / OKTA_CLIENT_TOKEN), or client_id and "
                       "private_key_path for an API service app" % NAME)
    backend = OktaBackend(OktaSettings(
        org_url=org_url, api_token=credential(NAME, "api_token", api_token) if api_token else None, oauth=oauth,
        ca_path=values["ca_path"], validate_certs=values["validate_certs"],
        allow_insecure_http=values["allow_insecure_http"], timeout=values["timeout"]))
    return backend


def _oauth_app(values: dict[str, t.Any], given: t.Mapping[str, t.Any]) -> OAuthApp | None:
    """The service app, when client_id is set; an API token given as an option as well is refused (which one was meant?)."""
    oauth_only = ("private_key_path", "private_key_passphrase", "key_id")
    if not values.get("client_id"):
        stray = [option for option in oauth_only if values.get(option)]
        if stray:
            raise IdpError("%s: %s only work with client_id (an API service app)" % (NAME, ", ".join(stray)))
        return None
    if given.get("api_token"):
        raise IdpError("%s: api_token and client_id are both set; give one of them" % NAME)
    if not values.get("private_key_path"):
        raise IdpError("%s: client_id needs private_key_path (the service app's private key, PEM)" % NAME)
    for option in ("client_id", "key_id"):
        if values.get(option) and not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", values[option]):
            raise IdpError("%s: %s must be letters, digits, '_', '.' or '-'" % (NAME, option))
    scopes = values["scopes"].split()
    if not scopes or not all(re.fullmatch(r"okta\.[A-Za-z0-9_.]+", scope) for scope in scopes):
        raise IdpError("%s: scopes must be Okta API scopes separated by spaces (okta.apps.manage)" % NAME)
    return OAuthApp(client_id=values["client_id"], private_key_path=values["private_key_path"],
                    private_key_passphrase=values.get("private_key_passphrase"), key_id=values.get("key_id"),
                    scopes=" ".join(scopes))
