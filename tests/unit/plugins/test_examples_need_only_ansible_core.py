"""Every example and every task the collection ships runs with ansible-core alone.

The collection depends on no other collection (galaxy.yml ``dependencies: {}``), so
each module a documented example (EXAMPLES of the modules and filters) or a task
of the roles and playbooks names must be ansible-core's own (``ansible.builtin``,
a file in ansible-core's ``modules`` folder) or this collection's. Before, the
zulip_scim_token example used ``ansible.builtin.ini_file``, which does not exist
(ini_file is community.general's).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import ansible
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CORE_MODULES = Path(ansible.__file__).parent / "modules"
FQCN = re.compile(r"^([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)$")


def module_names(node) -> set[str]:
    """The keys anywhere in a YAML tree that look like a fully qualified module name."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and FQCN.match(key):
                found.add(key)
            found |= module_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= module_names(item)
    return found


def documented_examples() -> list[tuple[str, str]]:
    sources = []
    for path in sorted((REPO / "plugins" / "modules").glob("*.py")):
        module = importlib.import_module("ansible_collections.zulip_ops.zulip.plugins.modules." + path.stem)
        sources.append(("module " + path.stem, module.EXAMPLES))
    for path in sorted((REPO / "plugins" / "filter").glob("*.yml")):
        sources.append(("filter " + path.stem, yaml.safe_load(path.read_text()).get("EXAMPLES", "")))
    return sources


def shipped_tasks() -> list[tuple[str, str]]:
    paths = sorted((REPO / "playbooks").glob("*.yml")) + sorted((REPO / "roles").glob("*/tasks/*.yml")) + sorted(
        (REPO / "roles").glob("*/handlers/*.yml"))
    return [(str(path.relative_to(REPO)), path.read_text()) for path in paths]


def missing(name: str) -> str | None:
    """Why ``name`` needs more than ansible-core and this collection, or None."""
    namespace, collection, plugin = FQCN.match(name).groups()
    if (namespace, collection) == ("ansible", "builtin"):
        return None if (CORE_MODULES / (plugin + ".py")).is_file() else "not a module of ansible-core"
    if (namespace, collection) == ("zulip_ops", "zulip"):
        return None if (REPO / "plugins" / "modules" / (plugin + ".py")).is_file() else "not a module of this collection"
    return "from the collection %s.%s, which this collection does not depend on" % (namespace, collection)


SOURCES = documented_examples() + shipped_tasks()


@pytest.mark.parametrize("where, text", SOURCES, ids=[source[0] for source in SOURCES])
def test_every_module_named_is_ansible_cores_or_this_collections(where: str, text: str) -> None:
    names = module_names(yaml.safe_load(text) or [])
    problems = {name: missing(name) for name in sorted(names) if missing(name)}
    assert not problems, "%s names modules that ansible-core alone does not have: %s" % (where, problems)


def test_the_check_finds_what_it_looks_for() -> None:
    assert module_names(yaml.safe_load("- x:\n    ansible.builtin.ini_file: {path: a}\n")) == {"ansible.builtin.ini_file"}
    assert missing("ansible.builtin.ini_file") == "not a module of ansible-core"
    assert missing("community.general.ini_file")
    assert missing("ansible.builtin.lineinfile") is None and missing("zulip_ops.zulip.zulip_scim_config") is None
