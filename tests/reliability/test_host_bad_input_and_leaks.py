"""On a booted test host with the Zulip stand-in: bad input stops the play before any change, and no run leaks a token.

One Debian test host (systemd-nspawn, its own network namespace, reached over
SSH) with the 9.0 stand-in (manage.py and restart delays of 0.1 s), driven by
``ansible-playbook playbooks/enable_scim.yml`` as an operator runs it.

* Leaks: the enable and the rotate flow run with ``-vvv --diff``,
  ``ANSIBLE_LOG_PATH`` and ``zulip_scim_backup: true`` while two samplers read
  every process's argument list and environment (``/proc/*/cmdline``,
  ``/proc/*/environ``) every 0.15 s, one on the controller, one on the host.
  The tokens (read from the vault file afterwards, and the ones a rotation
  replaced) must not be in the output, the log, any sample, nor in any file of
  the host or of the controller except the vault file and
  ``/etc/zulip/zulip-secrets.conf``; the vault file is 0600 and the secrets
  file 0640 zulip:zulip.
* Bad input: each case runs the play against the enabled host and must fail,
  with its rule's message, leaving settings.py, zulip-secrets.conf, the vault
  file (bytes and mtime) and the stand-in's ledger (no manage.py call, no
  restart) as they were.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_host  # noqa: E402  pylint: disable=wrong-import-position
from standin_host import NO_VAULT_PASSWORD, REPO, StandinHost, testhost  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("reliability-host"),
              pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root")]

HOST = "reliability-badinput-1"
INVENTORY_HOST = "zulip.reliability"
REALMS = [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "", "client_name": "entra-id"}]
SAMPLE_EVERY = 0.15
MIN_SAMPLES = 20  # a run lasts seconds: fewer samples would mean the sampler did not really run
SECRETS_PATH = "/etc/zulip/zulip-secrets.conf"

# Runs on the host: every 0.15 s, every process's argv and environment; prints each blob not seen
# before (hex, so any byte survives) and, when stdin closes, how many samples it took.
HOST_SAMPLER = r"""
import os, select, sys, time
seen, samples = set(), 0
while not select.select([sys.stdin], [], [], %(every)s)[0]:
    samples += 1
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        for kind in ("cmdline", "environ"):
            try:
                with open("/proc/%%s/%%s" %% (pid, kind), "rb") as handle:
                    blob = handle.read()
            except OSError:
                continue
            if blob and blob not in seen:
                seen.add(blob)
                print("BLOB %%s %%s %%s" %% (pid, kind, blob.hex()), flush=True)
print("SAMPLES %%d" %% samples, flush=True)
""" % {"every": SAMPLE_EVERY}

# Runs on the host: the files (outside /proc, /sys, /dev and /usr) that hold any of the tokens read from stdin.
HOST_SCAN = r"""
import json, os, stat, sys
tokens = [t.encode() for t in json.load(sys.stdin)]
found = []
for top in ("/etc", "/tmp", "/var", "/root", "/home", "/run", "/opt", "/srv"):
    for folder, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size > 50 * 1024 * 1024:
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            hits = [i for i, t in enumerate(tokens) if t in data]
            if hits:
                found.append({"path": path, "mode": oct(stat.S_IMODE(info.st_mode)), "tokens": hits})
print(json.dumps(found))
"""

HOST_STATE = r"""
import hashlib, json, os
out = {}
for path in ("/etc/zulip/settings.py", "/etc/zulip/zulip-secrets.conf", "/var/lib/zulip-standin/ledger.jsonl"):
    info = os.stat(path)
    out[path] = [hashlib.sha256(open(path, "rb").read()).hexdigest(), info.st_mtime_ns, info.st_ino]
