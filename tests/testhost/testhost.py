#!/usr/bin/env python3
"""Throw-away Debian test hosts: systemd-nspawn --boot in a network namespace, over SSH.

CLI (run as root):
  testhost.py image                      build or reuse the golden rootfs
  testhost.py up [--reuse] NAME...       boot instances, one JSON object per line:
                                         {"name", "address", "port", "user", "identity_file"}
  testhost.py down NAME... | --all       stop and remove instances (idempotent)
  testhost.py leaks [NAME...]            list leftovers; exit 1 if any
  testhost.py ssh NAME -- CMD...         run CMD on NAME (joined like ssh does), exit with its code
  testhost.py list                       running instances of this checkout, JSON lines

Library: up(names) -> list[dict], down(names), down_all(), leaks(names=None) -> list[str],
ssh_argv(name) -> list[str], instance_info(name) -> dict.

Instances live in <repo>/.cache/testhost/hosts/NAME/ (overlay upper/work/merged, log,
instance.json). Machine-wide resources (address slots, netns, veth names) are allocated
under /run/zulip-testhost/lock, so checkouts and concurrent runs never collide.
Slot n gets the /30 at 169.254.96.0 + 4n (inside 169.254.96.0/20): the machine side is
+1 (veth zth<n>), the instance +2 (eth0 in netns zth<n>-NAME).

`up` of a NAME that is already running fails, unless --reuse / reuse=True, which returns
the running instance. A NAME whose state is stale (its nspawn is gone) is cleaned and rebooted.
Only 127.0.0.0/8 and the 169.254 addresses of our own instances are ever contacted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TESTHOST_CACHE_DIR", str(REPO / ".cache" / "testhost"))).resolve()
HOSTS = CACHE / "hosts"
SSH_DIR = CACHE / "ssh"
KEY = SSH_DIR / "id_ed25519"
# SSH ControlPersist sockets of Ansible runs against test hosts. A short path
# outside the checkout: a socket path must stay under 108 bytes, and CI's clone
# may sit deep. Socket names carry the instance's address, unique machine-wide.
CP_DIR = Path(os.environ.get("TESTHOST_CP_DIR", "/run/zulip-testhost/cp"))
BUILD_SCRIPT = Path(__file__).resolve().parent / "build_image.sh"
# Images with a real Zulip Server (build_zulip_image.sh), by the name `up --image` takes.
ZULIP_BUILD_SCRIPT = Path(__file__).resolve().parent / "build_zulip_image.sh"
REAL_ZULIP_IMAGES = {"zulip-9.2": "9.2", "zulip-5.6": "5.6"}
BASE_IMAGE = "base"

RUN_DIR = Path("/run/zulip-testhost")  # machine-wide slot registry
SLOTS = RUN_DIR / "slots"
NETNS_PREFIX = "zth"  # netns "zth<slot>-<name>", host veth "zth<slot>"
NET_RANGE = ipaddress.IPv4Network("169.254.96.0/20")  # 1024 /30s: 169.254.96.0 - 169.254.111.255
NET_BASE = NET_RANGE.network_address
MAX_SLOTS = NET_RANGE.num_addresses // 4
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
HOSTS_MARK = "/.cache/testhost/hosts/"
CGROUP_PARENT = "zulip-testhost"

BOOT_TIMEOUT = float(os.environ.get("TESTHOST_BOOT_TIMEOUT", "240"))
STOP_TIMEOUT = 15.0
SSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
]

_children: dict[str, subprocess.Popen[bytes]] = {}  # nspawn processes started by this process


class TesthostError(RuntimeError):
    """A test host could not be started, reached or stopped."""


# ---------------------------------------------------------------- small helpers


def log(msg: str) -> None:
    print(f"testhost {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise TesthostError(f"{' '.join(argv)} -> {res.returncode}: {res.stderr.strip() or res.stdout.strip()}")
    return res


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def global_lock() -> contextlib.AbstractContextManager[None]:
    return file_lock(RUN_DIR / "lock")


def instance_lock(name: str) -> contextlib.AbstractContextManager[None]:
    return file_lock(HOSTS / f".{name}.lock")


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise TesthostError(f"bad instance name {name!r}: letters, digits, '-', '_' (max 48, no leading -/_)")


def state_dir(name: str) -> Path:
    return HOSTS / name


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------- processes


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in ticks) of a pid, or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def pid_alive(pid: int, start: int | None = None) -> bool:
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[1] == start


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def proc_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def proc_comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_rooted_at(roots: list[str]) -> list[int]:
    """Processes whose root directory is one of roots (compared by device and inode:
    inside nspawn's mount namespace readlink(/proc/PID/root) just says "/")."""
    ids = {i for i in map(file_id, roots) if i is not None}
    if not ids:
        return []
    me = os.getpid()
    return [p for p in all_pids() if p != me and file_id(f"/proc/{p}/root") in ids]


def reap(name: str) -> None:
    child = _children.pop(name, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)


def kill_and_wait(pids: list[int], sig: int, timeout: float) -> list[int]:
    """Send sig to pids and wait until they are gone; return the survivors."""
    starts = {pid: (proc_stat(pid) or ("", 0))[1] for pid in pids}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p, starts[p])]
    return alive


