"""The KV v2 token store against a real OpenBao server (tests/unit/conftest.py starts it on 127.0.0.1)."""

from __future__ import annotations

import json
import sys

import openbao_server  # tests/unit/conftest.py puts it on sys.path
import pytest

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _hashicorp_vault_store as hvs
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as token_stores

NOW = "2026-11-28T16:40:00Z"
LATER = "2026-12-01T09:00:00Z"


def store_for(server, kv_path: str, **overrides) -> hvs.HashiCorpVaultStore:
    options = {"url": server.url, "token": server.root_token, "path": kv_path}
    if server.ca_cert:
        options["ca_cert"] = server.ca_cert
    options.update(overrides)
    return token_stores.hashicorp_store(options, {})


def counter(prefix: str = "tok"):
    numbers = iter(range(1, 1000))
    return lambda: "%s-%d-%s" % (prefix, next(numbers), "x" * 40)


def enable(store, host="web1", realms=("acme", ""), now=NOW, new_token=None, **request) -> ts.Outcome:
    with store.transaction(host) as entries:
        return ts.apply_request(entries, ts.make_request(list(realms), **request), now=now,
                                new_token=new_token or counter())


def kv_get(server, path: str, version: int | None = None) -> dict:
    args = ["kv", "get", "-format=json", "-mount=secret"]
    if version is not None:
        args.append("-version=%d" % version)
    return json.loads(server.bao(*args, path).stdout)["data"]


def kv_put_json(server, path: str, data: dict, mount: str = "secret") -> None:
    # Through stdin: bao kv put reads a JSON object from "-".
    server.bao("kv", "put", "-mount=%s" % mount, path, "-", stdin=json.dumps(data))


def failure(call) -> str:
    with pytest.raises(ts.TokenStoreError) as caught:
        call()
    return str(caught.value)


