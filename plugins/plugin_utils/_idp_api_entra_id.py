# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Microsoft Entra ID: the provisioning job of an enterprise application, through Microsoft Graph v1.0.

The app registration signs in with OAuth 2.0 client credentials (a client secret or a certificate)
through ``msal``, at the configured authority only: no instance discovery (msal would otherwise ask
a fixed Microsoft host first), every request checked against the authority's origin before it is
sent, the CA bundle used for every request whatever ``REQUESTS_CA_BUNDLE`` says. ``msal`` is
imported only when this backend makes its first token request.

Per realm: the service principal's object id (Enterprise applications > the app > Object ID) and,
when the service principal has more than one synchronization job, the job's id. The steps, in the
order of ``_idp_api.py``:

- read: ``GET /servicePrincipals/{id}/synchronization/jobs`` (the job, its schedule and status);
- before_zulip: ``POST .../jobs/{jobId}/pause`` when the job is scheduled (Active, or in quarantine);
- push: ``PUT /servicePrincipals/{id}/synchronization/secrets`` with BaseAddress (the Tenant URL),
  SecretToken (the bare token) and the realm's ``other_secret_keys``;
- verify: ``POST .../jobs/{jobId}/validateCredentials`` with the saved credentials (204 when Entra
  reached Zulip's SCIM endpoint with them);
- after: ``POST .../jobs/{jobId}/start`` when the job was scheduled before (a quarantine is lifted by it);
  a job an operator had paused, or never started, stays as it was.

Secrets are write-only in Graph v1.0 (nothing reads them back) and whether a PUT keeps the keys it
does not name is not documented: each PUT sends every key that must survive, the realm's
``other_secret_keys`` included (Entra's portal keeps settings such as the scope, ``SyncAll``, and
the notification settings, ``SyncNotificationSettings``, among these keys).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing as t
from urllib.parse import urlsplit

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idp_entra_id import tenant_url
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import realm_label
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._controller_files import UnreadableFile, read_regular_file
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpRealm, IdpState
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_http import DEFAULT_TIMEOUT, JsonClient
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_options import settle

NAME = "entra_id"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
# The environment variable of the Azure SDKs; the option client_secret wins over it.
SECRET_VARIABLE = "AZURE_CLIENT_SECRET"

# The connection options (Ansible argument spec style). Only the secret and the key's passphrase are secrets.
OPTIONS: dict[str, dict[str, t.Any]] = {
    "tenant_id": {"type": "str", "required": True},
    "client_id": {"type": "str", "required": True},
    "client_secret": {"type": "str", "no_log": True},
    "client_certificate_path": {"type": "path"},
    "client_private_key_path": {"type": "path"},
    "client_private_key_passphrase": {"type": "str", "no_log": True},
    "authority": {"type": "str", "default": DEFAULT_AUTHORITY},
    "graph_url": {"type": "str", "default": DEFAULT_GRAPH_URL},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": DEFAULT_TIMEOUT},
}

# Per realm: where its connection lives at Entra (ids, not secrets).
REALM_SETTINGS: dict[str, dict[str, t.Any]] = {
    "service_principal_id": {"type": "str", "required": True},
    "job_id": {"type": "str"},
    # Other synchronization secret keys to send with every PUT (key -> value), e.g. SyncAll.
    "other_secret_keys": {"type": "dict"},
}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A tenant's verified domain (contoso.onmicrosoft.com, example.org); the first label may not start with "-".
_DOMAIN = re.compile(r"(?=.{4,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
# Graph's job ids look like "scim.<hex>.<hex>": letters, digits and . _ - only (it goes into a URL path).
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SECRET_KEY = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
# The keys this backend owns in every PUT.
_OWN_KEYS = ("BaseAddress", "SecretToken")
MAX_CREDENTIAL_FILE = 64 * 1024
# msal's error codes are snake_case words; AADSTS codes are numbers.
_MSAL_ERROR = re.compile(r"[a-z_]{1,64}")


def _error(message: str) -> IdpError:
    return IdpError("%s: %s" % (NAME, message))


# --------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class EntraSettings:
    tenant_id: str
    client_id: str
    authority: str  # https://host[:port], no path
    graph_url: str  # https://host[:port][/prefix]
    ca_path: str | None
    validate_certs: bool
    timeout: int
    # What msal signs in with: the secret, or {"private_key", "public_certificate"[, "passphrase"]}.
    credential: t.Any = dataclasses.field(repr=False)
    credential_source: str = ""  # for messages: "client_secret", "AZURE_CLIENT_SECRET", "certificate <path>"

    @property
    def tenant_authority(self) -> str:
        return "%s/%s" % (self.authority, self.tenant_id)

    @property
    def scope(self) -> str:
        # Graph's scope is its resource URL (national clouds: their own Graph host) plus /.default.
        return "%s/.default" % self.graph_url


def _text_option(options: t.Mapping[str, t.Any], name: str) -> str:
    value = options.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error("%s must be a string" % name)
    return value.strip()


def _origin(value: str, name: str, allow_path: bool) -> str:
    """An https URL without query, fragment or credentials (and without a path unless ``allow_path``)."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() != "https" or not parts.hostname:
        raise _error("%s must be an https:// URL (%s is not)" % (name, value or "an empty value"))
    if parts.query or parts.fragment or parts.username or parts.password:
        raise _error("%s must be an https:// URL without query, fragment or user name" % name)
    path = parts.path.rstrip("/")
    if path and not allow_path:
        raise _error("%s must be the authority's root URL, e.g. %s (the tenant is added from tenant_id)"
                     % (name, DEFAULT_AUTHORITY))
    host = parts.hostname if ":" not in parts.hostname else "[%s]" % parts.hostname
    return "https://%s%s%s" % (host.lower(), ":%d" % port if port else "", path)


def _read_credential_file(path: str, what: str) -> str:
    """A PEM file of the controller: a regular file, opened without blocking, at most 64 KiB; its content is never shown."""
    try:
        data = read_regular_file(path, MAX_CREDENTIAL_FILE)
    except UnreadableFile as exc:
        raise _error("%s %s %s" % (what, path, exc.reason)) from None
    if len(data) > MAX_CREDENTIAL_FILE:
        raise _error("%s %s is larger than %d bytes: not a PEM file" % (what, path, MAX_CREDENTIAL_FILE))
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _error("%s %s is not a PEM file" % (what, path)) from None
    if "-----BEGIN " not in text:
        raise _error("%s %s is not a PEM file" % (what, path))
    return text


def _credential(options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> tuple[t.Any, str]:
    """The client secret or the certificate, and where it came from. The option client_secret wins over
    AZURE_CLIENT_SECRET; a certificate (both paths) wins over AZURE_CLIENT_SECRET; a secret option and a
    certificate together are refused (which one was meant?)."""
    secret = _text_option(options, "client_secret")
    cert_path = _text_option(options, "client_certificate_path")
    key_path = _text_option(options, "client_private_key_path")
    passphrase = options.get("client_private_key_passphrase") or None
    if bool(cert_path) != bool(key_path):
        raise _error("a certificate needs both client_certificate_path and client_private_key_path")
    if secret and cert_path:
        raise _error("give client_secret or a certificate (client_certificate_path), not both")
    if cert_path:
        credential = {"private_key": _read_credential_file(key_path, "client_private_key_path"),
                      "public_certificate": _read_credential_file(cert_path, "client_certificate_path")}
        if passphrase is not None:
            if not isinstance(passphrase, str):
                raise _error("client_private_key_passphrase must be a string")
            credential["passphrase"] = passphrase
        return credential, "certificate %s" % cert_path
    if not secret:
        secret = (environ.get(SECRET_VARIABLE) or "").strip()
        source = SECRET_VARIABLE
    else:
        source = "client_secret"
    if not secret:
        raise _error("no credential: set client_secret (or the environment variable %s), or "
                     "client_certificate_path and client_private_key_path" % SECRET_VARIABLE)
    if any(c.isspace() or not c.isprintable() for c in secret):
        raise _error("%s does not hold one client secret (whitespace or control characters inside); "
                     "its content is not shown" % source)
    return secret, source


def settings_from(options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> EntraSettings:
    """The options checked and completed with their defaults; no request is made."""
    # Types, defaults, unknown options as for every backend; AZURE_CLIENT_SECRET is weighed in _credential
    # (a certificate wins over it too).
    values = settle(NAME, OPTIONS, options, environ)
    tenant_id = _text_option(values, "tenant_id")
    if not (_GUID.fullmatch(tenant_id) or _DOMAIN.fullmatch(tenant_id)):
        raise _error("tenant_id must be the directory (tenant) ID, a GUID, or a verified domain of the tenant "
                     "such as contoso.onmicrosoft.com")
    client_id = _text_option(values, "client_id")
    if not _GUID.fullmatch(client_id):
        raise _error("client_id must be the application (client) ID of the app registration, a GUID")
    ca_path = _text_option(values, "ca_path") or None
    if ca_path is not None and not os.path.isfile(ca_path):
        raise _error("ca_path %s: no such file (expected a PEM CA bundle)" % ca_path)
    timeout = values["timeout"]
    if timeout > 600:
        raise _error("timeout must be a number of seconds from 1 to 600")
    credential, source = _credential(values, environ)
    return EntraSettings(
        tenant_id=tenant_id.lower() if _GUID.fullmatch(tenant_id) else tenant_id,
        client_id=client_id.lower(),
        authority=_origin(_text_option(values, "authority") or DEFAULT_AUTHORITY, "authority", allow_path=False),
        graph_url=_origin(_text_option(values, "graph_url") or DEFAULT_GRAPH_URL, "graph_url", allow_path=True),
        ca_path=ca_path, validate_certs=values["validate_certs"], timeout=timeout,
        credential=credential, credential_source=source,
    )


@dataclasses.dataclass(frozen=True)
class RealmIds:
    service_principal_id: str
    job_id: str | None
    other_secret_keys: tuple[tuple[str, str], ...] = dataclasses.field(repr=False, default=())


def realm_ids(realm: IdpRealm) -> RealmIds:
    """The realm's ids at Entra, checked (they go into URL paths)."""
    settings = realm.settings or {}
    unknown = sorted(set(settings) - set(REALM_SETTINGS))
    if unknown:
        raise _error("realm %s: unknown setting(s) %s; known: %s" % (realm_label(realm.subdomain), ", ".join(map(str, unknown)),
                                                                     ", ".join(REALM_SETTINGS)))
    principal = settings.get("service_principal_id")
    if not isinstance(principal, str) or not _GUID.fullmatch(principal.strip()):
        raise _error("realm %s: service_principal_id must be the object ID (a GUID) of the enterprise application's "
                     "service principal" % realm_label(realm.subdomain))
    job_id = settings.get("job_id")
    if job_id is not None and (not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id.strip())):
        raise _error("realm %s: job_id must be a synchronization job id such as scim.0123...abc.0123...abc" % realm_label(realm.subdomain))
    return RealmIds(principal.strip().lower(), job_id.strip() if job_id else None,
                    _other_secret_keys(realm_label(realm.subdomain), settings.get("other_secret_keys")))


def _other_secret_keys(subdomain: str, value: t.Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, t.Mapping):
        raise _error("realm %s: other_secret_keys must be a mapping of secret key names to values" % subdomain)
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not _SECRET_KEY.fullmatch(key) or key in _OWN_KEYS:
            raise _error("realm %s: other_secret_keys: %s is not a synchronization secret key name this realm may set "
                         "(BaseAddress and SecretToken are set by the collection)" % (subdomain, key if isinstance(key, str) else "a key"))
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, str):
            item = str.__str__(item)  # Ansible may hand over a tagged str subclass
        elif isinstance(item, (dict, list)):
            item = json.dumps(item, separators=(",", ":"))
        elif not isinstance(item, str):
            raise _error("realm %s: other_secret_keys: the value of %s must be a string, a boolean or a mapping" % (subdomain, key))
        pairs.append((key, item))
    return tuple(pairs)