def terminate(pids: list[int], grace: float) -> None:
    """SIGTERM, then SIGKILL after grace seconds."""
    if not pids:
        return
    left = kill_and_wait(pids, signal.SIGTERM, grace)
    if left:
        log(f"pids {left} ignored SIGTERM for {grace:.0f}s, killing")
        kill_and_wait(left, signal.SIGKILL, 5)


# ---------------------------------------------------------------- tcp sockets (ssh clients)


def _tcp_peers(pid: int) -> list[tuple[str, int, int]]:
    """(remote ip, remote port, inode) for the TCP table of pid's network namespace."""
    out: list[tuple[str, int, int]] = []
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        rem_ip, rem_port = parts[2].split(":")
        ip = socket.inet_ntoa(int(rem_ip, 16).to_bytes(4, "little"))
        out.append((ip, int(rem_port, 16), int(parts[9])))
    return out


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def tcp_clients(match: Callable[[str], bool]) -> list[tuple[int, str]]:
    """(pid, remote ip) of processes with a TCP connection whose remote ip satisfies match(ip)."""
    tables: dict[str, dict[int, str]] = {}
    found = []
    me = os.getpid()
    for pid in all_pids():
        if pid == me:
            continue
        try:
            ns = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if ns not in tables:
            tables[ns] = {inode: ip for ip, _port, inode in _tcp_peers(pid) if inode and match(ip)}
        if not tables[ns]:
            continue
        for inode in _socket_inodes(pid) & tables[ns].keys():
            found.append((pid, tables[ns][inode]))
            break
    return found


def in_harness_range(ip: str) -> bool:
    return ipaddress.IPv4Address(ip) in NET_RANGE


# ---------------------------------------------------------------- mounts


def mount_table() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) from /proc/self/mountinfo."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        mnt = left.split()[4].replace("\\040", " ")
        fields = right.split()
        out.append((mnt, fields[0], fields[-1]))
    return out


def mountpoints() -> list[tuple[str, str]]:
    """(mount point, super options) from /proc/self/mountinfo."""
    return [(mnt, opts) for mnt, _fstype, opts in mount_table()]


def unmount_under(path: Path) -> None:
    prefix = str(path)
    mounts = [m for m, _ in mountpoints() if m == prefix or m.startswith(prefix + "/")]
    for mnt in sorted(set(mounts), key=lambda m: m.count("/"), reverse=True):
        if run(["umount", mnt], check=False).returncode != 0:
            log(f"umount {mnt} failed, detaching lazily")
            run(["umount", "-l", mnt], check=False)
    left = [m for m, _ in mountpoints() if m == prefix or m.startswith(prefix + "/")]
    if left:
        raise TesthostError(f"still mounted under {path}: {left}")


