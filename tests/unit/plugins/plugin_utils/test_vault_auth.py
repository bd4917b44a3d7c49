"""The auth methods of the HashiCorp Vault / OpenBao token store, against the real OpenBao of tests/unit/conftest.py.

jwt: OpenBao's jwt auth method checks JWTs signed here with a key pair made
here (``jwt_validation_pubkeys``): no outside call. token: the option, a
token file, ``BAO_TOKEN`` / ``VAULT_TOKEN`` and the ``~/.vault-token`` that
``bao login`` itself writes, and which of them wins. kubernetes: OpenBao asks
a TokenReview double on 127.0.0.1. Every credential is a secret: each refusal
is checked for it (message, repr, traceback, log records).
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
import time
import traceback
import uuid
from pathlib import Path

import openbao_server  # tests/unit/conftest.py puts it on sys.path
import pytest

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _hashicorp_vault_store as hvs
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _token_store_spec as store_spec
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as token_stores
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_auth as vault_auth

NOW = "2026-12-07T00:00:00Z"
AUDIENCE = "zulip-scim"
SUBJECT = "project_path:ops/zulip:ref_type:branch:ref:main"


# ---------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign_jwt(key, **claims) -> str:
    """A compact RS256 JWT (RFC 7519) signed with ``key``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    now = int(time.time())
    body = {"iss": "https://gitlab.example.com", "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "nbf": now - 5,
            "exp": now + 300}
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    signing_input = "%s.%s" % (b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()),
                               b64url(json.dumps(body).encode()))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return "%s.%s" % (signing_input, b64url(signature))


def store(options: dict, environ: dict | None = None) -> hvs.HashiCorpVaultStore:
    return token_stores.hashicorp_store(options, environ or {})


def enable(a_store, realms=("acme",)) -> ts.Outcome:
    numbers = iter(range(1, 1000))
    with a_store.transaction("web1") as entries:
        return ts.apply_request(entries, ts.make_request(list(realms)), now=NOW,
                                new_token=lambda: "tok-%d-%s" % (next(numbers), "x" * 40))


def kv_token(server, kv_path: str, realm: str = "acme") -> str | None:
    proc = server.bao("kv", "get", "-format=json", "-mount=secret", "%s/web1/%s" % (kv_path, realm), check=False)
    return json.loads(proc.stdout)["data"]["data"]["token"] if proc.returncode == 0 else None


def refusal(call, *secrets: str) -> str:
    """The TokenStoreError ``call`` raises; none of ``secrets`` is in its message, repr or traceback."""
    with pytest.raises(ts.TokenStoreError) as caught:
        call()
    message = str(caught.value)
    # What a traceback would show of the chain (the code lines aside: they are this test's own source).
    shown, exc = [], caught.value
    while exc is not None:
        shown += [repr(exc), "".join(traceback.format_exception_only(exc))]
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    shown = "\n".join(shown)
    for secret in secrets:
        assert secret not in shown
    return message


# ---------------------------------------------------------------- jwt


class JwtAuth:
    """OpenBao's jwt auth method at its own mount, trusting one key pair made here."""

    def __init__(self, server, kv_path_role: str) -> None:
        self.server = server
        self.key = new_key()
        self.mount = "ci-jwt-%s" % uuid.uuid4().hex[:8]
        self.role = kv_path_role
        server.bao("auth", "enable", "-path=%s" % self.mount, "jwt")
        server.bao("write", "auth/%s/config" % self.mount, "-",
                   stdin=json.dumps({"jwt_validation_pubkeys": [public_pem(self.key)]}))
        server.bao("policy", "write", "zulip-scim-jwt", "-", stdin=openbao_server.MINIMAL_POLICY)
        server.bao("write", "auth/%s/role/%s" % (self.mount, self.role), "-", stdin=json.dumps({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUDIENCE], "bound_subject": SUBJECT,
            "token_policies": ["zulip-scim-jwt"], "token_ttl": "5m"}))

    def jwt(self, **claims) -> str:
        return sign_jwt(self.key, **claims)

    def options(self, kv_path: str, **overrides) -> dict:
        options = {"url": self.server.url, "path": kv_path, "auth_method": "jwt", "jwt_role": self.role,
                   "jwt_mount": self.mount}
        options.update(overrides)
        return options


@pytest.fixture(scope="module")
def jwt_auth(openbao):
    return JwtAuth(openbao, "zulip-scim-ci")


