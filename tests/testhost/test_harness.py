"""Tests of the test-host harness itself: several booted hosts at once, the CLI,
a whole molecule scenario, and that nothing is left behind afterwards.

Needs root, systemd-nspawn, mmdebstrap (first image build) and ip: see build_image.sh.
Leak checks are scoped to the names these tests use (plus ssh connections to
harness addresses that no live instance owns), so another checkout or pytest
session booting its own hosts at the same time does not fail them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import testhost  # noqa: E402

CLI = [sys.executable, str(HERE / "testhost.py")]

pytestmark = [
    pytest.mark.testhost,
    pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root"),
]


def remote(name: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*testhost.ssh_argv(name), command], capture_output=True, text=True, timeout=60)


@pytest.fixture
def three_hosts() -> Iterator[list[dict[str, object]]]:
    names = [f"th{os.getpid()}-{i}" for i in range(1, 4)]
    try:
        yield testhost.up(names)
    finally:
        testhost.down(names)


def test_three_hosts_boot_at_once(three_hosts: list[dict[str, object]]) -> None:
    names = [h["name"] for h in three_hosts]
    addresses = [str(h["address"]) for h in three_hosts]
    assert len(set(addresses)) == 3, addresses
    nets = {ipaddress.ip_interface(f"{a}/30").network for a in addresses}
    assert len(nets) == 3, f"instances share a /30: {addresses}"
    for host in three_hosts:
        assert host["port"] == 22 and host["user"] == "root"
        assert Path(str(host["identity_file"])).is_file()
        assert ipaddress.ip_address(host["address"]) in ipaddress.ip_network("169.254.0.0/16")
        res = remote(str(host["name"]), "hostname; hostname -I; systemctl is-system-running")
        assert res.returncode == 0, res.stderr
        hostname, ips, state = res.stdout.split("\n")[:3]
        assert hostname == str(host["name"]).replace("_", "-")
        assert ips.split() == [host["address"]], f"{host['name']} sees {ips!r}"
        assert state == "running"
    # Each host knows only its own address: no other instance's address on its links.
    res = remote(str(names[0]), "ip -o -4 addr show")
    for other in addresses[1:]:
        assert other not in res.stdout


def test_cli_up_twice_ssh_and_down() -> None:
    name = f"th{os.getpid()}-cli"
    try:
        out = subprocess.run([*CLI, "up", name], capture_output=True, text=True, timeout=300, check=True)
        info = json.loads(out.stdout.strip())
        assert set(info) == {"name", "address", "port", "user", "identity_file"}
        again = subprocess.run([*CLI, "up", name], capture_output=True, text=True, timeout=300)
        assert again.returncode != 0 and "already running" in again.stderr
        reused = subprocess.run([*CLI, "up", "--reuse", name], capture_output=True, text=True, timeout=300)
        assert json.loads(reused.stdout) == info
        rc = subprocess.run([*CLI, "ssh", name, "--", "exit", "7"], capture_output=True, timeout=60)
        assert rc.returncode == 7
    finally:
        subprocess.run([*CLI, "down", name], check=True, timeout=120)
    assert subprocess.run([*CLI, "down", name], timeout=60).returncode == 0  # idempotent
    assert testhost.leaks([name]) == []


def test_down_unknown_name_is_fine() -> None:
    testhost.down([f"th{os.getpid()}-never"])


def test_bad_names_are_refused() -> None:
    for bad in ("", "-x", "a/b", "a b", "x" * 49):
        with pytest.raises(testhost.TesthostError):
            testhost.up([bad])


@pytest.mark.molecule
def test_molecule_smoke_leaves_nothing() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PY_COLORS"] = "0"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "molecule"), "test", "-s", "smoke"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert testhost.leaks(["smoke-1", "smoke-2"]) == []


def test_a_named_leak_check_is_this_checkouts(tmp_path: Path) -> None:
    """An instance of the same name booted by another checkout (another cache dir: a
    concurrent run, or one killed before it cleaned up) is that checkout's leftover, not
    this one's; its own check sees it. CI once failed on a killed run's hosts."""
    name = f"th{os.getpid()}-other"
    image = testhost.ensure_image()
    other = tmp_path / "other-checkout"
    other.mkdir()
    (other / image.parent.name).symlink_to(image.parent)  # the same image, not a second build
    env = {**os.environ, "TESTHOST_CACHE_DIR": str(other)}
    try:
        subprocess.run([*CLI, "up", name], env=env, capture_output=True, text=True, timeout=300, check=True)
        assert testhost.leaks([name]) == []
        theirs = subprocess.run([*CLI, "leaks", name], env=env, capture_output=True, text=True, timeout=60)
        assert theirs.returncode == 1
        assert f"mount {other.resolve()}/hosts/{name}/merged" in theirs.stdout
        assert any(line.startswith("netns zth") and line.endswith(f"-{name}") for line in theirs.stdout.splitlines())
    finally:
        subprocess.run([*CLI, "down", name], env=env, timeout=120, check=True)
    assert subprocess.run([*CLI, "leaks", name], env=env, capture_output=True, timeout=60).returncode == 0