# ---------------------------------------------------------------- cgroups
# Without a systemd on the machine, systemd-nspawn --keep-unit puts its "supervisor" and
# "payload" cgroups next to its own cgroup: instances started from the same cgroup would
# share one payload tree and their systemds would remove each other's cgroups. So each
# instance starts in its own cgroup: <hierarchy>/zulip-testhost/<netns name>.


def cgroup_hierarchies() -> list[str]:
    """Mount points of the cgroup v2 hierarchy and of the v1 name=systemd one."""
    out = []
    for mnt, fstype, opts in mount_table():
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in opts.split(",")):
            out.append(mnt)
    return out


def cgroup_dirs(netns: str) -> list[Path]:
    return [Path(h) / CGROUP_PARENT / netns for h in cgroup_hierarchies()]


def cgroup_pids(dirs: list[Path]) -> list[int]:
    pids: set[int] = set()
    for top in dirs:
        for dirpath, _dirs, _files in os.walk(top):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in Path(dirpath, "cgroup.procs").read_text().split())
    return sorted(pids)


def remove_cgroups(dirs: list[Path]) -> None:
    for top in dirs:
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log(f"cannot remove cgroup {dirpath}: {exc}")


def raise_inotify_limits() -> None:
    """Every booted systemd holds several inotify instances; the default 128 per uid runs
    out near 12 instances ("Too many open files" in user@0.service)."""
    for knob, want in (("max_user_instances", 8192), ("max_user_watches", 524288)):
        path = Path("/proc/sys/fs/inotify") / knob
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text()) < want:
                path.write_text(str(want))
                log(f"raised fs.inotify.{knob} to {want}")


# ---------------------------------------------------------------- image, key, slots


def ensure_image(image: str = BASE_IMAGE) -> Path:
    """The rootfs of an image, built first when missing or stale: `base` (the plain
    Debian test host) or a real-Zulip image (REAL_ZULIP_IMAGES)."""
    if image == BASE_IMAGE:
        argv = ["bash", str(BUILD_SCRIPT)]
    elif image in REAL_ZULIP_IMAGES:
        argv = ["bash", str(ZULIP_BUILD_SCRIPT), REAL_ZULIP_IMAGES[image]]
    else:
        raise TesthostError(f"unknown image {image!r}: {BASE_IMAGE}, {', '.join(REAL_ZULIP_IMAGES)}")
    res = subprocess.run(
        argv,
        check=False,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TESTHOST_CACHE_DIR": str(CACHE)},
    )
    if res.returncode != 0:
        raise TesthostError(f"{image} image build failed (rc {res.returncode})")
    return Path(res.stdout.strip().splitlines()[-1])


def ensure_key() -> Path:
    with file_lock(CACHE / "ssh.lock"):
        if not KEY.exists():
            SSH_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "testhost", "-f", str(KEY)])
    return KEY


def slot_address(slot: int) -> tuple[str, str]:
    """(machine side, instance side) addresses of a slot's /30."""
    net = NET_BASE + 4 * slot
    return str(net + 1), str(net + 2)


def _slot_is_free(path: Path) -> bool:
    data = read_json(path)
    return data is None or not Path(data["state_dir"]).exists()


def allocate_slot(name: str, sdir: Path) -> int:
    """Reserve the lowest free slot (caller holds global_lock)."""
    SLOTS.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        path = SLOTS / str(slot)
        if path.exists() and not _slot_is_free(path):
            continue
        _clear_slot_net(slot)
        write_json(path, {"name": name, "state_dir": str(sdir), "pid": os.getpid()})
        return slot
    raise TesthostError(f"all {MAX_SLOTS} test host slots are taken")