# --------------------------------------------------------------------------- tokens from the authority


class _TokenSource:
    """Access tokens for Graph, from msal, requesting only the configured authority."""

    def __init__(self, settings: EntraSettings):
        self.settings = settings
        self._app: t.Any = None
        # The authority's last answer (method, path, status), for messages; empty when the last request got none.
        self._last_answer: list[tuple[str, str, int]] = []

    def _application(self) -> t.Any:
        if self._app is None:
            try:
                import msal  # pylint: disable=import-outside-toplevel
            except ImportError:
                raise _error("the Python library msal is needed on the controller for Entra ID (pip install msal)") from None
            session = _authority_only_session(self.settings, self._last_answer)
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.settings.client_id, client_credential=self.settings.credential,
                    authority=self.settings.tenant_authority, instance_discovery=False,
                    http_client=session, token_cache=msal.TokenCache())
            except IdpError:
                raise
            except Exception as exc:  # pylint: disable=broad-exception-caught  # msal's errors may hold what it read
                raise self._failure(exc) from None
        return self._app

    def _failure(self, exc: BaseException) -> IdpError:
        answered = "".join(" (%s %s answered HTTP %d)" % (method, url, status) for method, url, status in self._last_answer)
        return _error("no token from the authority %s for tenant %s with the %s of app %s: %s%s" % (
            self.settings.authority, self.settings.tenant_id, self.settings.credential_source, self.settings.client_id,
            type(exc).__name__, answered))

    def token(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[self.settings.scope])
        except IdpError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise self._failure(exc) from None
        if isinstance(result, dict) and isinstance(result.get("access_token"), str):
            return result["access_token"]
        raise _error("the authority %s refused the %s of app %s in tenant %s: %s" % (
            self.settings.authority, self.settings.credential_source, self.settings.client_id, self.settings.tenant_id,
            _msal_code(result)))


