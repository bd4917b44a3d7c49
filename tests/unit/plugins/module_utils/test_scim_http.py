"""Unit tests for plugins/module_utils/scim_http.py.

probe() and probe_until_settled() are exercised against a real HTTP(S) server
started by the test on 127.0.0.1 (random port). NETWORK RULE: nothing here
connects to any address other than 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_http import (
    PROBE_PATH,
    ProbeResult,
    probe,
    probe_until_settled,
    realm_host,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

TOKEN = "tok-9f8e7d6c5b4a3928-SECRET"
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- a tiny Zulip-like server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server API
        server = self.server
        with server.lock:
            server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "connection": self.client_address})
            answer = server.script.pop(0) if len(server.script) > 1 else server.script[0]
        status, headers, body = answer(self) if callable(answer) else answer
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


class ZulipLikeServer:
    """Answers from ``script``: a list of (status, headers, body) or callables;
    the last entry repeats. Records every request's path and headers."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.lock = threading.Lock()
        self.httpd.requests = []
        self.httpd.script = [(200, {}, "")]
        scheme = "http"
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.url = "%s://%s:%d" % (scheme, LOOPBACK, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def answer(self, *script):
        self.httpd.script = list(script)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def zulip_auth(request_handler):
    """Zulip's SCIM auth: 404 for an unknown host, 401 unless the exact bearer token."""
    host = request_handler.headers.get("Host", "")
    if host not in ("acme.zulip.example.com", "zulip.example.com"):
        return 404, {"Content-Type": "text/html"}, "<h1>Not Found</h1>"
    if request_handler.headers.get("Authorization") != "Bearer " + TOKEN:
        return 401, {"WWW-Authenticate": 'Basic realm="django-scim2"'}, ""
    return 200, {"Content-Type": "application/scim+json"}, '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1}'


@pytest.fixture(autouse=True)
def fresh_connections():
    """Each test starts as a module run does: nothing kept open."""
    scim_http.close_connections()
    yield
    scim_http.close_connections()


@pytest.fixture
def server():
    srv = ZulipLikeServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not available for a self-signed certificate")
    workdir = tmp_path_factory.mktemp("tls")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=zulip.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


@pytest.fixture
def tls_server(tls_context):
    srv = ZulipLikeServer(tls_context)
    yield srv
    srv.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def assert_no_token(result: ProbeResult, token: str = TOKEN):
    for text in (result.error, result.www_authenticate, result.describe(), repr(vars(result))):
        assert token not in text


# --------------------------------------------------------------------------- pure helpers

def test_realm_host():
    assert realm_host("acme", "zulip.example.com") == "acme.zulip.example.com"
    assert realm_host("", "zulip.example.com") == "zulip.example.com"
    assert realm_host("a-b", "chat.example.org:8443") == "a-b.chat.example.org:8443"


def test_probe_result_describe():
    assert ProbeResult(200).describe() == "HTTP 200"
    assert ProbeResult(401, www_authenticate="Basic").describe() == "HTTP 401"
    assert ProbeResult(None, error="Connection refused").describe() == "no answer (Connection refused)"
    result = ProbeResult(404)
    assert (result.status, result.error, result.www_authenticate) == (404, "", "")


# --------------------------------------------------------------------------- probe against a real server

def test_probe_sends_host_authorization_and_path(server):
    server.answer(zulip_auth)
    result = probe(server.url, "acme.zulip.example.com", TOKEN, timeout=5)
    assert result.status == 200
    assert result.error == "" and result.www_authenticate == ""
    [request] = server.requests
    assert request["path"] == PROBE_PATH == "/scim/v2/Users?count=1"
    assert request["headers"]["host"] == "acme.zulip.example.com"
    assert request["headers"]["authorization"] == "Bearer " + TOKEN
    assert request["headers"]["accept"] == "application/scim+json"
    # only Authorization carries the token (the docs' WWW-Authenticate is wrong)
    assert "www-authenticate" not in request["headers"]
    assert_no_token(result)


def test_probe_root_domain_host(server):
    server.answer(zulip_auth)
    assert probe(server.url, realm_host("", "zulip.example.com"), TOKEN).status == 200
    assert server.requests[0]["headers"]["host"] == "zulip.example.com"


def test_probe_trailing_slash_in_api_url(server):
    server.answer(zulip_auth)
    assert probe(server.url + "/", "acme.zulip.example.com", TOKEN).status == 200
    assert server.requests[0]["path"] == "/scim/v2/Users?count=1"


def test_probe_without_token_sends_no_authorization(server):
    server.answer(zulip_auth)
    result = probe(server.url, "acme.zulip.example.com")
    assert result.status == 401
    assert result.www_authenticate == 'Basic realm="django-scim2"'
    assert "authorization" not in server.requests[0]["headers"]


def test_probe_wrong_token_is_401_with_www_authenticate(server):
    server.answer(zulip_auth)
    result = probe(server.url, "acme.zulip.example.com", "wrong-" + TOKEN)
    assert result.status == 401
    assert result.www_authenticate == 'Basic realm="django-scim2"'
    assert result.describe() == "HTTP 401"
    assert_no_token(result)
    assert_no_token(result, "wrong-" + TOKEN)


def test_probe_refuses_an_empty_token(server):
    # The one token rule (_token.token_problem) holds for every header: "" is no token, nothing is sent.
    server.answer(zulip_auth)
    with pytest.raises(ZulipError, match="the token for acme.zulip.example.com cannot be sent .*the token is empty"):
        probe(server.url, "acme.zulip.example.com", "")
    assert server.requests == []


def test_probe_unknown_realm_is_404(server):
    server.answer(zulip_auth)
    result = probe(server.url, "nope.zulip.example.com", TOKEN)
    assert result.status == 404
    assert result.www_authenticate == ""
    assert_no_token(result)


@pytest.mark.parametrize("status", [500, 501, 400, 403])
def test_probe_other_error_statuses(server, status):
    server.answer((status, {}, "error"))
    assert probe(server.url, "acme.zulip.example.com", TOKEN).status == status


def test_probe_does_not_follow_redirects(server):
    server.answer((302, {"Location": "http://127.0.0.1:%d/login/" % server.port}, ""))
    result = probe(server.url, "acme.zulip.example.com", TOKEN)
    assert result.status == 302
    assert len(server.requests) == 1


def test_probe_connection_refused(server):
    port = free_port()
    result = probe("http://127.0.0.1:%d" % port, "acme.zulip.example.com", TOKEN, timeout=2)
    assert result.status is None
    assert "refused" in result.error.lower()
    assert result.describe().startswith("no answer (")
    assert_no_token(result)


def test_probe_timeout_is_a_network_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)  # accepts the connection, never answers
        port = listener.getsockname()[1]
        result = probe("http://127.0.0.1:%d" % port, "acme.zulip.example.com", TOKEN, timeout=0.3)
    assert result.status is None
    assert "timed out" in result.error.lower()
    assert_no_token(result)