def release_slot(slot: int, sdir: Path) -> None:
    with global_lock():
        path = SLOTS / str(slot)
        data = read_json(path)
        if data is not None and data.get("state_dir") == str(sdir):
            path.unlink()


def _find_slot(sdir: Path) -> dict[str, Any]:
    if SLOTS.is_dir():
        for path in SLOTS.iterdir():
            data = read_json(path)
            if path.name.isdigit() and data and data.get("state_dir") == str(sdir):
                slot = int(path.name)
                return {"slot": slot, "netns": f"{NETNS_PREFIX}{slot}-{sdir.name}", "veth": f"{NETNS_PREFIX}{slot}"}
    return {}


def live_addresses() -> set[str]:
    """Instance addresses of slots currently reserved by a live state dir."""
    out: set[str] = set()
    if SLOTS.is_dir():
        for path in SLOTS.iterdir():
            if path.name.isdigit() and not _slot_is_free(path):
                out.update(slot_address(int(path.name)))
    return out


# ---------------------------------------------------------------- network namespace


def netns_names() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except OSError:
        return []


def _clear_slot_net(slot: int) -> None:
    """Remove leftovers of an earlier owner of this slot."""
    for ns in netns_names():
        if ns.startswith(f"{NETNS_PREFIX}{slot}-"):
            run(["ip", "netns", "del", ns], check=False)
    if Path(f"/sys/class/net/{NETNS_PREFIX}{slot}").exists():
        run(["ip", "link", "del", f"{NETNS_PREFIX}{slot}"], check=False)


def setup_net(inst: dict[str, Any]) -> None:
    ns, veth = inst["netns"], inst["veth"]
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "addr", "add", f"{inst['host_address']}/30", "dev", veth])
    run(["ip", "link", "set", veth, "up"])
    run(["ip", "-n", ns, "addr", "add", f"{inst['address']}/30", "dev", "eth0"])
    run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def teardown_net(inst: dict[str, Any]) -> None:
    if inst.get("netns") in netns_names():
        run(["ip", "netns", "del", inst["netns"]], check=False)
    if inst.get("veth") and Path(f"/sys/class/net/{inst['veth']}").exists():
        run(["ip", "link", "del", inst["veth"]], check=False)


# ---------------------------------------------------------------- root filesystem


