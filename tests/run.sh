#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root:
#   bash tests/run.sh [extra pytest arguments]
# Installs what it needs (tests/setup.sh), then runs every test with pytest:
# unit tests, the Zulip stand-in's self-tests, the test-host harness, the
# molecule scenarios and the quality gates. Ends with "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash tests/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$repo/.venv/bin:$PATH"

started=$(date +%s)
.venv/bin/pytest -p no:cacheprovider -n "${TEST_WORKERS:-3}" --dist loadgroup \
  --junitxml=.cache/junit.xml "$@"
rc=$?
.venv/bin/python tests/testhost/testhost.py down --all >/dev/null 2>&1 || true
.venv/bin/python - "$started" <<'PY'
import sys, time, xml.etree.ElementTree as ET
try:
    suites = ET.parse(".cache/junit.xml").getroot()
except (OSError, ET.ParseError):
    print("0 passed, 1 failed")
    sys.exit()
tests = failed = skipped = 0
for suite in suites.iter("testsuite"):
    tests += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print("whole suite took %d s" % (time.time() - float(sys.argv[1])))
print("%d passed, %d failed, %d skipped" % (tests - failed - skipped, failed, skipped))
PY
exit $rc
