"""What the IdP doubles share: an HTTPS JSON server on 127.0.0.1 that records every exchange.

NETWORK RULE: the servers listen on 127.0.0.1 only; a double that calls out (authentik's sync)
only calls the address its test maps a host name to, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import strict_models


class Exchange(dict):
    """One request and its answer: method, path, query, authorization, body (request), status, answer."""


class JsonServer(ThreadingHTTPServer):
    """Routes requests to ``handle(method, path, query, headers, body) -> (status, body)`` of a subclass.

    Every request body the double receives and every body it answers is checked against the vendor's
    models by the subclass (``strict_models``); a mismatch is recorded in ``violations`` (and answered
    400 for a request), so a test asserts ``violations == []`` as well as the log.
    """

    daemon_threads = True

    def __init__(self, certificate: tuple[Path, Path]):
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.RLock()
        self.log: list[Exchange] = []
        self.violations: list[str] = []
        self.url = "https://127.0.0.1:%d" % self.server_address[1]

    def handle_json(self, method: str, path: str, query: str, headers, body) -> tuple[int, object]:
        raise NotImplementedError

    def check(self, model: type, data: object, where: str) -> bool:
        """True when ``data`` strictly matches ``model``; else the mismatch is recorded."""
        try:
            strict_models.check(model, data, where)
        except strict_models.ModelMismatch as exc:
            with self.lock:
                self.violations.append(str(exc))
            return False
        return True

    def requests(self) -> list[tuple[str, str]]:
        """(method, path with query) of every request, in order."""
        with self.lock:
            return [(e["method"], e["path"] + ("?" + e["query"] if e["query"] else "")) for e in self.log]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        body = None
        body_error = False
        form = (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded")
        if raw:
            try:
                text = raw.decode("utf-8")
                body = dict(urllib.parse.parse_qsl(text, strict_parsing=True)) if form else json.loads(text)
            except (UnicodeDecodeError, ValueError):
                body_error = True
        exchange = Exchange(method=self.command, path=path, query=query, authorization=self.headers.get("Authorization"),
                            content_type=self.headers.get("Content-Type"), body=body)
        if body_error:
            status, answer = 400, None
        else:
            status, answer = self.server.handle_json(self.command, path, query, self.headers, body)
        exchange.update(status=status, answer=answer)
        with self.server.lock:
            self.server.log.append(exchange)
        data = b"" if answer is None else json.dumps(answer).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server API

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def running(server: JsonServer):
    """Serve ``server`` for the test's duration."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def loopback_certificate(ca, stem: str) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 (an IP SAN, which _tls_fixtures.TestCA.issue does not make), signed by ``ca``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = ca.workdir / ("%s.crt" % stem), ca.workdir / ("%s.key" % stem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