out["/etc/zulip"] = sorted(os.listdir("/etc/zulip"))
out["ledger"] = [json.loads(line) for line in open("/var/lib/zulip-standin/ledger.jsonl") if line.strip()]
s = os.stat("/etc/zulip/zulip-secrets.conf")
import pwd, grp
out["secrets_owner"] = [pwd.getpwuid(s.st_uid).pw_name, grp.getgrgid(s.st_gid).gr_name, oct(s.st_mode & 0o7777)]
print(json.dumps(out))
"""


@dataclass
class Host(StandinHost):
    enabled: bool = False

    def entries(self) -> dict[str, Any]:
        secret = VaultSecret(self.vault_pass.read_bytes().strip())
        data = yaml.safe_load(VaultLib([("default", secret)]).decrypt(self.vault_file.read_bytes()))
        return data["zulip_scim_tokens"][self.inventory_host]

    def all_tokens(self) -> dict[str, str]:
        """Every token the vault file knows, active and previous, by a label that is not the token."""
        found = {}
        for realm, entry in self.entries().items():
            found["realm %r active" % realm] = entry["token"]
            for index, item in enumerate(entry.get("previous") or []):
                found["realm %r previous[%d]" % (realm, index)] = item["token"]
        return found

    def state(self) -> dict[str, Any]:
        info = self.vault_file.stat()
        return {"host": json.loads(self.ssh("python3 -", HOST_STATE)),
                "vault": [self.vault_file.read_bytes(), info.st_mtime_ns, info.st_ino]}


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with standin_host.booted(HOST, INVENTORY_HOST, flavour="9.0", scim_realms=REALMS, extra_vars={"zulip_scim_backup": True},
                             work_prefix="zulip-reliability-", host_class=Host) as booted:
        yield booted


# ------------------------------------------------------------------ process samplers


@dataclass
class Samples:
    blobs: dict[bytes, str] = field(default_factory=dict)  # blob -> where it was seen (pid, kind)
    count: int = 0


class ControllerSampler(threading.Thread):
    """Every process of the controller, every SAMPLE_EVERY seconds, in a thread."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples = Samples()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            self.samples.count += 1
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    self._read(pid)

    def _read(self, pid: str) -> None:
        for kind in ("cmdline", "environ"):
            try:
                blob = Path("/proc", pid, kind).read_bytes()
            except OSError:
                continue
            if blob:
                self.samples.blobs.setdefault(blob, "controller pid %s %s" % (pid, kind))


class HostSampler:
    """HOST_SAMPLER over SSH; its output stays in this process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(testhost.ssh_argv(HOST) + ["python3 -u -c %s" % _quote(HOST_SAMPLER)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self) -> Samples:
        out, err = self.proc.communicate(b"", timeout=60)
        samples = Samples()
        for line in out.decode().splitlines():
            parts = line.split()
            if parts[:1] == ["BLOB"] and len(parts) == 4:
                samples.blobs.setdefault(bytes.fromhex(parts[3]), "host pid %s %s" % (parts[1], parts[2]))
            elif parts[:1] == ["SAMPLES"]:
                samples.count = int(parts[1])
        assert samples.count, "the host sampler reported nothing: %s" % err.decode()[-1000:]
        return samples


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def sampled_run(host: Host, *args: str, log: Path) -> tuple[subprocess.CompletedProcess[str], list[Samples]]:
    controller, on_host = ControllerSampler(), HostSampler()
    controller.start()
    time.sleep(0.5)  # both samplers are reading before the play starts
    try:
        proc = host.play("-vvv", "--diff", *args, env=standin_host.ansible_env(host.work, ANSIBLE_LOG_PATH=str(log)))
    finally:
        controller.stop.set()
        controller.join()
    return proc, [controller.samples, on_host.finish()]


# ------------------------------------------------------------------ where a token may be


def leaks_in_text(tokens: dict[str, str], **texts: str) -> list[str]:
    return ["%s in %s" % (label, where) for where, text in texts.items() for label, token in tokens.items()
            if token in text]


def leaks_in_samples(tokens: dict[str, str], samples: list[Samples]) -> list[str]:
    return ["%s in %s" % (label, seen) for sample in samples for blob, seen in sample.blobs.items()
            for label, token in tokens.items() if token.encode() in blob]


def is_test_host_disk(path: Path) -> bool:
    """The harness's folder of booted hosts (their overlay disks), wherever TESTHOST_CACHE_DIR puts it."""
    try:
        return path.resolve() == testhost.HOSTS
    except OSError:
        return False


