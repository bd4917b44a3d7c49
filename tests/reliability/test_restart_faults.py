"""A failing restart, or a SCIM check that fails after it, on a REAL Zulip 9.2 (marker testhost).

One booted real-Zulip host (tests/testhost/build_zulip_image.sh) is enabled
with the role, then rotated three times, each time with one fault injected
into Zulip's own `scripts/restart-server` (a one-shot wrapper the test puts in
front of it on the host; the collection calls restart-server as always):

  check    restart-server's `manage.py check` fails: nothing is restarted
  program  the restart runs, then zulip-django does not come back
  token    the restart succeeds, but Zulip starts with tokens the IdP does not
           have, so the SCIM check after it gets 401

After each: the play failed naming the cause and saying what it put back;
settings.py and zulip-secrets.conf are byte for byte (owner, mode) what they
were before the run; no copy of them is left; every supervisor program runs;
the token the host had before gets HTTP 200 again. The token store went back
too (issue 24): its current token is again the one the host serves, the new
one is kept in its history as never in force, nothing is left pending; and the
next run without the rotate tag changes nothing and restarts nothing (Zulip's
own manage.log and supervisor PIDs, molecule/_shared/files/real_ledger.py).
A last rotation without a fault then succeeds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for extra in (REPO / "tests" / "testhost", REPO / "tests" / "standin", REPO / "tests" / "zulip_standin" / "files"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from targets import write_inventory  # noqa: E402

VERSION = "9.2"
REALM = "acme"
PLAYBOOK = REPO / "playbooks" / "enable_scim.yml"
VAULT_PASSWORD = REPO / "molecule" / "_shared" / "vault-password"
FAULT_FILE = "/var/tmp/zulip-ops-test-fault"
DEPLOY = "/home/zulip/deployments/current"
KEPT_GLOB = "/etc/zulip/.*.zulip-scim-*"
REAL_LEDGER = REPO / "molecule" / "_shared" / "files" / "real_ledger.py"
REAL_BOOT_TIMEOUT = 600.0
# What the token fault puts in zulip-secrets.conf: a token no IdP has (not a secret).
INJECTED_TOKEN = "injected-wrong-token-0123456789"

# In front of Zulip's restart-server, as the zulip user runs it: one fault, once, then the real script.
WRAPPER = f"""#!/bin/bash
# Test fault injector (tests/reliability/test_restart_faults.py): one fault, once.
real="$(dirname "$0")/restart-server.real"
# Zulip's script restarts only when its argv[0] ends in "restart-server" (else it is start-server),
# and finds the deployment from its own file: run the real file under the wrapper's name.
real_restart() {{
  # (not runpy: it sets argv[0] to the file it runs)
  python3 -c 'import sys; real = sys.argv[1]; sys.argv = sys.argv[2:]; exec(compile(open(real).read(), real, "exec"), {{"__name__": "__main__", "__file__": real}})' "$real" "$0" "$@"
}}
kind=""
if [ -f {FAULT_FILE} ]; then kind=$(cat {FAULT_FILE}); rm -f {FAULT_FILE}; fi
case "$kind" in
  check)
    echo "restart-server: Running syntax and database checks"
    echo "SystemCheckError: System check identified some issues (injected fault)" >&2
    exit 1 ;;
  program)
    real_restart "$@" || exit $?
    supervisorctl stop zulip-django >/dev/null
    echo "zulip-django: ERROR (not running after the restart: injected fault)" >&2
    exit 1 ;;
  token)
    # Zulip starts on scim tokens that nobody has; the file is then put back as it was.
    cp /etc/zulip/zulip-secrets.conf /var/tmp/zulip-ops-test-secrets
    python3 -c 'import re, sys; p = sys.argv[1]; t = open(p).read(); open(p, "w").write(re.sub(r"(?m)^(scim_bearer_token_\\S+\\s*=\\s*).*$", r"\\1{INJECTED_TOKEN}", t))' /etc/zulip/zulip-secrets.conf
    real_restart "$@"; rc=$?
    # Zulip's uwsgi runs with lazy-apps: its workers read the settings after forking, which can
    # be after restart-server returned. Put the file back only once Zulip serves with the
    # injected token (5 answers in a row), or the fault would not be in place when it is checked.
    if [ "$rc" -eq 0 ]; then
      ok=0
      for i in $(seq 240); do
        code=$(curl -sk -o /dev/null -w '%{{http_code}}' -H 'Host: {REALM}.zulip.example.test' \\
               -H 'Authorization: Bearer {INJECTED_TOKEN}' 'https://127.0.0.1/scim/v2/Users?count=1')
        if [ "$code" = 200 ]; then ok=$((ok + 1)); [ "$ok" -ge 5 ] && break; else ok=0; fi
        sleep 0.5
      done
    fi
    cat /var/tmp/zulip-ops-test-secrets > /etc/zulip/zulip-secrets.conf
    rm -f /var/tmp/zulip-ops-test-secrets
    exit $rc ;;