def _msal_code(result: t.Any) -> str:
    """msal's error code and the AADSTS numbers; never error_description (it may quote what was sent)."""
    if not isinstance(result, dict):
        return "no answer"
    code = result.get("error")
    shown = code if isinstance(code, str) and _MSAL_ERROR.fullmatch(code) else "an error"
    numbers = [n for n in result.get("error_codes") or [] if isinstance(n, int) and not isinstance(n, bool)]
    return shown + (" (%s)" % ", ".join("AADSTS%d" % n for n in numbers[:3]) if numbers else "")


def _authority_only_session(settings: EntraSettings, last_answer: list[tuple[str, str, int]]) -> t.Any:
    """A requests session for msal that sends nothing outside the authority's origin (an OpenID
    configuration naming another token endpoint would otherwise get the client's credential), no
    redirect, the CA bundle on every request (a session's own verify loses to REQUESTS_CA_BUNDLE)."""
    import requests  # pylint: disable=import-outside-toplevel  # msal's own dependency

    origin = settings.authority
    verify: t.Any = (settings.ca_path or True) if settings.validate_certs else False

    class AuthorityOnlySession(requests.Session):
        def request(self, method, url, *args, **kwargs):  # noqa: D102 - requests' API
            kwargs["verify"] = verify
            kwargs["allow_redirects"] = False
            kwargs.setdefault("timeout", settings.timeout)
            # A proxy of the environment, as the Graph calls (urllib) use it; nothing else from there.
            kwargs["proxies"] = requests.utils.get_environ_proxies(url)
            last_answer.clear()
            answer = super().request(method, url, *args, **kwargs)
            last_answer.append((str(method).upper(), urlsplit(url).path, answer.status_code))
            return answer

        def send(self, request, **kwargs):  # noqa: D102 - every request, redirects included, passes here
            if not _same_origin(request.url, origin):
                raise _error("msal was about to contact %s, outside the authority %s: refused"
                             % (_origin_of(request.url), origin))
            return super().send(request, **kwargs)

    session = AuthorityOnlySession()
    session.trust_env = False  # no CA bundle or .netrc from the environment: the options say how to connect
    return session


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return "%s://%s" % (parts.scheme.lower(), (parts.netloc.rpartition("@")[2]).lower())
    except ValueError:
        return "an unparsable URL"


