"""A test double of Microsoft Entra ID: the authority (OpenID configuration, client-credentials token
endpoint) and Microsoft Graph v1.0's synchronization API of service principals, over HTTPS on 127.0.0.1.

Not a test file; tests load it by path (like tests/unit/plugins/modules/_tls_fixtures.py).

It behaves as Microsoft documents it (facts: /work/shared/idp-apis.md; [inferred] where we deduced it):

- the authority answers ``GET /<tenant>/v2.0/.well-known/openid-configuration`` and
  ``POST /<tenant>/oauth2/v2.0/token`` (grant client_credentials, scope ``<graph>/.default``, a client
  secret or a certificate's signed assertion); a wrong secret gets ``invalid_client`` with AADSTS7000215,
  an unknown tenant ``invalid_tenant`` with AADSTS90002;
- Graph answers only an access token it issued, and only to an app holding Synchronization.ReadWrite.All,
  or Application.ReadWrite.OwnedBy and owning the service principal (else 403 Authorization_RequestDenied);
- a job's ``schedule.state`` is Active, Paused or Disabled and its ``status.code`` NotConfigured, NotRun,
  Active, Paused or Quarantine; ``pause`` pauses it, ``start`` schedules it and lifts a quarantine;
- ``PUT .../synchronization/secrets`` answers 204 and (the stricter reading of an undocumented point)
  replaces ALL keys with the ones sent;
- ``validateCredentials`` with the saved credentials really sends a SCIM request (``GET <base>/Users?count=1``,
  ``Authorization: Bearer <SecretToken>``) to the saved BaseAddress: the host is resolved through the map the
  test gives ({host name: address in 127.0.0.0/8}; no DNS), the TLS server name and Host header are the host
  name, the certificate is checked against the test's CA; 204 when the endpoint answers 200, else 400 [inferred];
- ``run_cycle`` is one provisioning cycle: a scheduled job sends the same request; a 401 puts it in quarantine;
  a paused (or never started) job sends nothing.

Every request is recorded (server, method, path, query, form or JSON body, whether it carried a bearer
token); every Graph request body and every Graph response body is checked against the Microsoft Graph
SDK's models (graph_models.check) and a mismatch is recorded in ``model_problems`` (the request is then
answered 400): a test asserts the list is empty.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.client
import importlib.util
import ipaddress
import json
import secrets
import socket
import ssl
import sys
import threading
import time
import typing as t
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def _load_graph_models():
    name = "idp_doubles_graph_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "graph_models.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


graph_models = _load_graph_models()

SYNC_ALL = "Synchronization.ReadWrite.All"
OWNED_BY = "Application.ReadWrite.OwnedBy"
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# The suite's own test hosts, in network namespaces it made (tests/testhost/testhost.py NET_RANGE).
_TEST_HOSTS = ipaddress.ip_network("169.254.96.0/20")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_ip_certificate(ca, address: str, workdir: Path, stem: str) -> tuple[Path, Path]:
    """A server certificate for an IP address (``_tls_fixtures.TestCA.issue`` names DNS names only), signed by ``ca``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = workdir / ("%s.crt" % stem), workdir / ("%s.key" % stem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# --------------------------------------------------------------------------- the directory


@dataclass
class App:
    client_id: str
    tenant_id: str
    secret: str | None = None
    certificate_pem: bytes | None = None
    roles: set[str] = field(default_factory=set)


@dataclass
class Job:
    id: str
    schedule_state: str = "Active"  # Active | Paused | Disabled
    status_code: str = "Active"  # NotConfigured | NotRun | Active | Paused | Quarantine
    quarantine: dict | None = None
    failures: int = 0
    template_id: str = "scim"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "templateId": self.template_id,
            "schedule": {"expiration": None, "interval": "PT40M", "state": self.schedule_state},
            "status": {
                "code": self.status_code,
                "countSuccessiveCompleteFailures": self.failures,
                "escrowsPruned": False,
                "lastExecution": None,
                "lastSuccessfulExecution": None,
                "lastSuccessfulExecutionWithExports": None,
                "progress": [],
                "quarantine": self.quarantine,
                "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z",
                "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
                "synchronizedEntryCountByType": [],
                "troubleshootingUrl": None,
            },
            "synchronizationJobSettings": [{"name": "QuarantineTooManyDeletesThreshold", "value": "500"}],
        }


