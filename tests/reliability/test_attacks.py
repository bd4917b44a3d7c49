"""The zulip user attacks the collection's root runs, on a REAL Zulip 9.2 host (marker testhost).

Threat model (docs/security.md): root and the controller are trusted; the zulip user
is not. It owns /etc/zulip (zulip:zulip 0755, no sticky bit), every file in it and the
deployment, so it can plant anything at any name there, at any moment. Nothing it
plants may turn a run of the collection into a root write, chown, read or delete of a
file it could not touch itself.

One booted real-Zulip host serves the 9.2 cases, one Zulip 5.6 stand-in the 5.x path
and the kept-copy cases (a planted kept copy makes each run restart Zulip: seconds on
the stand-in, a minute on the real host); one xdist group. Root's canaries: a 0600 file
in /root, a file in /etc/cron.d and root's /root/.bashrc (content digest, owner, mode,
kind), /dev/zero's owner and mode, and the names in /root and /etc/cron.d. They are
compared after every run; a touched canary is a finding (and is put back, so that the
next run is judged on its own).

Race runs (OPERATIONS, ENABLE_5_6): during each operation, tests/reliability/attacker.py
runs as zulip (`runuser -u zulip`) and
- plants at the backup names of both files for the next PIDs and seconds
  (``settings.py.<pid>.<date@time>~``, a spread of kinds across them), and at a spread
  of guessed temporary names (``.settings.py.XXXXXXXX.tmp``,
  ``..settings.py.zulip-scim-previous.XXXXXXXX.tmp``): PREPLANTED, each pattern with
  each kind of KINDS;
- replaces every name root creates in /etc/zulip during the run (kept copies, temporary
  files, backups, anything else) the moment it appears (inotify), the next kind in turn;
- in the runs marked `swap`: from root's first write on, swaps settings.py for a symlink
  to a canary and back in a tight loop (renameat2 RENAME_EXCHANGE) for 1.5 s.
Point cases (POINT_CASES, one playbook run of the role per case): settings.py,
zulip-secrets.conf, zulip.conf and the deployment's version.py (through the zulip-owned
``current`` link) are a symlink to a canary, a FIFO, a symlink to /dev/zero, a directory.
Kept-copy cases (KEPT_CASES): the four names of the kept copies hold a planted kind each
before a run.

Every run: 0 canaries touched; it converges, or fails within its time bound with a
clear message (the module's own, naming the file for a point case) and settings.py and
zulip-secrets.conf as before (root never renames a planted thing into their place, nor
deletes them for a planted marker); no root-owned entry appears in /etc/zulip; no file
there holds a canary's content; the attacker's decoy (what its hard links point at, the
kernel refusing links to root's files) is unchanged and no planted directory gets a file;
no root python grows past 1 GiB (a watchdog kills it: a read of /dev/zero); zulip's
programs (restart-server; manage.py on 5.6) ran as zulip; no token in the play's output.

ZULIP_OPS_ATTACK_HOST=standin runs the 9.2 cases against the Zulip stand-in instead
(quick, for development; the suite runs the real host). The figures go to
docs/reliability.md (the trial grid: the `grid` of each test's reliability mark, which
the test asserts from the attacker's report).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _extra in (HERE, REPO / "tests" / "testhost", REPO / "tests" / "standin",
               REPO / "tests" / "zulip_standin" / "files"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

import attacker  # noqa: E402  (tests/reliability/attacker.py: the names and kinds it plants)
from targets import multiplexed_ssh_argv, run_install_playbook, write_inventory  # noqa: E402
from test_restart_faults import FAULT_FILE, WRAPPER  # noqa: E402

VERSION = "9.2"
REALM = "acme"
ZULIP_SRC = Path(os.environ.get("ZULIP_SRC_DIR") or REPO.parent / "shared" / "zulip-src")
ON_STANDIN = os.environ.get("ZULIP_OPS_ATTACK_HOST") == "standin"
HOST_NAME = f"attack-{'standin' if ON_STANDIN else 'real-9-2'}-{os.getpid()}"
VAULT_PASSWORD = REPO / "molecule" / "_shared" / "vault-password"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
REAL_BOOT_TIMEOUT = 600.0

RUN_BOUND = 240.0  # seconds a race run may take (an undisturbed real-9.2 run with a restart: ~60 s)
CASE_BOUND = 60.0  # seconds a point or kept-copy case may take (each task is stopped after that)

SETTINGS = "/etc/zulip/settings.py"
SECRETS = "/etc/zulip/zulip-secrets.conf"
ZULIP_CONF = "/etc/zulip/zulip.conf"
VERSION_PY = "/home/zulip/deployments/current/version.py"
CONFIG = [SETTINGS, SECRETS, ZULIP_CONF, VERSION_PY]
CANARY_ROOT = "/root/zulip-ops-canary"
CANARY_CRON = "/etc/cron.d/zulip-ops-cron-canary"
CANARY_BASHRC = "/root/.bashrc"
CANARIES = [CANARY_ROOT, CANARY_CRON, CANARY_BASHRC]
ON_HOST_ATTACKER = "/var/tmp/zulip-ops-attacker.py"  # root-owned 0755: zulip runs it, cannot change it
ON_HOST_STATE = "/root/zulip-ops-attack-state.py"
RACE_DIR = "/var/tmp/zulip-ops-attack"  # the attacker's (zulip-owned)
WATCHDOG_LOG = "/root/zulip-ops-attack-watchdog.log"
SNAPSHOT_REQUEST = "/root/zulip-ops-attack-request.json"  # what to look at: never in a command line (the marker)
UID_LOG = "/var/tmp/zulip-ops-attack-uids"  # who ran restart-server (the wrapper appends `id -u`)
DEPLOY = "/home/zulip/deployments/current"

KINDS = attacker.KINDS
FILES = attacker.FILES
# Planted before and during every race run, each with every kind (attacker.Race).
PREPLANTED = [pattern.format(f=name) for name in FILES
              for pattern in (attacker.BACKUP, attacker.TEMP, attacker.KEPT_TEMP)]

# What a failed run may not say: a crash, a hang, a lost host. A clear failure is the module's own message.
# (A traceback quoted from restart-server's output inside the module's message is Zulip's, not a crash.)
UNCLEAR = ("MODULE FAILURE", "module_stderr", "Module result deserialization failed", "The task timed out",
           "Timed out after", "UNREACHABLE!", "An exception occurred during task execution", "MemoryError")


@dataclass(frozen=True)
class Operation:
    id: str
    label: str
    column: str  # its column in docs/reliability.md's trial grid
    playbook: str
    client_name: str  # the realm's client name in this run (a change rewrites settings.py)
    args: tuple[str, ...] = ()
    setup: str = ""  # "fresh": SCIM never enabled; "hand": a SCIM_CONFIG written by hand into settings.py
    fault: bool = False  # restart-server (zulip's) fails once: the collection must roll back
    converges: bool = True
    # settings.py swapped in a loop once root writes: a run that notices fails before its restart, so
    # the runs whose later steps (restart, rollback, takeover) are under attack here go without it
    swap: bool = False

    @property
    def trials(self) -> list[list[Any]]:
        """The trials of one run, each asserted from the attacker's report: [pattern, kind, 1]."""
        trials = [[pattern, kind, 1] for pattern in PREPLANTED for kind in KINDS]
        return trials + ([[attacker.SWAP, "symlink", 1]] if self.swap else [])


