"""Gate: branch coverage of plugins/ over the unit tests, at least 90 %.

Runs tests/unit in a pytest of its own with pytest-cov and the settings in
tests/gates/coverage.ini. Every Python file under plugins/ is counted, also one
that no test imports (it then counts as 0 %), and the report is printed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

MINIMUM = 90


def test_unit_tests_cover_plugins() -> None:
    with tempfile.TemporaryDirectory(prefix="zulip-gate-cov-") as tmp:
        report = Path(tmp) / "coverage.json"
        rc, output = gatelib.run(
            "coverage",
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "tests/unit",
             "--cov", "--cov-config=tests/gates/coverage.ini", "--cov-branch",
             "--cov-report=term-missing", "--cov-report=json:%s" % report, "--cov-fail-under=%d" % MINIMUM],
            timeout=1200, env=gatelib.gate_env(COVERAGE_FILE=str(Path(tmp) / ".coverage")),
        )
        print(output[output.find("coverage: platform"):] if "coverage: platform" in output else gatelib.tail(output))
        assert report.exists(), "no coverage report (rc %d):\n%s" % (rc, gatelib.tail(output))
        data = json.loads(report.read_text())
    counted = {Path(name).as_posix() for name in data["files"]}
    expected = {p.relative_to(gatelib.REPO).as_posix() for p in (gatelib.REPO / "plugins").rglob("*.py")}
    assert expected <= counted, "plugins files missing from the coverage report: %s" % sorted(expected - counted)
    total = data["totals"]["percent_covered"]
    assert total >= MINIMUM, "branch coverage of plugins/ is %.1f %% (< %d %%)" % (total, MINIMUM)
    # A failing unit test fails tests/unit itself; here only the coverage counts.
    print("unit tests under coverage: rc %d" % rc)