def controller_files_with(tokens: dict[str, str], since: float, allowed: set[Path]) -> list[str]:
    """Files written on the controller during the test that hold a token (the vault file is encrypted)."""
    found = []
    home = Path(os.path.expanduser("~"))
    for top in (Path(tempfile.gettempdir()), Path("/var/tmp"), home / ".ansible", REPO / ".cache" / "gates"):
        for folder, dirs, files in os.walk(top):
            # Booted test hosts' disks (<testhost cache>/hosts/<name>/upper, merged; a checkout under /tmp has them)
            # is the host's own file system, scanned on the host, where zulip-secrets.conf may hold the token.
            dirs[:] = [d for d in dirs if not is_test_host_disk(Path(folder, d))]
            for name in files:
                path = Path(folder, name)
                try:
                    if path.is_symlink() or path.stat().st_mtime < since or path in allowed:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue
                found += ["%s in %s" % (label, path) for label, token in tokens.items() if token.encode() in data]
    return found


def host_files_with(host: Host, tokens: dict[str, str]) -> list[dict[str, Any]]:
    labels = list(tokens)
    hits = json.loads(host.ssh("python3 -c %s" % _quote(HOST_SCAN), json.dumps([tokens[k] for k in labels]),
                          timeout=300))
    return [dict(hit, tokens=[labels[i] for i in hit["tokens"]]) for hit in hits if hit["path"] != SECRETS_PATH]


def check_no_leak(host: Host, proc: subprocess.CompletedProcess[str], samples: list[Samples], log: Path,
                  tokens: dict[str, str], since: float) -> None:
    assert proc.returncode == 0, "the run failed:\n" + _censored(proc.stdout[-5000:] + proc.stderr[-3000:], tokens)
    for sample in samples:
        assert sample.count >= MIN_SAMPLES, "only %d process samples: the check would prove nothing" % sample.count
    assert log.is_file() and log.stat().st_size > 0, "ANSIBLE_LOG_PATH was not written"
    found = leaks_in_text(tokens, stdout=proc.stdout, stderr=proc.stderr, log=log.read_text())
    found += leaks_in_samples(tokens, samples)
    found += controller_files_with(tokens, since, {host.vault_file})
    found += ["%s in %s (mode %s)" % (", ".join(hit["tokens"]), hit["path"], hit["mode"]) for hit in host_files_with(host, tokens)]
    assert found == [], "a token leaked (the values are not shown):\n" + "\n".join(found)
    assert oct(host.vault_file.stat().st_mode & 0o7777) == "0o600"
    assert host.state()["host"]["secrets_owner"] == ["zulip", "zulip", "0o640"]


def _censored(text: str, tokens: dict[str, str]) -> str:
    for label, token in tokens.items():
        text = text.replace(token, "<%s>" % label)
    return text


@pytest.mark.reliability(area="leak", case="enable, then rotate, with -vvv --diff, ANSIBLE_LOG_PATH and backups",
                         outcome="no token (new or replaced) in output, log, process argv/environ samples on "
                                 "controller and host, or any file but the vault file and zulip-secrets.conf; "
                                 "modes 0600 and 0640 zulip:zulip")
def test_enable_and_rotate_leak_no_token(host: Host) -> None:
    started = time.time() - 1
    proc, samples = sampled_run(host, log=host.work / "enable.log")
    host.enabled = True
    check_no_leak(host, proc, samples, host.work / "enable.log", host.all_tokens(), started)
    print("enable: %d controller / %d host samples" % (samples[0].count, samples[1].count))

    before = host.all_tokens()
    proc, samples = sampled_run(host, "--tags", "rotate_scim_token", log=host.work / "rotate.log")
    tokens = host.all_tokens()
    assert set(before.values()) < set(tokens.values()), "the rotation made no new token"
    check_no_leak(host, proc, samples, host.work / "rotate.log", tokens, started)
    print("rotate: %d controller / %d host samples" % (samples[0].count, samples[1].count))


# ------------------------------------------------------------------ bad input on the enabled host


def bad(case: str, args: list[str], message: str) -> Any:
    return pytest.param(args, message, id=case, marks=pytest.mark.reliability(
        area="bad_input", case=case + " (a play on a test host)",
        outcome="the play fails with the rule's message; settings.py, zulip-secrets.conf, vault file and "
                "ledger unchanged, no restart"))