OPERATIONS = [
    Operation("enable-first", "enable, first run", "enable (first run)", "enable_scim.yml", "okta", setup="fresh"),
    # a rotation that also changes settings.py (the client name): the secrets and the settings written at once
    Operation("rotate", "rotate (--tags rotate_scim_token) with a change to settings.py", "rotate + settings change",
              "enable_scim.yml",
              "entra-id", args=("--tags", "rotate_scim_token"), swap=True),
    Operation("rollback", "forced rollback (a settings change; zulip's restart-server fails once)",
              "forced rollback", "enable_scim.yml", "onelogin", fault=True, converges=False),
    Operation("takeover", "takeover of a hand-written SCIM_CONFIG (takeover_scim.yml)", "takeover",
              "takeover_scim.yml",
              "jumpcloud", setup="hand"),
    Operation("disable", "disable (disable_scim.yml, realm acme)", "disable", "disable_scim.yml", "jumpcloud",
              args=("-e", json.dumps({"zulip_scim_disable_realms": [REALM]})), swap=True),
]

POINT_FILES = {"settings.py": SETTINGS, "zulip-secrets.conf": SECRETS, "zulip.conf": ZULIP_CONF,
               "version.py": VERSION_PY}
POINT_KINDS = ("symlink", "fifo", "devzero", "dir")
POINT_CASES = [{"id": f"point-{name}-{kind}", "pattern": f"{name} itself", "kind": kind, "name": name,
                "plant": ["point", path, kind], "unplant": ["unpoint", path]}
               for name, path in POINT_FILES.items() for kind in POINT_KINDS]
KEPT_NAMES = [".settings.py.zulip-scim-previous", ".zulip-secrets.conf.zulip-scim-previous",
              ".settings.py.zulip-scim-absent", ".zulip-secrets.conf.zulip-scim-absent"]
# A Latin square: in five runs every kept-copy name holds every kind once.
KEPT_CASES = [{"id": f"kept-{turn}", "plants": [[name, KINDS[(i + turn) % len(KINDS)]]
                                                for i, name in enumerate(KEPT_NAMES)]}
              for turn in range(len(KINDS))]
# (the point cases: enable with nothing to change; its preflight reads every one of these files, as every
# operation's does)
POINT_OPERATION = "point cases"
KEPT_OPERATION = "kept-copy cases, 5.6 stand-in"


def point_trials() -> list[list[Any]]:
    return [[case["pattern"], case["kind"], 1] for case in POINT_CASES]


def kept_trials() -> list[list[Any]]:
    planted = sorted((KEPT_NAMES.index(name), KINDS.index(kind))
                     for case in KEPT_CASES for name, kind in case["plants"])
    return [[f"kept copy {KEPT_NAMES[n]}" if "previous" in KEPT_NAMES[n] else f"absent marker {KEPT_NAMES[n]}",
             KINDS[k], 1] for n, k in planted]


def operation_mark(op: Operation) -> pytest.MarkDecorator:
    outcome = ("the run fails naming the cause (restart-server), within its time bound; " if op.fault else
               "the run converges, or fails with the module's own message and settings.py and zulip-secrets.conf "
               "as before; ")
    return pytest.mark.reliability(
        area="attack", op=op.column, grid=op.trials,
        case=f"{'' if '5.6' in op.label else 'real Zulip 9.2, '}{op.label}: the zulip user plants at every backup "
             f"and temporary name (each of {len(KINDS)} kinds) and replaces each name root creates as it appears"
             + (", and swaps settings.py for a symlink to a canary in a loop while the run writes" if op.swap else ""),
        outcome=outcome + "0 canaries touched (root's 0600 file, cron file, .bashrc, /dev/zero); no root-owned file, "
                          "canary content or token appears; restart-server ran as zulip")