class TestJwtLogin:
    def test_jwt_from_the_option(self, jwt_auth, openbao, kv_path, caplog):
        caplog.set_level(logging.DEBUG)
        jwt = jwt_auth.jwt()
        outcome = enable(store(jwt_auth.options(kv_path, jwt=jwt)))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]
        assert jwt not in caplog.text

    def test_jwt_from_an_environment_variable(self, jwt_auth, openbao, kv_path):
        # As a GitLab CI job's id_tokens entry: the JWT never passes through Ansible variables.
        jwt = jwt_auth.jwt()
        outcome = enable(store(jwt_auth.options(kv_path, jwt_env="ZULIP_OPS_ID_TOKEN"), {"ZULIP_OPS_ID_TOKEN": jwt}))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]

    def test_jwt_from_a_file(self, jwt_auth, openbao, kv_path, tmp_path):
        jwt_file = tmp_path / "id_token"
        jwt_file.write_text(jwt_auth.jwt() + "\n")
        outcome = enable(store(jwt_auth.options(kv_path, jwt_file=str(jwt_file))))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]

    def test_the_login_token_is_the_roles(self, jwt_auth, kv_path):
        # The role's policy reaches only secret/zulip_scim/*: what the store uses is the login's token.
        denied = store(jwt_auth.options("elsewhere/%s" % uuid.uuid4().hex[:6], jwt=jwt_auth.jwt()))
        message = refusal(lambda: enable(denied))
        assert "permission denied" in message and "JWT login at auth/%s as role" % jwt_auth.mount in message

    @pytest.mark.parametrize("case", ["another key", "expired", "wrong audience", "wrong subject", "no such role"])
    def test_a_refused_jwt_is_named_never_shown(self, jwt_auth, openbao, kv_path, case, caplog):
        caplog.set_level(logging.DEBUG)
        options = jwt_auth.options(kv_path)
        if case == "another key":
            jwt = sign_jwt(new_key())
        elif case == "expired":
            jwt = jwt_auth.jwt(iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600, exp=int(time.time()) - 1800)
        elif case == "wrong audience":
            jwt = jwt_auth.jwt(aud="someone-else")
        elif case == "wrong subject":
            jwt = jwt_auth.jwt(sub="project_path:attacker/fork:ref_type:branch:ref:main")
        else:
            jwt = jwt_auth.jwt()
            options["jwt_role"] = "no-such-role"
        message = refusal(lambda: enable(store(dict(options, jwt_env="ID_TOKEN"), {"ID_TOKEN": jwt})), jwt)
        assert message.startswith("JWT login at auth/%s as role %s: %s refused the login: the JWT from the environment "
                                  "variable ID_TOKEN (jwt_env) was not accepted" % (jwt_auth.mount, options["jwt_role"],
                                                                                    openbao.url)), message
        assert "nothing was read or written" in message
        assert kv_token(openbao, kv_path) is None
        assert jwt not in caplog.text

    def test_wrong_mount(self, jwt_auth, kv_path):
        jwt = jwt_auth.jwt()
        message = refusal(lambda: store(jwt_auth.options(kv_path, jwt=jwt, jwt_mount="jwt-nowhere")).read("web1"), jwt)
        assert message.startswith("JWT login at auth/jwt-nowhere as role zulip-scim-ci:")


