"""The stand-in's upgrade script (files/upgrade.py) does what Zulip's upgrade-zulip does, locally.

A new deployment with the newer version's files, `current` re-pointed by its restart-server (`last` at
the old one), /etc/zulip byte for byte as it was, Zulip's deployment lock taken and released, and across
6.0 the SCIM client table gone (migration 0415_delete_scimclient).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from targets import EXTERNAL_HOST, FILES, LocalTarget, free_port

pytestmark = pytest.mark.standin

SCIM = '\nSCIM_CONFIG = {"acme": {"bearer_token": "tok-acme", "scim_client_name": "okta", "name_formatted_included": False}}\n'


def upgrade(target: LocalTarget, to: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FILES / "upgrade.py"), "--to", to, "--prefix", target.prefix, "--local"],
                          capture_output=True, text=True, timeout=120, check=False)


def etc_zulip(target: LocalTarget) -> dict[str, str]:
    folder = Path(target.path("/etc/zulip"))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def old(tmp_path: Path):
    target = LocalTarget("5.6", tmp_path / "zulip", free_port(), 0.0, 0.0)
    target.install()
    yield target
    target.stop()


def test_upgrade_from_5_6_to_9_2_like_zulip(old: LocalTarget) -> None:
    old.write(old.settings_path, old.base_settings + SCIM)
    assert old.restart().rc == 0
    assert old.manage("add_scim_client", "okta", "-r", "acme").rc == 0
    assert old.get("/scim/v2/Users?count=1", "acme." + EXTERNAL_HOST, "tok-acme")["status"] == 200
    deployments = Path(old.path("/home/zulip/deployments"))
    before_deploy, before_etc = (deployments / "current").resolve(), etc_zulip(old)

    proc = upgrade(old, "9.2")

    assert proc.returncode == 0, proc.stderr
    new = (deployments / "current").resolve()
    assert new != before_deploy and new.parent == deployments and (deployments / "last").resolve() == before_deploy
    assert (deployments / "next").resolve() == new
    assert (new / "version.py").read_text().count('"9.2"') == 1
    assert (new / "zerver/models/__init__.py").exists()  # the 9.2 layout, not 5.6's models.py
    assert not (deployments / "lock").exists(), "the upgrade left Zulip's deployment lock behind"
    assert etc_zulip(old) == before_etc, "an upgrade does not touch /etc/zulip"
    assert old.sql("SELECT name FROM sqlite_master WHERE name = 'zerver_scimclient'") == []
    answer = old.get("/api/v1/server_settings", EXTERNAL_HOST)
    assert answer["json"]["zulip_version"] == "9.2"
    # The token in settings.py still works; no client row is needed any more.
    assert old.get("/scim/v2/Users?count=1", "acme." + EXTERNAL_HOST, "tok-acme")["status"] == 200
    restarts = [e for e in old.ledger() if e["event"] == "restart"]
    assert restarts[-1]["argv"] == ["--skip-checks", "--skip-client-reloads"]


def test_an_upgrade_refuses_a_held_lock_and_an_older_version(old: LocalTarget) -> None:
    lock = Path(old.path("/home/zulip/deployments/lock"))
    lock.mkdir()
    proc = upgrade(old, "9.2")
    assert proc.returncode == 1 and "Deployment already in progress" in proc.stderr
    assert lock.is_dir(), "the upgrade removed a lock it did not take"
    lock.rmdir()
    proc = upgrade(old, "5.5")
    assert proc.returncode == 1 and "is not newer" in proc.stderr