# ---------------------------------------------------------------- the host


@dataclass
class Run:
    rc: int
    output: str
    seconds: float


@dataclass
class Findings:
    """What went wrong in a case, collected so that one run of the test reports all of it."""

    items: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        print("FINDING: " + what, flush=True)
        self.items.append(what)


class AttackHost:
    def __init__(self, testhost: Any, name: str, info: dict[str, Any], workdir: Path, real: bool):
        self.testhost = testhost
        self.name = name
        # reload-clients' 5 s for Tornado failed a real restart under load once (test_restart_faults.py);
        # Zulip 5.x has no such option, nor the stand-in's 5.6
        self.restart_options = ["--skip-client-reloads"] if real else []
        self.workdir = workdir
        self.inventory = workdir / "inventory.yml"
        self.token_file = workdir / "tokens.vault.yml"
        self.ssh_argv = multiplexed_ssh_argv(testhost.ssh_argv(name), workdir)
        self.hand_tokens: list[str] = []
        self.marker = "zulip-ops-canary-" + secrets.token_hex(8)
        self.plays = 0
        self.timings: list[tuple[str, float]] = []
        self.trials = 0
        write_inventory(self.inventory, [(name, info, {})])
        (workdir / "collections").symlink_to(REPO / "playbooks" / "collections")

    # -- transport
    def ssh(self, command: str, stdin: str = "", check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.ssh_argv, command], input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if check:
            assert proc.returncode == 0, f"{command[:200]!r}: rc {proc.returncode}: {proc.stderr[-2000:]}"
        return proc

    def as_zulip(self, *argv: str) -> str:
        env = "ATTACK_CANARIES=" + shlex.quote(json.dumps(CANARIES))
        return f"runuser -u zulip -- env {env} python3 {ON_HOST_ATTACKER} " + " ".join(shlex.quote(a) for a in argv)

    def vars_file(self, op_client: str, extra: dict[str, Any] | None = None) -> Path:
        group_vars = {"zulip_scim_token_file": str(self.token_file),
                      "zulip_scim_realms": [{"subdomain": REALM, "client_name": op_client}],
                      "zulip_scim_hosts": "all",
                      "zulip_scim_restart_options": self.restart_options,
                      **(extra or {})}
        path = self.workdir / "vars.yml"
        path.write_text(yaml.safe_dump(group_vars))
        return path

    def play(self, playbook: Path, client_name: str, *args: str, timeout: float = RUN_BOUND,
             env_extra: dict[str, str] | None = None, extra_vars: dict[str, Any] | None = None) -> Run:
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_TIMEOUT": "30",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.testhost.CP_DIR), **(env_extra or {})}
        env.pop("ANSIBLE_CONFIG", None)
        argv = [str(ANSIBLE_PLAYBOOK), "-v", "-i", str(self.inventory), "--vault-password-file", str(VAULT_PASSWORD),
                "-e", f"@{self.vars_file(client_name, extra_vars)}", str(playbook), *args]
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=self.workdir, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            output, _ = proc.communicate()
            output += f"\n[test] ansible-playbook did not end within {timeout:.0f} s and was killed\n"
        seconds = time.monotonic() - started
        self.plays += 1
        (self.workdir / f"play-{self.plays}-{playbook.stem}.log").write_text(output)
        return Run(proc.returncode if proc.returncode is not None else -9, output, seconds)

    # -- state
    def note(self, what: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {self.name}: {what}", flush=True)

    def snapshot(self) -> dict[str, Any]:
        return json.loads(self.ssh(f"python3 {ON_HOST_STATE} snapshot {SNAPSHOT_REQUEST}").stdout)

    def tokens(self) -> list[str]:
        """Every token the vault file holds (active, retired, previous), and the hand-written ones."""
        found = list(self.hand_tokens)
        if self.token_file.is_file():
            secret = VaultSecret(VAULT_PASSWORD.read_bytes().strip())
            data = yaml.safe_load(VaultLib([("default", secret)]).decrypt(self.token_file.read_bytes()))

            def walk(node: Any) -> None:
                if isinstance(node, dict):
                    for key, value in node.items():
                        if key == "token" and isinstance(value, str):
                            found.append(value)
                        else:
                            walk(value)
                elif isinstance(node, list):
                    for item in node:
                        walk(item)
            walk(data)
        return [t for t in found if len(t) >= 16]

    def watchdog_kills(self) -> list[str]:
        return self.ssh(f"cat {WATCHDOG_LOG} 2>/dev/null || true").stdout.splitlines()

    def uids(self) -> list[str]:
        return self.ssh(f"cat {UID_LOG} 2>/dev/null || true").stdout.split()

    # -- setting up and healing
    def stop_watchdog(self) -> None:
        self.ssh("test -s /root/zulip-ops-attack-watchdog.pid && kill $(cat /root/zulip-ops-attack-watchdog.pid); "
                 "rm -f /root/zulip-ops-attack-watchdog.pid", check=False)

    def install(self, shim_manage: bool = False) -> None:
        self.ssh(f"umask 077; cat > {SNAPSHOT_REQUEST}",
                 stdin=json.dumps({"canaries": CANARIES, "config": CONFIG, "marker": self.marker}))
        self.ssh(f"cat > {ON_HOST_ATTACKER} && chmod 0755 {ON_HOST_ATTACKER}", stdin=(HERE / "attacker.py").read_text())
        self.ssh(f"cat > {ON_HOST_STATE} && chmod 0700 {ON_HOST_STATE}", stdin=(HERE / "attack_state.py").read_text())
        marker = self.marker
        self.ssh(
            f"set -e; mkdir -p -m 0700 /root/.ansible/tmp;"  # Ansible's own, before the first snapshot
            f"printf '%s\\n' 'root only: {marker}' > {CANARY_ROOT}; chmod 0600 {CANARY_ROOT};"
            f"printf '# {marker}\\n' > {CANARY_CRON}; chmod 0644 {CANARY_CRON};"
            f"printf '# {marker}\\n' >> {CANARY_BASHRC};"
            f"mkdir -p /root/zulip-ops-attack-good; cp -p {CANARY_ROOT} {CANARY_CRON} {CANARY_BASHRC} "
            f"{SETTINGS} {SECRETS} /root/zulip-ops-attack-good/;"
            f"mkdir -p /root/zulip-ops-attack-fresh; cp -p {SETTINGS} {SECRETS} /root/zulip-ops-attack-fresh/;"
            f": > {UID_LOG}; chown zulip:zulip {UID_LOG}; chmod 0644 {UID_LOG};"
            f": > {WATCHDOG_LOG}; setsid nohup python3 {ON_HOST_STATE} watchdog {WATCHDOG_LOG} "
            f"</dev/null >/dev/null 2>&1 & echo $! > /root/zulip-ops-attack-watchdog.pid")
        # In front of zulip's restart-server: records who runs it, fails once on request (test_restart_faults.py).
        script = f"{DEPLOY}/scripts/restart-server"
        wrapper = WRAPPER.replace("\n", f"\nid -u >> {UID_LOG}\n", 1)
        self.ssh(f"test -e {script}.real || mv {script} {script}.real; cat > {script}; "
                 f"chown zulip:zulip {script}; chmod 0755 {script}", stdin=wrapper)
        if shim_manage:  # in front of manage.py (add_scim_client, list_realms): who runs it
            manage = f"{DEPLOY}/manage.py"
            shim = f'#!/bin/sh\nid -u >> {UID_LOG}\nexec python3 "$(dirname "$0")/manage.py.real" "$@"\n'
            self.ssh(f"test -e {manage}.real || mv {manage} {manage}.real; cat > {manage}; "
                     f"chown zulip:zulip {manage}; chmod 0755 {manage}", stdin=shim)

    def keep_before(self) -> None:
        """settings.py and zulip-secrets.conf as they are before a run, for heal()."""
        self.ssh(f"rm -rf /root/zulip-ops-attack-before && mkdir /root/zulip-ops-attack-before && "
                 f"cp -p {SETTINGS} {SECRETS} /root/zulip-ops-attack-before/")

    def serving(self) -> bool:
        probe = ("import ssl, urllib.request as u; r = u.Request('https://127.0.0.1/', headers={'Host': "
                 "'zulip.example.test'}); u.urlopen(r, context=ssl._create_unverified_context(), timeout=10)")
        return self.ssh(f"python3 -c {shlex.quote(probe)}", check=False).returncode == 0

    def ensure_serving(self) -> None:
        """Zulip serves (a run stopped by the attacker may have left it down): restart it as zulip if not."""
        if not self.serving():
            self.timings.append(("restart", 0.0))
            self.note("Zulip does not serve: restart-server")
            self.ssh(f"rm -f {FAULT_FILE}; timeout 240 runuser -u zulip -- {DEPLOY}/scripts/restart-server "
                     + " ".join(self.restart_options) + " </dev/null >/dev/null 2>&1", check=False, timeout=300)

    def heal(self, before: dict[str, Any], findings: Findings, what: str, failed: bool = False) -> None:
        """Put back what a finding changed (and a failed run's files), so that the next run is judged on its own."""
        after = self.snapshot()
        commands = []
        for path, state in after["canaries"].items():
            if state != before["canaries"][path]:
                findings.add(f"{what}: canary {path} touched: {before['canaries'][path]} -> {state}")
                name = os.path.basename(path)
                commands.append(f"rm -rf {path}; cp -p /root/zulip-ops-attack-good/{name} {path}")
        if after["devzero"] != before["devzero"]:
            findings.add(f"{what}: /dev/zero changed: {before['devzero']} -> {after['devzero']}")
            commands.append("chown root:root /dev/zero; chmod 0666 /dev/zero")
        for folder, names in after["folders"].items():
            new = sorted(set(names) - set(before["folders"][folder]))
            if new:
                findings.add(f"{what}: new names in {folder}: {new}")
                commands += [f"rm -rf {shlex.quote(os.path.join(folder, n))}" for n in new]
        for path in (SETTINGS, SECRETS):
            state = after["config"][path]
            name = os.path.basename(path)
            if state.get("kind") != "file" or (state.get("uid"), state.get("gid")) != (before["config"][path]["uid"],
                                                                                       before["config"][path]["gid"]):
                # the attacker never leaves one of these two as anything else: root put it there
                findings.add(f"{what}: {path} is no longer zulip's regular file: {state}")
                commands.append(f"rm -rf {path}; cp -p /root/zulip-ops-attack-before/{name} {path}")
            elif failed and path in same_configuration(before, after):
                commands.append(f"rm -rf {path}; cp -p /root/zulip-ops-attack-before/{name} {path}")
        if commands:
            self.ssh("; ".join(commands))

    def reset_fresh(self) -> None:
        """SCIM never enabled: the installed files, no token file."""
        self.ssh(f"rm -f {SETTINGS} {SECRETS}; cp -p /root/zulip-ops-attack-fresh/settings.py {SETTINGS}; "
                 f"cp -p /root/zulip-ops-attack-fresh/zulip-secrets.conf {SECRETS}; rm -f /etc/zulip/*~")
        self.token_file.unlink(missing_ok=True)

    def hand_configure(self, client_name: str) -> None:
        """A SCIM_CONFIG written into settings.py by hand, its token inline; no managed block, no token file."""
        token = secrets.token_urlsafe(32)
        self.hand_tokens.append(token)
        self.reset_fresh()
        block = (f"\nSCIM_CONFIG = {{\n    {REALM!r}: {{\n        \"bearer_token\": {token!r},\n"
                 f"        \"scim_client_name\": {client_name!r},\n        \"name_formatted_included\": False,\n"
                 f"    }},\n}}\n")
        self.ssh(f"cat >> {SETTINGS}", stdin=block)

    # -- the attacker
    def start_race(self, swap: bool) -> None:
        command = self.as_zulip("race", RACE_DIR, *([] if swap else ["--no-swap"]))
        self.ssh(f"rm -rf {RACE_DIR}; mkdir {RACE_DIR}; chown zulip:zulip {RACE_DIR}; "
                 f"printf '%s' {shlex.quote(json.dumps(CANARIES))} > {RACE_DIR}/canaries.json; "
                 f"setsid nohup {command} </dev/null >{RACE_DIR}/log 2>&1 & "
                 f"for i in $(seq 100); do test -e {RACE_DIR}/ready && exit 0; sleep 0.1; done; "
                 f"cat {RACE_DIR}/log; exit 1")

    def stop_race(self) -> dict[str, Any] | None:
        out = self.ssh(f"touch {RACE_DIR}/stop; for i in $(seq 300); do test -e {RACE_DIR}/report.json && "
                       f"exec cat {RACE_DIR}/report.json; sleep 0.1; done; echo; cat {RACE_DIR}/log; exit 1",
                       check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)


def clear_failure(output: str) -> str:
    """'' when a failed run says why in its own words, else what is wrong with it."""
    for word in UNCLEAR:
        if word in output:
            return f"unclear failure ({word!r})"
    if not re.search(r"^(fatal|failed): \[", output, re.M):
        return "no failed task"
    return ""


def common_checks(host: AttackHost, what: str, before: dict[str, Any], run_output: str, findings: Findings,
                  kills_before: int, uids_before: int) -> dict[str, Any]:
    """What holds after every run, whatever its result; returns the state after."""
    after = host.snapshot()
    for name, entry in after["etc"].items():
        if entry["uid"] == 0 and before["etc"].get(name, {}).get("uid") != 0:
            findings.add(f"{what}: a root-owned {entry['kind']} /etc/zulip/{name} appeared")
    if after["leaks"]:
        findings.add(f"{what}: files in /etc/zulip hold a canary's content: {after['leaks']}")
    if host.marker in run_output:
        findings.add(f"{what}: a canary's content is in the play's output")
    decoy = after["etc"].get(os.path.relpath(attacker.DECOY, "/etc/zulip"))
    if decoy is not None and decoy["uid"] != before_uid_of_zulip(before):
        findings.add(f"{what}: the attacker's decoy (hard-link target) changed owner: {decoy}")
    kills = host.watchdog_kills()
    if len(kills) > kills_before:
        findings.add(f"{what}: a root python read without bound and was killed at 1 GiB: {kills[kills_before:]}")
    zulip_uid = str(before["config"][SETTINGS].get("uid"))
    uids = host.uids()
    if [u for u in uids[uids_before:] if u != zulip_uid]:
        findings.add(f"{what}: zulip's programs (restart-server, manage.py) ran as uid "
                     f"{sorted(set(uids[uids_before:]))}")
    leaked = [t for t in host.tokens() if t in run_output]
    if leaked:
        findings.add(f"{what}: {len(leaked)} token(s) in the play's output")
    return after


def before_uid_of_zulip(state: dict[str, Any]) -> int:
    return int(state["config"][SETTINGS].get("uid", -1))


def same_configuration(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = ("kind", "uid", "gid", "mode", "sha256")
    return [path for path in (SETTINGS, SECRETS)
            if {k: before["config"][path].get(k) for k in keys} != {k: after["config"][path].get(k) for k in keys}]


# ---------------------------------------------------------------- fixtures


@contextlib.contextmanager
def booted(name: str, standin_flavour: str = "", shim_manage: bool = False) -> Iterator[AttackHost]:
    """A host with the attacker's tools and root's canaries: the real Zulip 9.2 image, or a stand-in flavour."""
    if os.geteuid() != 0:
        pytest.skip("test hosts need root")
    import testhost  # tests/testhost/testhost.py

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="zulip-attack-"))
    host = None
    try:
        if standin_flavour:
            info = testhost.up([name])[0]
            standin = workdir / "standin.json"
            write_inventory(standin, [(name, info, {"zulip_standin_flavour": standin_flavour,
                                                    "zulip_standin_manage_delay": 0.3,
                                                    "zulip_standin_restart_delay": 0.3})])
            installed = run_install_playbook(standin)
            assert installed.returncode == 0, installed.stdout[-3000:]
        else:
            if not (ZULIP_SRC / f"zulip-server-{VERSION}.tar.gz").is_file():
                pytest.skip(f"no real Zulip {VERSION} source in {ZULIP_SRC}")
            info = testhost.up([name], timeout=REAL_BOOT_TIMEOUT, image=f"zulip-{VERSION}")[0]
        host = AttackHost(testhost, name, info, workdir, real=not standin_flavour)
        if not standin_flavour:  # the stand-in's installer waited for its server; Zulip's nginx may still be starting
            host.ssh("for i in $(seq 150); do curl -skf -o /dev/null https://127.0.0.1/ -H 'Host: zulip.example.test' "
                     "&& exit 0; sleep 2; done; exit 1")
        host.install(shim_manage=shim_manage)
        host.timings.append(("boot", time.monotonic() - started))
        yield host
    finally:
        if host is not None:
            print(f"{name} timings: " + ", ".join(f"{what} {secs:.1f} s" for what, secs in host.timings), flush=True)
            host.stop_watchdog()
        if not os.environ.get("ZULIP_OPS_KEEP_HOST"):
            testhost.down([name])
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def host() -> Iterator[AttackHost]:
    with booted(HOST_NAME, "9.0" if ON_STANDIN else "") as booted_host:
        yield booted_host


