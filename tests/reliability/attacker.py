#!/usr/bin/env python3
"""The attacker of tests/reliability/test_attacks.py: runs on the Zulip host AS THE ZULIP USER.

The zulip user owns /etc/zulip (zulip:zulip 0755, no sticky bit), every file in it
and the deployment: it may create, rename and remove any name there, and can see
every process and every file appear (inotify). This program does what such a user
would do while root runs the collection's modules, and counts what it planted.

  attacker.py race STATE_DIR [--no-swap]
                                  plant until STATE_DIR/stop exists, then clean up and write
                                  STATE_DIR/report.json (see Race; --no-swap: leave settings.py be)
  attacker.py point PATH KIND     put PATH aside, and a KIND in its place (PATH: a file the
                                  modules read: settings.py, zulip-secrets.conf, zulip.conf,
                                  <deployment>/version.py through the `current` link)
  attacker.py unpoint PATH        put PATH back as it was
  attacker.py plant NAME KIND...  plant a KIND at /etc/zulip/NAME (must not exist), for each pair
  attacker.py unplant NAME...     remove them again (never a regular file root made there)
  (unpoint and unplant print JSON: what root put into a planted directory; whether the decoy is intact)

Plant kinds (KINDS): a symbolic link to one of root's canary files, a hard link (to a
canary when the kernel allows it, else to a decoy file zulip owns), a FIFO, a
symbolic link to /dev/zero, a directory. The canaries' paths come from
STATE_DIR/canaries.json (race) or the environment variable ATTACK_CANARIES (JSON list).

Nothing here reads a token or anything root-only: the attacker only names things.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import random
import re
import select
import stat
import string
import struct
import sys
import time

ETC = "/etc/zulip"
FILES = ("settings.py", "zulip-secrets.conf")
SCRATCH = ETC + "/.zulip-ops-attacker"  # where plants are made before they are renamed into place
DECOY = SCRATCH + "/decoy"  # what a hard link points at when the kernel refuses a link to root's file
DECOY_TEXT = b"zulip-ops attack decoy: a root write through a planted hard link lands here\n"
SAVED_SUFFIX = ".zulip-ops-attack-saved"

KINDS = ("symlink", "hardlink", "fifo", "devzero", "dir")

# Name patterns, as the test's grid names them. {f} is settings.py or zulip-secrets.conf.
BACKUP = "backup {f}.<pid>.<date@time>~"
KEPT = "kept copy .{f}.zulip-scim-previous"
TEMP = "temporary .{f}.XXXXXXXX.tmp"
KEPT_TEMP = "temporary ..{f}.zulip-scim-previous.XXXXXXXX.tmp"
OTHER_TEMP = "any other new name in /etc/zulip"
SWAP = "settings.py swapped for a symlink while written"

PID_BEHIND = 64  # a module started this many processes ago may still be running when it backs up
PID_AHEAD = 48
SECONDS_AHEAD = 2
TEMP_GUESSES = 4  # random temporary names guessed per file and kind (mkstemp draws 8 of 37 characters)
SWAP_SECONDS = 1.5  # how long settings.py is swapped in a loop once a run starts writing
SWAP_LINK_SECONDS = 0.002
SWAP_REAL_SECONDS = 0.003

IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_NONBLOCK = 0o4000
RENAME_EXCHANGE = 2
AT_FDCWD = -100

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def stamp(second: int) -> str:
    # Ansible's backup_local: time.strftime("%Y-%m-%d@%H:%M:%S"), the host's local time.
    return time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(second))


def last_pid() -> int:
    with open("/proc/sys/kernel/ns_last_pid", encoding="ascii") as handle:
        return int(handle.read())


def exchange(a: str, b: str) -> None:
    """Swap two names in one step (renameat2 RENAME_EXCHANGE)."""
    if _libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def inode(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def remove(path: str) -> None:
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def release_fifo(path: str) -> None:
    """A reader blocked opening the FIFO gets an empty file instead of waiting for ever."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader (ENXIO), or not a FIFO any more
    os.close(fd)


