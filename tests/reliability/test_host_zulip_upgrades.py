"""On one booted test host with the Zulip stand-in: the collection across Zulip upgrades (docs/upgrades.md).

The host starts as Zulip 5.6, and ``playbooks/enable_scim.yml`` turns SCIM on for two realms (the 5.x way:
a SCIM client row per realm, made with ``manage.py add_scim_client``). Then it is upgraded the way Zulip's
``upgrade-zulip`` does (tests/zulip_standin/files/upgrade.py: Zulip's deployment lock, a new deployment
directory with the newer version's files, ``current`` re-pointed by its restart-server, /etc/zulip as it
was, and across 6.0 migration 0415_delete_scimclient dropping the client rows), step by step:
5.6 -> 9.2 -> 10.4 -> 11.5. After each upgrade, a plain run of the same playbook:

- reports nothing changed (PLAY RECAP changed=0) and exits 0;
- proves each realm's token on the upgraded server (its requests are in the server's scim.log; this test
  probes the tokens itself as well);
- restarts nothing and runs no manage.py and no psql (the stand-in's ledger): on 6.0+ there are no client
  rows to look for;
- leaves settings.py, zulip-secrets.conf and the token store byte for byte as they were, no kept copy or
  temporary file in /etc/zulip, and (the migration's part) no SCIM client table.

10.4 -> 11.5 crosses both 11.x changes: ``SCIM_CONFIG = {}`` becomes a default (11.0) and
``manage.py checkconfig`` gives way to ``manage.py check`` (11.5); the collection calls neither.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_host  # noqa: E402  pylint: disable=wrong-import-position
from standin_host import REPO, StandinHost  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("zulip-upgrades-host"),
              pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root")]

HOST = "zulip-upgrades-1"
INVENTORY_HOST = "zulip.upgrades"
SHEET_PLAYBOOK = REPO / "playbooks" / "scim_connection_sheet.yml"
REALMS = [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "", "client_name": "entra-id"}]
EXPECTED_ROWS = [["", "entra-id"], ["acme", "okta"]]
UPGRADES = ["9.2", "10.4", "11.5"]

# Run on the host (python3 -): what the upgrade and the run left, never a token. The probe of the tokens in
# zulip-secrets.conf comes last, so that its own requests are not in the scim.log lines reported.
HOST_STATE = r"""
import configparser, hashlib, json, os, re, sqlite3, subprocess
ETC = "/etc/zulip"
out = {"files": {}, "etc_names": sorted(os.listdir(ETC))}
for name in ("settings.py", "zulip-secrets.conf", "zulip.conf"):
    path = os.path.join(ETC, name)
    info = os.stat(path)
    out["files"][name] = [hashlib.sha256(open(path, "rb").read()).hexdigest(), oct(info.st_mode & 0o7777), info.st_uid]
current = "/home/zulip/deployments/current"
out["current"] = os.readlink(current)
out["version"] = re.findall(r'^ZULIP_VERSION = "([^"]+)"', open(current + "/version.py").read(), re.M)[0]
out["lock"] = os.path.lexists("/home/zulip/deployments/lock")
conn = sqlite3.connect("file:/var/lib/zulip-standin/db/zulip.db?mode=ro", uri=True)
table = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'zerver_scimclient'").fetchone()
out["client_rows"] = None if table is None else sorted(
    [list(r) for r in conn.execute("SELECT r.string_id, c.name FROM zerver_scimclient c JOIN zerver_realm r ON r.id = c.realm_id")])
conn.close()
out["ledger"] = [json.loads(line) for line in open("/var/lib/zulip-standin/ledger.jsonl") if line.strip()]
out["scim_log"] = open("/var/log/zulip/scim.log").read().splitlines()
parser = configparser.RawConfigParser()
parser.read(os.path.join(ETC, "zulip-secrets.conf"))
tokens = {k[len("scim_bearer_token_"):]: v for k, v in parser.items("secrets") if k.startswith("scim_bearer_token_")}
hosts = {key: ("zulip.example.test" if key == "_root" else key + ".zulip.example.test") for key in tokens}
job = {"cafile": "/etc/ssl/certs/zulip.combined-chain.crt", "requests": [
    {"method": "GET", "path": "/scim/v2/Users?count=1", "host": hosts[key], "headers": {"Authorization": "Bearer " + tokens[key]}}
    for key in sorted(tokens)]}
answers = json.loads(subprocess.run(["python3", "/opt/zulip-standin/probe.py"], input=json.dumps(job), text=True,
                                    capture_output=True, check=True).stdout)