def test_probe_malformed_url_is_a_network_error():
    result = probe("127.0.0.1", "acme.zulip.example.com", TOKEN)
    assert result.status is None
    assert result.error
    assert_no_token(result)


def test_probe_non_http_peer_is_a_network_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def talk():
            conn, dummy = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=talk, daemon=True)
        thread.start()
        result = probe("http://127.0.0.1:%d" % port, "acme.zulip.example.com", TOKEN, timeout=2)
        thread.join(2)
    assert result.status is None
    assert_no_token(result)


def test_probe_https_self_signed_without_validation(tls_server):
    tls_server.answer(zulip_auth)
    result = probe(tls_server.url, "acme.zulip.example.com", TOKEN, validate_certs=False, timeout=5)
    assert result.status == 200
    assert tls_server.requests[0]["headers"]["host"] == "acme.zulip.example.com"
    assert tls_server.requests[0]["headers"]["authorization"] == "Bearer " + TOKEN


def test_probe_https_self_signed_with_validation_fails_cleanly(tls_server):
    tls_server.answer(zulip_auth)
    result = probe(tls_server.url, "acme.zulip.example.com", TOKEN, validate_certs=True, timeout=5)
    assert result.status is None
    assert "certificate" in result.error.lower()
    assert tls_server.requests == []  # the token never left before the handshake failed
    assert_no_token(result)