class Planter:
    """Makes plants in the scratch folder and renames them into place; remembers each by inode."""

    def __init__(self, canaries: list[str]):
        self.canaries = canaries
        self.ours: dict[str, tuple[tuple[int, int], str]] = {}  # path -> (inode, kind)
        self.counter = 0
        self.hardlink_refused = 0  # protected_hardlinks: zulip may not link root's files
        self.filled: list[str] = []  # planted directories root wrote into
        os.makedirs(SCRATCH, exist_ok=True)
        if not os.path.exists(DECOY):
            with open(DECOY, "wb") as handle:
                handle.write(DECOY_TEXT)
            os.chmod(DECOY, 0o600)

    def make(self, kind: str) -> str:
        self.counter += 1
        path = "%s/p%d" % (SCRATCH, self.counter)
        canary = self.canaries[self.counter % len(self.canaries)]
        if kind == "symlink":
            os.symlink(canary, path)
        elif kind == "hardlink":
            try:
                os.link(canary, path)
            except OSError:
                self.hardlink_refused += 1
                os.link(DECOY, path)
        elif kind == "fifo":
            os.mkfifo(path, 0o600)
        elif kind == "devzero":
            os.symlink("/dev/zero", path)
        elif kind == "dir":
            os.mkdir(path, 0o755)
        else:
            raise ValueError(kind)
        return path

    def place(self, kind: str, target: str, replace: bool = False) -> bool:
        """Rename a fresh plant to ``target``; without ``replace`` only where nothing is. True when planted."""
        made = self.make(kind)
        try:
            if replace:
                if kind == "dir" and os.path.lexists(target) and not os.path.isdir(target):
                    # rename(2) puts a directory only over a directory: exchange, then drop what was there.
                    exchange(made, target)
                    remove(made)
                else:
                    os.rename(made, target)
            else:
                if os.path.lexists(target):
                    remove(made)
                    return False
                os.rename(made, target)
        except OSError:
            remove(made)
            return False
        found = inode(target)
        if found is None:
            return False
        self.ours[target] = (found, kind)
        return True

    def is_ours(self, path: str) -> bool:
        entry = self.ours.get(path)
        return entry is not None and inode(path) == entry[0]

    def take_back(self, path: str) -> None:
        """Remove a plant, only while the name still holds it (never what root put there since)."""
        entry = self.ours.pop(path, None)
        if entry is None or inode(path) != entry[0]:
            return
        if entry[1] == "fifo":
            release_fifo(path)
        if entry[1] == "dir":
            inside = os.listdir(path)
            if inside:  # root wrote into the planted directory: say so, then clear it
                self.filled.append("%s: %s" % (path, ", ".join(sorted(inside))))
                for name in inside:
                    remove(os.path.join(path, name))
        remove(path)

    def decoy_intact(self) -> bool:
        info = os.lstat(DECOY)
        with open(DECOY, "rb") as handle:
            return handle.read() == DECOY_TEXT and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o600


