"""A test double of Okta's provisioning-connection API (the okta SDK 3.4.6 models; management API spec 5.1.0).

What it does, as Okta documents it (okta-management-openapi-spec ``dist/current/management-oneOfInheritance.yaml``:
``/api/v1/apps/{appId}/connections/default`` and its ``lifecycle``; Okta's error codes):

- ``Authorization: SSWS <api token>``; no header or an unknown token: 401 ``E0000011`` (Invalid
  token provided); a token whose admin may only read apps: 403 ``E0000006`` on a change.
- an unknown app id: 404 ``E0000007``.
- ``GET .../connections/default``: ProvisioningConnectionResponse. An app whose connection the API
  does not manage (custom SCIM apps, the SCIM 2.0 Test App) answers 200 with auth scheme and status
  ``UNKNOWN`` (okta-developer-docs: "An UNKNOWN authScheme signifies that the authentication scheme
  used by the application is not supported yet"); the SDK model allows ``UNKNOWN`` only in
  ``profile.authScheme``, so that is where the double puts it.
- ``POST .../connections/default[?activate=true]``: a ProvisioningConnectionTokenRequest (or OAuth)
  body; stores the token, activates on ``activate=true``. For an ``UNKNOWN`` app: 400 ``E0000001``
  [inferred: the spec does not say what Okta answers there].
- ``POST .../lifecycle/activate`` and ``.../deactivate``: 204.

- ``POST /oauth2/v1/token``: client credentials with ``private_key_jwt`` for an API service app
  (see ``OktaDouble``); errors ``invalid_client``, ``invalid_scope``, ``invalid_dpop_proof`` as
  RFC 6749 error objects.

Every request body and answer is checked strictly against the okta SDK models (the token answer
against ``TokenResponse``); the OAuth error objects and the form-encoded token request have no
model in the management SDK and are not checked.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from pathlib import Path

import jwt
from okta.models.error import Error
from okta.models.token_response import TokenResponse
from okta.models.provisioning_connection_response import ProvisioningConnectionResponse
from okta.models.update_default_provisioning_connection_for_application_request import (
    UpdateDefaultProvisioningConnectionForApplicationRequest,
)

from json_double import JsonServer

CONNECTION = re.compile(r"/api/v1/apps/([^/]+)/connections/default")
TOKEN_PATH = "/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFECYCLE = re.compile(r"/api/v1/apps/([^/]+)/connections/default/lifecycle/(activate|deactivate)")
ERRORS = {
    "E0000011": "Invalid token provided",
    "E0000006": "You do not have permission to perform the requested action",
    "E0000007": "Not found: Resource not found: %s (AppInstance)",
    "E0000001": "Api validation failed: connection",
}


class OktaDouble(JsonServer):
    """``api_tokens``: token -> "manage" (okta.apps.manage) or "read" (okta.apps.read).

    ``service_apps``: client id -> {"public_key": a cryptography public key, "kid": its id or None,
    "scopes": the scopes granted, "dpop": whether the app requires DPoP}. Their token endpoint
    ``/oauth2/v1/token`` takes client credentials with ``private_key_jwt`` (the assertion's
    signature, ``iss``/``sub``, ``aud`` = the endpoint, ``exp``, and a ``jti`` used once), and the
    access tokens it issues authenticate as ``Bearer`` with the scopes granted and asked for.
    """

    def __init__(self, certificate: tuple[Path, Path], api_tokens: dict[str, str], service_apps: dict | None = None):
        super().__init__(certificate)
        self.api_tokens = dict(api_tokens)
        self.apps: dict[str, dict] = {}
        self.service_apps = dict(service_apps or {})
        self.access_tokens: dict[str, set] = {}
        self.seen_jti: set = set()

    def add_app(self, app_id: str, scheme: str = "TOKEN", status: str = "ENABLED", token: str | None = None,
                base_url: str | None = None) -> None:
        """``scheme`` TOKEN (Org2Org, Zscaler 2.0), OAUTH2 (Office 365, ...) or UNKNOWN (custom SCIM apps)."""
        with self.lock:
            self.apps[app_id] = {"scheme": scheme, "status": "UNKNOWN" if scheme == "UNKNOWN" else status,
                                 "token": token, "base_url": base_url}

    def handle_json(self, method, path, query, headers, body):
        if path == TOKEN_PATH and method == "POST":
            return self._token(headers, body)
        rights = self._rights(headers.get("Authorization"))
        if isinstance(rights, tuple):
            return rights
        lifecycle, connection = LIFECYCLE.fullmatch(path), CONNECTION.fullmatch(path)
        match = lifecycle or connection
        if match is None:
            return self._error(404, "E0000007", "path")
        app_id = urllib.parse.unquote(match.group(1))
        with self.lock:
            app = self.apps.get(app_id)
            if app is None:
                return self._error(404, "E0000007", app_id)
            if method == "GET" and connection:
                return self._answer(app_id, app)
            if method != "POST":
                return self._error(405, "E0000022", None)
            if rights != "manage":
                return self._error(403, "E0000006", None)
            if lifecycle:
                if app["scheme"] == "UNKNOWN":
                    return self._error(400, "E0000001", None)
                app["status"] = "ENABLED" if lifecycle.group(2) == "activate" else "DISABLED"
                return 204, None
            return self._update(app_id, app, query, body)

    def _rights(self, header):
        scheme, _, token = (header or "").partition(" ")
        if scheme == "Bearer" and token in self.access_tokens:
            # [inferred] okta.apps.manage also allows the reads (Okta's .manage scopes include .read).
            return "manage" if "okta.apps.manage" in self.access_tokens[token] else "read"
        if scheme != "SSWS" or token not in self.api_tokens:
            return self._error(401, "E0000011", None)
        return self.api_tokens[token]

    # ------------------------------------------------------------------ OAuth 2.0: client credentials, private_key_jwt

    def _token(self, headers, form):
        if not isinstance(form, dict) or form.get("grant_type") != "client_credentials" \
                or form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return self._oauth_error(400, "invalid_request")
        try:
            unverified = jwt.decode(form["client_assertion"], options={"verify_signature": False})
            app = self.service_apps.get(unverified.get("iss"))
            if app is None:
                return self._oauth_error(401, "invalid_client")
            header = jwt.get_unverified_header(form["client_assertion"])
            if app.get("kid") and header.get("kid") != app["kid"]:
                return self._oauth_error(401, "invalid_client")
            claims = jwt.decode(form["client_assertion"], app["public_key"], algorithms=["RS256", "ES256"],
                                audience=self.url + TOKEN_PATH, issuer=unverified["iss"],
                                options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"]})
        except jwt.PyJWTError:
            return self._oauth_error(401, "invalid_client")
        if claims["sub"] != claims["iss"] or claims["jti"] in self.seen_jti or claims["exp"] - claims["iat"] > 3600:
            return self._oauth_error(401, "invalid_client")
        self.seen_jti.add(claims["jti"])
        if app.get("dpop") and not headers.get("DPoP"):
            return self._oauth_error(400, "invalid_dpop_proof")
        asked = set((form.get("scope") or "").split())
        if not asked or not asked <= set(app["scopes"]):
            return self._oauth_error(400, "invalid_scope")
        access = "eyJ.double-access-token.%s" % secrets.token_urlsafe(16)
        self.access_tokens[access] = asked
        answer = {"token_type": "Bearer", "expires_in": 3600, "access_token": access, "scope": " ".join(sorted(asked))}
        self.check(TokenResponse, answer, "token answer")
        return 200, answer

    def _oauth_error(self, status: int, code: str):
        return status, {"error": code, "error_description": "The double refused the request: %s" % code}

    def _update(self, app_id: str, app: dict, query: str, body):
        if not self.check(UpdateDefaultProvisioningConnectionForApplicationRequest, body, "POST body"):
            return self._error(400, "E0000001", None)
        profile = body["profile"]
        if app["scheme"] == "UNKNOWN" or profile.get("authScheme") != app["scheme"]:
            return self._error(400, "E0000001", None)
        if "token" in profile:
            app["token"] = profile["token"]
        if "baseUrl" in body:
            app["base_url"] = body["baseUrl"]
        if urllib.parse.parse_qs(query).get("activate") == ["true"]:
            app["status"] = "ENABLED"
        return self._answer(app_id, app)

    def _answer(self, app_id: str, app: dict):
        href = "%s/api/v1/apps/%s/connections/default" % (self.url, app_id)
        links = {"self": {"href": href, "hints": {"allow": ["GET", "POST"]}}}
        if app["scheme"] == "UNKNOWN":
            answer = {"status": "UNKNOWN", "profile": {"authScheme": "UNKNOWN"}, "_links": links}
        else:
            lifecycle = "deactivate" if app["status"] == "ENABLED" else "activate"
            links[lifecycle] = {"href": "%s/lifecycle/%s" % (href, lifecycle), "hints": {"allow": ["POST"]}}
            answer = {"status": app["status"], "profile": {"authScheme": app["scheme"]}, "_links": links}
            if app["scheme"] == "TOKEN":
                answer["authScheme"] = "TOKEN"
            if app["base_url"] is not None:
                answer["baseUrl"] = app["base_url"]
        self.check(ProvisioningConnectionResponse, answer, "answer")
        return 200, answer

    def _error(self, status: int, code: str, argument):
        summary = ERRORS.get(code, "Method not allowed")
        body = {"errorCode": code, "errorSummary": summary % argument if "%s" in summary else summary,
                "errorLink": code, "errorId": "oae0123456789abcdefABCD", "errorCauses": []}
        self.check(Error, body, "error answer")
        return status, body
