"""Fleet benchmark: the collection against an empty play and a naive playbook (issue 11).

    bash bench/run.sh [--n 1,4,8,16] [--repeat 3] [--keep]

For each N: boots N stand-in test hosts (tests/testhost/testhost.py, names bench-<N>-<i>),
Zulip 5.6 / 9.0 / 11.2 in turn, three realms each (acme, beta, root domain), and runs
(a) floor.yml, (b) naive.yml, (c) playbooks/enable_scim.yml: first run, no-change run,
rotation run (--tags rotate_scim_token). Each is run --repeat times (a first run on a
freshly reset stand-in and an empty token file each time); the table shows the median
wall time, module executions per host (callback_plugins/count_modules.py), manage.py
calls, psql calls and restarts per host (the stand-ins' ledgers) and the peak RSS of the
controller's process tree. bench/results/<N>.json keeps each N; the table (results.md)
and the plots are made from every JSON there, so Ns may be run one command at a time.
The hosts are taken down at the end (only those of this benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import report  # bench/report.py, beside this file

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
PYTHON = REPO / ".venv" / "bin" / "python"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
TESTHOST = REPO / "tests" / "testhost" / "testhost.py"
INSTALL = REPO / "tests" / "zulip_standin" / "install.yml"
VAULT_PASSWORD = REPO / "molecule" / "_shared" / "vault-password"
FLAVOURS = ("5.6", "9.0", "11.2")
REALMS = [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "beta", "client_name": "okta"},
          {"subdomain": "", "client_name": "entra-id", "name_formatted_included": True}]
LEDGER = "/var/lib/zulip-standin/ledger.jsonl"
SSH_ARGS = "-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
CASES = ("floor", "naive", "first", "nochange", "rotate")
LABELS = {"floor": "(a) empty play (floor)", "naive": "(b) naive playbook", "first": "(c) collection, first run",
          "nochange": "(c) collection, no-change run", "rotate": "(c) collection, rotation run"}


# ---------------------------------------------------------------- an IdP's API that only counts

class IdpListener:
    """A loopback port that accepts connections, counts them and closes them: the API of the IdP connector
    the no-change run has configured. No IdP call may reach it (a run with nothing to change calls none);
    one that did would also fail the run."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.count = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.count += 1
            connection.close()

    def role_vars(self, realms: list[dict[str, Any]]) -> dict[str, Any]:
        """``realms`` with the root realm's Entra ID automated, and the connector pointing here."""
        url = "https://127.0.0.1:%d" % self.server.getsockname()[1]
        realms = [dict(r, idp_settings={"service_principal_id": "4c1e2a9b-7f3d-4e6a-b8c5-2d9f0e1a3b7c"})
                  if r["subdomain"] == "" else r for r in realms]
        return {"zulip_scim_realms": realms, "zulip_scim_idp_connections": {"entra_id": {
            "tenant_id": "7d3b4f3e-2c55-4f0a-9a53-6b1f0c2d9e11", "client_id": "0f7a6c2e-91b4-4c7e-8d55-3e2b1a9c4d70",
            # BENCH ONLY: a credential no IdP has, for an API that only counts connections.
            "client_secret": "bench-only-" + secrets.token_urlsafe(16), "authority": url, "graph_url": url}}}

    def __enter__(self) -> "IdpListener":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.thread.join()
        self.server.close()


# ---------------------------------------------------------------- the fleet

