"""On a booted test host with the Zulip stand-in: a run honours Zulip's deployment lock.

Zulip's upgrade-zulip holds the directory /home/zulip/deployments/lock while it upgrades
(scripts/lib/zulip_tools.py get_deployment_lock, a mkdir; release_deployment_lock removes it).
Here the test makes that directory as root, as upgrade-zulip would, and runs
``playbooks/enable_scim.yml`` as an operator does:

1. the lock exists before the run: the play waits ``zulip_scim_deploy_lock_timeout`` and fails at the
   planning, naming the lock; settings.py, zulip-secrets.conf and the stand-in's ledger are unchanged and
   the token store was not written;
2. the lock appears between the change and the restart (a watcher on the host makes it as soon as the run
   keeps its copy of the files, right before it writes them): no restart (ledger), a failure naming the
   lock, and the files are back as they were;
3. the lock is removed while a run waits: the run goes on, and Zulip is restarted only after the removal.

The collection never makes or removes the lock: after each case it is still there until the test removes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_host  # noqa: E402  pylint: disable=wrong-import-position
from standin_host import StandinHost, testhost  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("deploy-lock-host"),
              pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root")]

HOST = "deploy-lock-1"
INVENTORY_HOST = "zulip.deploylock"
LOCK = "/home/zulip/deployments/lock"

HOST_STATE = r"""
import hashlib, json, os
out = {}
for path in ("/etc/zulip/settings.py", "/etc/zulip/zulip-secrets.conf"):
    out[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
out["restarts"] = [json.loads(line)["time"] for line in open("/var/lib/zulip-standin/ledger.jsonl")
                   if line.strip() and json.loads(line)["event"] == "restart"]
out["lock"] = os.path.isdir("/home/zulip/deployments/lock")
print(json.dumps(out))
"""

# Makes Zulip's lock, as upgrade-zulip would, as soon as the run keeps its copy of settings.py (right before it
# writes the new files), and prints when.
LOCK_AFTER_THE_CHANGE = r"""
import os, time
deadline = time.time() + 300
while not os.path.exists("/etc/zulip/.settings.py.zulip-scim-previous") and time.time() < deadline:
    time.sleep(0.01)
os.mkdir("/home/zulip/deployments/lock")
print(time.time(), flush=True)
"""


def tail(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-2000:]


def host_state(host: StandinHost) -> dict[str, Any]:
    return json.loads(host.ssh("python3 -", HOST_STATE))


@pytest.fixture(scope="module")
def host() -> Iterator[StandinHost]:
    with standin_host.booted(HOST, INVENTORY_HOST, flavour="9.0", scim_realms=[{"subdomain": "acme", "client_name": "okta"}],
                             work_prefix="zulip-deploy-lock-") as booted:
        yield booted


def test_zulips_deployment_lock_is_honoured(host: StandinHost) -> None:
    # 1. An upgrade runs when the play starts: it waits, then stops at the planning, naming the lock.
    host.ssh("mkdir %s" % LOCK)
    before = host_state(host)
    started = time.monotonic()
    proc = host.play("-e", "zulip_scim_deploy_lock_timeout=3")
    took = time.monotonic() - started
    assert proc.returncode != 0, tail(proc)
    assert "Zulip's deployment lock %s exists" % LOCK in proc.stdout, tail(proc)
    assert "Waited 3 s" in proc.stdout
    assert host_state(host) == before and before["lock"]  # nothing changed, and the lock is still Zulip's
    assert not host.vault_file.exists(), "the token store was written for a run that stopped at the planning"
    assert took >= 3
    host.ssh("rmdir %s" % LOCK)

    # 2. An upgrade starts after the files were written and before the restart: no restart, the files go back.
    before = host_state(host)
    watcher = subprocess.Popen(testhost.ssh_argv(HOST) + ["python3 -c '%s'" % LOCK_AFTER_THE_CHANGE.replace("'", '"')],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc = host.play("-e", "zulip_scim_deploy_lock_timeout=2")
    finally:
        made, errors = watcher.communicate(timeout=60)
    assert made.strip(), "the watcher never made the lock: %s" % errors
    assert proc.returncode != 0, tail(proc)
    assert "restart-server was not run" in proc.stdout, tail(proc)
    assert "were put back, but Zulip was not restarted on them" in proc.stdout, tail(proc)
    after = host_state(host)
    assert after["restarts"] == before["restarts"], "Zulip was restarted during the upgrade"
    assert after["lock"], "the collection removed Zulip's lock"
    assert dict(after, lock=False) == before  # settings.py and zulip-secrets.conf as they were

    # 3. The upgrade ends while a run waits: the run goes on, and restarts Zulip only after that.
    remover = subprocess.Popen(testhost.ssh_argv(HOST) + ["sleep 4; rmdir %s; python3 -c 'import time; print(time.time())'"
                                                          % LOCK], stdout=subprocess.PIPE, text=True)
    try:
        proc = host.play("-e", "zulip_scim_deploy_lock_timeout=120")
    finally:
        removed, _ = remover.communicate(timeout=60)
    assert proc.returncode == 0, tail(proc)
    after = host_state(host)
    assert not after["lock"]
    new_restarts = after["restarts"][len(before["restarts"]):]
    assert len(new_restarts) == 1 and new_restarts[0] > float(removed.strip())