# ---------------------------------------------------------------- race runs


def operation_params(ops: list[Operation]) -> list[Any]:
    return [pytest.param(op, id=op.id, marks=operation_mark(op)) for op in ops]


@pytest.mark.testhost
@pytest.mark.xdist_group("attack-host")
@pytest.mark.parametrize("op", operation_params(OPERATIONS[:-1]))
def test_an_attacker_racing_a_run_touches_no_canary(host: AttackHost, op: Operation) -> None:
    race(host, op)


def race(host: AttackHost, op: Operation) -> None:
    host.note(f"race {op.id}")
    findings = Findings()
    if op.setup == "fresh":
        host.reset_fresh()
    elif op.setup == "hand":
        host.hand_configure(op.client_name)
    host.ensure_serving()
    if op.fault:
        host.ssh(f"echo check > {FAULT_FILE}; chown zulip:zulip {FAULT_FILE}")
    host.keep_before()
    before = host.snapshot()
    kills, uids = len(host.watchdog_kills()), len(host.uids())
    host.start_race(op.swap)
    run = host.play(REPO / "playbooks" / op.playbook, op.client_name, *op.args)
    host.note(f"{op.id}: play ended")
    report = host.stop_race()
    host.note(f"{op.id}: attacker stopped")
    fault_left = host.ssh(f"test -e {FAULT_FILE} && rm -f {FAULT_FILE}", check=False).returncode == 0
    host.timings.append((op.id, run.seconds))
    what = f"{op.id} (rc {run.rc}, {run.seconds:.0f} s)"
    print(f"{what}: attacker report: " + json.dumps(report)[:3000], flush=True)
    after = common_checks(host, what, before, run.output, findings, kills, uids)
    if report is None:
        findings.add(f"{what}: the attacker did not report")
    else:
        for pattern, kind, _n in op.trials:
            if not report["counts"].get(pattern, {}).get(kind):
                findings.add(f"{what}: nothing planted for {pattern} / {kind}")
        if report["filled_dirs"] or not report["decoy_intact"]:
            findings.add(f"{what}: root wrote through a plant: filled directories {report['filled_dirs']}, "
                         f"decoy intact: {report['decoy_intact']}")
    if run.seconds >= RUN_BOUND:
        findings.add(f"{what}: did not end within {RUN_BOUND:.0f} s")
    if run.rc != 0:
        problem = clear_failure(run.output)
        if problem:
            findings.add(f"{what}: {problem}: {tail(run.output)}")
        changed = same_configuration(before, after)
        if changed and not op.fault:
            findings.add(f"{what}: failed, but changed " + "; ".join(
                f"{path}: {before['config'][path]} -> {after['config'][path]}" for path in changed))
    elif not op.converges:
        findings.add(f"{what}: restart-server failed, yet the run passed")
    if op.fault and fault_left:
        findings.add(f"{what}: the run never reached restart-server, so nothing was rolled back: {tail(run.output)}")
    elif op.fault and "restart-server failed" not in run.output:
        findings.add(f"{what}: the forced rollback does not name the failed restart: {tail(run.output)}")
    host.heal(before, findings, what, failed=run.rc != 0)
    host.note(f"{op.id}: checked")
    assert not findings.items, "\n".join(findings.items)