class TestJwtSettings:
    """Refused when the store is made: no request, nothing changed (the url is a port nobody listens on)."""

    URL = "http://127.0.0.1:9"

    def options(self, **overrides) -> dict:
        options = {"url": self.URL, "auth_method": "jwt", "jwt_role": "ci"}
        options.update(overrides)
        return options

    def test_missing_role(self):
        jwt = sign_jwt(new_key())
        message = refusal(lambda: store({"url": self.URL, "auth_method": "jwt", "jwt": jwt}), jwt)
        assert "auth_method jwt needs jwt_role (zulip_scim_vault_jwt_role)" in message

    def test_no_jwt(self):
        message = refusal(lambda: store(self.options()))
        assert "needs exactly one of jwt, jwt_env" in message and "none is set" in message

    def test_two_sources(self, tmp_path):
        jwt = sign_jwt(new_key())
        message = refusal(lambda: store(self.options(jwt=jwt, jwt_file=str(tmp_path / "t"))), jwt)
        assert "needs exactly one of" in message and "jwt and jwt_file are set" in message

    def test_unset_environment_variable(self):
        message = refusal(lambda: store(self.options(jwt_env="CI_ID_TOKEN"), {"OTHER": "x"}))
        assert "the environment variable CI_ID_TOKEN (jwt_env) is not set or empty on the controller" in message

    def test_missing_file(self, tmp_path):
        missing = tmp_path / "nope"
        assert "jwt_file %s cannot be read (No such file or directory)" % missing in refusal(
            lambda: store(self.options(jwt_file=str(missing))))

    def test_a_directory_or_a_fifo_is_no_file(self, tmp_path, no_hang):
        import os

        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with no_hang(10):
            assert "is not a regular file" in refusal(lambda: store(self.options(jwt_file=str(fifo))))
        assert "is not a regular file" in refusal(lambda: store(self.options(jwt_file=str(tmp_path))))

    def test_not_a_jwt_is_not_echoed(self, tmp_path):
        garbage = "not-a-jwt-but-a-secret-4711"
        assert "jwt (zulip_scim_vault_jwt) is not a JWT" in refusal(lambda: store(self.options(jwt=garbage)), garbage)
        jwt_file = tmp_path / "two"
        first, second = sign_jwt(new_key()), sign_jwt(new_key())
        jwt_file.write_text("%s\n%s\n" % (first, second))
        message = refusal(lambda: store(self.options(jwt_file=str(jwt_file))), first, second)
        assert "does not hold one credential" in message

    def test_jwt_options_without_auth_method_jwt(self):
        # auth_method forgotten: refused instead of silently using a token from the environment.
        message = refusal(lambda: store({"url": self.URL, "jwt_role": "ci", "jwt_env": "X"}, {"VAULT_TOKEN": "t-1"}), "t-1")
        assert "jwt_role, jwt_env are for auth_method jwt, but auth_method is token" in message

    def test_unknown_method(self):
        assert "auth_method 'ldap' is not one of token, approle, jwt, kubernetes" in refusal(
            lambda: store({"url": self.URL, "auth_method": "ldap", "token": "x"}))

    def test_a_mount_outside_auth(self):
        assert "jwt_mount must be the path an auth method is mounted at" in refusal(
            lambda: store(self.options(jwt=sign_jwt(new_key()), jwt_mount="../sys")))

    def test_repr_hides_the_jwt(self):
        jwt = sign_jwt(new_key())
        a_store = store(self.options(jwt=jwt))
        settings = token_stores.vault_settings(self.options(jwt=jwt), {})
        assert jwt not in repr(settings) and jwt not in repr(hvs.check_settings(settings))
        assert jwt not in repr(vars(a_store))


# ---------------------------------------------------------------- token: files and environment