esac
real_restart "$@"
"""

# Run on the host with {"token": ...} on stdin: the token never is an argument.
SCIM_STATUS = """
import http.client, json, ssl, sys
token = json.load(sys.stdin)["token"]
conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ssl._create_unverified_context(), timeout=30)
conn.request("GET", "/scim/v2/Users?count=1", headers={"Host": "acme.zulip.example.test",
             "Authorization": "Bearer " + token})
print(conn.getresponse().status)
"""

FAULTS = [
    pytest.param("check", "restart-server failed (rc=1)", id="check",
                 marks=pytest.mark.reliability(
                     area="fault", case="real Zulip 9.2: restart-server's manage.py check fails after the new "
                                         "files were written",
                     outcome="the play fails naming the cause; settings.py and zulip-secrets.conf put back byte for "
                             "byte, Zulip restarted on them, the old token gets 200; the token store goes back too "
                             "(its token is the host's again, the new one kept as never in force); the next run "
                             "without the rotate tag changes nothing and restarts nothing")),
    pytest.param("program", "not running after the restart", id="program",
                 marks=pytest.mark.reliability(
                     area="fault", case="real Zulip 9.2: a program (zulip-django) does not come back after "
                                         "the restart",
                     outcome="the same: files put back, every program running again, the old token gets 200, the "
                             "token store back on it, the next plain run a no-op")),
    pytest.param("token", "SCIM check failed", id="token",
                 marks=pytest.mark.reliability(
                     area="fault", case="real Zulip 9.2: the restart succeeds, the SCIM check after it fails",
                     outcome="the rescue puts the files back and restarts Zulip on them; the play fails naming "
                             "the check's failure; the old token gets 200, the token store back on it, the next plain "
                             "run a no-op")),
]


class RealHost:
    """The booted real-Zulip host and the controller-side files of the runs."""

    def __init__(self, testhost: Any, name: str, info: dict[str, Any], workdir: Path):
        self.testhost = testhost
        self.name = name
        self.address = info["address"]
        self.workdir = workdir
        self.inventory = workdir / "inventory.yml"
        self.token_file = workdir / "tokens.vault.yml"
        write_inventory(self.inventory, [(name, info, {})])
        group_vars = {"zulip_scim_token_file": str(self.token_file),
                      "zulip_scim_realms": [{"subdomain": REALM, "client_name": "okta"}],
                      "zulip_scim_hosts": "all",
                      # restart-server's last step, reload-clients, gives Tornado 5 s to answer: on a loaded CI
                      # machine that alone failed a restart once. It is not what these faults are about.
                      "zulip_scim_restart_options": ["--skip-client-reloads"]}
        (workdir / "vars.yml").write_text(yaml.safe_dump(group_vars))
        self.plays = 0

    def ssh(self, command: str, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.testhost.ssh_argv(self.name), command], input=stdin, capture_output=True,
                              text=True, timeout=300)
        if check:
            assert proc.returncode == 0, f"{command!r}: rc {proc.returncode}: {proc.stderr[-2000:]}"
        return proc

    def play(self, *extra: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_RETRY_FILES_ENABLED": "False"}
        run = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-v", "-i", str(self.inventory),
                              "--vault-password-file", str(VAULT_PASSWORD), "-e", f"@{self.workdir / 'vars.yml'}",
                              str(PLAYBOOK), *extra], capture_output=True, text=True, env=env, timeout=900)
        self.plays += 1
        (self.workdir / f"play-{self.plays}.log").write_text(run.stdout + run.stderr)
        return run

    def vault_entry(self) -> dict[str, Any]:
        """The realm's entry in the token store (token, created, state, previous, ...)."""
        out = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-vault"), "view", "--vault-password-file",
                              str(VAULT_PASSWORD), str(self.token_file)], capture_output=True, text=True, check=True)
        return yaml.safe_load(out.stdout)["zulip_scim_tokens"][self.name][REALM]

    def vault_token(self) -> str:
        return self.vault_entry()["token"]

    def install_ledger(self) -> None:
        self.ssh("mkdir -p /root/baseline && cat > /root/real_ledger.py", stdin=REAL_LEDGER.read_text())

    def ledger_snapshot(self) -> None:
        self.ssh("python3 /root/real_ledger.py snapshot")

    def ledger_events(self) -> list[dict[str, Any]]:
        """What the server paid for since the snapshot: restarts, manage.py runs, program groups restarted."""
        return json.loads(self.ssh("python3 /root/real_ledger.py").stdout)

    def configuration(self) -> dict[str, Any]:
        """settings.py and zulip-secrets.conf: content (as a digest), owner, group, mode."""
        out = self.ssh("for f in /etc/zulip/settings.py /etc/zulip/zulip-secrets.conf; do "
                       "printf '%s ' $f; sha256sum < $f | cut -d' ' -f1 | tr '\\n' ' '; stat -c '%U:%G %a' $f; done")
        return dict(line.split(" ", 1) for line in out.stdout.splitlines())

    def kept_copies(self) -> list[str]:
        return self.ssh(f"ls -a {KEPT_GLOB} 2>/dev/null || true").stdout.split()

    def scim_status(self, token: str) -> int:
        return int(self.ssh(f"python3 -c '{SCIM_STATUS}'", stdin=json.dumps({"token": token})).stdout.strip())

    def django_pids(self) -> set[int]:
        out = self.ssh("supervisorctl status zulip-django", check=False).stdout
        return {int(word.rstrip(",")) for line in out.splitlines() for i, word in enumerate(line.split())
                if i > 0 and line.split()[i - 1] == "pid"}

    def not_running(self) -> list[str]:
        out = self.ssh("supervisorctl status", check=False).stdout
        return [line for line in out.splitlines() if line.strip() and "RUNNING" not in line]

    def install_fault_wrapper(self) -> None:
        script = f"{DEPLOY}/scripts/restart-server"
        self.ssh(f"test -e {script}.real || mv {script} {script}.real; cat > {script}; "
                 f"chown zulip:zulip {script}; chmod 0755 {script}", stdin=WRAPPER)

    def inject(self, kind: str) -> None:
        self.ssh(f"echo {kind} > {FAULT_FILE}; chown zulip:zulip {FAULT_FILE}")