def boot(names: list[str]) -> list[dict[str, Any]]:
    out = subprocess.run([str(PYTHON), str(TESTHOST), "up", "--timeout", "300", *names],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def down(names: list[str]) -> None:
    subprocess.run([str(PYTHON), str(TESTHOST), "down", *names], check=False, capture_output=True)


def inventory(hosts: list[dict[str, Any]], work: Path, forks_note: str = "") -> Path:
    """One inventory for every play: group zulip, the stand-in's flavour per host."""
    entries = {}
    for index, host in enumerate(hosts):
        entries[host["name"]] = {
            "ansible_host": host["address"], "ansible_user": host["user"],
            "ansible_ssh_private_key_file": host["identity_file"], "ansible_ssh_common_args": SSH_ARGS,
            "ansible_python_interpreter": "/usr/bin/python3",
            "zulip_standin_flavour": FLAVOURS[index % len(FLAVOURS)],
        }
    data = {"all": {"vars": {"zulip_scim_realms": REALMS, "zulip_scim_token_file": str(work / "tokens.vault.yml")},
                    "children": {"zulip": {"hosts": entries}}}}
    path = work / "inventory.json"
    path.write_text(json.dumps(data))
    return path


def environment(count_file: Path) -> dict[str, str]:
    """What an operator is advised to set (docs/fleets.md): pipelining; the counting callback."""
    return {**os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "playbooks" / "collections"),
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": "/run/zulip-testhost/cp",
            "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "count_modules",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(VAULT_PASSWORD),
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ZULIP_BENCH_COUNT_FILE": str(count_file)}


# ---------------------------------------------------------------- measuring one run

def tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (the controller's forks), in KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def run_play(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    """Wall time and peak controller RSS (KiB) of one ansible-playbook run; fails loudly."""
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        peak = [0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_kb(proc.pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        sampler.join()
    seconds = time.monotonic() - started
    if rc != 0:
        raise SystemExit("benchmark run failed (rc=%d): %s; see %s" % (rc, " ".join(argv[1:]), log))
    return seconds, peak[0]


def load() -> list[float]:
    """The machine's load average (1, 5 and 15 minutes): how busy the shared machine was around a run."""
    return [round(value, 2) for value in os.getloadavg()]


def ledger_lengths(hosts: list[dict[str, Any]]) -> dict[str, int]:
    return {h["name"]: len(read_ledger(h)) for h in hosts}


def read_ledger(host: dict[str, Any]) -> list[dict[str, Any]]:
    argv = ["ssh", *SSH_ARGS.split(), "-i", host["identity_file"], "%s@%s" % (host["user"], host["address"]),
            "cat", LEDGER]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ledger_since(hosts: list[dict[str, Any]], before: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per host: manage.py calls made by the play (not restart-server's own check), psql calls, restarts."""
    counts = {}
    for host in hosts:
        events = read_ledger(host)[before[host["name"]]:]
        restarts = [e for e in events if e["event"] == "restart"]
        checks = sum(1 for e in events if e["event"] == "manage" and e["argv"][:1] == ["check"])
        # From 6.0 restart-server runs `manage.py check` itself: part of the restart, not a call of the play.
        own_checks = min(checks, len(restarts)) if restarts and not hosts_is_5x(host) else 0
        counts[host["name"]] = {
            "manage": sum(1 for e in events if e["event"] == "manage") - own_checks,
            "psql": sum(1 for e in events if e["event"] == "psql"),
            "restarts": len(restarts),
        }
    return counts


def hosts_is_5x(host: dict[str, Any]) -> bool:
    return host.get("flavour", "").startswith("5.")


def module_counts(count_file: Path, hosts: list[dict[str, Any]]) -> dict[str, int]:
    lines = count_file.read_text().splitlines() if count_file.exists() else []
    remote = [line.split("\t") for line in lines]
    return {h["name"]: sum(1 for host, where, _ in remote if host == h["name"] and where == "remote") for h in hosts}


# ---------------------------------------------------------------- the cases

class Bench:
    def __init__(self, hosts: list[dict[str, Any]], work: Path, forks: int) -> None:
        self.hosts = hosts
        self.work = work
        self.inventory = inventory(hosts, work)
        self.realms = REALMS
        self.count_file = work / "modules.tsv"
        self.env = environment(self.count_file)
        self.forks = forks
        self.log = work / "ansible.log"

    def playbook(self, playbook: Path, *extra: str) -> list[str]:
        return [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory), "--forks", str(self.forks), str(playbook), *extra]

    def measure(self, argv: list[str]) -> dict[str, Any]:
        self.count_file.unlink(missing_ok=True)
        before = ledger_lengths(self.hosts)
        load_before = load()
        seconds, peak = run_play(argv, self.env, self.log)
        load_after = load()
        ledger = ledger_since(self.hosts, before)
        modules = module_counts(self.count_file, self.hosts)
        return {"seconds": round(seconds, 3), "peak_rss_mb": round(peak / 1024, 1), "modules": modules,
                "ledger": ledger, "load_before": load_before, "load_after": load_after}

    def reset(self) -> None:
        """A fresh stand-in on every host (not measured) and an empty token file."""
        (self.work / "tokens.vault.yml").unlink(missing_ok=True)
        subprocess.run(self.playbook(INSTALL, "-e", "zulip_standin_manage_delay=1.0"), env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)

    def naive_vars(self) -> Path:
        # BENCH ONLY: the naive playbook needs the tokens inline; a 0600 file in the scratch folder.
        path = self.work / "naive-tokens.json"
        path.write_text(json.dumps({"naive_tokens": {r["subdomain"]: secrets.token_urlsafe(32) for r in REALMS}}))
        path.chmod(0o600)
        return path

    def floor_and_no_change(self, runs: dict[str, list[dict[str, Any]]], repeat: int) -> None:
        """The empty play and the no-change run in turn, so that each pair sees the same load. The no-change
        run has an IdP connector configured (the root realm's Entra ID, its API on a loopback listener that
        counts connections): it must make no IdP call (``idp_calls``)."""
        with IdpListener() as listener:
            idp_vars = self.work / "idp-connectors.json"
            idp_vars.write_text(json.dumps(listener.role_vars(self.realms)))
            for _ in range(repeat):
                runs["floor"].append(self.measure(self.playbook(BENCH / "floor.yml")))
                calls = listener.count
                measured = self.measure(self.playbook(REPO / "playbooks" / "enable_scim.yml", "-e", "@%s" % idp_vars))
                measured["idp_calls"] = listener.count - calls
                runs["nochange"].append(measured)

    def run_all(self, repeat: int) -> dict[str, list[dict[str, Any]]]:
        runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        enable = REPO / "playbooks" / "enable_scim.yml"
        for _ in range(repeat):
            self.reset()
            runs["first"].append(self.measure(self.playbook(enable)))
        self.floor_and_no_change(runs, repeat)
        for _ in range(repeat):
            runs["rotate"].append(self.measure(self.playbook(enable, "--tags", "rotate_scim_token")))
        self.reset()
        naive = self.naive_vars()
        for _ in range(repeat):
            runs["naive"].append(self.measure(self.playbook(BENCH / "naive.yml", "-e", "@%s" % naive)))
        naive.unlink()
        return runs


# ---------------------------------------------------------------- one real Zulip 9.2 (N = 1)

REAL_FILES = REPO / "molecule" / "_shared" / "files"
REAL_REALMS = [{"subdomain": "acme", "client_name": "okta"},  # the realms the real image has
               {"subdomain": "", "client_name": "entra-id", "name_formatted_included": True}]


def ssh(host: dict[str, Any], command: str, stdin: str | None = None) -> str:
    argv = ["ssh", *SSH_ARGS.split(), "-i", host["identity_file"], "%s@%s" % (host["user"], host["address"]), command]
    return subprocess.run(argv, check=True, capture_output=True, text=True, input=stdin).stdout


class RealBench(Bench):
    """The same cases on a real Zulip 9.2: manage.py calls and restarts read from the server's own logs
    (molecule/_shared/files/real_ledger.py), since a real server keeps no ledger."""

    def __init__(self, host: dict[str, Any], work: Path) -> None:
        super().__init__([host], work, forks=5)
        data = json.loads(self.inventory.read_text())
        data["all"]["vars"]["zulip_scim_realms"] = REAL_REALMS
        self.inventory.write_text(json.dumps(data))
        self.realms = REAL_REALMS
        for name in ("real_ledger.py", "scim_probe.py"):
            ssh(host, "cat > /root/%s" % name, (REAL_FILES / name).read_text())
        ssh(host, "mkdir -p /root/baseline && python3 /root/scim_probe.py --wait-serving 600",
            json.dumps([r["subdomain"] for r in REAL_REALMS]))

    def measure(self, argv: list[str]) -> dict[str, Any]:
        self.count_file.unlink(missing_ok=True)
        host = self.hosts[0]
        ssh(host, "python3 /root/real_ledger.py snapshot >/dev/null")
        load_before = load()
        seconds, peak = run_play(argv, self.env, self.log)
        load_after = load()
        events = json.loads(ssh(host, "python3 /root/real_ledger.py"))
        ledger = {host["name"]: {"manage": sum(1 for e in events if e["event"] == "manage"), "psql": 0,
                                 "restarts": sum(1 for e in events if e["event"] == "restart")}}
        return {"seconds": round(seconds, 3), "peak_rss_mb": round(peak / 1024, 1),
                "modules": module_counts(self.count_file, self.hosts), "ledger": ledger,
                "load_before": load_before, "load_after": load_after}

    def run_real(self, repeat: int) -> dict[str, list[dict[str, Any]]]:
        """floor and no-change --repeat times, in turn; first and rotation once each (each restart takes 20-25 s)."""
        enable = REPO / "playbooks" / "enable_scim.yml"
        runs: dict[str, list[dict[str, Any]]] = {"floor": [], "first": [], "nochange": [], "rotate": []}
        runs["first"].append(self.measure(self.playbook(enable)))
        self.floor_and_no_change(runs, repeat)
        runs["rotate"].append(self.measure(self.playbook(enable, "--tags", "rotate_scim_token")))
        return runs


def bench_real(repeat: int, keep: bool) -> None:
    name = "bench-real-9-2"
    work = Path(tempfile.mkdtemp(prefix="zulip-bench-real-"))
    try:
        print("bench: real Zulip 9.2: booting %s" % name, flush=True)
        out = subprocess.run([str(PYTHON), str(TESTHOST), "up", "--image", "zulip-9.2", "--timeout", "600", name],
                             check=True, capture_output=True, text=True).stdout
        host = [json.loads(line) for line in out.splitlines() if line.startswith("{")][0]
        host["flavour"] = "9.2"
        runs = RealBench(host, work).run_real(repeat)
        result = summarise(1, runs)
        result["flavours"], result["realms_per_host"] = ["9.2 (real)"], len(REAL_REALMS)
        (RESULTS / "real-9.2.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    finally:
        if not keep:
            down([name])
        shutil.rmtree(work, ignore_errors=True)


def summarise(n: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over the repeats; per-host counts as the worst host (max) and the mean."""
    rows = {}
    for case, measured in runs.items():
        seconds = statistics.median(r["seconds"] for r in measured)
        last = measured[-1]
        per_host = list(last["modules"].values())
        rows[case] = {
            "seconds": round(seconds, 2),
            "seconds_per_host": round(seconds / n, 3),
            "modules_per_host_max": max(per_host),
            "modules_per_host_mean": round(sum(per_host) / len(per_host), 2),
            "manage_per_host_max": max(v["manage"] for v in last["ledger"].values()),
            "manage_total": sum(v["manage"] for v in last["ledger"].values()),
            "psql_total": sum(v["psql"] for v in last["ledger"].values()),
            "restarts_per_host": sorted({v["restarts"] for v in last["ledger"].values()}),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in measured),
            "all_seconds": [r["seconds"] for r in measured],
        }
    pairs = report.no_change_pairs(runs)
    return {"n": n, "commit": commit(), "flavours": [FLAVOURS[i % len(FLAVOURS)] for i in range(n)], "realms_per_host": len(REALMS),
            "rows": rows, "runs": runs, "cpus": os.cpu_count(), "nochange_pairs": pairs,
            "nochange_ratio_median": statistics.median(p["ratio"] for p in pairs) if pairs else None}


def commit() -> str:
    """The checkout measured: a table may join Ns measured at different commits.

    The benchmark's own results are left out: writing one N's table must not mark the next N dirty.
    """
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def bench_one(n: int, repeat: int, keep: bool) -> dict[str, Any]:
    names = ["bench-%d-%d" % (n, i + 1) for i in range(n)]
    work = Path(tempfile.mkdtemp(prefix="zulip-bench-%d-" % n))
    try:
        print("bench: N=%d: booting %s" % (n, " ".join(names)), flush=True)
        hosts = boot(names)
        for index, host in enumerate(hosts):
            host["flavour"] = FLAVOURS[index % len(FLAVOURS)]
        bench = Bench(hosts, work, forks=max(5, n))
        bench.reset()
        result = summarise(n, bench.run_all(repeat))
        (RESULTS / ("%d.json" % n)).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print("bench: N=%d done: %s" % (n, json.dumps({c: r["seconds"] for c, r in result["rows"].items()})),
              flush=True)
        return result
    finally:
        if not keep:
            down(names)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,4,8,16", help="fleet sizes, comma-separated (default 1,4,8,16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown (default 3)")
    parser.add_argument("--keep", action="store_true", help="leave the hosts up")
    parser.add_argument("--real", action="store_true",
                        help="also one line for N = 1 on a real Zulip 9.2 test host (image zulip-9.2)")
    parser.add_argument("--report-only", action="store_true", help="only remake results.md and the plots")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for n in [int(part) for part in args.n.split(",") if part.strip()]:
            if n > 16:
                raise SystemExit("at most 16 hosts")
            bench_one(n, args.repeat, args.keep)
        if args.real:
            bench_real(args.repeat, args.keep)
    report.write_all(RESULTS)
    print((RESULTS / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
