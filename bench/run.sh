#!/usr/bin/env bash
# The fleet benchmark, one command (see bench/README.md):
#   bash bench/run.sh                 N = 1, 4, 8, 16 (boots at most 16 stand-in hosts)
#   bash bench/run.sh --n 1,4         a quick run
# Writes bench/results/ (JSON per N, results.md, time_per_host.png, modules_per_host.png).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
exec "$repo/.venv/bin/python" "$repo/bench/bench.py" "$@"