def test_probe_https_401_and_www_authenticate(tls_server):
    tls_server.answer(zulip_auth)
    result = probe(tls_server.url, "zulip.example.com", "bad")
    assert (result.status, result.www_authenticate) == (401, 'Basic realm="django-scim2"')


# --------------------------------------------------------------------------- one connection per module run

def test_probes_of_a_run_share_one_connection_whatever_the_realm(tls_server):
    tls_server.answer(zulip_auth)
    statuses = [probe(tls_server.url, realm_host(subdomain, "zulip.example.com"), token).status
                for subdomain in ("acme", "") for token in (TOKEN, None, "wrong")]
    assert statuses == [200, 401, 401] * 2
    assert len({request["connection"] for request in tls_server.requests}) == 1
    assert [request["headers"]["host"] for request in tls_server.requests] == (
        ["acme.zulip.example.com"] * 3 + ["zulip.example.com"] * 3)


def test_a_connection_the_server_closed_meanwhile_is_opened_again(server):
    def answer_then_hang_up(request_handler):
        request_handler.close_connection = True  # no "Connection: close": the client cannot know
        return zulip_auth(request_handler)
    server.answer(answer_then_hang_up)
    assert [probe(server.url, "acme.zulip.example.com", token).status for token in (TOKEN, None, TOKEN)] == [200, 401, 200]
    assert len(server.requests) == 3  # each asked once: the retry went out on a new connection only
    assert len({request["connection"] for request in server.requests}) == 3


def test_connection_close_is_honoured(server):
    server.answer(lambda handler: (200, {"Connection": "close"}, ""))
    assert [probe(server.url, "acme.zulip.example.com", TOKEN).status for dummy in range(2)] == [200, 200]
    assert len({request["connection"] for request in server.requests}) == 2


def test_a_new_connection_that_fails_is_not_tried_again(monkeypatch):
    connects = []
    real = scim_http._connect

    def counting(*args):
        connects.append(args)
        return real(*args)
    monkeypatch.setattr(scim_http, "_connect", counting)
    assert probe("http://127.0.0.1:%d" % free_port(), "acme.zulip.example.com", TOKEN, timeout=2).status is None
    assert len(connects) == 1


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1", "https://", "file:///etc/zulip"])
def test_only_http_urls_are_asked(url):
    result = probe(url, "acme.zulip.example.com", TOKEN)
    assert result.status is None and "unknown url type" in result.error
    assert_no_token(result)


def test_no_ca_store_is_loaded_without_validation(monkeypatch):
    monkeypatch.setattr(scim_http, "_CONTEXTS", {})
    monkeypatch.setattr(scim_http.ssl, "create_default_context", lambda *a, **k: pytest.fail("CA store loaded"))
    context = scim_http._tls_context(False)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert scim_http._tls_context(False) is context


# --------------------------------------------------------------------------- probe_until_settled

