"""The real-Zulip test-host images (build_zulip_image.sh): what every scenario on
them relies on, proven on a booted instance of each.

- the image's key changes with its recipe and its sources, so a stale image is
  rebuilt (and an unchanged one is not);
- an instance boots with every service up by itself (PostgreSQL, RabbitMQ,
  Redis, memcached, supervisor with Django, Tornado and the queue workers,
  nginx), serves both realms on the front end its version's image is meant to
  test, and has no SCIM configuration yet;
- its front end listens only inside the instance: nothing on the machine's own
  network namespace is opened by it.
"""

from __future__ import annotations

import json
import os
import shutil
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

SRC = Path(os.environ.get("ZULIP_SRC_DIR", REPO.parent / "shared" / "zulip-src"))
BUILD = HERE / "build_zulip_image.sh"
# What each image is built to be (build_zulip_image.sh's header).
IMAGES = {
    "zulip-9.2": {"version": "9.2", "base": "https://127.0.0.1", "external_host": "zulip.example.test"},
    "zulip-5.6": {"version": "5.6", "base": "http://127.0.0.1:9991", "external_host": "localhost:9991"},
}
SERVICES = ["postgresql", "redis-server", "memcached", "rabbitmq-server", "supervisor", "nginx"]

pytestmark = [
    pytest.mark.testhost,
    pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root"),
    # Only a developer's explicit choice skips them; missing sources fail.
    pytest.mark.skipif(os.environ.get("ZULIP_REAL_IMAGES") == "0", reason="ZULIP_REAL_IMAGES=0"),
]


def image_hash(version: str, src: Path) -> str:
    res = subprocess.run(
        ["bash", str(BUILD), version, "--hash"],
        env={**os.environ, "ZULIP_SRC_DIR": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip()


def test_image_key_follows_recipe_and_sources(tmp_path: Path) -> None:
    copy = tmp_path / "zulip-src"
    copy.mkdir()
    for name in ("SHA256SUMS", "build-real-zulip.sh"):
        shutil.copy(SRC / name, copy / name)
    same = image_hash("9.2", copy)
    assert same == image_hash("9.2", SRC), "the key depends on where the sources are, not what they are"
    assert image_hash("5.6", copy) != same, "both versions share a key"
    with (copy / "SHA256SUMS").open("a") as sums:
        sums.write("0" * 64 + "  zulip-server-9.2.tar.gz.extra\n")
    assert image_hash("9.2", copy) != same, "changed sources keep the old image"
    (copy / "SHA256SUMS").write_text((SRC / "SHA256SUMS").read_text())
    with (copy / "build-real-zulip.sh").open("a") as recipe:
        recipe.write("\n# a change to the recipe\n")
    assert image_hash("9.2", copy) != same, "a changed recipe keeps the old image"


def remote(name: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*testhost.ssh_argv(name), command], capture_output=True, text=True, timeout=timeout)


# The ports a Zulip server opens: nginx, PostgreSQL, RabbitMQ (+ epmd), Redis, memcached.
ZULIP_PORTS = {80, 443, 9991, 5432, 5672, 4369, 6379, 11211}


def machine_listeners() -> set[str]:
    """Listening sockets on Zulip's ports in the machine's own network namespace."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    local = [line.split()[3] for line in out.splitlines() if line.strip()]
    return {addr for addr in local if int(addr.rsplit(":", 1)[1]) in ZULIP_PORTS}


@pytest.fixture(params=sorted(IMAGES), ids=sorted(IMAGES))
def real_host(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    image = request.param
    name = "realimg-" + image.replace(".", "-").replace("zulip-", "")
    testhost.ensure_image(image)  # built outside the listener comparison
    before = machine_listeners()
    testhost.up([name], image=image)
    try:
        yield name, {**IMAGES[image], "listeners_before": json.dumps(sorted(before))}
    finally:
        testhost.down([name])
        assert testhost.leaks([name]) == []


@pytest.mark.xdist_group("real_images")
def test_real_image_boots_serving(real_host: tuple[str, dict[str, str]]) -> None:
    name, want = real_host
    version = remote(name, "cat /home/zulip/deployments/current/version.py")
    assert f'ZULIP_VERSION = "{want["version"]}"' in version.stdout

    active = remote(name, "systemctl is-active " + " ".join(SERVICES))
    assert active.stdout.split() == ["active"] * len(SERVICES), active.stdout + active.stderr

    # Serving both realms takes a while after boot (Django, Tornado, workers).
    probe = (
        "for i in $(seq 150); do ok=1; for h in {ext} acme.{ext}; do "
        "c=$(curl -sk -o /dev/null -w '%{{http_code}}' -H \"Host: $h\" {base}/api/v1/server_settings); "
        '[ "$c" = 200 ] || ok=0; done; [ $ok = 1 ] && echo serving && exit 0; sleep 2; done; exit 1'
    ).format(ext=want["external_host"], base=want["base"])
    assert remote(name, probe, timeout=360).stdout.strip() == "serving"

    programs = remote(name, "supervisorctl status").stdout
    for group in ("zulip-django", "zulip-tornado", "zulip-workers"):
        assert any(line.startswith(group) and "RUNNING" in line for line in programs.splitlines()), programs

    realms = remote(name, "su zulip -c '/home/zulip/deployments/current/manage.py list_realms'", timeout=180)
    lines = realms.stdout.splitlines()
    assert any(line.split()[1:2] == ["acme"] for line in lines if line.split()), realms.stdout
    assert any(line.split()[1:2] == ["''"] for line in lines if line.split()), realms.stdout

    settings = remote(name, "grep -c '^SCIM_CONFIG' /etc/zulip/settings.py; stat -c '%a %U:%G' /etc/zulip/settings.py /etc/zulip/zulip-secrets.conf")
    assert settings.stdout.split("\n")[0] == "0", "the image starts with a SCIM configuration"
    assert settings.stdout.split("\n")[1:3] == ["644 zulip:zulip", "640 zulip:zulip"]

    # The front end and every other service listen inside the instance only.
    assert machine_listeners() <= set(json.loads(want["listeners_before"])), "the instance opened a port on the machine"