def setup_rootfs(inst: dict[str, Any], rootfs: Path) -> None:
    sdir = Path(inst["state_dir"])
    for sub in ("upper", "work", "merged"):
        (sdir / sub).mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={rootfs},upperdir={sdir / 'upper'},workdir={sdir / 'work'}"
    run(["mount", "-t", "overlay", "overlay", "-o", opts, str(sdir / "merged")])
    merged = sdir / "merged"
    hostname = inst["hostname"]
    (merged / "etc/hostname").write_text(hostname + "\n")
    (merged / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n{inst['address']}\t{hostname}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    ssh_dir = merged / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(Path(str(KEY) + ".pub").read_text())
    keys.chmod(0o600)


# ---------------------------------------------------------------- boot / stop


def nspawn_argv(inst: dict[str, Any]) -> list[str]:
    return [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        "--console=read-only",
        "--settings=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        f"--network-namespace-path=/run/netns/{inst['netns']}",
        f"--machine={inst['hostname']}",
        f"--directory={inst['merged']}",
    ]


def start_nspawn(inst: dict[str, Any]) -> None:
    """Start nspawn detached, inside the instance's own cgroups (entered by a tiny sh
    wrapper that then execs nspawn, so the pid stays nspawn's)."""
    moves = []
    for cg in cgroup_dirs(inst["netns"]):
        cg.mkdir(parents=True, exist_ok=True)
        moves.append(f"echo $$ > {shlex.quote(str(cg / 'cgroup.procs'))}")
    argv = ["sh", "-c", " && ".join([*moves, 'exec "$@"']), "sh", *nspawn_argv(inst)]
    with open(Path(inst["state_dir"]) / "console.log", "wb") as logf:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[inst["name"]] = child
    inst["pid"] = child.pid
    inst["pid_start"] = (proc_stat(child.pid) or ("", 0))[1]


def console_tail(inst: dict[str, Any], lines: int = 25) -> str:
    try:
        text = (Path(inst["state_dir"]) / "console.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def tcp_open(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def wait_ready(inst: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not tcp_open(inst["address"]):
        if not pid_alive(inst["pid"], inst["pid_start"]):
            raise TesthostError(f"{inst['name']}: systemd-nspawn exited early:\n{console_tail(inst)}")
        if time.monotonic() > deadline:
            raise TesthostError(f"{inst['name']}: no SSH after {timeout:.0f}s:\n{console_tail(inst)}")
        time.sleep(0.2)
    left = max(deadline - time.monotonic(), 10)
    argv = [*ssh_argv_for(inst["address"]), "systemctl is-system-running --wait; systemctl --failed --no-legend"]
    try:
        res = run(argv, check=False, timeout=left)
    except subprocess.TimeoutExpired as exc:
        raise TesthostError(f"{inst['name']}: systemd did not settle in {timeout:.0f}s") from exc
    state = res.stdout.split("\n", 1)[0].strip()
    if state != "running":
        raise TesthostError(
            f"{inst['name']}: system state {state!r} (rc {res.returncode}); "
            f"failed units / stderr:\n{res.stdout}{res.stderr}"
        )


def instance_running(inst: dict[str, Any]) -> bool:
    return bool(inst.get("pid")) and pid_alive(inst["pid"], inst.get("pid_start"))


def public_info(inst: dict[str, Any]) -> dict[str, Any]:
    return {"name": inst["name"], "address": inst["address"], "port": 22, "user": "root", "identity_file": str(KEY)}


def _new_instance(name: str, slot: int) -> dict[str, Any]:
    host_addr, addr = slot_address(slot)
    sdir = state_dir(name)
    return {
        "name": name,
        "hostname": name.replace("_", "-"),
        "slot": slot,
        "netns": f"{NETNS_PREFIX}{slot}-{name}",
        "veth": f"{NETNS_PREFIX}{slot}",
        "address": addr,
        "host_address": host_addr,
        "state_dir": str(sdir),
        "merged": str(sdir / "merged"),
        "pid": None,
        "pid_start": None,
    }


def _up_one(name: str, rootfs: Path, reuse: bool, timeout: float) -> dict[str, Any]:
    with instance_lock(name):
        old = read_json(state_dir(name) / "instance.json")
        if old is not None and instance_running(old):
            if reuse:
                log(f"{name}: reusing running instance at {old['address']}")
                return public_info(old)
            raise TesthostError(
                f"{name} is already running (pid {old['pid']}, {old['address']}); "
                f"run `testhost.py down {name}` first or use --reuse"
            )
        if state_dir(name).exists():
            log(f"{name}: cleaning stale state")
            _down_locked(name)
        with global_lock():
            state_dir(name).mkdir(parents=True)
            slot = allocate_slot(name, state_dir(name))
        inst = _new_instance(name, slot)
        write_json(state_dir(name) / "instance.json", inst)
        try:
            setup_rootfs(inst, rootfs)
            setup_net(inst)
            start_nspawn(inst)
            write_json(state_dir(name) / "instance.json", inst)
            wait_ready(inst, timeout)
        except BaseException:
            log(f"{name}: boot failed, tearing down")
            _down_locked(name)
            raise
        log(f"{name}: up at {inst['address']}")
        return public_info(inst)


def up(
    names: list[str], reuse: bool = False, timeout: float = BOOT_TIMEOUT, image: str = BASE_IMAGE
) -> list[dict[str, Any]]:
    """Boot instances of one image in parallel; all-or-nothing: on any failure the new
    ones are removed."""
    if len(set(names)) != len(names):
        raise TesthostError(f"duplicate names in {names}")
    for name in names:
        check_name(name)
    rootfs = ensure_image(image)
    ensure_key()
    raise_inotify_limits()
    HOSTS.mkdir(parents=True, exist_ok=True)
    CP_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(names), 1)) as pool:
        futures = {pool.submit(_up_one, n, rootfs, reuse, timeout): n for n in names}
        for fut in concurrent.futures.as_completed(futures):
            try:
                results[futures[fut]] = fut.result()
            except Exception as exc:
                errors.append(str(exc))
    if errors:
        down([n for n in results])
        raise TesthostError("; ".join(errors))
    return [results[n] for n in names]


