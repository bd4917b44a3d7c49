"""The fidelity test's masking and diff (marker standin: local, no hosts)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "molecule" / "_shared" / "files"))
import compare  # noqa: E402
import fidelity_probe  # noqa: E402
import real_ledger  # noqa: E402

pytestmark = pytest.mark.standin


def answer(status: int, body: Any = "", **headers: str) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"status": status, "headers": {k.replace("_", "-"): v for k, v in headers.items()}, "body": text}


def command(rc: int, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "seconds": 7.5}


def user(user_id: int, email: str) -> dict[str, Any]:
    return {"id": user_id, "userName": email, "displayName": "X Y", "name": {"givenName": "X", "familyName": "Y"},
            "meta": {"created": "2026-12-01T23:00:00.123456+00:00", "lastModified": "2026-12-01T23:00:00+00:00",
                     "location": f"https://acme.zulip.example.test/scim/v2/Users/{user_id}"}}


def raw_probe(owner: str = "admin@acme.example.org", user_id: int = 11, realm_id: int = 4,
              deploy: str = "2026-11-28-15-05-00", pid_seconds: float = 22.0) -> dict[str, Any]:
    location = f"https://acme.zulip.example.test/scim/v2/Users/{user_id}"
    return {
        "version": "5.6", "external_host": "zulip.example.test", "ready": 200,
        "front_end": {"http_only": False, "listen_port": 443, "https:443": {"status": 200}},
        "before": {"users": answer(500, "<!DOCTYPE html><p>500</p>", content_type="text/html; charset=utf-8")},
        "cli": {
            "again": command(1, stderr="Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                                       "psycopg2.errors.UniqueViolation: duplicate key\n"
                                       f"DETAIL:  Key (realm_id, name)=({realm_id}, okta) already exists.\n\n"),
            "query": command(1, stderr=f"ImportError: from (/home/zulip/deployments/{deploy}/zerver/models.py)\n"),
        },
        "restart": {"as_root": command(1, stderr="2026-12-01 23:00:01,123 restart-server: Must be run as user "
                                                 "'zulip'.\n"),
                    "as_zulip": command(0, stdout="\x1b[92mZulip restarted successfully!\x1b[0m\n")},
        "ready_after_restart": 200,
        "scim": {
            "list_token": answer(200, {"totalResults": 1, "Resources": [user(3, owner)]},
                                 content_type="application/scim+json"),
            "create": answer(201, user(user_id, "fidelity.new@example.test"), location=location),
        },
        "manage_log": ["2026-12-01 23:00:00,001: Ran /home/zulip/deployments/current/manage.py shell -c 'x'"],
        "timings": {"restart.as_zulip": pid_seconds},
    }


def test_identical_servers_have_no_diff_despite_ids_dates_owners_and_timings() -> None:
    real = raw_probe()
    standin = raw_probe(owner="owner@acme.zulip.example.test", user_id=5, realm_id=2, deploy="2026-12-01-00-00-00",
                        pid_seconds=1.4)
    assert compare.diff(compare.view(real), compare.view(standin)) == []


def test_a_different_status_is_a_readable_diff_line() -> None:
    real, standin = raw_probe(), raw_probe()
    standin["scim"]["create"]["status"] = 200
    lines = compare.diff(compare.view(real), compare.view(standin))
    assert "-scim.create.status = 201" in lines and "+scim.create.status = 200" in lines


def test_tracebacks_count_by_their_last_line() -> None:
    view = compare.view(raw_probe())
    assert view["cli"]["again"]["stderr"] == "<traceback> DETAIL:  Key (realm_id, name)=(<id>, okta) already exists."
    changed = raw_probe()
    changed["cli"]["again"]["stderr"] = changed["cli"]["again"]["stderr"].replace("already exists", "is taken")
    assert compare.diff(view, compare.view(changed))


def test_restart_key_line_without_colour_or_time() -> None:
    restart = compare.view(raw_probe())["restart"]
    assert restart["as_root"] == {"rc": 1, "key_line": "<time> restart-server: Must be run as user 'zulip'."}
    assert restart["as_zulip"] == {"rc": 0, "key_line": "Zulip restarted successfully!"}


def test_ids_stay_typed_and_the_probes_own_users_stay_unmasked() -> None:
    created = compare.view(raw_probe())["scim"]["create"]
    assert created["body"]["id"] == "<int id>" and created["body"]["userName"] == "fidelity.new@example.test"
    assert created["location"] == "https://acme.zulip.example.test/scim/v2/Users/<id>"
    as_string = raw_probe()
    as_string["scim"]["create"]["body"] = json.dumps({**user(11, "fidelity.new@example.test"), "id": "11"})
    assert compare.diff(compare.view(raw_probe()), compare.view(as_string))


def test_html_pages_compare_by_kind_and_addresses_are_masked() -> None:
    raw = raw_probe()
    other = copy.deepcopy(raw)
    other["before"]["users"]["body"] = "<html><body>Internal server error</body></html>"
    assert compare.diff(compare.view(raw), compare.view(other)) == []
    assert compare.mask_text("from 169.254.96.6 at 2026-12-01T23:00:00Z") == "from <address> at <time>"
    other["before"]["users"]["body"] = ""
    lines = compare.diff(compare.view(raw), compare.view(other))
    assert [line for line in lines if line.startswith(("-b", "+b"))] == [
        '-before.users.body = "<html page>"', '+before.users.body = "<empty>"']


def test_probe_keeps_only_the_runs_not_started_by_supervisor_or_cron(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What the server's own programs run is read from the host: supervisor's and cron's files."""
    (tmp_path / "supervisor" / "zulip").mkdir(parents=True)
    (tmp_path / "supervisor" / "zulip" / "zulip.conf").write_text(
        "[program:zulip-tornado]\ncommand=/home/zulip/deployments/current/manage.py runtornado 127.0.0.1:9800\n"
        "[program:zulip_deliver_scheduled_emails]\ncommand=nice -n10 /home/zulip/deployments/current/manage.py "
        "deliver_scheduled_emails\n")
    (tmp_path / "cron").mkdir()
    (tmp_path / "cron" / "check-analytics-state").write_text(
        "30 * * * *    zulip    cd /home/zulip/deployments/current/ && ./manage.py check_analytics_state >/dev/null\n")
    monkeypatch.setattr(real_ledger, "SERVER_PROGRAM_CONFIGS", (str(tmp_path / "supervisor"), str(tmp_path / "cron")))
    not_by_hand = real_ledger.server_commands()
    assert not_by_hand == {"runtornado", "deliver_scheduled_emails", "check_analytics_state"}
    by_hand = ["2026-12-01 23:00:04,000: Ran ./manage.py check --database default",
               "2026-12-01 23:00:05,000: Ran /home/zulip/deployments/current/manage.py add_scim_client okta -r acme"]
    logged = ["2026-12-01 23:00:02,000: Ran /home/zulip/deployments/current/manage.py runtornado 127.0.0.1:9800",
              by_hand[0],
              "2026-12-01 23:00:03,000: Ran ./manage.py check_analytics_state", by_hand[1]]
    assert fidelity_probe.run_by_hand(logged, not_by_hand) == by_hand
    # a command the host does not run by itself stays, so a stray manage.py call is caught
    assert fidelity_probe.run_by_hand(logged, set()) == logged

