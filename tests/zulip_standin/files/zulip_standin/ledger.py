"""The ledger: one JSON line per manage.py / restart-server call (and a few
server-side events), so tests can prove what the code under test really did.

Format (one object per line):
  {"event": "manage",  "user", "argv", "rc", "seconds", "time"}
  {"event": "restart", "user", "argv", "rc", "old_pid", "new_pid", "seconds", "time"}
  {"event": "settings_changed", "path", "exists", "compiles", "mode", "owner", "group", "in_place", "time"}
  {"event": "settings_broken_seen", "path", "error", "time"}
The last two come from the server's settings watcher (Zulip's queue worker
reloads on every settings.py change; a broken file kills it).
"time" is the Unix time when the call ended. The file is root-owned, mode 0622:
every user can append, only root can read it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import Any


def append(path: str, record: dict[str, Any]) -> None:
    record = {**record, "time": round(time.time(), 3)}
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o622)
    except OSError as exc:
        # A missing ledger entry would silently weaken the tests: say so loudly.
        print(f"zulip-standin: cannot write ledger {path}: {exc}", file=sys.stderr)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # concurrent manage.py calls must not interleave
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: str) -> list[dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]