class TestRoundTrip:
    def test_empty_store_reads_nothing(self, openbao, kv_path):
        assert store_for(openbao, kv_path).read("web1") == {}

    def test_generate_writes_one_secret_per_realm(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        outcome = enable(store)
        assert outcome.generated == ["acme", ""]
        acme = kv_get(openbao, "%s/web1/acme" % kv_path)
        root = kv_get(openbao, "%s/web1/_root" % kv_path)
        assert acme["data"] == {"token": outcome.tokens["acme"], "created": NOW, "state": "active"}
        assert root["data"]["token"] == outcome.tokens[""]
        assert acme["metadata"]["version"] == 1
        assert store.read("web1") == {"acme": acme["data"], "": root["data"]}
        assert store.location == "%s secret/%s" % (openbao.url, kv_path)
        assert store.secret_path("web1", "") == "%s/web1/_root" % kv_path

    def test_nothing_to_change_writes_no_version(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        first = enable(store)
        again = enable(store, now=LATER)
        assert again.tokens == first.tokens and not again.changed
        assert kv_get(openbao, "%s/web1/acme" % kv_path)["metadata"]["version"] == 1

    def test_rotation_keeps_the_previous_version(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        first = enable(store)
        rotated = enable(store, now=LATER, new_token=counter("new"), rotate=["acme"])
        assert rotated.rotated == ["acme"] and rotated.previous_tokens == {"acme": first.tokens["acme"]}
        latest = kv_get(openbao, "%s/web1/acme" % kv_path)
        assert latest["metadata"]["version"] == 2
        assert latest["data"]["previous"] == [{"token": first.tokens["acme"], "created": NOW, "replaced": LATER}]
        # KV v2 itself still serves the replaced token as version 1.
        assert kv_get(openbao, "%s/web1/acme" % kv_path, version=1)["data"]["token"] == first.tokens["acme"]
        assert kv_get(openbao, "%s/web1/_root" % kv_path)["metadata"]["version"] == 1

    def test_retire_and_adopt(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        enable(store, realms=["acme", "old"])
        outcome = enable(store, realms=["acme", "new"], retire=["old"], adopt={"new": "HostToken_1"})
        assert outcome.retired == ["old"] and outcome.adopted == ["new"]
        entries = store.read("web1")
        assert entries["old"]["state"] == "retired" and entries["old"]["retired"] == NOW
        assert entries["new"]["token"] == "HostToken_1"

    def test_hosts_are_apart(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        one = enable(store, host="web1", realms=["acme"], new_token=counter("one"))
        two = enable(store, host="web2", realms=["acme"], new_token=counter("two"))
        assert one.tokens != two.tokens
        assert store.read("web2") == {"acme": kv_get(openbao, "%s/web2/acme" % kv_path)["data"]}

    def test_an_exception_writes_nothing(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        with pytest.raises(RuntimeError):
            with store.transaction("web1") as entries:
                entries["acme"] = {"token": "T" * 43, "created": NOW, "state": "active"}
                raise RuntimeError("stop")
        assert store.read("web1") == {}

    def test_folders_below_a_host_are_not_realms(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/notes/readme" % kv_path, {"text": "kept by hand"})
        assert store_for(openbao, kv_path).read("web1") == {}


class TestCheckAndSet:
    def test_two_jobs_cannot_both_mint_a_token(self, openbao, kv_path):
        # Both jobs read "no token"; the first to write wins, the other's
        # write is refused with a clear error and the winner's token stays.
        first, second = store_for(openbao, kv_path), store_for(openbao, kv_path)

        def race():
            with first.transaction("web1") as entries_1:
                enable(second, realms=["acme"], new_token=counter("b"))
                ts.apply_request(entries_1, ts.make_request(["acme"]), now=NOW, new_token=counter("a"))

        message = failure(race)
        assert "check-and-set" in message and "nothing was overwritten" in message
        assert kv_get(openbao, "%s/web1/acme" % kv_path)["data"]["token"].startswith("b-1-")
        assert "a-1-" not in message and "b-1-" not in message

    def test_a_rotation_race_keeps_the_winner(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        enable(store, realms=["acme"])
        other = store_for(openbao, kv_path)

        def race():
            with store.transaction("web1") as entries:
                enable(other, realms=["acme"], rotate=["acme"], new_token=counter("winner"))
                ts.apply_request(entries, ts.make_request(["acme"], rotate=["acme"]), now=LATER,
                                 new_token=counter("loser"))

        assert "check-and-set" in failure(race)
        latest = kv_get(openbao, "%s/web1/acme" % kv_path)
        assert latest["metadata"]["version"] == 2 and latest["data"]["token"].startswith("winner-")

    def test_racing_jobs_agree_on_one_token(self, openbao, kv_path):
        # Jobs started at the same moment, each with its own client: whatever
        # the interleaving, every job that succeeds reports the one token the
        # store holds, and the secret was written once.
        import threading

        outcomes: list = []
        start = threading.Barrier(4)

        def job(name: str) -> None:
            store = store_for(openbao, kv_path)
            store.read("web1")  # connect and check the mount before the race starts
            start.wait()
            try:
                outcomes.append(enable(store, realms=["acme"], new_token=counter(name)).tokens["acme"])
            except ts.TokenStoreError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=job, args=("job%d" % n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stored = kv_get(openbao, "%s/web1/acme" % kv_path)
        tokens = {o for o in outcomes if isinstance(o, str)}
        errors = [o for o in outcomes if not isinstance(o, str)]
        print("racing jobs: %d succeeded, %d refused by check-and-set" % (len(outcomes) - len(errors), len(errors)))
        assert len(outcomes) == 4 and tokens == {stored["data"]["token"]}
        assert all("check-and-set" in str(e) for e in errors)
        assert stored["metadata"]["version"] == 1


class TestBadSecrets:
    def test_empty_secret(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/acme" % kv_path, {})
        message = failure(lambda: store_for(openbao, kv_path).read("web1"))
        assert "secret/%s/web1/acme: the secret is empty" % kv_path in message and "rollback" in message

    def test_missing_keys(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/acme" % kv_path, {"token": "Handmade_token_1"})
        message = failure(lambda: store_for(openbao, kv_path).read("web1"))
        assert "missing key(s) created, state" in message and "Handmade_token_1" not in message

    def test_unusable_token_not_shown(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/acme" % kv_path, {"token": "two words", "created": NOW, "state": "active"})
        message = failure(lambda: store_for(openbao, kv_path).read("web1"))
        assert "not a usable token" in message and "two words" not in message

    def test_wrong_type_and_unknown_key(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/acme" % kv_path,
                    {"token": "T" * 43, "created": NOW, "state": "active", "previous": "oops"})
        assert "previous" in failure(lambda: store_for(openbao, kv_path).read("web1"))
        kv_put_json(openbao, "%s/web1/beta" % kv_path, {"token": "T" * 43, "created": NOW, "state": "on"})
        store = store_for(openbao, kv_path)
        assert "web1" in failure(lambda: store.read("web1"))

    def test_a_key_that_is_no_realm(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/Acme" % kv_path, {"token": "T" * 43, "created": NOW, "state": "active"})
        assert "'Acme' is not a valid Zulip subdomain" in failure(lambda: store_for(openbao, kv_path).read("web1"))

    def test_bad_secret_stops_a_write(self, openbao, kv_path):
        kv_put_json(openbao, "%s/web1/acme" % kv_path, {})
        store = store_for(openbao, kv_path)
        failure(lambda: enable(store, realms=["acme", "beta"]))
        assert kv_get(openbao, "%s/web1/acme" % kv_path)["metadata"]["version"] == 1
        assert openbao.bao("kv", "get", "-mount=secret", "%s/web1/beta" % kv_path, check=False).returncode == 2

    def test_deleted_latest_version(self, openbao, kv_path):
        store = store_for(openbao, kv_path)
        enable(store, realms=["acme"])
        openbao.bao("kv", "delete", "-mount=secret", "%s/web1/acme" % kv_path)
        message = failure(lambda: store.read("web1"))
        assert "latest version (1) is deleted" in message and "undelete" in message


class TestUnreachableOrRefused:
    def test_server_down(self, kv_path):
        pytest.importorskip("hvac")
        port = openbao_server.free_port()
        store = token_stores.hashicorp_store({"url": "http://127.0.0.1:%d" % port, "token": "s.whatever-1",
                                              "path": kv_path, "timeout": 5}, {})
        message = failure(lambda: store.read("web1"))
        assert "cannot reach http://127.0.0.1:%d" % port in message and "s.whatever-1" not in message

    def test_wrong_token(self, openbao, kv_path):
        store = store_for(openbao, kv_path, token="not-the-token-123")
        message = failure(lambda: store.read("web1"))
        assert "permission denied" in message and "not-the-token-123" not in message

    def test_minimal_policy_is_enough(self, openbao, kv_path):
        token = openbao.token_with_policy("zulip-scim-minimal", openbao_server.MINIMAL_POLICY)
        store = store_for(openbao, kv_path, token=token)
        first = enable(store)
        assert enable(store, rotate=["acme"], now=LATER).rotated == ["acme"]
        assert store.read("web1")["acme"]["previous"][0]["token"] == first.tokens["acme"]

    def test_policy_denies_write(self, openbao, kv_path):
        token = openbao.token_with_policy("zulip-scim-read-only", """
            path "secret/data/zulip_scim/*" { capabilities = ["read"] }
            path "secret/metadata/zulip_scim/*" { capabilities = ["read", "list"] }
        """)
        store = store_for(openbao, kv_path, token=token)
        assert store.read("web1") == {}
        message = failure(lambda: enable(store))
        assert message.startswith("writing secret/%s/web1/_root: permission denied" % kv_path) or \
            message.startswith("writing secret/%s/web1/acme: permission denied" % kv_path)
        assert token not in message

    def test_policy_denies_read(self, openbao, kv_path):
        writer = store_for(openbao, kv_path)
        enable(writer, realms=["acme"])
        token = openbao.token_with_policy("zulip-scim-write-only", """
            path "secret/data/zulip_scim/*" { capabilities = ["create", "update"] }
            path "secret/metadata/zulip_scim/*" { capabilities = ["list"] }
        """)
        message = failure(lambda: store_for(openbao, kv_path, token=token).read("web1"))
        assert message.startswith("reading secret/%s/web1/acme: permission denied" % kv_path)

    def test_kv_version_1_mount(self, openbao, kv_path):
        mount = "kv1-" + kv_path.rsplit("-", 1)[1]
        openbao.bao("secrets", "enable", "-path=%s" % mount, "-version=1", "kv")
        store = store_for(openbao, kv_path, mount=mount)
        message = failure(lambda: enable(store))
        assert "is a KV version 1 mount" in message and "enable-versioning" in message
        assert openbao.bao("kv", "list", mount, check=False).returncode == 2  # nothing written there

    def test_not_a_kv_mount(self, openbao, kv_path):
        assert "is not a KV secrets engine" in failure(lambda: store_for(openbao, kv_path, mount="cubbyhole").read("h"))

    def test_mount_that_does_not_exist(self, openbao, kv_path):
        assert "mount" in failure(lambda: store_for(openbao, kv_path, mount="nowhere").read("web1"))


class TestTLS:
    def test_verified_with_the_ca(self, openbao_tls, kv_path):
        store = store_for(openbao_tls, kv_path)
        outcome = enable(store)
        assert store.read("web1")["acme"]["token"] == outcome.tokens["acme"]

    def test_unknown_ca_is_refused(self, openbao_tls, kv_path):
        store = store_for(openbao_tls, kv_path, ca_cert=None)
        message = failure(lambda: store.read("web1"))
        assert "TLS certificate" in message and "VAULT_CACERT" in message

    def test_ca_from_the_environment(self, openbao_tls, kv_path):
        store = token_stores.hashicorp_store({"path": kv_path}, {
            "VAULT_ADDR": openbao_tls.url, "VAULT_TOKEN": openbao_tls.root_token, "VAULT_CACERT": openbao_tls.ca_cert})
        assert store.read("web1") == {}

    def test_validation_can_be_turned_off(self, openbao_tls, kv_path):
        store = store_for(openbao_tls, kv_path, ca_cert=None, validate_certs=False)
        pytest.importorskip("urllib3").disable_warnings()
        assert store.read("web1") == {}


class TestAppRole:
    @pytest.fixture(scope="class")
    def approle(self, openbao):
        openbao.bao("auth", "enable", "approle", check=False)
        openbao.bao("policy", "write", "zulip-scim-approle", "-", stdin=openbao_server.MINIMAL_POLICY)
        openbao.bao("write", "auth/approle/role/zulip-scim", "token_policies=zulip-scim-approle")
        role_id = openbao.bao("read", "-field=role_id", "auth/approle/role/zulip-scim/role-id").stdout.strip()
        secret_id = openbao.bao("write", "-f", "-field=secret_id", "auth/approle/role/zulip-scim/secret-id").stdout.strip()
        return role_id, secret_id

    def test_login_and_write(self, openbao, approle, kv_path):
        role_id, secret_id = approle
        store = store_for(openbao, kv_path, token=None, auth_method="approle", role_id=role_id, secret_id=secret_id)
        outcome = enable(store, realms=["acme"])
        assert kv_get(openbao, "%s/web1/acme" % kv_path)["data"]["token"] == outcome.tokens["acme"]

    def test_wrong_secret_id(self, openbao, approle, kv_path):
        store = store_for(openbao, kv_path, token=None, auth_method="approle", role_id=approle[0],
                          secret_id="wrong-secret-id-42")
        message = failure(lambda: store.read("web1"))
        assert message.startswith("AppRole login at auth/approle") and "wrong-secret-id-42" not in message


class TestSettings:
    def test_environment_fallbacks(self):
        settings = token_stores.vault_settings({"url": "", "token": None}, {
            "VAULT_ADDR": "https://vault.example.com:8200", "VAULT_TOKEN": "env-token",
            "VAULT_NAMESPACE": "team", "VAULT_CACERT": "/etc/ca.pem"})
        assert (settings.url, settings.namespace, settings.ca_cert) == ("https://vault.example.com:8200", "team", "/etc/ca.pem")
        assert hvs.check_settings(settings).token == "env-token"
        assert "env-token" not in repr(settings) and "env-token" not in repr(hvs.check_settings(settings))

    def test_options_win_over_the_environment(self):
        settings = token_stores.vault_settings({"url": "https://a:8200", "token": "opt"},
                                               {"VAULT_ADDR": "https://b:8200", "VAULT_TOKEN": "env"})
        assert (settings.url, hvs.check_settings(settings).token) == ("https://a:8200", "opt")

    @pytest.mark.parametrize("options, expected", [
        ({}, "no server address"),
        ({"url": "vault.example.com"}, "no server address"),
        ({"url": "https://v:8200"}, "no token"),
        ({"url": "https://v:8200", "auth_method": "approle", "role_id": "r"}, "needs role_id and secret_id"),
        ({"url": "https://v:8200", "auth_method": "ldap", "token": "x"}, "auth_method 'ldap' is not one of token, approle, jwt, kubernetes"),
        ({"url": "https://v:8200", "token": "x", "mount": "a/../b"}, "not a usable KV path"),
        ({"url": "https://v:8200", "token": "x", "path": "/"}, "not a usable KV path"),
        ({"url": "https://v:8200", "token": "x", "timeout": 0}, "timeout must be a positive"),
        ({"url": "https://v:8200", "token": "x", "colour": "blue"}, "unknown option(s) colour"),
    ])
    def test_refused_before_any_request(self, options, expected):
        assert expected in failure(lambda: token_stores.hashicorp_store(options, {}))

    @pytest.mark.parametrize("host", ["a/b", "..", " web1", ""])
    def test_host_must_be_one_path_segment(self, host):
        store = token_stores.hashicorp_store({"url": "https://v:8200", "token": "x"}, {})
        assert "cannot be a KV path segment" in failure(lambda: store.secret_path(host, "acme"))


def test_missing_hvac_is_named(monkeypatch):
    # As on a controller without hvac: the import fails, with a message naming the package.
    monkeypatch.setitem(sys.modules, "hvac", None)
    store = token_stores.hashicorp_store({"url": "https://127.0.0.1:1", "token": "x"}, {})
    message = failure(lambda: store.read("web1"))
    assert "needs the Python package hvac on the controller" in message


def test_hvac_is_imported_only_when_the_store_is_used():
    # A fresh interpreter: the actions and the store modules load without hvac.
    import subprocess

    code = (
        "import sys\n"
        "from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token, zulip_scim_token_copy\n"
        "from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_stores as token_stores\n"
        "token_stores.hashicorp_store({'url': 'https://127.0.0.1:1', 'token': 'x'}, {})\n"
        "assert 'hvac' not in sys.modules, 'hvac imported too early'\n"
    )
    # This process's import path, whoever set it up (the checkout's conftest, or ansible-test units).
    search_path = __import__("os").pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, "-c", code], env=dict(__import__("os").environ, PYTHONPATH=search_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


class TestNamespace:
    def test_secrets_go_into_the_namespace(self, openbao, kv_path):
        namespace = "team-" + kv_path.rsplit("-", 1)[1]
        openbao.bao("namespace", "create", namespace)
        openbao.bao("secrets", "enable", "-namespace=%s" % namespace, "-path=secret", "kv-v2")
        store = store_for(openbao, kv_path, namespace=namespace)
        outcome = enable(store, realms=["acme"])
        inside = json.loads(openbao.bao("kv", "get", "-namespace=%s" % namespace, "-format=json", "-mount=secret",
                                        "%s/web1/acme" % kv_path).stdout)["data"]["data"]
        assert inside["token"] == outcome.tokens["acme"]
        # Nothing landed in the root namespace's mount of the same name.
        assert openbao.bao("kv", "get", "-mount=secret", "%s/web1/acme" % kv_path, check=False).returncode == 2