def test_until_settled_retries_503_then_200(server, monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    server.answer((503, {}, "starting"), (502, {}, "bad gateway"), zulip_auth)
    result = probe_until_settled(server.url, "acme.zulip.example.com", TOKEN, False, 5, attempts=5, delay=1.5)
    assert result.status == 200
    assert len(server.requests) == 3
    assert sleeps == [1.5, 1.5]
    for request in server.requests:
        assert request["headers"]["authorization"] == "Bearer " + TOKEN
        assert request["headers"]["host"] == "acme.zulip.example.com"


def test_until_settled_retries_504(server, monkeypatch):
    monkeypatch.setattr(scim_http.time, "sleep", lambda s: None)
    server.answer((504, {}, ""), (401, {"WWW-Authenticate": "Basic"}, ""))
    result = probe_until_settled(server.url, "acme.zulip.example.com", None, False, 5, 3, 0)
    assert result.status == 401
    assert result.www_authenticate == "Basic"


@pytest.mark.parametrize("status", [200, 401, 404, 500])
def test_until_settled_does_not_retry_final_answers(server, monkeypatch, status):
    monkeypatch.setattr(scim_http.time, "sleep", lambda s: pytest.fail("must not sleep"))
    server.answer((status, {}, ""))
    assert probe_until_settled(server.url, "acme.zulip.example.com", TOKEN, False, 5, 10, 1).status == status
    assert len(server.requests) == 1


def test_until_settled_gives_up_after_attempts(server, monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    server.answer((503, {}, ""))
    result = probe_until_settled(server.url, "acme.zulip.example.com", TOKEN, False, 5, 4, 0.25)
    assert result.status == 503
    assert len(server.requests) == 4
    assert sleeps == [0.25] * 3


@pytest.mark.parametrize("attempts", [0, 1, -3])
def test_until_settled_asks_at_least_once(server, monkeypatch, attempts):
    monkeypatch.setattr(scim_http.time, "sleep", lambda s: pytest.fail("must not sleep"))
    server.answer((503, {}, ""))
    assert probe_until_settled(server.url, "acme.zulip.example.com", TOKEN, False, 5, attempts, 1).status == 503
    assert len(server.requests) == 1


def test_until_settled_retries_when_nothing_answers_after_a_restart(monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    result = probe_until_settled("http://127.0.0.1:%d" % free_port(), "acme.zulip.example.com", TOKEN, False, 2, 3, 0.1,
                                 after_restart=True)
    assert result.status is None
    assert sleeps == [0.1, 0.1]
    assert_no_token(result)


def test_until_settled_does_not_wait_for_nothing_without_a_restart(monkeypatch):
    # Connection refused and no restart in progress: nothing listens there, waiting only delays the error.
    monkeypatch.setattr(scim_http.time, "sleep", lambda s: pytest.fail("must not sleep"))
    result = probe_until_settled("http://127.0.0.1:%d" % free_port(), "acme.zulip.example.com", TOKEN, False, 2, 10, 5)
    assert result.status is None and result.error
    assert_no_token(result)


def test_no_front_end_message_names_the_url_and_the_variable():
    message = scim_http.no_front_end_message("http://127.0.0.1:9991", "[Errno 111] Connection refused")
    assert message.startswith("nothing answers at http://127.0.0.1:9991 ([Errno 111] Connection refused)")
    assert "zulip_scim_api_url" in message and "api_url" in message


def test_until_settled_server_comes_up_late(monkeypatch):
    """Nothing listens at first (restart in progress), then the server answers."""
    port = free_port()
    started = {}

    def sleep(_seconds):
        if "server" not in started:
            httpd = ThreadingHTTPServer((LOOPBACK, port), _Handler)
            httpd.daemon_threads = True
            httpd.lock = threading.Lock()
            httpd.requests = []
            httpd.script = [zulip_auth]
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            started["server"] = httpd

    monkeypatch.setattr(scim_http.time, "sleep", sleep)
    try:
        result = probe_until_settled("http://127.0.0.1:%d" % port, "acme.zulip.example.com", TOKEN, False, 5, 3, 0,
                                     after_restart=True)
    finally:
        if "server" in started:
            started["server"].shutdown()
            started["server"].server_close()
    assert result.status == 200
    assert len(started["server"].requests) == 1
