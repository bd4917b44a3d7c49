"""TLS test material for the api_url / Vault URL rules (issue 23): a CA, certificates, SCIM servers, a netns.

Not a test file (no ``test_`` prefix); test files load it by path like ``_module_runner``.

NETWORK RULE: the servers listen on 127.0.0.1, or inside a network namespace that ``Netns``
creates for the test (a veth pair with a link-local /30 in 169.254.120.0/22, outside the test
hosts' 169.254.96.0/20); nothing here contacts any other address. ``Netns`` needs root and
``ip``; tests skip without them.

Run as a script (``python _tls_fixtures.py serve ...``) it is the server that runs inside the
namespace: stdlib only, it prints its port, answers like Zulip's SCIM endpoint and writes a
JSON line per TLS server name seen and per request to a log file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NETNS_PREFIX = "ztls"  # netns and host-side veth "ztls<n>"; the test hosts use "zth<n>"
NETNS_BASE = (169, 254, 120, 0)  # /30 number n: .4n+1 on the machine side, .4n+2 inside the namespace
NETNS_SLOTS = 64
LOCK_FILE = "/run/lock/zulip-ops-tls-test.lock"
OWNERS_DIR = "/run/zulip-ops-tls-test"  # <netns name>: "pid starttime" of the process that made it


# --------------------------------------------------------------------------- certificates


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


class TestCA:
    """A CA made for one test session (never trusted by the system)."""

    def __init__(self, workdir: Path, common_name: str = "zulip_ops test CA"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        self.workdir = workdir
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = workdir / ("%s.pem" % common_name.replace(" ", "_"))
        self.path.write_bytes(_pem_cert(self.cert))

    def issue(self, names: list[str], stem: str) -> tuple[Path, Path]:
        """(certificate, key) files of a server certificate for ``names`` (DNS SANs), signed by this CA."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.workdir / ("%s.crt" % stem), self.workdir / ("%s.key" % stem)
        cert_path.write_bytes(_pem_cert(cert))
        key_path.write_bytes(_pem_key(key))
        return cert_path, key_path


def self_signed(workdir: Path, name: str, stem: str = "self-signed") -> tuple[Path, Path]:
    """A self-signed certificate naming ``name``: its own CA, which nobody trusts."""
    return TestCA(workdir, name).issue([name], stem)


# --------------------------------------------------------------------------- a Zulip-like SCIM endpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server API
        host = self.headers.get("Host", "")
        auth = self.headers.get("Authorization")
        self.server.record({"event": "request", "path": self.path, "host": host, "authorized": auth is not None})
        token = self.server.tokens.get(host)
        if token is None and host not in self.server.tokens:
            status = 404
        elif token is not None and auth == "Bearer " + token:
            status = 200
        else:
            status = 401
        body = b'{"totalResults": 0}' if status == 200 else b""
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="django-scim2"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ScimServer(ThreadingHTTPServer):
    """Answers like Zulip's SCIM endpoint (``tokens``: Host -> token); records server names and requests.

    ``certificate`` (cert, key): HTTPS, else plain HTTP. ``log``: also write each event as a JSON line
    there (the namespace's server tells the test what it saw that way).
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], tokens: dict, certificate: tuple[Path, Path] | None = None,
                 log: Path | None = None):
        super().__init__(address, _Handler)
        self.tokens = tokens
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.log = log
        self.scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            context.sni_callback = lambda sock, name, ctx: self.record({"event": "sni", "name": name})
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    def verify_request(self, request, client_address):
        self.record({"event": "connection"})
        return True

    def record(self, event: dict) -> None:
        with self.lock:
            self.events.append(event)
            if self.log is not None:
                with open(self.log, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(event) + "\n")

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


@contextlib.contextmanager
def loopback_server(tokens: dict, certificate: tuple[Path, Path] | None = None):
    """A ScimServer on 127.0.0.1 (random port) for the test's duration; yields (server, url)."""
    server = ScimServer(("127.0.0.1", 0), tokens, certificate)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, "%s://127.0.0.1:%d" % (server.scheme, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- a network namespace of the test's own


def netns_missing() -> str:
    """Why a Netns cannot be made here ("" when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    return ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _process_identity(pid: int) -> str:
    """pid and start time (a reused pid is another process); "" when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "%d %s" % (pid, fields[19])  # field 22 of stat, counted after the ")" that ends comm


def _owner_file(name: str) -> str:
    return os.path.join(OWNERS_DIR, name)


def _remove_namespace(name: str) -> None:
    # Its servers first: a process left inside would keep the namespace alive, and run on unseen.
    found = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
    for pid in found:
        if pid.isdigit() and int(pid) != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(int(pid), 9)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    if os.path.exists("/sys/class/net/" + name):
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_owner_file(name))