def _stop_nspawn(inst: dict[str, Any]) -> None:
    pid = inst.get("pid")
    if pid and pid_alive(pid, inst.get("pid_start")):
        terminate([pid], STOP_TIMEOUT)
    reap(inst["name"])


def _kill_ssh_clients(address: str) -> None:
    clients = [pid for pid, _ip in tcp_clients(lambda ip: ip == address)]
    if clients:
        log(f"closing {len(clients)} ssh connection(s) to {address}: {clients}")
        terminate(clients, 3)
    for sock in CP_DIR.glob(f"{address}-*") if CP_DIR.is_dir() else []:
        with contextlib.suppress(OSError):
            sock.unlink()


def _kill_cgroups(inst: dict[str, Any]) -> None:
    if not inst.get("netns"):
        return
    dirs = cgroup_dirs(inst["netns"])
    pids = cgroup_pids(dirs)
    if pids:
        log(f"killing {len(pids)} leftover process(es) in the cgroups of {inst['name']}")
        kill_and_wait(pids, signal.SIGKILL, 5)
    remove_cgroups(dirs)


def _kill_rooted(merged: str) -> None:
    if not os.path.ismount(merged):
        return
    pids = pids_rooted_at([merged])
    if pids:
        log(f"killing {len(pids)} leftover process(es) rooted in {merged}")
        kill_and_wait(pids, signal.SIGKILL, 5)


def _down_locked(name: str) -> None:
    sdir = state_dir(name)
    inst = read_json(sdir / "instance.json") or {"name": name, "state_dir": str(sdir), "merged": str(sdir / "merged")}
    _stop_nspawn(inst)
    if inst.get("address"):
        _kill_ssh_clients(inst["address"])
    _kill_rooted(inst["merged"])
    if inst.get("slot") is None:  # instance.json lost: find our slot in the registry
        inst.update(_find_slot(sdir))
    _kill_cgroups(inst)
    teardown_net(inst)
    unmount_under(sdir)
    if sdir.exists():
        shutil.rmtree(sdir)
    if inst.get("slot") is not None:
        release_slot(inst["slot"], sdir)


def down(names: list[str]) -> None:
    """Stop and remove instances; unknown or already stopped names are fine."""
    for name in names:
        check_name(name)
    if not names:
        return

    def one(name: str) -> None:
        with instance_lock(name):
            if state_dir(name).exists() or name in _children:
                start = time.monotonic()
                _down_locked(name)
                log(f"{name}: down in {time.monotonic() - start:.1f}s")

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        for fut in [pool.submit(one, n) for n in names]:
            fut.result()


def running_names() -> list[str]:
    if not HOSTS.is_dir():
        return []
    return sorted(p.name for p in HOSTS.iterdir() if p.is_dir() and NAME_RE.match(p.name))


def down_all() -> None:
    down(running_names())


def instance_info(name: str) -> dict[str, Any]:
    inst = read_json(state_dir(name) / "instance.json")
    if inst is None or not instance_running(inst):
        raise TesthostError(f"instance {name} is not running")
    return inst


def ssh_argv_for(address: str) -> list[str]:
    return ["ssh", *SSH_OPTIONS, "-i", str(KEY), "-p", "22", f"root@{address}"]


