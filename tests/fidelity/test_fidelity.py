"""The stand-in answers like a real Zulip Server (marker testhost).

For each version with a real-Zulip test-host image (tests/testhost/build_zulip_image.sh):
boot the real image and a plain test host, install the stand-in there with the
real server's version, realms, EXTERNAL_HOST and front end (read from the real
host itself), run fidelity_probe.py as root on both at once, and compare the
two outputs masked as compare.py explains. Any difference fails the test with
a diff. The image is built on first use (9.2 ~20 min, 5.6 ~10 min); the test
skips only when its sources (/work/shared/zulip-src) are missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

# The stand-in's files are copied to hosts as they are: keep __pycache__ out of them.
sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for extra in (HERE, REPO / "tests" / "standin", REPO / "tests" / "zulip_standin" / "files", REPO / "tests" / "testhost"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import compare  # noqa: E402
from targets import run_install_playbook, write_inventory  # noqa: E402

PROBE = HERE / "fidelity_probe.py"
REAL_LEDGER = REPO / "molecule" / "_shared" / "files" / "real_ledger.py"  # the probe imports it
VERSIONS = ["9.2", "5.6"]
REALMS = ["acme", ""]  # what the real images hold besides zulipinternal
STANDIN_MANAGE_DELAY = 0.5  # real: 7-9 s per manage.py call; the stand-in need not be slow here
STANDIN_RESTART_DELAY = 0.5
REAL_BOOT_TIMEOUT = 600.0


def zulip_src_dir() -> Path:
    # Where build_zulip_image.sh looks (ZULIP_SRC_DIR overrides <repo>/../shared/zulip-src).
    return Path(os.environ.get("ZULIP_SRC_DIR") or REPO.parent / "shared" / "zulip-src")


def ssh(testhost: Any, name: str, command: str, stdin: str = "", timeout: float = 900) -> str:
    proc = subprocess.run([*testhost.ssh_argv(name), command], input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{name}: {command!r} rc {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def real_server_shape(testhost: Any, name: str) -> dict[str, Any]:
    """EXTERNAL_HOST and front end of the real server, as the stand-in should copy them."""
    settings = ssh(testhost, name, "cat /etc/zulip/settings.py")
    external_host = re.findall(r"""^EXTERNAL_HOST\s*=\s*["']([^"']+)["']""", settings, re.M)[-1]
    conf = ssh(testhost, name, "cat /etc/zulip/zulip.conf")
    http_only = bool(re.search(r"^\s*http_only\s*=\s*(1|y|t|true|yes|enable|enabled)\s*$", conf, re.M | re.I))
    port = re.findall(r"^\s*nginx_listen_port\s*=\s*(\d+)\s*$", conf, re.M)
    return {"external_host": external_host, "http_only": http_only, "nginx_listen_port": port[-1] if port else ""}


def install_standin(testhost: Any, name: str, info: dict[str, Any], version: str, shape: dict[str, Any],
                    workdir: Path) -> None:
    inventory = workdir / f"{name}.yml"
    write_inventory(inventory, [(name, info, {
        "zulip_standin_flavour": version, "zulip_standin_realms": REALMS,
        "zulip_standin_external_host": shape["external_host"], "zulip_standin_http_only": shape["http_only"],
        "zulip_standin_nginx_listen_port": shape["nginx_listen_port"],
        "zulip_standin_manage_delay": STANDIN_MANAGE_DELAY, "zulip_standin_restart_delay": STANDIN_RESTART_DELAY})])
    result = run_install_playbook(inventory)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def run_probe(testhost: Any, name: str, token: str) -> dict[str, Any]:
    ssh(testhost, name, "cat > /root/real_ledger.py", stdin=REAL_LEDGER.read_text())
    ssh(testhost, name, "cat > /root/fidelity_probe.py", stdin=PROBE.read_text())
    out = ssh(testhost, name, "python3 /root/fidelity_probe.py", stdin=json.dumps({"token": token}))
    assert token not in out, f"{name}: the probe printed the token"
    return json.loads(out)


def timing_report(version: str, real: dict[str, Any], standin: dict[str, Any]) -> str:
    lines = [f"fidelity {version} timings (s): step real / stand-in"]
    for step, seconds in real["timings"].items():
        lines.append(f"  {step}: {seconds} / {standin['timings'].get(step)}")
    return "\n".join(lines)


@pytest.mark.testhost
@pytest.mark.parametrize("version", [pytest.param(v, marks=pytest.mark.xdist_group(f"fidelity-{v}"), id=v)
                                     for v in VERSIONS])
def test_standin_matches_real_zulip(version: str, tmp_path: Path) -> None:
    source = zulip_src_dir() / f"zulip-server-{version}.tar.gz"
    if not source.is_file():
        pytest.skip(f"cannot build the real Zulip {version} image: {source} is missing")
    import testhost  # tests/testhost/testhost.py

    suffix = f"{version.replace('.', '-')}-{os.getpid()}"
    real_name, standin_name = f"fidelity-real-{suffix}", f"fidelity-standin-{suffix}"
    token = secrets.token_urlsafe(32)  # made here, sent on stdin only, never printed
    try:
        with ThreadPoolExecutor(2) as pool:
            # A real Zulip starts PostgreSQL, RabbitMQ, supervisor... at boot: give it longer.
            real_up = pool.submit(testhost.up, [real_name], timeout=REAL_BOOT_TIMEOUT, image=f"zulip-{version}")
            standin_info = pool.submit(testhost.up, [standin_name]).result()[0]
            real_up.result()
        install_standin(testhost, standin_name, standin_info, version, real_server_shape(testhost, real_name),
                        tmp_path)
        with ThreadPoolExecutor(2) as pool:
            real_run = pool.submit(run_probe, testhost, real_name, token)
            standin_raw = run_probe(testhost, standin_name, token)
            real_raw = real_run.result()
    finally:
        testhost.down([real_name, standin_name])
    (tmp_path / "real.json").write_text(json.dumps(real_raw, indent=1))
    (tmp_path / "standin.json").write_text(json.dumps(standin_raw, indent=1))
    timings = timing_report(version, real_raw, standin_raw)
    print(timings)
    differences = compare.diff(compare.view(real_raw), compare.view(standin_raw))
    assert not differences, (f"the stand-in differs from a real Zulip {version} (raw outputs in {tmp_path}):\n"
                             + "\n".join(differences) + "\n" + timings)
