"""Gate: the changelog (antsibull-changelog) is valid and CHANGELOG.md is up to date.

Fragments go to changelogs/fragments/ (kept after a release: keep_fragments).
While galaxy.yml's version is already a release in changelogs/changelog.yaml,
every fragment must be part of a release: add one, then run
``antsibull-changelog release --version <version>`` again (from the checkout,
with .venv/bin on PATH) to fold it in and regenerate CHANGELOG.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

CHANGELOGS = gatelib.REPO / "changelogs"


def test_antsibull_changelog_lint() -> None:
    rc, output = gatelib.run("antsibull-changelog-lint", [gatelib.tool("antsibull-changelog"), "lint"], timeout=300)
    assert rc == 0 and not gatelib.without_unrelated_warnings(output).strip(), "antsibull-changelog lint:\n%s" % output


def test_changelog_md_is_generated_from_changelog_yaml() -> None:
    with tempfile.TemporaryDirectory(prefix="zulip-gate-changelog-") as tmp:
        fresh = Path(tmp) / "CHANGELOG.md"
        rc, output = gatelib.run(
            "antsibull-changelog-generate",
            [gatelib.tool("antsibull-changelog"), "generate", "--output", str(fresh), "--output-format", "md"],
            timeout=300,
        )
        assert rc == 0, output
        assert (gatelib.REPO / "CHANGELOG.md").read_text() == fresh.read_text(), (
            "CHANGELOG.md is out of date: run antsibull-changelog generate (or release)")


def test_every_fragment_of_the_current_version_is_released() -> None:
    version = str(yaml.safe_load((gatelib.REPO / "galaxy.yml").read_text())["version"])
    changes = yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text())
    releases = changes.get("releases") or {}
    if version not in releases:
        pytest.skip("version %s is not released yet: new fragments may wait" % version)
    released = {name for release in releases.values() for name in release.get("fragments") or []}
    fragments = {p.name for p in (CHANGELOGS / "fragments").iterdir() if p.suffix in (".yml", ".yaml")}
    assert fragments <= released, (
        "fragments not in CHANGELOG.md: %s; run: antsibull-changelog release --version %s"
        % (sorted(fragments - released), version))


def test_every_module_plugin_and_role_is_in_the_changelog() -> None:
    """A new module, filter or role shows up in CHANGELOG.md once ``release`` has run again."""
    releases = (yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text()).get("releases") or {}).values()
    listed = set()
    for release in releases:
        listed.update(("module", item["name"]) for item in release.get("modules") or [])
        for kind, items in (release.get("plugins") or {}).items():
            listed.update((kind, item["name"]) for item in items)
        for kind, items in (release.get("objects") or {}).items():
            listed.update((kind, item["name"]) for item in items)
    tree = {(kind, fqcn.rsplit(".", 1)[1]) for kind, fqcn in gatelib.documented_plugins()}
    assert tree <= listed, "not in the changelog: %s; run: antsibull-changelog release --version <version>" % (
        sorted(tree - listed))