def ssh_argv(name: str) -> list[str]:
    """ssh command line (without the remote command) for a running instance."""
    return ssh_argv_for(instance_info(name)["address"])


# ---------------------------------------------------------------- leak check


def _slot_owners() -> dict[int, str]:
    """Slot number -> the state dir that reserved it (any checkout's)."""
    owners: dict[int, str] = {}
    if SLOTS.is_dir():
        for path in SLOTS.iterdir():
            data = read_json(path)
            if path.name.isdigit() and data and isinstance(data.get("state_dir"), str):
                owners[int(path.name)] = data["state_dir"]
    return owners


@dataclasses.dataclass
class Scope:
    """What a leak check looks at: every harness resource (names None) or those of names.

    A named check is this checkout's: another checkout's instance of the same name (a
    concurrent run, or one killed before it could clean up) is not this run's leftover.
    """

    names: list[str] | None
    slot_owners: dict[int, str] = dataclasses.field(default_factory=_slot_owners)

    @property
    def marks(self) -> list[str]:
        return [HOSTS_MARK] if self.names is None else [f"{HOSTS}/{n}/" for n in self.names]

    def ours(self, path: str) -> bool:
        if self.names is None:
            return HOSTS_MARK in path + "/"
        return any((path + "/").startswith(m) for m in self.marks)

    def netns_match(self, ns: str) -> bool:
        """Netns and cgroup names: zth<slot>-<name>; named, not those of a slot another checkout holds."""
        m = re.fullmatch(rf"{NETNS_PREFIX}(\d+)-(.+)", ns)
        if m is None:
            return False
        if self.names is None:
            return True
        owner = self.slot_owners.get(int(m.group(1)))
        return m.group(2) in self.names and (owner is None or owner == str(state_dir(m.group(2))))


def _mount_leaks(scope: Scope) -> list[str]:
    return [f"mount {mnt}" for mnt, _opts in mountpoints() if scope.ours(mnt)]


def _netns_leaks(scope: Scope) -> list[str]:
    return [f"netns {ns}" for ns in netns_names() if scope.netns_match(ns)]


def _process_leaks(scope: Scope) -> list[str]:
    """nspawn processes, processes rooted in an instance, processes in an instance netns."""
    ns_ids = {file_id(f"/run/netns/{ns}") for ns in netns_names() if scope.netns_match(ns)} - {None}
    rooted = set(pids_rooted_at([m for m, _ in mountpoints() if scope.ours(m) and m.endswith("/merged")]))
    found = []
    for pid in all_pids():
        if pid == os.getpid() or not pid_alive(pid):
            continue
        argv, comm = proc_cmdline(pid), proc_comm(pid)
        if comm == "systemd-nspawn" and any(scope.ours(a) for a in argv):
            found.append(f"systemd-nspawn pid {pid}: {' '.join(argv)}")
        elif pid in rooted:
            found.append(f"process {pid} ({comm}) rooted in a test host")
        elif ns_ids and file_id(f"/proc/{pid}/ns/net") in ns_ids:
            found.append(f"process {pid} ({comm}) in a test host netns")
    return found


def _cgroup_leaks(scope: Scope) -> list[str]:
    found = []
    for hier in cgroup_hierarchies():
        parent = Path(hier) / CGROUP_PARENT
        if parent.is_dir():
            found += [f"cgroup {d}" for d in sorted(parent.iterdir()) if d.is_dir() and scope.netns_match(d.name)]
    return found


def _connection_leaks(scope: Scope) -> list[str]:
    """TCP connections to harness addresses (ssh clients, ControlPersist masters).
    A scoped check ignores those to addresses that a live instance owns."""
    live = live_addresses() if scope.names is not None else set()
    return [
        f"connection pid {pid} ({proc_comm(pid)}) -> {ip}: {' '.join(proc_cmdline(pid))}"
        for pid, ip in tcp_clients(in_harness_range)
        if ip not in live
    ]


