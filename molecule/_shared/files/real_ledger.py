#!/usr/bin/env python3
"""Test helper run on a real-Zulip test host: what did the server pay for?

A real Zulip keeps no ledger like the stand-in's, so this one is read from what
the server itself records:
- every manage.py run is a line "<time>: Ran <argv>" in /var/log/zulip/manage.log
  (Zulip's manage.py logs each command it runs);
- every restart starts a new Tornado (`manage.py runtornado`, logged the same way)
  and gives Django, Tornado and the queue workers new PIDs (`supervisorctl status`).

  real_ledger.py snapshot   remember where the log ends and the server's PIDs
  real_ledger.py            print, as JSON, the events since the snapshot in the
                            stand-in ledger's shape: {"event": "manage", "argv": [...]}
                            per command run by hand, {"event": "restart"} per
                            restart, and one {"event": "pids", "changed": [...],
                            "unchanged": [...]} comparing the program groups' PIDs
"""

import json
import os
import re
import shlex
import subprocess
import sys

MANAGE_LOG = "/var/log/zulip/manage.log"
SNAPSHOT = "/root/baseline/real-ledger.json"
# Where the server's own programs are configured: supervisor starts Tornado, the
# queue workers and deliver_* through manage.py; cron runs its jobs the same way
# (check_analytics_state every hour at :30, and so on). What they run is read from
# the host, so a version that adds a job needs no change here.
SERVER_PROGRAM_CONFIGS = ("/etc/supervisor/conf.d", "/etc/cron.d")
MANAGE_COMMAND = re.compile(r"manage\.py\s+([a-z_]+)")
# supervisor program groups whose PIDs prove a restart (Django, Tornado, the queue workers).
GROUPS = ("zulip-django", "zulip-tornado", "zulip-workers")


# A record starts with logging's asctime; an argument with newlines in it (a
# `shell -c` program) continues the record over the next lines.
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+: ", re.M)


def server_commands():
    """The manage.py commands that supervisor and cron run on this host, not a person or Ansible."""
    found = set()
    for top in SERVER_PROGRAM_CONFIGS:
        for folder, _dirs, files in os.walk(top):
            for name in files:
                try:
                    with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                        found.update(MANAGE_COMMAND.findall(handle.read()))
                except OSError:
                    continue
    return found


def manage_runs():
    try:
        with open(MANAGE_LOG, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    runs = []
    for record in RECORD.split(text)[1:]:
        if record.startswith("Ran "):
            argv = shlex.split(record[len("Ran "):].rstrip("\n"))
            runs.append(argv[1:])
    return runs


def server_pids():
    out = subprocess.run(["supervisorctl", "status"], stdout=subprocess.PIPE, text=True, check=False).stdout
    pids = {}
    for line in out.splitlines():
        fields = line.split()
        match = re.search(r"\bpid (\d+),", line)
        if fields and match:
            pids[fields[0]] = int(match.group(1))
    return pids


def by_group(pids):
    return {g: sorted(pid for name, pid in pids.items() if name.split(":")[0] == g) for g in GROUPS}


def snapshot():
    state = {"manage_runs": len(manage_runs()), "pids": by_group(server_pids())}
    missing = [g for g, pids in state["pids"].items() if not pids]
    if missing:
        sys.exit("no running %s in supervisorctl status" % ", ".join(missing))
    with open(SNAPSHOT, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    print(json.dumps(state))


def events():
    with open(SNAPSHOT, encoding="utf-8") as handle:
        before = json.load(handle)
    found = []
    not_by_hand = server_commands()
    for argv in manage_runs()[before["manage_runs"]:]:
        command = argv[0] if argv else ""
        if command == "runtornado":
            found.append({"event": "restart"})
        elif command not in not_by_hand:
            found.append({"event": "manage", "argv": argv})
    now = by_group(server_pids())
    changed = [g for g in GROUPS if now[g] and not set(now[g]) & set(before["pids"][g])]
    unchanged = [g for g in GROUPS if now[g] == before["pids"][g]]
    found.append({"event": "pids", "changed": changed, "unchanged": unchanged})
    print(json.dumps(found))


if __name__ == "__main__":
    snapshot() if sys.argv[1:] == ["snapshot"] else events()