class Inotify:
    def __init__(self, directory: str):
        self.fd = _libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0 or _libc.inotify_add_watch(self.fd, directory.encode(), IN_CREATE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def names(self, timeout: float) -> list[str]:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        names, offset = [], 0
        while offset < len(data):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            raw = data[offset + 16:offset + 16 + length].rstrip(b"\0")
            names.append(raw.decode("utf-8", "replace"))
            offset += 16 + length
        return names


class Race:
    """Plants at every name the modules create or use while a run goes on (see the module doc)."""

    def __init__(self, state_dir: str, canaries: list[str], swap: bool = True):
        self.state_dir = state_dir
        self.swap = swap
        self.planter = Planter(canaries)
        self.canaries = canaries
        self.counts: dict[str, dict[str, int]] = {}
        self.backups: dict[str, int] = {}  # planted backup name -> its second
        self.events: list[str] = []  # names root created that the attacker reacted to
        self.kind_turn: dict[str, int] = {}
        self.swap_until = 0.0
        self.swap_started = False
        self.swaps = 0
        self.swap_link = SCRATCH + "/swap"
        self.swap_held = False  # settings.py is our symlink now, the real file in swap_link
        self.swap_inode: tuple[int, int] | None = None  # that symlink
        self.swap_done = False

    def count(self, pattern: str, kind: str) -> None:
        self.counts.setdefault(pattern, {}).setdefault(kind, 0)
        self.counts[pattern][kind] += 1

    def next_kind(self, pattern: str) -> str:
        turn = self.kind_turn.get(pattern, 0)
        self.kind_turn[pattern] = turn + 1
        return KINDS[turn % len(KINDS)]

    # -- names that can be predicted: backups (PID and second), temporary names (a spread of guesses)
    def plant_backups(self) -> None:
        now = int(time.time())
        top = last_pid()
        for pid in range(max(2, top - PID_BEHIND), top + PID_AHEAD):
            for second in range(now, now + SECONDS_AHEAD + 1):
                kind = KINDS[(pid + second) % len(KINDS)]
                for name in FILES:
                    path = "%s/%s.%d.%s~" % (ETC, name, pid, stamp(second))
                    if path in self.backups:
                        continue
                    self.backups[path] = second
                    if self.planter.place(kind, path):
                        self.count(BACKUP.format(f=name), kind)
        for path, second in list(self.backups.items()):
            if second < now - 2:  # a backup is named for the second it is made in: these can no longer be hit
                self.planter.take_back(path)
                del self.backups[path]

    def plant_temp_guesses(self) -> None:
        alphabet = string.ascii_lowercase + string.digits + "_"
        for name in FILES:
            for pattern, prefix in ((TEMP, "." + name), (KEPT_TEMP, ".." + name + ".zulip-scim-previous")):
                for kind in KINDS:
                    for _ in range(TEMP_GUESSES):
                        guess = "%s/%s.%s.tmp" % (ETC, prefix, "".join(random.choice(alphabet) for _ in range(8)))
                        if self.planter.place(kind, guess):
                            self.count(pattern.format(f=name), kind)

    # -- names root creates: replace each as it appears (root may then rename, chown or open it by name)
    def pattern_of(self, name: str) -> str | None:
        for file_name in FILES:
            if name == ".%s.zulip-scim-previous" % file_name:
                return KEPT.format(f=file_name)
            if re.fullmatch(r"\.\.%s\.zulip-scim-previous\..+\.tmp" % re.escape(file_name), name):
                return KEPT_TEMP.format(f=file_name)
            if re.fullmatch(r"\.%s\..+\.tmp" % re.escape(file_name), name):
                return TEMP.format(f=file_name)
            if re.fullmatch(r"%s\.\d+\..+~" % re.escape(file_name), name):
                return BACKUP.format(f=file_name)
        if name in FILES or name == os.path.basename(SCRATCH) or name == "zulip.conf":
            return None
        return OTHER_TEMP

    def react(self, name: str) -> None:
        path = "%s/%s" % (ETC, name)
        if self.planter.is_ours(path) or name.endswith(SAVED_SUFFIX):
            return
        pattern = self.pattern_of(name)
        if pattern is None:
            return
        self.events.append(name)
        if self.swap and not self.swap_started:
            # root has begun to write in /etc/zulip: swap settings.py in a loop from now on
            self.swap_started = True
            self.swap_until = time.monotonic() + SWAP_SECONDS
        kind = self.next_kind(pattern)
        if self.planter.place(kind, path, replace=True):
            self.count(pattern, kind)

    # -- settings.py for a symlink to a canary and back, while root writes
    def swap_step(self) -> None:
        settings = ETC + "/settings.py"
        if not self.swap_held:
            if time.monotonic() >= self.swap_until or self.swap_done:
                return
            remove(self.swap_link)
            os.symlink(self.canaries[self.swaps % len(self.canaries)], self.swap_link)
            ours = inode(self.swap_link)
            try:
                exchange(self.swap_link, settings)
            except OSError:
                remove(self.swap_link)
                return
            self.swap_held = True
            self.swap_inode = ours
            self.swaps += 1
            self.count(SWAP, "symlink")
            time.sleep(SWAP_LINK_SECONDS)
            return
        # Put the real file back, unless root has replaced our symlink in the meantime.
        if inode(settings) == self.swap_inode:
            exchange(self.swap_link, settings)
            if inode(self.swap_link) != self.swap_inode:
                # root renamed its new settings.py in between: that is the file, not ours
                exchange(self.swap_link, settings)
                self.swap_done = True
        else:
            self.swap_done = True  # root wrote settings.py over the link; the old file stays aside
        remove(self.swap_link)
        self.swap_held = False
        time.sleep(SWAP_REAL_SECONDS)

    def run(self) -> None:
        watch = Inotify(ETC)
        stop = os.path.join(self.state_dir, "stop")
        self.plant_temp_guesses()
        with open(os.path.join(self.state_dir, "ready"), "w", encoding="ascii") as handle:
            handle.write("%d\n" % os.getpid())
        next_backups = 0.0
        while not os.path.exists(stop):
            if time.monotonic() >= next_backups:
                self.plant_backups()
                next_backups = time.monotonic() + 0.02
            swapping = self.swap_held or (self.swap_started and not self.swap_done
                                          and time.monotonic() < self.swap_until)
            for name in watch.names(0.0 if swapping else 0.01):
                self.react(name)
            if swapping:
                self.swap_step()
        if self.swap_held:
            self.swap_step()
        self.clean_up()

    def clean_up(self) -> None:
        for path in list(self.planter.ours):
            self.planter.take_back(path)
        remove(self.swap_link)
        report = {"counts": self.counts, "events": self.events[:200], "swaps": self.swaps,
                  "hardlink_refused": self.planter.hardlink_refused, "filled_dirs": self.planter.filled,
                  "decoy_intact": self.planter.decoy_intact()}
        with open(os.path.join(self.state_dir, "report.json"), "w", encoding="utf-8") as handle:
            json.dump(report, handle)


def canaries_from_env() -> list[str]:
    return json.loads(os.environ["ATTACK_CANARIES"])


def point(path: str, kind: str) -> None:
    saved = path + SAVED_SUFFIX
    if os.path.lexists(saved):
        raise SystemExit("%s: already pointed" % path)
    os.rename(path, saved)
    planter = Planter(canaries_from_env())
    if not planter.place(kind, path):
        os.rename(saved, path)
        raise SystemExit("%s: could not plant %s" % (path, kind))


def clear_dir(path: str) -> list[str]:
    """Empty a planted directory; returns what root had put into it."""
    inside = sorted(os.listdir(path))
    for entry in inside:
        remove(os.path.join(path, entry))
    return inside


def take_away(path: str) -> list[str]:
    """Remove a plant (a FIFO's blocked reader released first); returns what root put into a planted directory."""
    info = os.lstat(path) if os.path.lexists(path) else None
    if info is None:
        return []
    inside = []
    if stat.S_ISFIFO(info.st_mode):
        release_fifo(path)
    if stat.S_ISDIR(info.st_mode):
        inside = clear_dir(path)
    remove(path)
    return inside


def unpoint(path: str) -> list[str]:
    saved = path + SAVED_SUFFIX
    if not os.path.lexists(saved):
        return []
    inside = take_away(path)
    os.rename(saved, path)
    return inside


def main(argv: list[str]) -> int:
    if os.geteuid() == 0:
        raise SystemExit("the attacker runs as the zulip user, not root")
    command = argv[1] if len(argv) > 1 else ""
    if command == "race":
        state_dir = argv[2]
        with open(os.path.join(state_dir, "canaries.json"), encoding="utf-8") as handle:
            canaries = json.load(handle)
        Race(state_dir, canaries, swap="--no-swap" not in argv[3:]).run()
    elif command == "point":
        point(argv[2], argv[3])
    elif command in ("unpoint", "unplant"):
        # unplant: every name given that still holds a plant (a link, FIFO, directory or hard link), never
        # a regular file root made there
        filled, paths = [], argv[2:]
        for path in paths:
            if command == "unpoint":
                filled += ["%s: %s" % (path, name) for name in unpoint(path)]
                continue
            path = "%s/%s" % (ETC, path)
            info = os.lstat(path) if os.path.lexists(path) else None
            if info is not None and not (stat.S_ISREG(info.st_mode) and info.st_nlink == 1):
                filled += ["%s: %s" % (path, name) for name in take_away(path)]
        planter = Planter(canaries_from_env())
        print(json.dumps({"filled_dirs": filled, "decoy_intact": planter.decoy_intact()}))
    elif command == "plant":
        planter = Planter(canaries_from_env())
        for name, kind in zip(argv[2::2], argv[3::2]):
            if not planter.place(kind, "%s/%s" % (ETC, name)):
                raise SystemExit("could not plant %s at %s" % (kind, name))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