def realms_arg(*items: dict[str, Any]) -> list[str]:
    return ["-e", json.dumps({"zulip_scim_realms": list(items)})]


@pytest.mark.parametrize("args, message", [
    bad("-e zulip_scim_rotate_realms=acme", ["--tags", "rotate_scim_token", "-e", "zulip_scim_rotate_realms=acme"],
        "zulip_scim_rotate_realms must be a list of realm subdomains, not the string 'acme'"),
    bad("-e zulip_scim_disable_realms=acme", ["-e", "zulip_scim_disable_realms=acme"],
        "zulip_scim_disable_realms must be a list of realm subdomains, not the string 'acme'"),
    bad("turning off a realm the list does not have", ["-e", json.dumps({"zulip_scim_disable_realms": ["zeta"]})],
        "zulip_scim_disable_realms names zeta, not a realm listed in zulip_scim_realms"),
    bad("a rotate list naming a realm not enabled, in a run that does not rotate",
        ["-e", json.dumps({"zulip_scim_rotate_realms": ["zeta"]})],
        "zulip_scim_rotate_realms names zeta, not a realm enabled in zulip_scim_realms"),
    bad("subdomain with a trailing newline", realms_arg({"subdomain": "acme\n"}),
        "zulip_scim_realms[0].subdomain: 'acme\\\\n' is not a valid Zulip subdomain"),
    bad("client name with quotes and a newline", realms_arg({"subdomain": "acme", "client_name": 'x"\n"""'}),
        "zulip_scim_realms[0].client_name: "),
    bad("realm listed twice", realms_arg({"subdomain": "acme"}, {"subdomain": "acme", "client_name": "x"}),
        "zulip_scim_realms[1]: realm acme is listed twice"),
    bad("unknown realm key", realms_arg({"subdomain": "acme", "clientname": "okta"}),
        "zulip_scim_realms.clientname"),
    bad("a key Zulip 9.0 does not know", realms_arg({"subdomain": "acme", "custom_profile_field_map": {"a": "b"}}),
        "custom_profile_field_map needs Zulip 12.0 or later, but this server runs 9.0"),
])
def test_bad_input_fails_before_anything_changes(host: Host, args: list[str], message: str) -> None:
    if not host.enabled:  # run alone: enable first, so there is a vault file and a block to keep
        assert host.play().returncode == 0
        host.enabled = True
    before = host.state()
    started = time.monotonic()
    proc = host.play(*args)
    took = time.monotonic() - started
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert message in proc.stdout, proc.stdout[-3000:]
    after = host.state()
    assert after == before, "the failed play changed something"
    print("failed as it must in %.1f s" % took)


# ------------------------------------------------------------------ disabling names its realms; --check lists them

DISABLE = REPO / "playbooks" / "disable_scim.yml"
ROOT_LABEL = '"" (root domain)'


def files_and_restarts(state: dict[str, Any]) -> tuple[Any, ...]:
    """What a run that changes nothing leaves alone: the files (bytes, mtime, inode), the vault file, restarts."""
    on_host = state["host"]
    restarts = [event for event in on_host["ledger"] if event["event"] == "restart"]
    files = {path: value for path, value in on_host.items() if path.startswith("/etc/")}
    return files, state["vault"], restarts


@pytest.mark.reliability(
    area="bad_input", case="playbooks/disable_scim.yml without a realm list (a play on a test host)",
    outcome="the play fails naming the host's realms and how to name them; settings.py, zulip-secrets.conf, "
            "vault file and ledger unchanged, no restart; with --check and zulip_scim_disable_all_realms: true "
            "it lists, for the host, every realm it would turn off, and changes nothing")