class TestTokenSources:
    def test_token_file_option(self, openbao, kv_path, tmp_path):
        token_file = tmp_path / "token"
        token_file.write_text(openbao.root_token + "\n")
        outcome = enable(store({"url": openbao.url, "path": kv_path, "token_file": str(token_file)}))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]

    def test_the_vault_token_file_that_bao_login_writes(self, openbao, kv_path, tmp_path):
        home = tmp_path / "home"
        home.mkdir()
        login_env = dict(openbao.env(), HOME=str(home))
        del login_env["BAO_TOKEN"]
        import subprocess

        # The real CLI: "bao login" reads the token from stdin and writes ~/.vault-token.
        subprocess.run([openbao_server.bao_binary(), "login", "-no-print", "-"], input=openbao.root_token, env=login_env,
                       capture_output=True, text=True, check=True, timeout=60)
        assert (home / ".vault-token").is_file()
        outcome = enable(store({"path": kv_path}, {"BAO_ADDR": openbao.url, "HOME": str(home)}))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]

    def test_bao_addr_and_bao_token(self, openbao, kv_path):
        outcome = enable(store({"path": kv_path}, {"BAO_ADDR": openbao.url, "BAO_TOKEN": openbao.root_token}))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]

    def test_bao_wins_over_vault(self, openbao, kv_path):
        unused = "http://127.0.0.1:%d" % openbao_server.free_port()
        environ = {"BAO_ADDR": openbao.url, "VAULT_ADDR": unused, "BAO_TOKEN": openbao.root_token,
                   "VAULT_TOKEN": "hvs.wrong-vault-token-1"}
        assert store({"path": kv_path}, environ).read("web1") == {}
        swapped = {"BAO_ADDR": openbao.url, "BAO_TOKEN": "hvs.wrong-bao-token-2", "VAULT_TOKEN": openbao.root_token}
        message = refusal(lambda: store({"path": kv_path}, swapped).read("web1"), "hvs.wrong-bao-token-2", openbao.root_token)
        assert "permission denied" in message and "(from the environment variable BAO_TOKEN)" in message
        # VAULT_* alone still works, as before.
        assert store({"path": kv_path}, {"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.root_token}).read("web1") == {}

    def test_options_win_over_the_environment_and_the_environment_over_the_token_file(self, openbao, kv_path, tmp_path):
        home = tmp_path / "home"
        home.mkdir()
        (home / ".vault-token").write_text("hvs.stale-file-token-3")
        base = {"BAO_ADDR": openbao.url, "HOME": str(home)}
        assert store({"path": kv_path, "token": openbao.root_token}, dict(base, BAO_TOKEN="hvs.env-4")).read("web1") == {}
        token_file = tmp_path / "explicit"
        token_file.write_text(openbao.root_token)
        assert store({"path": kv_path, "token_file": str(token_file)}, dict(base, BAO_TOKEN="hvs.env-4")).read("web1") == {}
        assert store({"path": kv_path}, dict(base, VAULT_TOKEN=openbao.root_token)).read("web1") == {}
        message = refusal(lambda: store({"path": kv_path}, base).read("web1"), "hvs.stale-file-token-3")
        assert "permission denied" in message and "(from the token file %s/.vault-token)" % home in message

    def test_token_and_token_file_together(self, tmp_path):
        assert "token and token_file are both set" in refusal(
            lambda: store({"url": "http://127.0.0.1:9", "token": "x-5", "token_file": str(tmp_path)}), "x-5")

    def test_unreadable_token_files(self, tmp_path):
        missing = tmp_path / "missing"
        assert "token_file %s cannot be read (No such file or directory)" % missing in refusal(
            lambda: store({"url": "http://127.0.0.1:9", "token_file": str(missing)}))
        # ~/.vault-token that is there but unusable is an error, not "no token".
        (tmp_path / ".vault-token").mkdir()
        assert "the token file %s/.vault-token is not a regular file" % tmp_path in refusal(
            lambda: store({"url": "http://127.0.0.1:9"}, {"HOME": str(tmp_path)}))

    def test_empty_or_two_line_token_file(self, tmp_path):
        token_file = tmp_path / "token"
        token_file.write_text("\n")
        assert "token_file %s is empty" % token_file in refusal(
            lambda: store({"url": "http://127.0.0.1:9", "token_file": str(token_file)}))
        token_file.write_text("hvs.first-6\nhvs.second-7\n")
        assert "does not hold one credential" in refusal(
            lambda: store({"url": "http://127.0.0.1:9", "token_file": str(token_file)}), "hvs.first-6", "hvs.second-7")

    def test_no_token_anywhere(self, tmp_path):
        message = refusal(lambda: store({"url": "http://127.0.0.1:9"}, {"HOME": str(tmp_path)}))
        assert "no token" in message and "BAO_TOKEN / VAULT_TOKEN" in message and "bao login" in message

    def test_namespace_and_ca_cert_prefer_bao(self):
        settings = token_stores.vault_settings({}, {"BAO_NAMESPACE": "bao-team", "VAULT_NAMESPACE": "vault-team",
                                                    "BAO_CACERT": "/bao/ca.pem", "VAULT_CACERT": "/vault/ca.pem"})
        assert (settings.namespace, settings.ca_cert) == ("bao-team", "/bao/ca.pem")


# ---------------------------------------------------------------- kubernetes


class TokenReviewDouble:
    """The cluster's TokenReview API on 127.0.0.1: one service account token is valid."""

    def __init__(self, valid_jwt: str) -> None:
        self.valid_jwt = valid_jwt
        self.reviews: list[str] = []
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = body["spec"]["token"]
                double.reviews.append(self.path)
                status = {"authenticated": token == double.valid_jwt}
                if status["authenticated"]:
                    status["user"] = {"username": "system:serviceaccount:awx:zulip-ops", "uid": "uid-1",
                                      "groups": ["system:serviceaccounts"]}
                answer = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                     "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((openbao_server.LOOPBACK, 0), Handler)
        self.url = "http://%s:%d" % (openbao_server.LOOPBACK, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def service_account_jwt(key) -> str:
    return sign_jwt(key, iss="kubernetes/serviceaccount", sub="system:serviceaccount:awx:zulip-ops", aud=None, **{
        "kubernetes.io/serviceaccount/namespace": "awx",
        "kubernetes.io/serviceaccount/service-account.name": "zulip-ops",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1"})


@pytest.fixture(scope="module")
def kubernetes_auth(openbao, tmp_path_factory):
    key = new_key()
    valid = service_account_jwt(key)
    double = TokenReviewDouble(valid)
    mount = "k8s-%s" % uuid.uuid4().hex[:8]
    ca_pem = openbao_server.make_ca_and_cert(tmp_path_factory.mktemp("k8s-ca"))[0].read_text()
    openbao.bao("auth", "enable", "-path=%s" % mount, "kubernetes")
    openbao.bao("write", "auth/%s/config" % mount, "-", stdin=json.dumps({
        "kubernetes_host": double.url, "kubernetes_ca_cert": ca_pem, "disable_local_ca_jwt": True}))
    openbao.bao("policy", "write", "zulip-scim-k8s", "-", stdin=openbao_server.MINIMAL_POLICY)
    openbao.bao("write", "auth/%s/role/zulip-ops" % mount, "-", stdin=json.dumps({
        "bound_service_account_names": ["zulip-ops"], "bound_service_account_namespaces": ["awx"],
        "token_policies": ["zulip-scim-k8s"], "token_ttl": "5m"}))
    yield {"mount": mount, "valid": valid, "key": key, "double": double}
    double.stop()


class TestKubernetesLogin:
    def options(self, openbao, kubernetes_auth, kv_path, token_file: Path, **overrides) -> dict:
        options = {"url": openbao.url, "path": kv_path, "auth_method": "kubernetes", "kubernetes_role": "zulip-ops",
                   "kubernetes_mount": kubernetes_auth["mount"], "kubernetes_token_file": str(token_file)}
        options.update(overrides)
        return options

    def test_service_account_token_login(self, openbao, kubernetes_auth, kv_path, tmp_path):
        token_file = tmp_path / "token"
        token_file.write_text(kubernetes_auth["valid"])
        before = len(kubernetes_auth["double"].reviews)
        outcome = enable(store(self.options(openbao, kubernetes_auth, kv_path, token_file)))
        assert kv_token(openbao, kv_path) == outcome.tokens["acme"]
        assert kubernetes_auth["double"].reviews[before:] == ["/apis/authentication.k8s.io/v1/tokenreviews"]

    def test_a_token_the_cluster_refuses(self, openbao, kubernetes_auth, kv_path, tmp_path):
        other = service_account_jwt(new_key())
        token_file = tmp_path / "token"
        token_file.write_text(other)
        message = refusal(lambda: enable(store(self.options(openbao, kubernetes_auth, kv_path, token_file))), other)
        assert message.startswith("Kubernetes login at auth/%s as role zulip-ops: %s refused the login"
                                  % (kubernetes_auth["mount"], openbao.url)), message
        assert kv_token(openbao, kv_path) is None

    def test_missing_role_and_missing_token_file(self, tmp_path):
        assert "auth_method kubernetes needs kubernetes_role" in refusal(
            lambda: store({"url": "http://127.0.0.1:9", "auth_method": "kubernetes"}))
        assert "kubernetes_token_file %s cannot be read" % (tmp_path / "none") in refusal(lambda: store({
            "url": "http://127.0.0.1:9", "auth_method": "kubernetes", "kubernetes_role": "r",
            "kubernetes_token_file": str(tmp_path / "none")}))


def test_the_table_names_every_method_once():
    assert vault_auth.AUTH_METHOD_NAMES == ("token", "approle", "jwt", "kubernetes")
    assert store_spec.HASHICORP_OPTIONS["auth_method"]["choices"] == list(vault_auth.AUTH_METHOD_NAMES)
    # Every option a method reads is a hashicorp option and a field of the settings.
    fields = set(hvs.VaultSettings.__dataclass_fields__)
    for method in vault_auth.AUTH_METHODS.values():
        assert set(method.options) <= set(store_spec.HASHICORP_OPTIONS) & fields, method.name


def test_the_argument_spec_hides_every_credential():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    jwt = sign_jwt(new_key())
    result = ArgumentSpecValidator(store_spec.STORE_ARGUMENT_SPEC).validate({
        "store": "hashicorp_vault", "hashicorp": {"auth_method": "jwt", "jwt_role": "ci", "jwt": jwt,
                                                  "token": "hvs.t-8", "secret_id": "sid-9"}})
    assert result.error_messages == []
    assert {jwt, "hvs.t-8", "sid-9"} <= set(result._no_log_values)


# ---------------------------------------------------------------- through the action


class TestThroughTheAction:
    """zulip_scim_token as a play runs it: the hashicorp options through its argument spec, the controller's environment."""

    @staticmethod
    def run(hashicorp: dict, tmp_path: Path, realms=("acme",)) -> dict:
        from unittest.mock import MagicMock

        from ansible.parsing.dataloader import DataLoader
        from ansible.playbook.play_context import PlayContext

        from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as token_plugin

        task = MagicMock()
        task.args = {"realms": list(realms), "store": "hashicorp_vault", "hashicorp": hashicorp}
        task.async_val = 0
        task.check_mode = False
        task.action = "zulip_ops.zulip.zulip_scim_token"
        connection = MagicMock()
        connection._shell.tmpdir = None
        action = token_plugin.ActionModule(task, connection, PlayContext(), DataLoader(), MagicMock(), None)
        action._load_name = task.action
        return action.run(task_vars={"inventory_hostname": "web1", "inventory_dir": str(tmp_path),
                                     "playbook_dir": str(tmp_path)})

    @pytest.fixture
    def environment(self, monkeypatch, tmp_path):
        for name in ("ADDR", "TOKEN", "NAMESPACE", "CACERT"):
            monkeypatch.delenv("VAULT_" + name, raising=False)
            monkeypatch.delenv("BAO_" + name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        return monkeypatch

    def test_jwt_from_the_environment_with_bao_addr(self, environment, jwt_auth, openbao, kv_path, tmp_path):
        jwt = jwt_auth.jwt()
        environment.setenv("BAO_ADDR", openbao.url)
        environment.setenv("CI_JOB_JWT_FOR_BAO", jwt)
        result = self.run({"path": kv_path, "auth_method": "jwt", "jwt_role": jwt_auth.role, "jwt_mount": jwt_auth.mount,
                           "jwt_env": "CI_JOB_JWT_FOR_BAO"}, tmp_path)
        assert not result.get("failed"), result.get("msg")
        assert result["generated"] == ["acme"] and kv_token(openbao, kv_path) == result["tokens"]["acme"]
        assert jwt not in json.dumps(result, default=str)

    def test_a_refused_jwt_fails_the_task_without_showing_it(self, environment, jwt_auth, openbao, kv_path, tmp_path):
        jwt = sign_jwt(new_key())
        environment.setenv("BAO_ADDR", openbao.url)
        result = self.run({"path": kv_path, "auth_method": "jwt", "jwt_role": jwt_auth.role, "jwt_mount": jwt_auth.mount,
                           "jwt": jwt}, tmp_path)
        assert result["failed"] and "refused the login" in result["msg"]
        assert jwt not in json.dumps(result, default=str) and kv_token(openbao, kv_path) is None

    def test_the_vault_token_file_in_home(self, environment, openbao, kv_path, tmp_path):
        (tmp_path / ".vault-token").write_text(openbao.root_token + "\n")
        environment.setenv("BAO_ADDR", openbao.url)
        result = self.run({"path": kv_path}, tmp_path)
        assert not result.get("failed"), result.get("msg")
        assert kv_token(openbao, kv_path) == result["tokens"]["acme"]
        assert openbao.root_token not in json.dumps(result, default=str)


def test_the_scim_role_passes_every_auth_option():
    """defaults/main.yml, meta/argument_specs.yml and vars/main.yml agree on every zulip_scim_vault_* variable."""
    import yaml

    role = Path(__file__).resolve().parents[4] / "roles" / "scim"
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    passed = yaml.safe_load((role / "vars" / "main.yml").read_text())["_zulip_scim_vault"]
    variables = {name for name in defaults if name.startswith("zulip_scim_vault_")}
    assert variables == {name for name in spec if name.startswith("zulip_scim_vault_")}
    for name in variables:
        assert spec[name].get("default") == defaults[name], name
        assert passed[name[len("zulip_scim_vault_"):]] == "{{ %s }}" % name, name
    assert spec["zulip_scim_vault_auth_method"]["choices"] == list(vault_auth.AUTH_METHOD_NAMES)
    auth_options = {option for method in vault_auth.AUTH_METHODS.values() for option in method.options}
    assert auth_options | {"jwt_mount", "kubernetes_mount", "approle_mount", "role_id", "secret_id", "token"} <= set(passed)
    assert set(passed) <= set(store_spec.HASHICORP_OPTIONS)
    for secret in ("token", "secret_id", "jwt"):
        assert spec["zulip_scim_vault_" + secret].get("no_log") is True, secret
        assert store_spec.HASHICORP_OPTIONS[secret].get("no_log") is True, secret


def test_the_documented_jwt_example_runs(openbao, kv_path, tmp_path, monkeypatch):
    """zulip_scim_token's EXAMPLES: the GitLab CI task, as written, against OpenBao's jwt method at its default mount."""
    import yaml

    from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_token as doc

    task = next(t for t in yaml.safe_load(doc.EXAMPLES) if "JWT" in t["name"])
    args = task["zulip_ops.zulip.zulip_scim_token"]
    key = new_key()
    # The server side as docs/token-stores.md shows it, with a key pair of this test instead of GitLab's JWKS.
    openbao.bao("auth", "enable", "jwt", check=False)
    openbao.bao("write", "auth/jwt/config", "-", stdin=json.dumps({"jwt_validation_pubkeys": [public_pem(key)]}))
    openbao.bao("policy", "write", "zulip-scim", "-", stdin=openbao_server.MINIMAL_POLICY)
    openbao.bao("write", "auth/jwt/role/zulip-scim", "-", stdin=json.dumps({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["zulip-scim"], "token_policies": ["zulip-scim"],
        "token_ttl": "15m"}))
    for name in ("ADDR", "TOKEN", "NAMESPACE", "CACERT"):
        monkeypatch.delenv("VAULT_" + name, raising=False)
        monkeypatch.delenv("BAO_" + name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BAO_ADDR", openbao.url)
    jwt = sign_jwt(key, aud="zulip-scim")
    monkeypatch.setenv(args["hashicorp"]["jwt_env"], jwt)
    hashicorp = dict(args["hashicorp"], path=kv_path)  # this test's own folder of the shared server
    result = TestThroughTheAction.run(hashicorp, tmp_path, realms=args["realms"])
    assert not result.get("failed"), result.get("msg")
    assert kv_token(openbao, kv_path) == result["tokens"]["acme"] and jwt not in json.dumps(result, default=str)


def test_the_scim_role_logs_in_with_a_jwt_and_never_shows_it(openbao, jwt_auth, kv_path, tmp_path):
    """ansible-playbook -vvv: playbooks/audit_scim_tokens.yml with the role's zulip_scim_vault_jwt_* variables and BAO_ADDR."""
    import os
    import shutil
    import subprocess
    import sys

    from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as action_plugin

    stored = enable(store({"url": openbao.url, "token": openbao.root_token, "path": kv_path}))
    collections = Path(action_plugin.__file__).parents[5]
    playbook = Path(action_plugin.__file__).parents[2] / "playbooks" / "audit_scim_tokens.yml"
    binary = Path(sys.executable).parent / "ansible-playbook"
    if not binary.exists():  # ansible-test units: its venv has no ansible commands of its own
        binary = Path(shutil.which("ansible-playbook") or binary)
    (tmp_path / "hosts.ini").write_text("[zulip]\nweb1 ansible_host=192.0.2.1\n")  # never contacted
    jwt = jwt_auth.jwt()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VAULT_", "BAO_"))}
    env.update(HOME=str(tmp_path), ANSIBLE_HOME=str(tmp_path / ".ansible"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_NOCOLOR="1", BAO_ADDR=openbao.url, ZULIP_OPS_ID_TOKEN=jwt)
    argv = [str(binary), "-i", "hosts.ini", str(playbook), "-vvv",
            "-e", "zulip_scim_token_store=hashicorp_vault", "-e", "zulip_scim_vault_path=%s" % kv_path,
            "-e", "zulip_scim_vault_auth_method=jwt", "-e", "zulip_scim_vault_jwt_role=%s" % jwt_auth.role,
            "-e", "zulip_scim_vault_jwt_mount=%s" % jwt_auth.mount, "-e", "zulip_scim_vault_jwt_env=ZULIP_OPS_ID_TOKEN"]
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "web1 acme: active, made " in run.stdout
    output = run.stdout + run.stderr
    assert jwt not in output and stored.tokens["acme"] not in output
    # The JWT's signature alone (the part no claim decoding shows) is not there either.
    assert jwt.rsplit(".", 1)[1] not in output
