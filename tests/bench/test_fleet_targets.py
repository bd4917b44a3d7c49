"""The performance targets of issue 11, on a small fleet of booted stand-ins (one per version).

Three hosts (Zulip 5.6, 9.0, 11.2), three realms each, the benchmark's own helpers
(bench/bench.py: inventory, module-execution counter, ledger reader). Wall times are
only ever compared within this run (a ratio to the empty play), never to a constant.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import bench  # noqa: E402

pytestmark = [pytest.mark.testhost, pytest.mark.xdist_group("bench-targets")]

NAMES = ["bt-5-6", "bt-9-0", "bt-11-2"]
ENABLE = REPO / "playbooks" / "enable_scim.yml"
MAX_MODULE_RUNS = 1  # per host, in a run that changes nothing (zulip_info, which proves it), whatever the realms
MAX_FLOOR_RATIO = 2.0  # the no-change run against the empty play on the same fleet


@pytest.fixture(scope="module")
def fleet():
    bench.down(NAMES)
    hosts = bench.boot(NAMES)
    for index, host in enumerate(hosts):
        host["flavour"] = bench.FLAVOURS[index]
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as work:
        runner = bench.Bench(hosts, Path(work), forks=5)
        runner.reset()
        yield runner
    bench.down(NAMES)


@pytest.fixture(scope="module")
def first_run(fleet):
    """A first run as a rolling update, one host per batch."""
    return fleet.measure(fleet.playbook(REPO / "tests" / "bench" / "serial.yml")), fleet


def events_by_host(fleet) -> dict[str, list[dict]]:
    return {h["name"]: bench.read_ledger(h) for h in fleet.hosts}


def test_first_run_restarts_each_host_once_within_its_own_batch(first_run):
    measured, fleet = first_run
    assert {name: c["restarts"] for name, c in measured["ledger"].items()} == dict.fromkeys(NAMES, 1)
    # Each host's changes and its restart lie between the previous host's restart and the next
    # host's first change: batch k restarted host k and no other.
    spans = []
    for name in NAMES:
        events = [e for e in events_by_host(fleet)[name] if e["event"] in ("settings_changed", "restart")]
        spans.append((min(e["time"] for e in events), max(e["time"] for e in events)))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start, spans
    assert measured["ledger"]["bt-5-6"]["manage"] == 3  # add_scim_client, once per realm, nothing else


PAIRS = 5  # empty play, then no-change run: each pair sees the same load (the suite runs 3 workers on 2 cores)


@pytest.fixture(scope="module")
def no_change(first_run):
    """Five empty plays and five no-change runs, taken in turn so that both of a pair see the same load."""
    _, fleet = first_run
    floors, runs = [], []
    for _ in range(PAIRS):
        floors.append(fleet.measure(fleet.playbook(bench.BENCH / "floor.yml"))["seconds"])
        runs.append(fleet.measure(fleet.playbook(ENABLE)))
    return floors, runs


def test_no_change_run_costs_no_restart_no_manage_py_and_one_module_run(no_change):
    _, runs = no_change
    for measured in runs:
        # 5.6 included: its client rows are read with psql (in zulip_info), not manage.py.
        assert {n: (c["restarts"], c["manage"]) for n, c in measured["ledger"].items()} == dict.fromkeys(NAMES, (0, 0))
        assert max(measured["modules"].values()) <= MAX_MODULE_RUNS, measured["modules"]
        assert measured["ledger"]["bt-5-6"]["psql"] == 1


def test_no_change_wall_time_within_twice_the_empty_play(no_change):
    floors, runs = no_change
    # The median of the pairs' ratios: a pair's two plays ran one after the other, under the same load.
    ratios = sorted(r["seconds"] / floor for floor, r in zip(floors, runs))
    ratio = statistics.median(ratios)
    print("no-change run / empty play: median %.2f, pairs %s" % (ratio, ", ".join("%.2f" % x for x in ratios)))
    assert ratio <= MAX_FLOOR_RATIO, (ratio, floors, [r["seconds"] for r in runs])


def test_rotation_restarts_each_host_exactly_once(first_run):
    _, fleet = first_run
    measured = fleet.measure(fleet.playbook(ENABLE, "--tags", "rotate_scim_token"))
    assert {n: (c["restarts"], c["manage"]) for n, c in measured["ledger"].items()} == dict.fromkeys(NAMES, (1, 0))


PSQL = ["runuser", "-u", "zulip", "--", "psql", "-X", "-q", "-A", "-t", "-z", "-0", "-w", "-d", "zulip", "-c"]


def host_run(fleet, name: str, argv: list[str], env: str = "") -> tuple[int, str, str]:
    import shlex
    import subprocess
    host = next(h for h in fleet.hosts if h["name"] == name)
    ssh = ["ssh", *bench.SSH_ARGS.split(), "-i", host["identity_file"], "root@%s" % host["address"]]
    proc = subprocess.run(ssh + [("cd / && %s " % env) + shlex.join(argv)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_standin_psql_answers_as_the_real_5_6_did(first_run):
    """What the real 5.6 image showed (tests/zulip_standin/README.md): peer authentication,
    read-only transactions, zero-separated rows ending in a zero byte."""
    _, fleet = first_run
    rc, _, err = host_run(fleet, "bt-5-6", ["psql", "-X", "-d", "zulip", "-c", "SELECT 1"])
    assert rc == 2 and 'FATAL:  role "root" does not exist' in err
    rc, _, err = host_run(fleet, "bt-5-6", ["psql", "-U", "zulip", "-d", "zulip", "-c", "SELECT 1"])
    assert rc == 2 and 'Peer authentication failed for user "zulip"' in err
    rc, out, _ = host_run(fleet, "bt-5-6", PSQL + ["SELECT r.string_id, c.name FROM zerver_scimclient c "
                                                   "JOIN zerver_realm r ON r.id = c.realm_id ORDER BY 1"])
    assert rc == 0 and out == "\0entra-id\0acme\0okta\0beta\0okta\0"
    rc, _, err = host_run(fleet, "bt-5-6", PSQL + ["DELETE FROM zerver_scimclient"],
                          env="PGOPTIONS='-c default_transaction_read_only=on'")
    assert rc == 1 and "cannot execute DELETE in a read-only transaction" in err
