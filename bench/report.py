"""bench/results/*.json -> results.md (the table) and two PNG plots.

Numbers are only ever taken from the JSON the benchmark wrote; nothing here is typed in.
"""

from __future__ import annotations

import json
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


def ratios(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        rows = result["rows"]
        lines.append("- N = %d: no-change run %.2f× the empty play, first run %.2f×, naive playbook %.2f×."
                     % (result["n"], rows["nochange"]["seconds"] / rows["floor"]["seconds"],
                        rows["first"]["seconds"] / rows["floor"]["seconds"],
                        rows["naive"]["seconds"] / rows["floor"]["seconds"]))
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
            "each host runs its modules on its own CPU. The commit column says what was measured.\n\n" + table(results) + "\nRatios:\n\n"
            + ratios(results) + "\n![time per host](time_per_host.png)\n![module runs per host](modules_per_host.png)\n")
    real = folder / "real-9.2.json"
    if real.exists():
        data = json.loads(real.read_text())
        text += ("\n## One real Zulip 9.2 (N = 1, %d realms; first and rotation run once, the others the median "
                 "of 3)\n\nmanage.py calls and restarts from the server's own logs "
                 "(molecule/_shared/files/real_ledger.py); there the manage.py column includes the `manage.py check` "
                 "that restart-server runs itself (the stand-in rows leave it out). The realms are the two the real "
                 "image has.\n\n" % data["realms_per_host"]) + table([data])
    (folder / "results.md").write_text(text)
    plots(results, folder)
