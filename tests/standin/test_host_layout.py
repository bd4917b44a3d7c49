"""What only a booted host can show: users, modes, systemd, sudo, TLS, reinstall (marker testhost)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from targets import EXTERNAL_HOST, FLAVOURS, HostTarget, HostTargets, host_marks, realm_host, run_install_playbook

pytestmark = pytest.mark.testhost

STAT = "stat -c '%a %U %G' "


@pytest.fixture(params=[pytest.param(f, marks=host_marks(f), id=f) for f in FLAVOURS])
def host(request: pytest.FixtureRequest) -> HostTarget:
    return request.getfixturevalue("host_targets").get(request.param)


def sh(host: HostTarget, command: str, user: str = "root") -> str:
    result = host.run(["sh", "-c", command], user=user)
    assert result.rc == 0, result
    return result.out


def test_zulip_user_and_group(host: HostTarget) -> None:
    assert sh(host, "getent passwd zulip | cut -d: -f6,7").strip() == "/home/zulip:/bin/bash"
    assert sh(host, "id -gn zulip").strip() == "zulip"


def test_deployment_layout(host: HostTarget) -> None:
    current = sh(host, "readlink /home/zulip/deployments/current").strip()
    assert re.fullmatch(r"/home/zulip/deployments/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", current)
    assert sh(host, "readlink /home/zulip/deployments/last").strip() == current
    for name in ("manage.py", "scripts/restart-server"):
        assert sh(host, f"{STAT} {current}/{name}").split()[0] == "755"
    assert sh(host, f"cat {current}/version.py").startswith(f'ZULIP_VERSION = "{host.flavour}"\n')
    models = "zerver/models.py" if host.flavour == "5.6" else "zerver/models/__init__.py"
    sh(host, f"test -f {current}/{models}")
    assert sh(host, f"readlink {current}/zproject/prod_settings.py").strip() == "/etc/zulip/settings.py"


def test_etc_zulip_modes(host: HostTarget) -> None:
    assert sh(host, STAT + "/etc/zulip/settings.py").split() == ["644", "zulip", "zulip"]
    assert sh(host, STAT + "/etc/zulip/zulip-secrets.conf").split() == ["640", "zulip", "zulip"]
    secrets = sh(host, "cat /etc/zulip/zulip-secrets.conf")
    assert secrets.startswith("[secrets]\n") and "\nsecret_key = " in secrets


def test_state_files(host: HostTarget) -> None:
    assert sh(host, STAT + "/var/lib/zulip-standin/ledger.jsonl").split() == ["622", "root", "root"]
    assert sh(host, STAT + "/var/lib/zulip-standin/db/zulip.db").split()[1:] == ["zulip", "zulip"]
    tables = host.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'zerver_scimclient'")
    assert bool(tables) == (host.flavour == "5.6")
    assert host.sql("SELECT id, string_id FROM zerver_realm ORDER BY id")[0] == [1, "zulipinternal"]


def test_service_runs_as_zulip_on_443(host: HostTarget) -> None:
    assert sh(host, "systemctl is-active zulip-standin.service").strip() == "active"
    assert sh(host, "systemctl is-enabled zulip-standin.service").strip() == "enabled"
    pid = host.server_pid()
    assert sh(host, f"ps -o user= -p {pid}").strip() == "zulip"
    assert sh(host, "systemctl show -p MainPID --value zulip-standin.service").strip() == str(pid)
    listening = sh(host, "ss -Hltn")
    # Zulip's default front end: TLS on 443 and the redirect to https on 80, on every address.
    assert re.search(r"0\.0\.0\.0:443\b", listening) and re.search(r"0\.0\.0\.0:80\b", listening)


def test_tls_certificate_covers_host_and_subdomains(host: HostTarget) -> None:
    # The probe verifies TLS against the installed certificate for each Host name.
    root, acme = host.http({"path": "/api/v1/server_settings", "host": EXTERNAL_HOST},
                           {"path": "/api/v1/server_settings", "host": realm_host("acme")}, verify=True)
    assert root["status"] == 200 and acme["status"] == 200
    plain = host.run(["/usr/bin/python3", "/opt/zulip-standin/probe.py"],
                     stdin='{"port": 80, "scheme": "http", "requests": [{"path": "/api/v1/server_settings", '
                           f'"host": "{EXTERNAL_HOST}"}}]}}')
    assert json.loads(plain.out)[0]["status"] == 301  # plain HTTP only redirects to https


def test_sudo_rule_is_narrow(host: HostTarget) -> None:
    rules = sh(host, "sudo -l -U zulip")
    assert "(root) NOPASSWD: /usr/bin/systemctl restart zulip-standin.service" in rules
    denied = host.run(["sudo", "-n", "/usr/bin/systemctl", "stop", "zulip-standin.service"], user="zulip")
    assert denied.rc != 0


def test_restart_leaves_a_changed_process_in_systemd(host: HostTarget) -> None:
    before = sh(host, "systemctl show -p MainPID --value zulip-standin.service").strip()
    assert host.restart().rc == 0
    after = sh(host, "systemctl show -p MainPID --value zulip-standin.service").strip()
    assert after != before and after == str(host.server_pid())


@pytest.mark.xdist_group("standin-host-9.0")
def test_reinstall_resets_to_a_fresh_state(host_targets: HostTargets, tmp_path: Path) -> None:
    """Re-running the playbook with its defaults gives a fresh stand-in that pays 1.0 s per manage.py."""
    host = host_targets.get("9.0")
    email = f"gone-{uuid.uuid4().hex[:6]}@example.test"
    host.sql("INSERT INTO zerver_userprofile (realm_id, delivery_email, full_name) VALUES (2, ?, 'Gone')", email)
    host.write(host.settings_path, host.settings_on_disk + "\n# local edit\n")
    # The same host, without the short delays the other tests use: the playbook's defaults apply.
    entry = json.loads(host.inventory.read_text())["all"]["hosts"][host.name]  # type: ignore[attr-defined]
    entry = {k: v for k, v in entry.items() if not k.endswith("_delay")}
    inventory = tmp_path / "defaults.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {host.name: entry}}}))
    result = run_install_playbook(inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    host.fresh_state()
    host.manage_delay = host.restart_delay = 1.0
    assert host.ledger() == []
    assert not host.sql("SELECT 1 FROM zerver_userprofile WHERE delivery_email = ?", email)
    assert "# local edit" not in host.base_settings
    timed = host.manage("list_realms")
    assert timed.rc == 0 and timed.seconds >= 1.0 and host.ledger()[-1]["seconds"] >= 1.0