def tail(output: str, lines: int = 25) -> str:
    return "\n".join(output.splitlines()[-lines:])


# ---------------------------------------------------------------- point and kept-copy cases

# One ansible-playbook run for all cases (a process start and a vault decryption less per case): each case
# plants (as zulip), runs the collection's role as enable_scim.yml does, and puts the plant back. Every task
# is stopped after CASE_BOUND seconds (ANSIBLE_TASK_TIMEOUT), so a hang shows as a timed-out case.
CASES_PLAYBOOK = """\
- name: Attack cases (tests/reliability/test_attacks.py)
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Run each case
      ansible.builtin.include_tasks: attack_case.yml
      loop: "{{ attack_cases }}"
      loop_control:
        loop_var: attack_case
        label: "{{ attack_case.id }}"

    - name: Hand the results to the test
      ansible.builtin.copy:
        content: "{{ attack_results | default([]) | to_json }}"
        dest: "{{ attack_results_file }}"
        mode: "0600"
      delegate_to: localhost
      become: false
"""

CASE_TASKS = """\
- name: Case
  block:
    - name: Plant
      ansible.builtin.shell: "{{ attack_case.plant_command }}"
      changed_when: false
      register: attack_plant
      timeout: 300  # the test's own tasks are not the ones bounded by ANSIBLE_TASK_TIMEOUT

    - name: Start the clock
      ansible.builtin.set_fact:
        attack_started: "{{ lookup('pipe', 'date +%s.%N') }}"
        attack_outcome: {failed: false, msg: "", task: ""}

    - name: The collection's role, as enable_scim.yml runs it
      ansible.builtin.include_role:
        name: zulip_ops.zulip.scim
  rescue:
    - name: Note the failure
      ansible.builtin.set_fact:
        attack_started: "{{ attack_started | default(lookup('pipe', 'date +%s.%N')) }}"
        attack_outcome:
          failed: true
          msg: "{{ ('(the attacker could not plant) ' if attack_plant.rc | default(0) != 0 else '')
                   + (ansible_failed_result.msg | default('') | string) }}"
          task: "{{ ansible_failed_task.name | default('') }}"
  always:
    - name: Take the plant away, look at the host, and put back what the case changed
      ansible.builtin.shell: "{{ attack_case.unplant_command }}"
      register: attack_after
      changed_when: false
      ignore_errors: true  # the test reports a case without its state; the other cases still run
      timeout: 300

    - name: Record the case
      ansible.builtin.set_fact:
        attack_results: "{{ attack_results | default([]) + [attack_outcome | combine({'id': attack_case.id,
          'seconds': (lookup('pipe', 'date +%s.%N') | float) - (attack_started | float),
          'after': attack_after.stdout_lines | default([])})] }}"
"""