def test_disable_needs_the_realms_named_and_check_mode_lists_them(host: Host) -> None:
    if not host.enabled:
        assert host.play().returncode == 0
        host.enabled = True
    before = host.state()
    proc = host.play(playbook=DISABLE)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "turning SCIM off needs the realms named, and none were for %s" % INVENTORY_HOST in proc.stdout
    assert host.state() == before, "the refused disable run changed something"

    proc = host.play("--check", "-e", json.dumps({"zulip_scim_disable_all_realms": True}), playbook=DISABLE)
    assert proc.returncode == 0, _censored(proc.stdout[-3000:], host.all_tokens())
    would = "Would turn off (SCIM_CONFIG entry, secret and 5.x client row removed, token retired): "
    lines = [line for line in proc.stdout.replace('\\"', '"').splitlines() if would in line]
    assert len(lines) == 1, proc.stdout[-3000:]
    assert sorted(lines[0].split(would, 1)[1].rstrip('"').split(", ")) == sorted(["acme", ROOT_LABEL]), lines[0]
    assert files_and_restarts(host.state()) == files_and_restarts(before), "--check changed something"
    assert not leaks_in_text(host.all_tokens(), stdout=proc.stdout, stderr=proc.stderr)


# ------------------------------------------------------------------ the connection sheet on request

SHEET = REPO / "playbooks" / "scim_connection_sheet.yml"


def test_the_connection_sheet_shows_the_realms_asked_for_and_changes_nothing(host: Host) -> None:
    if not host.enabled:
        assert host.play().returncode == 0
        host.enabled = True
    before = host.state()
    proc = host.play("-e", json.dumps({"zulip_scim_sheet_realms": ["acme"], "zulip_scim_sheet_file": False}),
                     playbook=SHEET)
    assert proc.returncode == 0, _censored(proc.stdout[-3000:], host.all_tokens())
    root = 'Realm \\"\\" (root domain)'  # as the debug task prints it, inside a JSON string
    assert "## Realm acme: Okta" in proc.stdout and root not in proc.stdout
    proc = host.play("-e", json.dumps({"zulip_scim_sheet_file": False}), playbook=SHEET)
    assert "## Realm acme: Okta" in proc.stdout and "## %s: Microsoft Entra ID" % root in proc.stdout
    assert not [label for label, token in host.all_tokens().items() if token in proc.stdout + proc.stderr]
    proc = host.play("-e", json.dumps({"zulip_scim_sheet_realms": ["zeta"]}), playbook=SHEET)
    assert proc.returncode != 0 and "zulip_scim_sheet_realms names zeta, not a realm listed in zulip_scim_realms" in proc.stdout
    assert host.state() == before


# ------------------------------------------------------------------ the token file without its secret


@pytest.mark.parametrize("secret, message", [
    pytest.param("none", "no vault secret: the SCIM token store", id="no vault secret", marks=pytest.mark.reliability(
        area="token_file", case="no vault secret (a play on a test host, a new realm asks for a token)",
        outcome="the play fails saying how to give the secret; no token generated, vault file and host unchanged")),
    pytest.param("wrong", "with the vault secrets given", id="wrong vault secret", marks=pytest.mark.reliability(
        area="token_file", case="wrong vault secret (a play on a test host, a new realm asks for a token)",
        outcome="the play fails saying to use the password it was encrypted with; no token generated, vault "
                "file and host unchanged")),
])
def test_a_token_file_that_cannot_be_read_stops_the_play(host: Host, secret: str, message: str) -> None:
    if not host.enabled:
        assert host.play().returncode == 0
        host.enabled = True
    wrong = host.work / "wrong-pass"
    wrong.write_text(secrets.token_urlsafe(24) + "\n")
    before = host.state()
    # beta has no token yet: a store that could be written would get a new one.
    proc = host.play(*realms_arg(*REALMS, {"subdomain": "beta", "client_name": "okta"}),
                     vault_pass=NO_VAULT_PASSWORD if secret == "none" else wrong)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert message in proc.stdout and "--vault-password-file" in proc.stdout, proc.stdout[-3000:]
    assert host.state() == before, "the failed play changed something"


# ------------------------------------------------------------------ a host whose running Zulip differs from its files

# Runs on the host: Zulip is restarted on a scim token for acme that nobody has, then the secrets file
# gets its bytes back (same inode, owner and mode) without a restart, as after a hand edit undone.
DRIFT = r"""
import re, subprocess
path = "/etc/zulip/zulip-secrets.conf"
kept = open(path, "rb").read()
with open(path, "wb") as handle:
    handle.write(re.sub(rb"(?m)^(scim_bearer_token_acme\s*=\s*).*$", rb"\1drifted-token-nobody-has-0123456789", kept))
subprocess.run(["runuser", "-u", "zulip", "--", "/home/zulip/deployments/current/scripts/restart-server"], check=True,
               capture_output=True)
with open(path, "wb") as handle:
    handle.write(kept)
"""
RESTART = "runuser -u zulip -- /home/zulip/deployments/current/scripts/restart-server >/dev/null"