def wait_serving(host: RealHost, token: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        status = host.scim_status(token)
        if status == 200:
            break
        time.sleep(3)
    return status


@pytest.fixture(scope="module")
def real_host(tmp_path_factory: pytest.TempPathFactory):
    source = Path(os.environ.get("ZULIP_SRC_DIR") or REPO.parent / "shared" / "zulip-src")
    if not (source / f"zulip-server-{VERSION}.tar.gz").is_file():
        pytest.skip(f"no real Zulip {VERSION} source in {source}")
    import testhost  # tests/testhost/testhost.py

    name = f"faults-real-{VERSION.replace('.', '-')}-{os.getpid()}"
    info = testhost.up([name], timeout=REAL_BOOT_TIMEOUT, image=f"zulip-{VERSION}")[0]
    try:
        host = RealHost(testhost, name, info, tmp_path_factory.mktemp("restart-faults"))
        host.ssh(f"for i in $(seq 120); do curl -skf -o /dev/null https://127.0.0.1/ -H 'Host: zulip.example.test' "
                 f"&& exit 0; sleep 2; done; exit 1")
        enabled = host.play()
        assert enabled.returncode == 0, enabled.stdout[-5000:]
        host.install_fault_wrapper()
        host.install_ledger()
        yield host
    finally:
        if not os.environ.get("ZULIP_OPS_KEEP_HOST"):
            testhost.down([name])


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
@pytest.mark.parametrize("kind, cause", FAULTS)
def test_a_failed_restart_or_check_puts_the_previous_configuration_back(real_host: RealHost, kind: str,
                                                                        cause: str) -> None:
    # A fault an earlier case did not reach must not fire here; the server must serve before the case.
    real_host.ssh(f"rm -f {FAULT_FILE}")
    assert wait_serving(real_host, real_host.host_token, timeout=300) == 200, "the host does not serve before the case"
    before = real_host.configuration()
    old_token = real_host.host_token
    pids_before = real_host.django_pids()
    real_host.inject(kind)
    run = real_host.play("--tags", "rotate_scim_token")
    output = run.stdout + run.stderr
    assert run.returncode != 0, f"the {kind} fault did not fail the play:\n{output[-4000:]}"
    assert cause in output, output[-4000:]
    assert "were put back byte for byte and Zulip was restarted on them" in output, output[-4000:]
    assert real_host.configuration() == before, "settings.py / zulip-secrets.conf differ from before the run"
    assert real_host.kept_copies() == [], "a copy of the previous files was left on the host"
    assert real_host.ssh(f"test ! -e {FAULT_FILE}", check=False).returncode == 0, "the fault was not triggered"
    assert wait_serving(real_host, old_token) == 200, "the token the host had before does not work again"
    assert real_host.not_running() == []
    assert pids_before and not pids_before & real_host.django_pids(), "Zulip was not restarted on the old files"
    assert "already started; nothing to do" not in output, "restart-server ran as start-server"
    # The token store went back too: the host's token is its current token again, the new one never in force.
    entry = real_host.vault_entry()
    new_token = entry["previous"][0]["token"]
    # (compared apart: a failed assert must not print the tokens)
    store_went_back = entry["token"] == old_token
    assert store_went_back, "the token store kept the new token of a rotation the host rolled back"
    assert entry["state"] == "active" and "pending" not in entry
    assert new_token != old_token and entry["previous"][0].get("rolled_back"), entry["previous"][0].keys()
    assert real_host.scim_status(new_token) == 401
    assert "The token store went back too" in output, output[-4000:]
    assert old_token not in output and new_token not in output
    check_the_next_plain_run_changes_nothing(real_host, old_token, before)


def check_the_next_plain_run_changes_nothing(real_host: RealHost, old_token: str,
                                             configuration: dict[str, str]) -> None:
    """Issue 24: no unintended rotation after a rolled-back one; no restart, no file, no store written."""
    entry_before = real_host.vault_entry()
    store_before = real_host.token_file.read_bytes()
    real_host.ledger_snapshot()
    run = real_host.play()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "the token store wins" not in output and "changed=0" in output, output[-5000:]
    events = real_host.ledger_events()
    assert [e for e in events if e["event"] == "restart"] == [], events
    assert [e for e in events if e["event"] == "pids"][0]["changed"] == [], events
    assert real_host.configuration() == configuration
    store_unchanged = real_host.token_file.read_bytes() == store_before and real_host.vault_entry() == entry_before
    assert store_unchanged, "the run without the rotate tag wrote the token store"
    assert real_host.scim_status(old_token) == 200
    assert old_token not in output


@pytest.fixture(scope="module", autouse=True)
def host_token(real_host: RealHost) -> None:
    # The token the host runs with: the vault file's after enabling; rotations that fail leave it.
    real_host.host_token = real_host.vault_token()


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
def test_after_the_faults_a_rotation_succeeds(real_host: RealHost) -> None:
    real_host.ssh(f"rm -f {FAULT_FILE}")
    pids_before = real_host.django_pids()
    run = real_host.play("--tags", "rotate_scim_token")
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    entry = real_host.vault_entry()
    rotated = entry["token"] != real_host.host_token and entry["previous"][0]["token"] == real_host.host_token
    assert rotated and "pending" not in entry, "not rotated, or the proven token is still pending"
    assert "rolled_back" not in entry["previous"][0]
    assert real_host.scim_status(entry["token"]) == 200 and real_host.scim_status(real_host.host_token) == 401
    assert real_host.kept_copies() == []
    assert not pids_before & real_host.django_pids()


# ---------------------------------------------------------------------------------------------------------
# Issue 24: the IdP gets the token in the same run. The same real Zulip 9.2 host, its root-domain realm
# "" provisioned by an Entra ID double (tests/idp_doubles/entra_id.py: the authority and Graph v1.0 on
# 127.0.0.1, every Graph body checked against msgraph-sdk's models). The double's validateCredentials and
# provisioning cycles really reach the host's front end with the token the double holds, through a
# certificate for zulip.example.test signed by the test's own CA (installed on the host like an
# operator's). The collection only knows the double through zulip_scim_idp_connections.

ROOT_HOST = "zulip.example.test"
ENTRA_TENANT = "7d3b4f3e-2c55-4f0a-9a53-6b1f0c2d9e11"
ENTRA_CLIENT = "0f7a6c2e-91b4-4c7e-8d55-3e2b1a9c4d70"
ENTRA_SECRET = "entra-client-S3cret-" + "k" * 24  # a test credential: must appear in no output
ENTRA_SP = "4c1e2a9b-7f3d-4e6a-b8c5-2d9f0e1a3b7c"
NEW_USER = "idp-e2e-%d@example.test"

# Run on the host with {"token", "body", "method", "path"} on stdin: what the IdP sends, as it sends it.
SCIM_REQUEST = """
import http.client, json, ssl, sys
ask = json.load(sys.stdin)
conn = http.client.HTTPSConnection("127.0.0.1", 443, context=ssl._create_unverified_context(), timeout=30)
conn.request(ask["method"], ask["path"], body=json.dumps(ask["body"]) if ask["body"] is not None else None,
             headers={"Host": "zulip.example.test", "Authorization": "Bearer " + ask["token"],
                      "Content-Type": "application/scim+json"})
answer = conn.getresponse()
print(json.dumps({"status": answer.status, "body": answer.read().decode("utf-8", "replace")}))
"""


def _idp_loader():
    sys.path.insert(0, str(REPO / "tests" / "unit" / "plugins" / "plugin_utils"))
    import _idp_double_loader as loader  # noqa: E402 - by path, like the unit tests

    return loader


class EntraSide:
    """The Entra double, the host's certificate, and the role's variables that point the collection at them."""

    def __init__(self, host: RealHost, workdir: Path):
        loader = _idp_loader()
        tlsfix = loader.tls_fixtures()
        doubles = loader.double("entra_id")
        self.host = host
        self.ca = tlsfix.TestCA(workdir, "zulip_ops e2e CA")
        cert, key = self.ca.issue([ROOT_HOST, "*." + ROOT_HOST], "zulip-front-end")
        # The front end serves a certificate an IdP can check (as an operator's would).
        host.ssh("cat > /etc/ssl/certs/zulip.combined-chain.crt", stdin=cert.read_text())
        host.ssh("cat > /etc/ssl/private/zulip.key && chmod 0600 /etc/ssl/private/zulip.key && "
                 "systemctl reload nginx", stdin=key.read_text())
        self.double = doubles.EntraDouble(workdir, self.ca, scim_hosts={ROOT_HOST: host.address},
                                          scim_ca_path=str(self.ca.path))
        self.double.add_tenant(ENTRA_TENANT)
        self.double.add_app(ENTRA_TENANT, ENTRA_CLIENT, secret=ENTRA_SECRET)
        self.double.add_service_principal(ENTRA_SP)
        self.job = self.double.add_job(ENTRA_SP, "Active")
        realms = [{"subdomain": REALM, "client_name": "okta"},
                  {"subdomain": "", "client_name": "entra-id", "idp_settings": {"service_principal_id": ENTRA_SP}}]
        self.vars = workdir / "vars-idp.yml"
        self.vars.write_text(yaml.safe_dump({
            "zulip_scim_realms": realms, "zulip_scim_external_host": ROOT_HOST,
            "zulip_scim_idp_connections": {"entra_id": {
                "tenant_id": ENTRA_TENANT, "client_id": ENTRA_CLIENT, "client_secret": ENTRA_SECRET,
                "authority": self.double.authority_url, "graph_url": self.double.graph_url,
                "ca_path": str(self.ca.path)}}}))
        self.users = 0

    @property
    def principal(self):
        return self.double.service_principals[ENTRA_SP]

    def held_token(self) -> str:
        return self.principal.secrets.get("SecretToken", "")

    def graph_calls(self) -> list[tuple[str, str]]:
        """(method, last path part) of every Graph request since the last clear, in order."""
        return [(r["method"], r["path"].rstrip("/").rsplit("/", 1)[-1]) for r in self.double.requests
                if r.get("server") == "graph"]

    def scim(self, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        out = self.host.ssh(f"python3 -c '{SCIM_REQUEST}'",
                            stdin=json.dumps({"token": token, "method": method, "path": path, "body": body}))
        return json.loads(out.stdout)

    def provision_a_user(self) -> tuple[int, int]:
        """What Entra's provisioning does with the token it holds: create a user (201), then deactivate it (200)."""
        self.users += 1
        email = NEW_USER % self.users
        created = self.scim("POST", "/scim/v2/Users", self.held_token(), {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "active": True,
            "name": {"formatted": "IdP E2E %d" % self.users}, "emails": [{"value": email, "primary": True}]})
        if created["status"] != 201:
            return created["status"], 0
        user_id = json.loads(created["body"])["id"]
        off = self.scim("PATCH", f"/scim/v2/Users/{user_id}", self.held_token(), {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        return created["status"], off["status"]

    def play(self, *extra: str) -> subprocess.CompletedProcess[str]:
        run = self.host.play("-e", f"@{self.vars}", *extra)
        text = run.stdout + run.stderr
        assert ENTRA_SECRET not in text, "the IdP credential appears in the output"
        for token in filter(None, (self.held_token(), *self.store_tokens())):
            assert token not in text, "a bearer token appears in the output"
        assert self.double.model_problems == [], self.double.model_problems
        return run

    def store_tokens(self) -> list[str]:
        try:
            entry = self.host.vault_entry_of("")
        except (KeyError, TypeError):
            return []
        return [entry["token"]] + [p["token"] for p in entry.get("previous") or []]


def _vault_entry_of(self: RealHost, realm: str) -> dict[str, Any]:
    out = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-vault"), "view", "--vault-password-file",
                          str(VAULT_PASSWORD), str(self.token_file)], capture_output=True, text=True, check=True)
    return yaml.safe_load(out.stdout)["zulip_scim_tokens"][self.name][realm]


RealHost.vault_entry_of = _vault_entry_of


def root_realm_enabled(side: EntraSide) -> str:
    """The root realm's token, enabling the realm first when a test runs alone (-k): the cases build on it."""
    if not side.store_tokens():
        run = side.play()
        assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    return side.host.vault_entry_of("")["token"]


def _root_status(side: EntraSide, token: str) -> int:
    return side.scim("GET", "/scim/v2/Users?count=1", token)["status"]


@pytest.fixture(scope="module")
def entra(real_host: RealHost, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("msal")
    pytest.importorskip("msgraph")
    side = EntraSide(real_host, tmp_path_factory.mktemp("entra-e2e"))
    yield side
    side.double.close()


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
@pytest.mark.reliability(area="idp", case="real Zulip 9.2 + Entra ID double: the first run for a realm, then a "
                                          "rotation (--tags rotate_scim_token)",
                         outcome="no human step: the IdP gets base URL and token in the same run (job paused before "
                                 "Zulip changes, secrets PUT, validateCredentials, job started), then provisions a "
                                 "user into the real Zulip with the token it holds (201, deactivated 200); after the "
                                 "rotation the old token gets 401; store, host and IdP hold the same token")
def test_the_idp_gets_the_token_in_the_same_run(real_host: RealHost, entra: EntraSide) -> None:
    started = time.monotonic()
    enabled = entra.play()
    assert enabled.returncode == 0, (enabled.stdout + enabled.stderr)[-5000:]
    first = real_host.vault_entry_of("")["token"]
    tokens_agree = entra.held_token() == first
    assert tokens_agree, "the IdP does not hold the realm's token after the first run"
    assert entra.principal.secrets["BaseAddress"] == f"https://{ROOT_HOST}/scim/v2/?aadOptscim062020"
    assert entra.graph_calls() == [("GET", "jobs"), ("POST", "pause"), ("PUT", "secrets"),
                                   ("POST", "validateCredentials"), ("POST", "start")]
    assert entra.job.schedule_state == "Active" and entra.job.quarantine is None
    assert entra.provision_a_user() == (201, 200)
    assert "Automated: each run that changes the token gives it to Microsoft Entra ID" in \
        (real_host.workdir / f"zulip-scim-sheet-{real_host.name}.md").read_text()

    entra.double.requests.clear()
    rotated = entra.play("--tags", "rotate_scim_token", "-e", json.dumps({"zulip_scim_rotate_realms": [""]}))
    elapsed = time.monotonic() - started
    (real_host.workdir / "idp-rotation-transcript.log").write_text(rotated.stdout + rotated.stderr)
    assert rotated.returncode == 0, (rotated.stdout + rotated.stderr)[-5000:]
    entry = real_host.vault_entry_of("")
    new = entry["token"]
    one_token_everywhere = new != first and entra.held_token() == new and "pending" not in entry
    assert one_token_everywhere, "store and IdP do not hold the same new token"
    assert entra.graph_calls() == [("GET", "jobs"), ("POST", "pause"), ("PUT", "secrets"),
                                   ("POST", "validateCredentials"), ("POST", "start")]
    assert _root_status(entra, first) == 401 and _root_status(entra, new) == 200
    # Nothing for a person to hand over: the report says the IdP has it.
    assert re.search(r"The IdP got the new token over its API and proved it: \W*\(root domain\)", rotated.stdout)
    assert "give them to the IdP" not in rotated.stdout
    assert entra.double.run_cycle(ENTRA_SP, entra.job.id) == 200
    assert entra.provision_a_user() == (201, 200)
    print("two-sided rotation: first run and rotation in %.0f s" % elapsed)


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
@pytest.mark.reliability(area="idp", case="real Zulip 9.2 + Entra ID double: a wrong client secret; Graph down "
                                          "before Zulip changed",
                         outcome="refused by the read-only check before anything changed: settings.py, "
                                 "zulip-secrets.conf, the token store and the IdP as before, no restart, no pause")
def test_idp_refusals_before_anything_changes(real_host: RealHost, entra: EntraSide) -> None:
    root_realm_enabled(entra)
    before, store = real_host.configuration(), real_host.token_file.read_bytes()
    held = entra.held_token()
    for fault, words in ((lambda side: side.double.apps[ENTRA_CLIENT].__setattr__("secret", "another-secret-0123456789"),
                          "invalid_client"),
                         (lambda side: setattr(side.double, "fault", lambda method, path: True), "HTTP 503")):
        app_secret = entra.double.apps[ENTRA_CLIENT].secret
        fault(entra)
        entra.double.requests.clear()
        try:
            run = entra.play("--tags", "rotate_scim_token", "-e", json.dumps({"zulip_scim_rotate_realms": [""]}))
        finally:
            entra.double.apps[ENTRA_CLIENT].secret = app_secret
            entra.double.fault = None
        output = run.stdout + run.stderr
        assert run.returncode != 0 and words in output, output[-4000:]
        failed_task = output.split("fatal:")[0].rsplit("TASK [", 1)[-1]
        assert "Read the identity providers" in failed_task, output[-4000:]
        assert real_host.configuration() == before and real_host.token_file.read_bytes() == store
        assert entra.held_token() == held and ("POST", "pause") not in entra.graph_calls()


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
@pytest.mark.reliability(area="idp", case="real Zulip 9.2 + Entra ID double: after Zulip rotated, the IdP cannot "
                                          "take the new token (Graph down at the PUT)",
                         outcome="the play fails naming the step; Zulip back on the old token (200, new one 401), "
                                 "the token store back, the IdP holds the old token again and its job runs; the next "
                                 "plain run changes nothing")
def test_an_idp_failure_after_zulip_rotated_puts_all_three_back(real_host: RealHost, entra: EntraSide) -> None:
    """The IdP fails after Zulip rotated. Here the PUT: the roll-back of host, store and IdP is the same whichever
    IdP step fails (a failed validateCredentials is the unit tests' case, test_idp_api_entra_id.py and
    test_zulip_scim_idp.py), so the real host proves it once; each case costs two restarts of a real Zulip."""
    old = root_realm_enabled(entra)
    before = real_host.configuration()
    seen: list[str] = []

    def first_one_fails(method: str, path: str) -> bool:
        """Once: Graph is down at the PUT. The restore's own calls then go through."""
        seen.append(path)
        return method == "PUT" and sum(p.endswith("secrets") for p in seen) == 1

    entra.double.fault = first_one_fails
    try:
        run = entra.play("--tags", "rotate_scim_token", "-e", json.dumps({"zulip_scim_rotate_realms": [""]}))
    finally:
        entra.double.scim_hosts[ROOT_HOST] = real_host.address
        entra.double.fault = None
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    assert "step push" in output, output[-4000:]
    assert "The token store went back too" in output, output[-4000:]
    assert real_host.configuration() == before
    entry = real_host.vault_entry_of("")
    all_back = entry["token"] == old and entra.held_token() == old and "pending" not in entry
    assert all_back, "store, host and IdP do not all hold the old token again"
    assert wait_serving_root(entra, old) == 200 and _root_status(entra, entry["previous"][0]["token"]) == 401
    assert entra.job.schedule_state == "Active" and entra.job.quarantine is None
    assert entra.double.run_cycle(ENTRA_SP, entra.job.id) == 200
    entra.double.requests.clear()
    again = entra.play()
    assert again.returncode == 0 and "changed=0" in again.stdout, (again.stdout + again.stderr)[-4000:]
    assert entra.double.requests == [], "a run with nothing to change called the IdP"


def wait_serving_root(side: EntraSide, token: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        status = _root_status(side, token)
        if status == 200:
            break
        time.sleep(3)
    return status


@pytest.mark.testhost
@pytest.mark.xdist_group("restart-faults-real-9.2")
@pytest.mark.reliability(area="idp", case="real Zulip 9.2 + Entra ID double: the run is killed after Zulip "
                                          "rotated, at the IdP push",
                         outcome="the store keeps the new token pending and the IdP its old token; the next plain run "
                                 "proves the new token on the host, gives it to the IdP and starts the job the killed "
                                 "run paused; store, host and IdP then hold the new token")
def test_a_run_killed_between_the_two_sides_is_finished_by_the_next(real_host: RealHost, entra: EntraSide) -> None:
    old = root_realm_enabled(entra)
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1"}
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(real_host.inventory), "--vault-password-file",
            str(VAULT_PASSWORD), "-e", f"@{real_host.workdir / 'vars.yml'}", "-e", f"@{entra.vars}", str(PLAYBOOK),
            "--tags", "rotate_scim_token", "-e", json.dumps({"zulip_scim_rotate_realms": [""]})]
    play = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)

    def kill_at_the_push(method: str, path: str) -> bool:
        if method == "PUT":
            os.killpg(play.pid, 9)  # before the IdP stores anything
            return True
        return False

    entra.double.fault = kill_at_the_push
    try:
        output, _ = play.communicate(timeout=900)
    finally:
        entra.double.fault = None
    assert play.returncode == -9, output[-3000:]
    pending = real_host.vault_entry_of("")
    assert pending.get("pending") and entra.held_token() == old
    new = pending["token"]
    assert wait_serving_root(entra, new) == 200, "the host did not rotate before the kill"
    real_host.ledger_snapshot()
    entra.double.requests.clear()
    resumed = entra.play()
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-5000:]
    entry = real_host.vault_entry_of("")
    finished = entry["token"] == new and "pending" not in entry and entra.held_token() == new
    assert finished, "the next run did not finish the rotation on both sides"
    assert ("PUT", "secrets") in entra.graph_calls()
    assert entra.job.schedule_state == "Active", "the job the killed run paused was not started again"
    # The killed run left its kept copy of the files (unproven): the next run restarts once to be sure.
    assert len([e for e in real_host.ledger_events() if e["event"] == "restart"]) <= 1
    assert entra.provision_a_user() == (201, 200)
