"""Gate: ``ansible-lint --offline --profile production`` over the whole checkout.

The configuration is .ansible-lint (exclusions, offline, the one skipped rule
and why). The collection is found through playbooks/collections, the link back
to the checkout, so roles and playbooks resolve ``zulip_ops.zulip.*`` names
from this tree and nothing is fetched from Galaxy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]


def test_config_is_offline_and_skips_nothing_unexplained() -> None:
    text = (gatelib.REPO / ".ansible-lint").read_text()
    config = yaml.safe_load(text)
    assert config["profile"] == "production" and config["offline"] is True
    for excluded in (".cache/", ".venv/", "playbooks/collections/", "tests/output/"):
        assert excluded in config["exclude_paths"], excluded
    assert not config.get("warn_list"), "warn_list hides findings: fix them or skip with a reason"
    lines = text.splitlines()
    for rule in config.get("skip_list") or []:
        at = next(i for i, line in enumerate(lines) if line.strip() == "- %s" % rule)
        assert lines[at - 1].strip().startswith("#"), "skip_list entry %s needs a comment saying why" % rule


def test_ansible_lint_production_profile() -> None:
    env = gatelib.gate_env(ANSIBLE_COLLECTIONS_PATH=str(gatelib.REPO / "playbooks" / "collections"))
    rc, output = gatelib.run(
        "ansible-lint",
        [gatelib.tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor", "-f", "pep8"],
        timeout=1200, env=env,
    )
    assert rc == 0, "ansible-lint failed:\n%s" % gatelib.tail(output)