# After a case, as root, once its state is recorded: settings.py and zulip-secrets.conf as before the
# cases (never read through a link, nor a FIFO), no kept copy left, Zulip restarted if they were put back.
CASE_HEAL = """
put_back=0
for f in settings.py zulip-secrets.conf; do
  if [ -L /etc/zulip/$f ] || [ ! -f /etc/zulip/$f ] || ! cmp -s /root/zulip-ops-attack-before/$f /etc/zulip/$f; then
    rm -rf /etc/zulip/$f; cp -p /root/zulip-ops-attack-before/$f /etc/zulip/$f; put_back=1
  fi
done
rm -rf /etc/zulip/.settings.py.zulip-scim-* /etc/zulip/.zulip-secrets.conf.zulip-scim-*
if [ $put_back = 1 ]; then
  rm -f {fault}; runuser -u zulip -- {deploy}/scripts/restart-server {options} >/dev/null 2>&1
fi
true
"""


def case_commands(host: AttackHost, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the cases playbook runs for each case: plant (as zulip); take away, record, heal (CASE_HEAL)."""
    snapshot = f"python3 {ON_HOST_STATE} snapshot {SNAPSHOT_REQUEST}"
    commands = []
    for case in cases:
        if "plants" in case:  # kept-copy names
            plant = host.as_zulip("plant", *[item for pair in case["plants"] for item in pair])
            unplant = host.as_zulip("unplant", *[name for name, _kind in case["plants"]])
        else:
            plant, unplant = host.as_zulip(*case["plant"]), host.as_zulip(*case["unplant"])
        commands.append({"id": case["id"], "plant_command": plant,
                         "unplant_command": unplant + "\n" + snapshot + CASE_HEAL.format(
                             fault=FAULT_FILE, deploy=DEPLOY, options=" ".join(host.restart_options))})
    return commands


def run_cases(host: AttackHost, cases: list[dict[str, Any]], what: str) -> None:
    """Each case in one playbook run (CASES_PLAYBOOK), on a host where enabling has nothing to change."""
    findings = Findings()
    host.note(f"{what}: start")
    host.ensure_serving()
    host.note(f"{what}: serving")
    # enable with what the host has: nothing to change, so each case runs the preflight (and proves the token)
    converge = host.play(REPO / "playbooks" / "enable_scim.yml", host_client_name(host))
    if converge.rc != 0:  # an earlier run stopped by the attacker may have left a hand-written SCIM_CONFIG
        host.play(REPO / "playbooks" / "takeover_scim.yml", host_client_name(host))
        converge = host.play(REPO / "playbooks" / "enable_scim.yml", host_client_name(host))
    host.timings.append((f"converge before the {what}", converge.seconds))
    assert converge.rc == 0, tail(converge.output, 60)
    (host.workdir / "attack_cases.yml").write_text(CASES_PLAYBOOK)
    (host.workdir / "attack_case.yml").write_text(CASE_TASKS)
    results_file = host.workdir / "attack-results.json"
    results_file.unlink(missing_ok=True)
    host.keep_before()  # CASE_HEAL and heal() put these back if a case changed them
    before = host.snapshot()
    kills, uids = len(host.watchdog_kills()), len(host.uids())
    run = host.play(host.workdir / "attack_cases.yml", host_client_name(host),
                    timeout=len(cases) * (CASE_BOUND + 60),
                    env_extra={"ANSIBLE_TASK_TIMEOUT": str(int(CASE_BOUND))},
                    extra_vars={"attack_cases": case_commands(host, cases), "attack_results_file": str(results_file)})
    host.timings.append((f"{len(cases)} {what}", run.seconds))
    common_checks(host, what, before, run.output, findings, kills, uids)
    if not results_file.is_file():
        findings.add(f"the {what} did not all run (rc {run.rc}): {tail(run.output, 60)}")
    results = {r["id"]: r for r in json.loads(results_file.read_text())} if results_file.is_file() else {}
    previous = before
    for case in cases:
        result = results.get(case["id"])
        if result is None:
            findings.add(f"{case['id']}: did not run")
            continue
        label = f"{case['id']} ({'failed' if result['failed'] else 'passed'}, {result['seconds']:.1f} s)"
        print(f"{label}: {result['msg'][:300]}", flush=True)
        lines = [json.loads(line) for line in result["after"] if line.startswith("{")]
        unplanted = next((line for line in lines if "filled_dirs" in line), None)
        state = next((line for line in lines if "canaries" in line), None)
        if unplanted is None or state is None:
            findings.add(f"{label}: no state after the case: {result['after']}")
            continue
        for path, canary in state["canaries"].items():
            if canary != previous["canaries"][path]:
                findings.add(f"{label}: canary {path} touched: {previous['canaries'][path]} -> {canary}")
        if state["devzero"] != previous["devzero"]:
            findings.add(f"{label}: /dev/zero changed: {previous['devzero']} -> {state['devzero']}")
        if unplanted["filled_dirs"] or not unplanted["decoy_intact"]:
            findings.add(f"{label}: root wrote through a plant: {unplanted}")
        changed = same_configuration(before, state)  # every case starts from these files (CASE_HEAL)
        if changed:
            findings.add(f"{label}: changed " + "; ".join(
                f"{path}: {before['config'][path]} -> {state['config'][path]}" for path in changed))
        previous = state
        if result["seconds"] >= CASE_BOUND:
            findings.add(f"{label}: did not end within {CASE_BOUND:.0f} s")
        message = result["msg"]
        if result["failed"] and (not message or any(word in message for word in UNCLEAR)):
            findings.add(f"{label}: unclear failure: {message[:500]!r}")
        if "name" in case:  # a pointed file: the run must stop, naming it
            if not result["failed"]:
                findings.add(f"{label}: the run went on with {case['name']} pointed at a {case['kind']}")
            elif case["name"] not in message:
                findings.add(f"{label}: the message does not name {case['name']}: {message[:500]!r}")
    host.heal(before, findings, what, failed=True)
    assert not findings.items, "\n".join(findings.items)


@pytest.mark.testhost
@pytest.mark.xdist_group("attack-host")
@pytest.mark.reliability(
    area="attack", op=POINT_OPERATION, grid=point_trials(),
    case=f"real Zulip 9.2: settings.py, zulip-secrets.conf, zulip.conf and the deployment's version.py (through the "
         f"zulip-owned current link) are each a symlink to a canary, a FIFO, a symlink to /dev/zero, a directory "
         f"({len(POINT_CASES)} runs)",
    outcome=f"the run fails within {CASE_BOUND:.0f} s with the module's message naming the file; settings.py and "
            f"zulip-secrets.conf as before; nothing read through the link (no canary content in any output); "
            f"0 canaries touched, no root python read past 1 GiB")
def test_pointed_files_end_the_run_clearly_and_touch_no_canary(host: AttackHost) -> None:
    run_cases(host, POINT_CASES, "point cases")


def host_client_name(host: AttackHost) -> str:
    """The client name settings.py has now (the last race run's), so that enabling changes nothing."""
    text = host.ssh(f"cat {SETTINGS}").stdout
    found = re.findall(r"[\"']scim_client_name[\"']\s*:\s*[\"']([^\"']+)[\"']", text)
    return found[-1] if found else "okta"


# Disabling last: the cases above run on the enabled realm.
@pytest.mark.testhost
@pytest.mark.xdist_group("attack-host")
@pytest.mark.parametrize("op", operation_params(OPERATIONS[-1:]))
def test_an_attacker_racing_the_disabling_touches_no_canary(host: AttackHost, op: Operation) -> None:
    race(host, op)


# ---------------------------------------------------------------- Zulip 5.6: add_scim_client

ENABLE_5_6 = Operation("enable-5.6", "enable on a Zulip 5.6 stand-in (add_scim_client through manage.py)",
                       "enable, 5.6 stand-in", "enable_scim.yml", "okta", setup="fresh", swap=True)


@pytest.fixture(scope="module")
def host_5_6() -> Iterator[AttackHost]:
    with booted(f"attack-standin-5-6-{os.getpid()}", "5.6", shim_manage=True) as booted_host:
        yield booted_host


@pytest.mark.testhost
@pytest.mark.xdist_group("attack-host")
@pytest.mark.parametrize("op", operation_params([ENABLE_5_6]))
def test_an_attacker_racing_add_scim_client_on_5_6_touches_no_canary(host_5_6: AttackHost, op: Operation) -> None:
    # The same race as on 9.2, on the 5.x path: the SCIM client row (manage.py add_scim_client, as zulip);
    # every manage.py and restart-server call is logged with the uid it ran as (never root).
    race(host_5_6, op)
    assert len(host_5_6.uids()) > 0, "manage.py never ran: the 5.x path was not taken"


@pytest.mark.testhost
@pytest.mark.xdist_group("attack-host")
@pytest.mark.reliability(
    area="attack", op=KEPT_OPERATION, grid=kept_trials(),
    case=f"Zulip 5.6 stand-in: the four names of the kept copies (.settings.py.zulip-scim-previous, "
         f"...-absent, the same for zulip-secrets.conf) hold a planted kind each before a run ({len(KEPT_CASES)} runs, "
         f"every name with every kind; a kept copy makes a run restart and check, cheap on the stand-in)",
    outcome="the run converges or fails with the module's message; settings.py and zulip-secrets.conf as before "
            "(a planted marker never makes root delete or replace them); 0 canaries touched")
def test_planted_kept_copies_touch_no_canary_and_change_nothing(host_5_6: AttackHost) -> None:
    run_cases(host_5_6, KEPT_CASES, "kept-copy cases")
