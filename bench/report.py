"""bench/results/*.json -> results.md (the table) and two PNG plots.

Numbers are only ever taken from the JSON the benchmark wrote; nothing here is typed in.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

CASES = ("floor", "naive", "first", "nochange", "rotate")
LABELS = {"floor": "(a) empty play", "naive": "(b) naive playbook", "first": "(c) first run",
          "nochange": "(c) no-change run", "rotate": "(c) rotation run"}


def load(results: Path) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in results.glob("*.json") if p.stem.isdigit()]
    return sorted(found, key=lambda r: r["n"])


def table(results: list[dict[str, Any]], cases=CASES) -> str:
    lines = ["| N | run | wall s (median of %s) | s per host | × floor | module runs per host (max / mean) | "
             "manage.py per host (max) | psql calls (all hosts) | restarts per host | peak controller RSS MB | commit |"
             % "/".join(sorted({str(len(r["rows"]["floor"]["all_seconds"])) for r in results}) or "3"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        floor = result["rows"]["floor"]["seconds"]
        for case in cases:
            if case not in result["rows"]:
                continue
            row = result["rows"][case]
            lines.append("| %d | %s | %.2f | %.3f | %.2f | %d / %.2f | %d | %d | %s | %.0f | %s |" % (
                result["n"], LABELS[case], row["seconds"], row["seconds_per_host"], row["seconds"] / floor,
                row["modules_per_host_max"], row["modules_per_host_mean"], row["manage_per_host_max"],
                row["psql_total"], "/".join(str(x) for x in row["restarts_per_host"]), row["peak_rss_mb"],
                result.get("commit", "?")))
    return "\n".join(lines) + "\n"


def no_change_pairs(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each empty play with the no-change run taken right after it (bench.Bench.floor_and_no_change):
    their ratio, and the machine's load average before the empty play and after the no-change run.

    A wall-time ratio on a shared 2-core machine moves with whatever else runs there, so it is
    recorded with the load, for people to read; no test passes or fails on it.
    """
    return [{"floor_s": floor["seconds"], "nochange_s": run["seconds"], "ratio": round(run["seconds"] / floor["seconds"], 2),
             "load_before": floor.get("load_before"), "load_after": run.get("load_after")}
            for floor, run in zip(runs.get("floor", []), runs.get("nochange", []))]


def pairs_text(result: dict[str, Any]) -> str:
    """The pairs behind the no-change ratio, and the load they ran under (not recorded before it was)."""
    pairs = no_change_pairs(result.get("runs", {}))
    if not pairs:
        return ""
    text = "pairs %s (median %.2f×)" % (", ".join("%.2f×" % p["ratio"] for p in pairs),
                                        statistics.median(p["ratio"] for p in pairs))
    loads = [p for p in pairs if p["load_before"] and p["load_after"]]
    if not loads:
        return text + ", load not recorded"
    return text + ", load average (1 min) %s on %s CPUs" % (
        ", ".join("%.2f → %.2f" % (p["load_before"][0], p["load_after"][0]) for p in loads), result.get("cpus", "?"))


def ratios(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        rows = result["rows"]
        lines.append("- N = %d: no-change run %.2f× the empty play, first run %.2f×, naive playbook %.2f×; no-change %s."
                     % (result["n"], rows["nochange"]["seconds"] / rows["floor"]["seconds"],
                        rows["first"]["seconds"] / rows["floor"]["seconds"],
                        rows["naive"]["seconds"] / rows["floor"]["seconds"], pairs_text(result)))
    return "\n".join(lines) + "\n"


def plots(results: list[dict[str, Any]], folder: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display on the test machine
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in results]
    for name, key, ylabel in (("time_per_host.png", "seconds_per_host", "wall time per host (s)"),
                              ("modules_per_host.png", "modules_per_host_max", "module executions per host")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for case in CASES:
            ax.plot(ns, [r["rows"][case][key] for r in results], marker="o", label=LABELS[case])
        ax.set_xlabel("hosts (N), 3 realms each, Zulip 5.6 / 9.0 / 11.2 stand-ins")
        ax.set_ylabel(ylabel)
        ax.set_xticks(ns)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)


def write_all(folder: Path) -> None:
    results = load(folder)
    if not results:
        raise SystemExit("no results in %s" % folder)
    text = ("# Benchmark results\n\nWritten by `bash bench/run.sh` (bench/report.py) from the JSON files here; "
            "see bench/README.md for what each column means. Taken on a 2-core machine that other test runs "
            "shared, and whose cores the stand-in hosts (systemd-nspawn) share with the controller: on a real fleet "
            "each host runs its modules on its own CPU. The commit column says what was measured.\n\n" + table(results)
            + "\nRatios (× floor: the medians' ratio; the pairs: each empty play and the no-change run right after it,"
            " with the machine's load average before and after them):\n\n"
            + ratios(results) + "\n![time per host](time_per_host.png)\n![module runs per host](modules_per_host.png)\n")
    real = folder / "real-9.2.json"
    if real.exists():
        data = json.loads(real.read_text())
        text += ("\n## One real Zulip 9.2 (N = 1, %d realms; first and rotation run once, the others the median "
                 "of 3)\n\nmanage.py calls and restarts from the server's own logs "
                 "(molecule/_shared/files/real_ledger.py); there the manage.py column includes the `manage.py check` "
                 "that restart-server runs itself (the stand-in rows leave it out). The realms are the two the real "
                 "image has.\n\n" % data["realms_per_host"]) + table([data])
        text += "\nNo-change run %.2f× the empty play: %s.\n" % (
            data["rows"]["nochange"]["seconds"] / data["rows"]["floor"]["seconds"], pairs_text(data))
    (folder / "results.md").write_text(text)
    plots(results, folder)