@dataclass
class ServicePrincipal:
    id: str
    owners: set[str] = field(default_factory=set)  # client ids of the apps that own it
    jobs: dict[str, Job] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: EntraDouble, role: str, certificate: tuple[Path, Path]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.double = double
        self.role = role  # "authority" | "graph"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        double: EntraDouble = self.server.double
        record = {"server": self.server.role, "method": self.command, "path": parts.path, "query": parts.query,
                  "bearer": (self.headers.get("Authorization") or "").startswith("Bearer "), "body": None}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if raw and content_type == "application/x-www-form-urlencoded":
            record["body"] = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
        elif raw:
            try:
                record["body"] = json.loads(raw.decode("utf-8"))
            except ValueError:
                record["body"] = raw.decode("utf-8", "replace")
        double.record(record)
        if self.server.role == "authority":
            status, body = double.authority(self.command, parts.path, record["body"])
        else:
            status, body = double.graph(self.command, parts.path, self.headers.get("Authorization") or "", record["body"])
        self._send(status, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server API

    def _send(self, status: int, body: t.Any) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _graph_error(status: int, code: str, message: str) -> tuple[int, dict]:
    now = _now()
    return status, {"error": {"code": code, "message": message, "innerError": {
        "date": now.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}


def _aad_error(status: int, error: str, number: int, description: str) -> tuple[int, dict]:
    return status, {"error": error, "error_description": "AADSTS%d: %s Trace ID: %s Timestamp: %s" % (
        number, description, uuid.uuid4(), _now().strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [number], "timestamp": _now().strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class EntraDouble:
    """The authority and Graph, each its own HTTPS server on 127.0.0.1 (``authority_url``, ``graph_url``)."""

    def __init__(self, workdir: Path, ca, scim_hosts: dict[str, str] | None = None, scim_ca_path: str | None = None):
        self.lock = threading.RLock()
        self.requests: list[dict] = []
        self.model_problems: list[str] = []
        self.scim_requests: list[dict] = []  # what validateCredentials and run_cycle sent (no token)
        self.tenants: dict[str, str] = {}  # tenant id or domain -> tenant id
        self.apps: dict[str, App] = {}
        self.service_principals: dict[str, ServicePrincipal] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry)
        self.scim_hosts = dict(scim_hosts or {})
        self.scim_ca_path = scim_ca_path or str(ca.path)
        self.assertion_problems: list[str] = []  # why each certificate sign-in was refused ("" when accepted)
        self.token_endpoint_override: str | None = None  # a test's misconfigured authority
        # (method, path) -> True: answer 503 instead (Graph down); a fault may also act first (kill a run).
        self.fault: t.Callable[[str, str], bool] | None = None
        certificate = issue_ip_certificate(ca, "127.0.0.1", workdir, "entra-double")
        self._servers = [_Server(self, "authority", certificate), _Server(self, "graph", certificate)]
        self.authority_url, self.graph_url = self._servers[0].url, self._servers[1].url
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for s in self._servers]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> EntraDouble:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ set-up by the test

    def add_tenant(self, tenant_id: str, domains: t.Iterable[str] = ()) -> None:
        with self.lock:
            self.tenants[tenant_id.lower()] = tenant_id.lower()
            for domain in domains:
                self.tenants[domain.lower()] = tenant_id.lower()

    def add_app(self, tenant_id: str, client_id: str, secret: str | None = None, certificate_pem: bytes | None = None,
                roles: t.Iterable[str] = (SYNC_ALL,)) -> App:
        app = App(client_id.lower(), tenant_id.lower(), secret, certificate_pem, set(roles))
        with self.lock:
            self.apps[app.client_id] = app
        return app

    def add_service_principal(self, sp_id: str, owners: t.Iterable[str] = ()) -> ServicePrincipal:
        principal = ServicePrincipal(sp_id.lower(), {o.lower() for o in owners})
        with self.lock:
            self.service_principals[principal.id] = principal
        return principal

    def add_job(self, sp_id: str, state: str = "Active", quarantined: bool = False, job_id: str | None = None) -> Job:
        job_id = job_id or "scim.%s.%s" % (uuid.uuid4().hex, uuid.uuid4().hex)
        job = Job(job_id, schedule_state=state,
                  status_code={"Active": "Active", "Paused": "Paused", "Disabled": "NotRun"}[state])
        if quarantined:
            self._quarantine(job)
        with self.lock:
            self.service_principals[sp_id.lower()].jobs[job_id] = job
        return job

    # ------------------------------------------------------------------ what the tests read

    def record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)

    def log(self, server: str | None = None) -> list[tuple[str, str]]:
        """(method, path) of every request, of one server or both."""
        with self.lock:
            return [(r["method"], r["path"]) for r in self.requests if server is None or r["server"] == server]

    # ------------------------------------------------------------------ the authority

    def authority(self, method: str, path: str, body: t.Any) -> tuple[int, t.Any]:
        parts = path.strip("/").split("/")
        tenant = self.tenants.get(parts[0].lower()) if parts and parts[0] else None
        if method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            if tenant is None:
                return _aad_error(400, "invalid_tenant", 90002, "Tenant '%s' not found." % parts[0][:40])
            base = "%s/%s" % (self.authority_url, parts[0])
            return 200, {
                "token_endpoint": self.token_endpoint_override or base + "/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": "%s/%s/discovery/v2.0/keys" % (self.authority_url, tenant),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": "%s/%s/v2.0" % (self.authority_url, tenant),
                "request_uri_parameter_supported": False,
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": base + "/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": urlsplit(self.graph_url).netloc,
                "rbac_url": "https://pas.windows.net",
            }
        if method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            if tenant is None:
                return _aad_error(400, "invalid_tenant", 90002, "Tenant '%s' not found." % parts[0][:40])
            return self._token(tenant, "%s%s" % (self.authority_url, path), body if isinstance(body, dict) else {})
        return 404, None

    def _token(self, tenant: str, endpoint: str, form: dict) -> tuple[int, t.Any]:
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        app = self.apps.get((form.get("client_id") or "").lower())
        if app is None or app.tenant_id != tenant:
            return _aad_error(400, "unauthorized_client", 700016, "Application with identifier was not found in the directory.")
        if form.get("scope") != self.graph_url + "/.default":
            return _aad_error(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        if "client_secret" in form:
            if app.secret is None or not secrets.compare_digest(form["client_secret"], app.secret):
                return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        elif form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            problem = self._assertion_problem(app, endpoint, form.get("client_assertion") or "")
            self.assertion_problems.append(problem)
            if problem:
                return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation: %s." % problem)
        else:
            return _aad_error(401, "invalid_client", 7000218, "The request body must contain client_assertion or client_secret.")
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.%s." % secrets.token_urlsafe(48)
        with self.lock:
            self.access_tokens[token] = (app.client_id, time.time() + 3599)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    @staticmethod
    def _assertion_problem(app: App, endpoint: str, assertion: str) -> str:
        """A private_key_jwt assertion checked as Entra does: signed by the registered certificate, for this app and endpoint."""
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        if app.certificate_pem is None:
            return "no certificate registered"
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header, payload = json.loads(_b64url_decode(header_b64)), json.loads(_b64url_decode(payload_b64))
        except ValueError:
            return "not a JWT"
        cert = x509.load_pem_x509_certificate(app.certificate_pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        signed = ("%s.%s" % (header_b64, payload_b64)).encode("ascii")
        try:
            if header.get("alg") == "PS256":
                if str(header.get("x5t#S256")).rstrip("=") != base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode():
                    return "unknown key"
                cert.public_key().verify(_b64url_decode(signature_b64), signed,
                                         padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                                         hashes.SHA256())
            elif header.get("alg") == "RS256":
                if str(header.get("x5t")).rstrip("=") != base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode():  # noqa: S324
                    return "unknown key"
                cert.public_key().verify(_b64url_decode(signature_b64), signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                return "algorithm"
        except InvalidSignature:
            return "bad signature"
        if payload.get("aud") != endpoint or payload.get("iss") != app.client_id or payload.get("sub") != app.client_id:
            return "audience or issuer"
        if not isinstance(payload.get("exp"), (int, float)) or payload["exp"] < time.time():
            return "expired"
        return ""

    # ------------------------------------------------------------------ Graph

    def graph(self, method: str, path: str, authorization: str, body: t.Any) -> tuple[int, t.Any]:
        # A test's fault: Graph down (503) for the requests a predicate picks, or a hook (kill the run) first.
        fault = self.fault
        if fault is not None and fault(method, path):
            return _graph_error(503, "serviceNotAvailable", "The service is temporarily unavailable (a test's fault).")
        status, answer = self._graph(method, path, authorization, body)
        if answer is not None:
            self._check(("error" if status >= 400 else "jobs"), answer, response=True, what="%s %s answer" % (method, path))
        return status, answer

    def _check(self, model: str, body: t.Any, response: bool, what: str) -> bool:
        try:
            graph_models.check(model, body, response=response)
        except graph_models.ModelMismatch as exc:
            with self.lock:
                self.model_problems.append("%s: %s" % (what, exc))
            return False
        return True

    def _graph(self, method: str, path: str, authorization: str, body: t.Any) -> tuple[int, t.Any]:
        if not path.startswith("/v1.0/"):
            return _graph_error(400, "BadRequest", "Invalid version.")
        client_id = self._caller(authorization)
        if client_id is None:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        parts = path[len("/v1.0/"):].split("/")
        if len(parts) < 3 or parts[0] != "servicePrincipals" or parts[2] != "synchronization":
            return _graph_error(400, "BadRequest", "Resource not found for the segment.")
        with self.lock:
            principal = self.service_principals.get(parts[1].lower())
            app = self.apps[client_id]
            if principal is None:
                return _graph_error(404, "Request_ResourceNotFound", "Resource '%s' does not exist or one of its queried "
                                    "reference-property objects are not present." % parts[1][:40])
            if not (SYNC_ALL in app.roles or (OWNED_BY in app.roles and client_id in principal.owners)):
                return _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            rest = parts[3:]
            if method == "PUT" and rest == ["secrets"]:
                if not self._check("secrets_put", body, response=False, what="PUT secrets request"):
                    return _graph_error(400, "BadRequest", "The request body does not match the model.")
                # The stricter reading: the keys sent are all the keys there are now.
                principal.secrets = {pair["key"]: pair["value"] for pair in body["value"]}
                return 204, None
            if method == "GET" and rest == ["jobs"]:
                return 200, {"@odata.context": "%s/v1.0/$metadata#servicePrincipals('%s')/synchronization/jobs"
                                               % (self.graph_url, principal.id),
                             "value": [job.as_json() for job in principal.jobs.values()]}
            if len(rest) == 3 and rest[0] == "jobs" and method == "POST":
                job = principal.jobs.get(rest[1])
                if job is None:
                    return _graph_error(404, "NotFound", "The synchronization job was not found.")
                return self._job_action(principal, job, rest[2], body)
        return _graph_error(405, "Request_BadRequest", "The HTTP method is not allowed for the resource.")

    def _caller(self, authorization: str) -> str | None:
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else ""
        with self.lock:
            found = self.access_tokens.get(token)
        if found is None or found[1] < time.time():
            return None
        return found[0]

    def _job_action(self, principal: ServicePrincipal, job: Job, action: str, body: t.Any) -> tuple[int, t.Any]:
        if action == "pause":
            job.schedule_state, job.status_code = "Paused", "Paused"
            return 204, None
        if action == "start":
            # Start also lifts a quarantine (Graph's documentation of synchronizationJob: start).
            job.schedule_state, job.status_code, job.quarantine, job.failures = "Active", "Active", None, 0
            return 204, None
        if action == "validateCredentials":
            if not self._check("validate_credentials", body, response=False, what="validateCredentials request"):
                return _graph_error(400, "BadRequest", "The request body does not match the model.")
            if body.get("useSavedCredentials") is not True:
                return _graph_error(400, "BadRequest", "Only saved credentials are supported by this double.")
            status = self._scim_probe(principal, "validateCredentials")
            if status == 200:
                return 204, None
            return _graph_error(400, "BadRequest", "Credential validation failed: the SCIM endpoint answered %s." % status)
        return _graph_error(400, "BadRequest", "Unknown action %s." % action[:40])

    # ------------------------------------------------------------------ the provisioning service's requests

    def run_cycle(self, sp_id: str, job_id: str) -> int | None:
        """One provisioning cycle of a job: a scheduled job (Active, or in quarantine) sends a SCIM request with the
        saved token; a 401 (or no answer) puts it in quarantine, a 200 takes it out. A paused job sends nothing (None)."""
        with self.lock:
            principal = self.service_principals[sp_id.lower()]
            job = principal.jobs[job_id]
            if job.schedule_state != "Active":
                return None
            status = self._scim_probe(principal, "cycle")
            if status == 200:
                job.status_code, job.quarantine, job.failures = "Active", None, 0
            else:
                job.failures += 1
                self._quarantine(job)
            return status

    @staticmethod
    def _quarantine(job: Job) -> None:
        now = _now()
        began = (job.quarantine or {}).get("seriesBegan") or _iso(now)
        job.status_code = "Quarantine"
        job.quarantine = {"currentBegan": _iso(now), "nextAttempt": _iso(now + datetime.timedelta(hours=6)),
                          "reason": "EncounteredQuarantineException", "seriesBegan": began,
                          "seriesCount": ((job.quarantine or {}).get("seriesCount") or 0) + 1,
                          "error": {"code": "HttpUnauthorized", "message": "The SCIM endpoint answered 401.",
                                    "tenantActionable": True}}
        job.failures = max(job.failures, 1)

    def _scim_probe(self, principal: ServicePrincipal, why: str) -> int:
        """GET <BaseAddress path>/Users?count=1 with the saved SecretToken; the status (0: no connection)."""
        base, token = principal.secrets.get("BaseAddress") or "", principal.secrets.get("SecretToken") or ""
        parts = urlsplit(base)
        host = parts.hostname or ""
        entry = {"why": why, "host": host, "path": None, "status": 0}
        self.scim_requests.append(entry)
        address = self.scim_hosts.get(host)
        if parts.scheme != "https" or address is None or not token:
            return 0
        if not any(ipaddress.ip_address(address) in net for net in (_LOOPBACK, _TEST_HOSTS)):  # the network rule
            raise AssertionError("the Entra double connects to 127.0.0.0/8 and the suite's test hosts only, not %s"
                                 % address)
        port = parts.port or 443
        entry["path"] = parts.path.rstrip("/") + "/Users?count=1"
        context = ssl.create_default_context(cafile=self.scim_ca_path)
        connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        try:
            connection.sock = context.wrap_socket(socket.create_connection((address, port), timeout=10), server_hostname=host)
            connection.request("GET", entry["path"], headers={"Authorization": "Bearer " + token,
                                                              "Accept": "application/scim+json"})
            answer = connection.getresponse()
            answer.read()
            entry["status"] = answer.status
        except (OSError, http.client.HTTPException, ssl.SSLError):
            entry["status"] = 0
        finally:
            connection.close()
        return entry["status"]


@contextlib.contextmanager
def running(workdir: Path, ca, scim_hosts: dict[str, str] | None = None, scim_ca_path: str | None = None):
    double = EntraDouble(workdir, ca, scim_hosts, scim_ca_path)
    try:
        yield double
    finally:
        double.close()