def _owner_alive(name: str) -> bool:
    try:
        with open(_owner_file(name), encoding="utf-8") as handle:
            owner = handle.read().strip()
    except OSError:
        return False
    pid = owner.split(" ", 1)[0]
    return pid.isdigit() and _process_identity(int(pid)) == owner


def reap_stale() -> list[str]:
    """Remove the namespaces whose owner is gone (caller holds the lock); returns their names.

    A test process that ends without its teardown (pytest-forked, which ``ansible-test units``
    uses, never tears a module fixture down in the child; a killed run) leaves its namespace.
    """
    names = set()
    for folder in ("/run/netns", "/sys/class/net"):
        with contextlib.suppress(OSError):
            names.update(n for n in os.listdir(folder) if n.startswith(NETNS_PREFIX) and n[len(NETNS_PREFIX):].isdigit())
    stale = sorted(n for n in names if not _owner_alive(n))
    for name in stale:
        _remove_namespace(name)
    return stale


class Netns:
    """A network namespace with a veth pair: ``address`` inside, ``host_address`` on this machine's side.

    The /30 is taken under a lock file, the first one whose veth does not exist yet (other test
    processes, xdist workers and concurrent runs take the others). ``close`` removes both; a
    watchdog process removes them when this process ends without ``close``, and the next
    ``Netns`` reaps any whose owner died with its watchdog.
    """

    def __init__(self):
        self._watchdog = None
        os.makedirs(OWNERS_DIR, mode=0o700, exist_ok=True)
        with open(LOCK_FILE, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            reap_stale()
            for slot in range(NETNS_SLOTS):
                name = "%s%d" % (NETNS_PREFIX, slot)
                if not os.path.exists("/sys/class/net/" + name) and not os.path.exists("/run/netns/" + name):
                    break
            else:
                raise RuntimeError("all %d test namespaces %s<n> are taken" % (NETNS_SLOTS, NETNS_PREFIX))
            a, b, c, d = NETNS_BASE
            self.name = name
            self.host_address = "%d.%d.%d.%d" % (a, b, c, d + 4 * slot + 1)
            self.address = "%d.%d.%d.%d" % (a, b, c, d + 4 * slot + 2)
            owner = _process_identity(os.getpid())
            with open(_owner_file(name), "w", encoding="utf-8") as handle:
                handle.write(owner)
            try:
                _ip("netns", "add", name)
                _ip("link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
                _ip("addr", "add", self.host_address + "/30", "dev", name)
                _ip("link", "set", name, "up")
                _ip("-n", name, "addr", "add", self.address + "/30", "dev", "eth0")
                _ip("-n", name, "link", "set", "eth0", "up")
                _ip("-n", name, "link", "set", "lo", "up")
            except BaseException:
                self.close()
                raise
        self._servers: list[subprocess.Popen] = []
        self._watchdog = subprocess.Popen(
            [sys.executable, __file__, "reap-after", owner, name], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def serve(self, tokens: dict, log: Path, certificate: tuple[Path, Path] | None = None) -> str:
        """Start this file's server inside the namespace; returns its URL (https with ``certificate``)."""
        argv = ["ip", "netns", "exec", self.name, sys.executable, __file__, "serve", "--bind", self.address,
                "--tokens", json.dumps(tokens), "--log", str(log)]
        if certificate is not None:
            argv += ["--cert", str(certificate[0]), "--key", str(certificate[1])]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._servers.append(process)
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError("the namespace's server did not start (it printed %r)" % port)
        return "%s://%s:%s" % ("https" if certificate is not None else "http", self.address, port)

    def close(self) -> None:
        for process in getattr(self, "_servers", []):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
                process.wait()
        _remove_namespace(self.name)
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()


def read_events(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args(argv)
    certificate = (Path(args.cert), Path(args.key)) if args.cert else None
    server = ScimServer((args.bind, 0), json.loads(args.tokens), certificate, Path(args.log))
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.05)


def _reap_after(owner: str, name: str) -> None:
    """Wait for the owner process to end, then remove its namespace if it still owns it."""
    import time  # pylint: disable=import-outside-toplevel
    while _process_identity(int(owner.split()[0])) == owner:
        time.sleep(0.5)
    with open(LOCK_FILE, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(_owner_file(name), encoding="utf-8") as handle:
                still_its_own = handle.read().strip() == owner
        except OSError:
            return  # closed by its owner; the name may be another's by now
        if still_its_own:
            _remove_namespace(name)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2:])
    elif sys.argv[1:2] == ["reap-after"]:
        _reap_after(sys.argv[2], sys.argv[3])


@contextlib.contextmanager
def namespace_or_skip():
    """A :class:`Netns` for a test module, or a skip saying what this machine lacks for one."""
    missing = netns_missing()
    if missing:
        # Imported here: the module also runs as a server script inside the namespace.
        import pytest  # pylint: disable=import-outside-toplevel
        pytest.skip(missing)
    namespace = Netns()
    try:
        yield namespace
    finally:
        namespace.close()
