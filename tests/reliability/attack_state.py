#!/usr/bin/env python3
"""Root's side of tests/reliability/test_attacks.py, run on the test host as root.

  attack_state.py snapshot REQUEST   REQUEST: a JSON file {"canaries": [...], "config": [...], "marker": "..."}
                               prints JSON: what root owns that the attacker must not reach
                               (canaries: content digest, owner, mode, kind; /dev/zero's owner
                               and mode; the names in the canaries' folders), the configuration
                               files (digest, owner, mode, kind), every entry under /etc/zulip
                               with its owner, and the files there holding the canaries' marker
  attack_state.py watchdog LOG  until killed: a root python process that grows past 1 GiB (a
                               module reading /dev/zero) is killed and named in LOG

Nothing printed holds file content: digests and names only.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import sys
import time

ETC = "/etc/zulip"
CANARY_FOLDERS = ("/root", "/etc/cron.d")
RSS_LIMIT_KIB = 1024 * 1024


def kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symlink"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chardev"), (stat.S_ISBLK, "blockdev"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "other"


def describe(path: str) -> dict:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"kind": "missing"}
    entry = {"kind": kind(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
             "mode": "%04o" % stat.S_IMODE(info.st_mode), "inode": info.st_ino, "links": info.st_nlink}
    if stat.S_ISREG(info.st_mode):
        # O_NOFOLLOW|O_NONBLOCK: what is read is the regular file lstat saw
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            entry["sha256"] = hashlib.sha256(handle.read(64 * 1024 * 1024)).hexdigest()
    elif stat.S_ISLNK(info.st_mode):
        entry["target"] = os.readlink(path)
    return entry


def holds(path: str, marker: bytes) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return False
        return marker in handle.read(64 * 1024 * 1024)


def snapshot(request: dict) -> dict:
    marker = request["marker"].encode()
    etc = {}
    leaks = []
    for folder, dirs, names in os.walk(ETC):
        for name in dirs + names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            etc[os.path.relpath(path, ETC)] = {"kind": kind(info.st_mode), "uid": info.st_uid}
            if name in names and holds(path, marker):
                leaks.append(path)
    return {
        "canaries": {path: describe(path) for path in request["canaries"]},
        "devzero": describe("/dev/zero"),
        "folders": {folder: sorted(os.listdir(folder)) for folder in CANARY_FOLDERS},
        "config": {path: describe(path) for path in request["config"]},
        "etc": etc,
        "leaks": leaks,
    }


def rss_kib(pid: str) -> tuple[int, int]:
    uid = rss = 0
    with open("/proc/%s/status" % pid, encoding="ascii", errors="replace") as handle:
        for line in handle:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return uid, rss


def watchdog(log: str) -> None:
    own = str(os.getpid())
    while True:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == own:
                continue
            try:
                uid, rss = rss_kib(pid)
                if uid != 0 or rss < RSS_LIMIT_KIB:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    argv = handle.read().split(b"\0")
                if b"python" not in os.path.basename(argv[0]):
                    continue
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                continue
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"pid": int(pid), "rss_kib": rss,
                                         "argv": [a.decode("utf-8", "replace") for a in argv if a]}) + "\n")
        time.sleep(0.2)


def main() -> int:
    if sys.argv[1:2] == ["snapshot"]:
        with open(sys.argv[2], encoding="utf-8") as handle:
            print(json.dumps(snapshot(json.load(handle))))
    elif sys.argv[1:2] == ["watchdog"]:
        watchdog(sys.argv[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