def _registry_leaks() -> list[str]:
    """Unscoped only: ssh masters on our control sockets, veths, sockets, instances, slots."""
    found = [
        f"ssh master pid {pid}: {proc_cmdline(pid)[0]}"
        for pid in all_pids()
        if proc_cmdline(pid)[:1] and proc_cmdline(pid)[0].startswith(f"ssh: {CP_DIR}/") and pid_alive(pid)
    ]
    with contextlib.suppress(OSError):
        found += [
            f"interface {dev}"
            for dev in sorted(os.listdir("/sys/class/net"))
            if re.fullmatch(rf"{NETNS_PREFIX}\d+", dev)
        ]
    if CP_DIR.is_dir():
        found += [f"control socket {p}" for p in sorted(CP_DIR.iterdir())]
    found += [f"instance {n} (state {state_dir(n)})" for n in running_names()]
    if SLOTS.is_dir():
        found += [
            f"slot {p.name} reserved by {(read_json(p) or {}).get('state_dir')}"
            for p in sorted(SLOTS.iterdir())
            if p.name.isdigit()
        ]
    return found


def leaks(names: list[str] | None = None) -> list[str]:
    """Everything this harness left behind, machine-wide (running instances included);
    or, with names, what belongs to those instances plus ssh connections to harness
    addresses that no live instance owns (safe while other sessions run instances)."""
    scope = Scope(None if names is None else list(names))
    found = (
        _mount_leaks(scope)
        + _netns_leaks(scope)
        + _process_leaks(scope)
        + _cgroup_leaks(scope)
        + _connection_leaks(scope)
    )
    if names is None:
        found += _registry_leaks()
    return found


# ---------------------------------------------------------------- CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="testhost.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("image", help="build or reuse an image, print its rootfs")
    pi.add_argument("name", nargs="?", default=BASE_IMAGE, help=f"{BASE_IMAGE} (default) or {', '.join(REAL_ZULIP_IMAGES)}")
    pu = sub.add_parser("up", help="boot instances")
    pu.add_argument("--image", default=BASE_IMAGE, help=f"{BASE_IMAGE} (default) or {', '.join(REAL_ZULIP_IMAGES)}")
    pu.add_argument("--reuse", action="store_true", help="return an already running NAME instead of failing")
    pu.add_argument("--timeout", type=float, default=BOOT_TIMEOUT)
    pu.add_argument("names", nargs="+")
    pd = sub.add_parser("down", help="stop and remove instances")
    pd.add_argument("--all", action="store_true", help="every instance of this checkout")
    pd.add_argument("names", nargs="*")
    pl = sub.add_parser("leaks", help="list leftovers, exit 1 if any")
    pl.add_argument("names", nargs="*", help="only check these instances")
    sub.add_parser("list", help="running instances of this checkout")
    ps = sub.add_parser("ssh", help="run a command on an instance")
    ps.add_argument("name")
    ps.add_argument("command", nargs=argparse.REMAINDER)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == "image":
            print(ensure_image(args.name))
        elif args.cmd == "up":
            for info in up(args.names, reuse=args.reuse, timeout=args.timeout, image=args.image):
                print(json.dumps(info), flush=True)
        elif args.cmd == "down":
            if args.all == bool(args.names):
                raise TesthostError("give NAME... or --all")
            down_all() if args.all else down(args.names)
        elif args.cmd == "leaks":
            items = leaks(args.names or None)
            for item in items:
                print(item)
            return 1 if items else 0
        elif args.cmd == "list":
            for name in running_names():
                inst = read_json(state_dir(name) / "instance.json")
                if inst and instance_running(inst):
                    print(json.dumps(public_info(inst)))
        elif args.cmd == "ssh":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            return subprocess.call([*ssh_argv(args.name), "--", *command])
    except TesthostError as exc:
        print(f"testhost: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
