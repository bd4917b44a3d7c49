"""Gate: both ends of the supported ansible-core range (meta/runtime.yml).

tests/setup.sh makes two extra venvs: .venv-oldest with the oldest ansible-core
that ``requires_ansible`` admits (2.16, Python 3.11) and .venv-newest with the
newest ansible-core release (Python 3.12, which it needs). With each this runs
the unit tests, ``ansible-doc`` on every module, plugin and role, and
``ansible-playbook --syntax-check`` on every playbook. The main venv (the
molecule scenarios, sanity, lint) sits in between.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

ENDS = ("oldest", "newest")
REQUIRES = yaml.safe_load((gatelib.REPO / "meta" / "runtime.yml").read_text())["requires_ansible"]


def pinned_core(end: str) -> Version:
    return gatelib.pinned("requirements-%s.lock" % end, "ansible-core")


def venv_bin(end: str) -> Path:
    path = gatelib.REPO / (".venv-%s" % end) / "bin"
    assert (path / "python").exists(), "%s is missing: run tests/setup.sh" % path.parent
    return path


def range_env(end: str) -> dict[str, str]:
    env = gatelib.gate_env(ANSIBLE_COLLECTIONS_PATH=str(gatelib.REPO / "playbooks" / "collections"),
                           ANSIBLE_DEPRECATION_WARNINGS="0")
    env["PATH"] = "%s:%s" % (venv_bin(end), env["PATH"])
    return env


def test_the_ends_are_the_ends_of_the_range() -> None:
    spec = SpecifierSet(REQUIRES)
    oldest, newest = pinned_core("oldest"), pinned_core("newest")
    assert oldest in spec and newest in spec, (REQUIRES, oldest, newest)
    floor = Version(re.search(r">=\s*([0-9.]+)", REQUIRES).group(1))
    assert (oldest.major, oldest.minor) == (floor.major, floor.minor), (
        "the oldest venv must test the oldest minor release %s allows, not %s" % (REQUIRES, oldest))
    main = gatelib.pinned("requirements.lock", "ansible-core")
    assert oldest < main <= newest


@pytest.mark.parametrize("end", ENDS)
def test_core_version(end: str) -> None:
    rc, output = gatelib.run("core-%s-version" % end, [str(venv_bin(end) / "ansible"), "--version"],
                             timeout=120, env=range_env(end))
    assert rc == 0 and "core %s]" % pinned_core(end) in output, output


@pytest.mark.parametrize("end", ENDS)
def test_unit_tests(end: str) -> None:
    rc, output = gatelib.run(
        "core-%s-units" % end,
        [str(venv_bin(end) / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "tests/unit"],
        timeout=1200, env=range_env(end),
    )
    assert rc == 0, "unit tests on ansible-core %s:\n%s" % (pinned_core(end), gatelib.tail(output))


@pytest.mark.parametrize("end", ENDS)
def test_playbooks_syntax(end: str) -> None:
    playbooks = sorted(str(p.relative_to(gatelib.REPO)) for p in (gatelib.REPO / "playbooks").glob("*.yml"))
    assert playbooks
    rc, output = gatelib.run(
        "core-%s-syntax" % end,
        [str(venv_bin(end) / "ansible-playbook"), "--syntax-check", "-i", "localhost,"] + playbooks,
        timeout=300, env=range_env(end),
    )
    assert rc == 0, "ansible-playbook --syntax-check on ansible-core %s:\n%s" % (pinned_core(end), output)


@pytest.mark.parametrize("end", ENDS)
def test_ansible_doc(end: str) -> None:
    """Every plugin's documentation renders: one ansible-doc per kind (each start of ansible-doc costs seconds),
    each plugin's name then looked for in the output; a kind that fails is asked again plugin by plugin, so the
    message names the plugin."""
    by_kind: dict[str, list[str]] = {}
    for kind, fqcn in gatelib.documented_plugins():
        by_kind.setdefault(kind, []).append(fqcn)
    failures = []
    for kind, names in sorted(by_kind.items()):
        rc, output = gatelib.run("core-%s-doc-%s" % (end, kind), [str(venv_bin(end) / "ansible-doc"), "-t", kind, *names],
                                 timeout=300, env=range_env(end))
        if not any(gatelib.doc_problems(kind, fqcn, rc, output) for fqcn in names):
            continue
        for fqcn in names:
            rc, output = gatelib.run("core-%s-doc-%s" % (end, fqcn), [str(venv_bin(end) / "ansible-doc"), "-t", kind, fqcn],
                                     timeout=300, env=range_env(end))
            problem = gatelib.doc_problems(kind, fqcn, rc, output)
            if problem:
                failures.append("ansible-doc -t %s %s: %s\n%s" % (kind, fqcn, problem, gatelib.tail(output, 2000)))
    assert not failures, "on ansible-core %s:\n%s" % (pinned_core(end), "\n".join(failures))