def _same_origin(url: str, origin: str) -> bool:
    return _origin_of(url) == origin.lower()


# --------------------------------------------------------------------------- Graph


class EntraBackend:
    """The provisioning job of one enterprise application per realm (``IdpBackend``)."""

    name = NAME

    def __init__(self, settings: EntraSettings):
        self.settings = settings
        self.tokens = _TokenSource(settings)
        self.graph = JsonClient(settings.graph_url + "/v1.0", NAME, self._headers, ca_path=settings.ca_path,
                                validate_certs=settings.validate_certs, timeout=settings.timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + self.tokens.token()}

    # ------------------------------------------------------------------ read

    def read(self, realm: IdpRealm) -> IdpState:
        ids = realm_ids(realm)
        _check_base_url(realm)
        path = "/servicePrincipals/%s/synchronization/jobs" % ids.service_principal_id
        answer = self.graph.call("GET", path, expect=(200, 403, 404), step="read, realm %s" % realm_label(realm.subdomain))
        if answer.status == 404:
            raise _error("realm %s: no service principal %s in tenant %s (service_principal_id is the enterprise "
                         "application's Object ID)" % (realm_label(realm.subdomain), ids.service_principal_id, self.settings.tenant_id))
        if answer.status == 403:
            raise _error("realm %s: app %s may not read the provisioning of service principal %s: grant it "
                         "Synchronization.ReadWrite.All, or Application.ReadWrite.OwnedBy and make it an owner of the "
                         "service principal" % (realm_label(realm.subdomain), self.settings.client_id, ids.service_principal_id))
        job = _pick_job(realm_label(realm.subdomain), ids, answer.body)
        schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
        status = job.get("status") if isinstance(job.get("status"), dict) else {}
        # A job paused by an earlier run that did not finish (the realm's rotation is resumed) ran before it.
        scheduled = schedule.get("state") == "Active" or (realm.resuming and schedule.get("state") == "Paused")
        quarantined = status.get("code") == "Quarantine" or bool(status.get("quarantine"))
        facts = {"service_principal_id": ids.service_principal_id, "job_id": job["id"],
                 "schedule_state": str(schedule.get("state")), "status_code": str(status.get("code")),
                 "was_running": scheduled, "quarantined": quarantined,
                 "paused": False, "started": False}
        return IdpState(automated=True, summary=_summary(job["id"], scheduled, quarantined, schedule, status), facts=facts)

    # ------------------------------------------------------------------ the rotation

    def before_zulip(self, realm: IdpRealm, state: IdpState) -> None:
        # A scheduled job would meet the old token's 401 while Zulip cuts over, and go to quarantine.
        if state.facts["was_running"] and not state.facts["paused"]:
            self._job_action(realm, state, "pause", "pause the job before Zulip's token changes")
            state.facts["paused"] = True

    def push(self, realm: IdpRealm, state: IdpState, token: str) -> None:
        self._put_secrets(realm, state, token, "push the new token")

    def verify(self, realm: IdpRealm, state: IdpState) -> None:
        self._validate(realm, state, "verify the new token")

    def after(self, realm: IdpRealm, state: IdpState) -> None:
        self._resume(realm, state, "start the job again")

    def restore(self, realm: IdpRealm, state: IdpState, token: str | None) -> None:
        """The old token back, validated, then the job as it was; a failed validation leaves the job paused
        (a started job meeting 401 goes to quarantine) and fails naming the step.

        The old token is put back whether or not this state saw a push: the state may come from an
        earlier task or run (the step before the push), and putting the token in force again is harmless.
        With no token before (a first enable), Entra's secrets stay as pushed: Zulip accepts no token then."""
        if token:
            self._put_secrets(realm, state, token, "restore the old token")
            self._validate(realm, state, "restore: validate the old token")
        self._resume(realm, state, "restore: start the job again")

    # ------------------------------------------------------------------ calls

    def _job_path(self, state: IdpState) -> str:
        return "/servicePrincipals/%s/synchronization/jobs/%s" % (state.facts["service_principal_id"], state.facts["job_id"])

    def _job_action(self, realm: IdpRealm, state: IdpState, action: str, step: str) -> None:
        self.graph.call("POST", "%s/%s" % (self._job_path(state), action), expect=(204,),
                        step="%s, realm %s" % (step, realm_label(realm.subdomain)))

    def _put_secrets(self, realm: IdpRealm, state: IdpState, token: str, step: str) -> None:
        ids = realm_ids(realm)
        _check_base_url(realm)
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise _error("realm %s: %s: the token is empty or holds whitespace; nothing was sent" % (realm_label(realm.subdomain), step))
        # A PUT may replace every key (undocumented): send all that must survive, every time.
        pairs = [("BaseAddress", tenant_url(realm.base_url.rstrip("/"))), ("SecretToken", token)] + list(ids.other_secret_keys)
        body = {"value": [{"key": key, "value": value} for key, value in pairs]}
        self.graph.call("PUT", "/servicePrincipals/%s/synchronization/secrets" % state.facts["service_principal_id"],
                        body=body, expect=(204,), step="%s, realm %s" % (step, realm_label(realm.subdomain)))

    def _validate(self, realm: IdpRealm, state: IdpState, step: str) -> None:
        self.graph.call("POST", "%s/validateCredentials" % self._job_path(state), body={"useSavedCredentials": True},
                        expect=(204,), step="%s, realm %s: Entra could not use the saved Tenant URL and token" % (step, realm_label(realm.subdomain)))

    def _resume(self, realm: IdpRealm, state: IdpState, step: str) -> None:
        # Started only when it was scheduled before (Active or in quarantine); start also lifts the quarantine.
        if state.facts["was_running"] and not state.facts["started"]:
            self._job_action(realm, state, "start", step)
            state.facts["started"] = True
            state.facts["paused"] = False