@pytest.mark.reliability(
    area="fault", case="nothing to change, but the running Zulip serves another token than zulip-secrets.conf "
                       "(restarted on a hand edit, the file put back without a restart)",
    outcome="the no-change run fails naming the realm and the 401, says nothing was to change and nothing was "
            "restarted; files, vault file and ledger unchanged; after a restart the next run passes, restarting nothing")
def test_a_no_change_run_proves_what_the_server_runs(host: Host) -> None:
    if not host.enabled:
        assert host.play().returncode == 0
        host.enabled = True
    host.ssh("python3 -", DRIFT)
    before = host.state()
    proc = host.play()
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "SCIM check failed: realm acme: the stored token got HTTP 401, expected HTTP 200" in proc.stdout, proc.stdout[-3000:]
    assert "the running Zulip does not serve what they say" in proc.stdout and "nothing was restarted" in proc.stdout
    assert host.state() == before, "the failed no-change run changed something"
    assert not leaks_in_text(host.all_tokens(), stdout=proc.stdout, stderr=proc.stderr)

    host.ssh(RESTART)  # what the operator does: Zulip serves its files again
    restarts = len([e for e in host.state()["host"]["ledger"] if e["event"] == "restart"])
    proc = host.play()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len([e for e in host.state()["host"]["ledger"] if e["event"] == "restart"]) == restarts


# ------------------------------------------------------------------ takeover refused on a 9.0 host, nothing changed

# Runs on the host: appends a hand-written SCIM_CONFIG to settings.py (in place: inode, owner, mode
# kept) and prints the bytes the file had, hex, for putting them back.
APPEND_HAND = r"""
import sys
path = "/etc/zulip/settings.py"
kept = open(path, "rb").read()
with open(path, "ab") as handle:
    handle.write(sys.stdin.read().encode())
print(kept.hex())
"""
PUT_BACK = r"""
import sys
with open("/etc/zulip/settings.py", "wb") as handle:
    handle.write(bytes.fromhex(sys.stdin.read().strip()))
"""


def refused_takeover(case: str, hand: str, message: str) -> Any:
    return pytest.param(hand, message, id=case, marks=pytest.mark.reliability(
        area="bad_input", case="takeover of a hand-written SCIM_CONFIG on a 9.0 host: " + case,
        outcome="the play with zulip_scim_takeover: true fails naming the line and the cause; settings.py, "
                "zulip-secrets.conf, vault file and ledger unchanged, no restart"))


@pytest.mark.parametrize("hand, message", [
    refused_takeover("token from os.environ",
                     '\nimport os\nSCIM_CONFIG = {"acme": {"bearer_token": os.environ["SCIM_TOKEN"], '
                     '"scim_client_name": "okta"}}\n',
                     "the bearer_token of realm acme is neither a string nor get_secret"),
    refused_takeover("a realm the inventory does not list",
                     '\nSCIM_CONFIG = {"beta": {"bearer_token": "beta-hand-token-0123456789abcdef", '
                     '"scim_client_name": "okta"}}\n',
                     "realms beta are in the hand-written SCIM_CONFIG but not in zulip_scim_realms"),
])
def test_a_takeover_that_cannot_keep_every_token_changes_nothing(host: Host, hand: str, message: str) -> None:
    if not host.enabled:
        assert host.play().returncode == 0
        host.enabled = True
    kept = host.ssh("python3 -c " + _quote(APPEND_HAND), stdin=hand)
    try:
        before = host.state()
        proc = host.play("-e", "zulip_scim_takeover=true")
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert message in proc.stdout and "Nothing was changed." in proc.stdout, proc.stdout[-3000:]
        assert "/etc/zulip/settings.py:" in proc.stdout  # the file and the line
        assert host.state() == before, "the refused takeover changed something"
    finally:
        host.ssh("python3 -c " + _quote(PUT_BACK), stdin=kept)