out["probe"] = {key: answer["status"] for key, answer in zip(sorted(tokens), answers)}
print(json.dumps(out))
"""


def host_state(host: StandinHost) -> dict[str, Any]:
    return json.loads(host.ssh("python3 -", HOST_STATE, timeout=180))


def tail(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout[-4000:] + "\n--- stderr ---\n" + proc.stderr[-2000:]


def recap_changed(proc: subprocess.CompletedProcess[str]) -> int:
    found = re.findall(r"^%s\s*:.*\bchanged=(\d+)" % re.escape(INVENTORY_HOST), proc.stdout, re.M)
    assert len(found) == 1, tail(proc)
    return int(found[0])


@pytest.fixture(scope="module")
def host() -> Iterator[StandinHost]:
    with standin_host.booted(HOST, INVENTORY_HOST, flavour="5.6", standin_realms=["acme", ""], scim_realms=REALMS,
                             work_prefix="zulip-upgrades-") as booted:
        yield booted


def events(state: dict[str, Any], since: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in state["ledger"][since:] if e["event"] == kind]


def test_a_plain_run_after_each_zulip_upgrade_proves_the_tokens_and_changes_nothing(host: StandinHost) -> None:
    # Zulip 5.6 with SCIM turned on by the collection: an entry per realm and, the 5.x way, a client row each.
    proc = host.play()
    assert proc.returncode == 0, tail(proc)
    enabled = host_state(host)
    assert enabled["version"] == "5.6" and enabled["client_rows"] == EXPECTED_ROWS
    assert enabled["probe"] == {"_root": 200, "acme": 200}
    assert len([e for e in events(enabled, 0, "manage") if e["argv"][:1] == ["add_scim_client"]]) == 2
    store, sheet = host.vault_file.read_bytes(), host.sheet
    assert "Zulip 5.6, EXTERNAL_HOST" in sheet and "not over SCIM before Zulip 11.0" in sheet

    before = enabled
    for version in UPGRADES:
        started = time.monotonic()
        # The upgrade prints what its programs print (as Zulip's does), then its own JSON line.
        report = json.loads(host.ssh("python3 /opt/zulip-standin/upgrade.py --to %s" % version, timeout=180).splitlines()[-1])
        upgraded = host_state(host)
        # The upgrade, as Zulip's: a new deployment, /etc/zulip as it was, the lock released, no client table.
        assert report["from"] == before["version"] and upgraded["version"] == version
        assert upgraded["current"] == report["deploy_dir"] != before["current"]
        assert upgraded["files"] == before["files"] and upgraded["etc_names"] == before["etc_names"]
        assert not upgraded["lock"]
        assert upgraded["client_rows"] is None, "Zulip 6.0+ has no SCIM client table (0415_delete_scimclient)"
        assert report["dropped"] == (["zerver_scimclient"] if before["version"] == "5.6" else [])

        proc = host.play()
        took = time.monotonic() - started

        assert proc.returncode == 0, tail(proc)
        assert recap_changed(proc) == 0, tail(proc)
        after = host_state(host)
        ran = len(upgraded["ledger"])
        assert events(after, ran, "restart") == [], "the run after the upgrade to %s restarted Zulip" % version
        assert events(after, ran, "manage") == [], "the run after the upgrade to %s ran manage.py" % version
        assert events(after, ran, "psql") == [], "the run after the upgrade to %s read the database" % version
        # It proved each realm's token on the new version: its requests come after those of this test's probe.
        proofs = after["scim_log"][len(upgraded["scim_log"]) + len(upgraded["probe"]):]
        for realm_host in ("acme.zulip.example.test", "zulip.example.test"):
            assert any(" GET %s /scim/v2/Users?count=1 200 " % realm_host in line for line in proofs), \
                "no proof of %s's token after the upgrade to %s: %s" % (realm_host, version, proofs)
        assert after["probe"] == {"_root": 200, "acme": 200}
        # Nothing of 5.x is left, and nothing else changed: files, names in /etc/zulip, the token store.
        assert after["files"] == upgraded["files"] and after["etc_names"] == upgraded["etc_names"]
        assert after["client_rows"] is None and after["current"] == upgraded["current"]
        assert host.vault_file.read_bytes() == store, "the token store was rewritten"
        assert host.sheet == sheet, "a run that changed no token rewrote the IdP connection sheet"
        print("upgrade to %s and a plain run: %.1f s" % (version, took))
        before = after

    # The sheet of the last token change still names 5.6 (and no groups): the guide's step after an upgrade
    # prints it again, for the version the host runs now, and changes nothing on the host.
    proc = host.play(playbook=SHEET_PLAYBOOK)
    assert proc.returncode == 0, tail(proc)
    sheet = host.sheet
    assert "Zulip 11.5, EXTERNAL_HOST" in sheet and "Zulip 5.6" not in sheet
    assert '"Push Groups" syncs groups' in sheet and "not over SCIM before Zulip 11.0" not in sheet
    final = host_state(host)
    assert events(final, len(before["ledger"]), "restart") == [] and final["files"] == before["files"]
