"""Gate: each test venv is made of its lock, and each lock of its hand-written pins.

tests/requirements*.txt hold the pins people choose; tests/lock.sh resolves
each into a lock (tests/requirements*.lock) with the whole dependency tree and
the sha256 of every file; tests/setup.sh installs each venv from its lock alone
and makes it anew when the lock changes. So a run with old venvs proves what a
fresh machine would: these checks fail when a pin was edited without running
tests/lock.sh, when a lock lost its hashes, or when a venv holds anything else
than its lock (tests/setup.sh was not run since the lock changed).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

VENVS = sorted(gatelib.VENV_LOCKS)
# What the venv's Python brings along and no lock lists.
NOT_LOCKED = {"pip"}
LOCK_PYTHON = re.compile(r"^# .* for Python (\d+\.\d+) on ", re.M)


def lock_path(venv: str) -> Path:
    return gatelib.REPO / "tests" / gatelib.VENV_LOCKS[venv][1]


def lock_entries(path: Path) -> list[str]:
    """The requirement entries of a lock, each with its continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.split(" #")[0].strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("venv", VENVS)
def test_the_lock_holds_every_hand_written_pin(venv: str) -> None:
    pins_file, lock_file = gatelib.VENV_LOCKS[venv]
    chosen = gatelib.pins(gatelib.REPO / "tests" / pins_file)
    locked = gatelib.pins(lock_path(venv))
    assert chosen, "tests/%s pins nothing" % pins_file
    differ = {name: (version, locked.get(name)) for name, version in chosen.items() if locked.get(name) != version}
    assert not differ, "tests/%s is not the lock of tests/%s (pinned, locked): %s; run bash tests/lock.sh" % (
        lock_file, pins_file, differ)


@pytest.mark.parametrize("venv", VENVS)
def test_every_lock_entry_is_an_exact_version_with_hashes(venv: str) -> None:
    entries = lock_entries(lock_path(venv))
    assert entries
    loose = [entry for entry in entries if not gatelib.PIN.match(entry) or "--hash=sha256:" not in entry]
    assert not loose, "entries without an exact version or a hash: %s" % loose
    # Where packages come from is the installer's business (tests/setup.sh), never the lock's.
    options = [entry for entry in entries if entry.startswith("-")]
    assert not options, "options in the lock: %s" % options
    assert len(gatelib.pins(lock_path(venv))) == len(entries), "a package is locked twice"


@pytest.mark.parametrize("venv", VENVS)
def test_the_venv_holds_exactly_its_lock(venv: str) -> None:
    python = gatelib.REPO / venv / "bin" / "python"
    assert python.exists(), "%s is missing: run tests/setup.sh" % python.parent.parent
    lock = lock_path(venv)
    said = LOCK_PYTHON.search(lock.read_text())
    assert said, "%s does not say which Python it is for: run bash tests/lock.sh" % lock
    proc = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json, sys; print(json.dumps(["
                            "'%d.%d' % sys.version_info[:2], {d.metadata['Name']: d.version for d in m.distributions()}]))"],
        stdout=subprocess.PIPE, text=True, check=True, timeout=120,
    )
    version, installed = json.loads(proc.stdout)
    assert version == said.group(1), "%s runs Python %s, %s is for %s" % (venv, version, lock.name, said.group(1))
    have = {gatelib.canonical_name(name): found for name, found in installed.items()}
    for name in NOT_LOCKED:
        have.pop(name, None)
    want = gatelib.pins(lock)
    assert have == want, "%s is not what %s lists: run tests/setup.sh (extra: %s; missing or other versions: %s)" % (
        venv, lock.name, sorted(set(have.items()) - set(want.items())), sorted(set(want.items()) - set(have.items())))
