"""Gate: ``ansible-doc`` renders every module, plugin and role of the collection.

The list comes from the tree (tests/gates/gatelib.py documented_plugins): every
file under plugins/modules, every filter a filter file defines (filters are
documented by YAML files next to it, one per filter), any other plugin type
that appears, and every role with an argument spec. A new module or filter is
covered without touching this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

PLUGINS = gatelib.documented_plugins()


def ansible_doc(kind: str, fqcn: str, venv_bin: Path = gatelib.BIN) -> tuple[int, str]:
    env = gatelib.gate_env(ANSIBLE_COLLECTIONS_PATH=str(gatelib.REPO / "playbooks" / "collections"),
                           ANSIBLE_DEPRECATION_WARNINGS="0")
    env["PATH"] = "%s:%s" % (venv_bin, env["PATH"])
    return gatelib.run("ansible-doc-%s-%s" % (venv_bin.parent.name, fqcn), [str(venv_bin / "ansible-doc"), "-t", kind, fqcn],
                       timeout=300, env=env)


def assert_renders(kind: str, fqcn: str, rc: int, output: str) -> None:
    problem = gatelib.doc_problems(kind, fqcn, rc, output)
    assert not problem, "ansible-doc -t %s %s: %s\n%s" % (kind, fqcn, problem, gatelib.tail(output))


def test_the_tree_has_what_the_readme_lists() -> None:
    kinds = {kind for kind, dummy in PLUGINS}
    assert {"module", "filter", "role"} <= kinds, PLUGINS


def test_every_action_plugin_has_a_doc_module() -> None:
    actions = {p.stem for p in (gatelib.REPO / "plugins" / "action").glob("*.py") if not p.name.startswith("_")}
    modules = {fqcn.rsplit(".", 1)[1] for kind, fqcn in PLUGINS if kind == "module"}
    assert actions <= modules, "action plugins without a documentation module: %s" % sorted(actions - modules)


def test_every_filter_doc_belongs_to_a_filter() -> None:
    filters = {fqcn.rsplit(".", 1)[1] for kind, fqcn in PLUGINS if kind == "filter"}
    docs = {p.stem for p in (gatelib.REPO / "plugins" / "filter").glob("*.yml")}
    assert docs == filters, "filters without docs: %s; docs without a filter: %s" % (
        sorted(filters - docs), sorted(docs - filters))


@pytest.mark.parametrize(("kind", "fqcn"), PLUGINS, ids=["%s:%s" % p for p in PLUGINS])
def test_ansible_doc_renders(kind: str, fqcn: str) -> None:
    rc, output = ansible_doc(kind, fqcn)
    assert_renders(kind, fqcn, rc, output)