def _check_base_url(realm: IdpRealm) -> None:
    """Entra sends the token to this URL: https only, no query (the Tenant URL adds Entra's flag)."""
    try:
        parts = urlsplit(realm.base_url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise _error("realm %s: the SCIM base URL must be an https:// URL without query; nothing was sent to Entra"
                     % realm_label(realm.subdomain))


def _pick_job(subdomain: str, ids: RealmIds, body: t.Any) -> dict[str, t.Any]:
    jobs = body.get("value") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise _error("realm %s: Graph's list of synchronization jobs is not a list" % subdomain)
    jobs = [j for j in jobs if isinstance(j, dict) and isinstance(j.get("id"), str) and _JOB_ID.fullmatch(j["id"])]
    if ids.job_id is not None:
        chosen = [j for j in jobs if j["id"] == ids.job_id]
        if not chosen:
            raise _error("realm %s: service principal %s has no synchronization job %s (it has: %s)" % (
                subdomain, ids.service_principal_id, ids.job_id, ", ".join(j["id"] for j in jobs) or "none"))
        return chosen[0]
    if not jobs:
        raise _error("realm %s: service principal %s has no synchronization job: set its Provisioning Mode to "
                     "Automatic in the Entra admin center first" % (subdomain, ids.service_principal_id))
    if len(jobs) > 1:
        raise _error("realm %s: service principal %s has %d synchronization jobs (%s): set job_id" % (
            subdomain, ids.service_principal_id, len(jobs), ", ".join(j["id"] for j in jobs)))
    return jobs[0]


def _summary(job_id: str, scheduled: bool, quarantined: bool, schedule: dict, status: dict) -> str:
    if quarantined:
        quarantine = status.get("quarantine") if isinstance(status.get("quarantine"), dict) else {}
        reason = quarantine.get("reason")
        return "job %s in quarantine%s; the rotation starts it again, which lifts the quarantine" % (
            job_id, " (%s)" % reason if isinstance(reason, str) and reason.isalnum() else "")
    if scheduled:
        return "job %s running (paused during the rotation, started after)" % job_id
    state = schedule.get("state")
    return "job %s %s: it stays so (start provisioning in the Entra admin center when the mappings are ready)" % (
        job_id, "paused" if state == "Paused" else "not started" if state in (None, "Disabled") else "in state %s" % str(state)[:32])


def connect(options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> EntraBackend:
    """The backend for ``options`` (``OPTIONS``); no request is made and msal is not imported yet."""
    return EntraBackend(settings_from(options, environ))
