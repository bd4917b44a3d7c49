"""The front end follows /etc/zulip/zulip.conf like Zulip's puppet (frontend.py).

Default: TLS on 443 (here: a free port standing for it) and nginx's 301 to
https on 80; ``http_only = true``: plain HTTP on ``nginx_listen_port`` and
nothing on 443. Local installs (marker standin) and one booted host per
mode (marker testhost).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from targets import (
    EXTERNAL_HOST,
    HostTarget,
    HostTargets,
    LocalTarget,
    Result,
    Target,
    free_port,
    multiplexed_ssh_argv,
    run_install_playbook,
    write_inventory,
)

PROXY_HOST = "localhost:9991"  # EXTERNAL_HOST of a Zulip behind a reverse proxy


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pinned(target: Target, port: int, scheme: str, host: str, path: str = "/api/v1/server_settings") -> dict[str, Any]:
    """One request to an explicit port and scheme, bypassing the probe's zulip.conf rules."""
    job = {"port": port, "scheme": scheme, "requests": [{"path": path, "host": host}]}
    result = target.run(target.probe_argv(), stdin=json.dumps(job))
    assert result.rc == 0, result
    return json.loads(result.out)[0]


# ---------------------------------------------------------------- local (marker standin)


@pytest.fixture(scope="module")
def https_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    target = LocalTarget("9.2", tmp_path_factory.mktemp("https"), free_port(), 0.0, 0.0, http_port=free_port())
    target.install()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def http_only_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    listen = free_port()
    target = LocalTarget("5.6", tmp_path_factory.mktemp("http-only"), free_port(), 0.0, 0.0,
                         extra_args=("--http-only", "--nginx-listen-port", str(listen),
                                     "--external-host", PROXY_HOST))
    target.listen_port = listen  # type: ignore[attr-defined]
    target.install()
    yield target
    target.stop()


@pytest.mark.standin
def test_default_is_https_with_a_redirect(https_local: LocalTarget) -> None:
    conf = Path(https_local.path("/etc/zulip/zulip.conf")).read_text()
    assert "http_only" not in conf and "nginx_listen_port" not in conf
    served = https_local.get("/api/v1/server_settings", f"acme.{EXTERNAL_HOST}")
    assert served["status"] == 200 and served["json"]["zulip_version"] == "9.2"
    moved = pinned(https_local, https_local.http_port, "http", f"acme.{EXTERNAL_HOST}:80", "/scim/v2/Users?count=1")
    assert moved["status"] == 301
    assert moved["headers"]["location"] == f"https://acme.{EXTERNAL_HOST}/scim/v2/Users?count=1"
    assert "301 Moved Permanently" in moved["body"]


@pytest.mark.standin
def test_http_only_serves_plain_http_on_its_port_and_nothing_on_443(http_only_local: LocalTarget) -> None:
    listen = http_only_local.listen_port  # type: ignore[attr-defined]
    conf = Path(http_only_local.path("/etc/zulip/zulip.conf")).read_text()
    assert re.search(r"^http_only = true$", conf, re.M) and re.search(rf"^nginx_listen_port = {listen}$", conf, re.M)
    assert port_open(listen) and not port_open(http_only_local.https_port)
    # The probe follows zulip.conf: no port or scheme given.
    root = http_only_local.get("/api/v1/server_settings", PROXY_HOST)
    acme = http_only_local.get("/scim/v2/Users?count=1", f"acme.{PROXY_HOST}")
    nosuch = http_only_local.get("/scim/v2/Users?count=1", f"nosuch.{PROXY_HOST}")
    assert root["status"] == 200 and root["json"]["realm_url"] == f"https://{PROXY_HOST}"
    assert (acme["status"], nosuch["status"]) == (500, 404)  # 5.6 without SCIM_CONFIG; unknown realm
    tls = pinned(http_only_local, listen, "https", PROXY_HOST)
    assert tls["status"] is None  # plain HTTP: a TLS handshake fails


@pytest.mark.standin
def test_http_only_restart_waits_for_the_plain_http_server(http_only_local: LocalTarget) -> None:
    before = http_only_local.server_pid()
    result = http_only_local.restart()
    assert result.rc == 0, result
    assert "Zulip restarted successfully!" in result.out
    assert http_only_local.server_pid() != before
    assert http_only_local.get("/api/v1/server_settings", PROXY_HOST)["status"] == 200


# ---------------------------------------------------------------- booted hosts (marker testhost)


def sh(host: HostTarget, command: str) -> Result:
    result = host.run(["sh", "-c", command])
    assert result.rc == 0, result
    return result


def listening_ports(host: HostTarget) -> set[int]:
    return {int(m) for m in re.findall(r":(\d+)\s", sh(host, "ss -Hltn").out)}


@pytest.fixture(scope="module")
def http_only_host(host_targets: HostTargets, tmp_path_factory: pytest.TempPathFactory) -> HostTarget:
    """A 5.6 stand-in behind a reverse proxy, installed by the playbook with the new variables."""
    testhost = host_targets.testhost
    name = f"standin-proxy-{os.getpid()}"  # per session, like host_name() in targets.py
    host_targets.booted.append(name)
    info = testhost.up([name])[0]
    inventory = tmp_path_factory.mktemp("proxy") / "inventory.yml"
    write_inventory(inventory, [(name, info, {
        "zulip_standin_flavour": "5.6", "zulip_standin_http_only": True, "zulip_standin_nginx_listen_port": 9991,
        "zulip_standin_external_host": PROXY_HOST, "zulip_standin_realms": ["acme", ""],
        "zulip_standin_manage_delay": 0.1, "zulip_standin_restart_delay": 0.1})])
    result = run_install_playbook(inventory)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    host = HostTarget("5.6", name, multiplexed_ssh_argv(testhost.ssh_argv(name), host_targets.control_dir), 0.1, 0.1)
    host.after_install()
    host_targets.targets[f"proxy-{name}"] = host  # closed with the others
    return host


@pytest.mark.testhost
@pytest.mark.xdist_group("standin-host-proxy")
def test_http_only_host(http_only_host: HostTarget) -> None:
    conf = sh(http_only_host, "cat /etc/zulip/zulip.conf").out
    assert "http_only = true" in conf and "nginx_listen_port = 9991" in conf
    ports = listening_ports(http_only_host)
    assert 9991 in ports and not ports & {80, 443}
    plain = http_only_host.get("/api/v1/server_settings", f"acme.{PROXY_HOST}")
    assert plain["status"] == 200 and plain["json"]["realm_url"] == f"https://acme.{PROXY_HOST}"
    restarted = http_only_host.restart()
    assert restarted.rc == 0 and "Zulip restarted successfully!" in restarted.out, restarted
    assert http_only_host.get("/scim/v2/Users", f"nosuch.{PROXY_HOST}")["status"] == 404


@pytest.mark.testhost
@pytest.mark.xdist_group("standin-host-9.0")
def test_default_host_redirects_80_to_https(host_targets: HostTargets) -> None:
    host = host_targets.get("9.0")
    assert {80, 443} <= listening_ports(host)
    moved = pinned(host, 80, "http", f"acme.{EXTERNAL_HOST}", "/scim/v2/Users?count=1")
    assert (moved["status"], moved["headers"].get("location")) == (
        301, f"https://acme.{EXTERNAL_HOST}/scim/v2/Users?count=1")
