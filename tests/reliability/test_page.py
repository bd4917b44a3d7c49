"""docs/reliability.md is what the tests marked `reliability` prove (marker standin: local)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import page  # noqa: E402

pytestmark = pytest.mark.standin


def test_committed_page_is_what_the_tests_prove() -> None:
    marks = page.collect()
    assert marks, "no test carries a reliability mark"
    expected = page.render(marks)
    committed = page.PAGE.read_text(encoding="utf-8") if page.PAGE.is_file() else ""
    assert committed == expected, (
        "docs/reliability.md differs from what the tests prove; run: python tests/reliability/page.py --write")


def test_every_area_is_counted_and_unknown_areas_are_refused() -> None:
    text = page.render([{"test": "t.py::a", "area": "leak", "case": "x | y", "outcome": "o"}])
    assert "| leak | 1 leak checks run (each samples every process on controller and host) |" in text
    assert "| fault | 0 fault cases injected and survived |" in text
    assert "x \\| y" in text
    with pytest.raises(SystemExit):
        page.render([{"test": "t.py::a", "area": "nonsense"}])


def test_a_trial_grid_is_counted_and_drawn_from_its_marks() -> None:
    marks = [{"test": "t.py::a[x]", "area": "attack", "case": "c", "outcome": "o", "op": "enable",
              "grid": [["backup", "fifo", 1], ["backup", "dir", 1]]},
             {"test": "t.py::a[y]", "area": "attack", "case": "c", "outcome": "o", "op": "rotate",
              "grid": [["backup", "fifo", 2]]},
             {"test": "t.py::b", "area": "attack", "case": "one case", "outcome": "o"}]
    text = page.render(marks)
    assert "| attack | 5 attack trials" in text  # 2 + 2 trials, and one case without a grid
    assert "| name pattern | kind | enable | rotate |" in text
    assert "| backup | fifo | 1 | 2 |" in text
    assert "| backup | dir | 1 |  |" in text
    assert "| **all** | | 2 | 2 |" in text
