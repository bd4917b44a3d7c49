"""Gate: the README and the guides in docs/ hold together.

- every relative link in README.md, docs/*.md and bench/README.md names a file that
  exists, and an anchor (``#...``) that the target has (GitHub's heading slugs, or an
  explicit ``<a id>``);
- every guide in docs/ is linked from the README, so a new guide cannot be unreachable;
- the README stays an operator's short read (issue 25: at most about 250 lines) and keeps
  the commands it promises: the demo, the whole suite, and a quick start that looks first
  (``--check --diff``) on one host (``--limit``) and says how to pick the hosts
  (``zulip_scim_hosts``);
- every playbook path and ``zulip_ops.zulip.<name>`` playbook or role the pages name exists;
- one supported-versions statement: the ansible-core floor of meta/runtime.yml, the tested
  range of the oldest and newest venv locks, and the Zulip range are said the same way in
  the README, docs/development.md, the role's meta and the changelog's release summary.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

REPO = gatelib.REPO
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md")), REPO / "bench" / "README.md"]
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~)")
# [text](target) and ![alt](target); the target ends at the first space or ")".
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for dummy, line in prose_lines(path):
        found.update(EXPLICIT_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else "%s-%d" % (base, count))
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    links = []
    for number, line in prose_lines(path):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
                links.append((number, target))
    return links


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in relative_links(path):
        name, dummy, anchor = target.partition("#")
        resolved = (path.parent / name).resolve() if name else path
        where = "%s:%d: %s" % (shown(path), number, target)
        if not resolved.exists():
            problems.append("%s: no such file" % where)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append("%s: %s has no heading or anchor #%s" % (where, shown(resolved), anchor))
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_link_check_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    """The check itself: a missing file, a missing anchor and a link in code are told apart."""
    (tmp_path / "security.md").write_text((DOCS / "security.md").read_text(encoding="utf-8"), encoding="utf-8")
    page = tmp_path / "probe.md"
    page.write_text(
        "# A page\n\n## Where the `token` is\n\n[ok](#where-the-token-is) [ok](security.md#who-is-trusted)\n"
        "[gone](no-such-guide.md) [no anchor](security.md#no-such-heading)\n"
        "`[in code](nowhere.md)`\n\n```md\n[in a fence](nowhere-either.md)\n```\n",
        encoding="utf-8")
    problems = broken_links(page)
    assert len(problems) == 2, problems
    assert "no-such-guide.md: no such file" in problems[0]
    assert "#no-such-heading" in problems[1]


def test_every_guide_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for dummy, target in relative_links(README)}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, "docs/ pages the README does not link (add them to its Guides list): %s" % unlinked


def test_the_readme_is_a_short_read_with_its_commands() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= README_MAX_LINES, (
        "README.md has %d lines (at most %d): move the detail into a guide in docs/" % (lines, README_MAX_LINES))
    for command, path in (("bash tests/demo/run.sh", "tests/demo/run.sh"), ("bash tests/run.sh", "tests/run.sh")):
        assert re.search(r"^%s$" % re.escape(command), text, re.MULTILINE), "README.md lost `%s`" % command
        assert (REPO / path).is_file(), path
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for needle in ("--check --diff", "--limit", "zulip_scim_hosts", "ansible-playbook playbooks/enable_scim.yml"):
        assert needle in quick_start, "the quick start lost %r" % needle
    install = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "ansible-galaxy collection build" in install and "ansible-galaxy collection install" in install
    assert not re.search(r"<(repository|url|version)>", install, re.IGNORECASE), "a placeholder in Install"
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    tarballs = set(re.findall(r"zulip_ops-zulip-([0-9][^\s`]*?)\.tar\.gz", install))
    assert tarballs == {str(version)}, "Install names tarballs %s; galaxy.yml's version is %s" % (tarballs, version)


def test_every_named_playbook_and_role_exists() -> None:
    playbooks = {p.stem for p in (REPO / "playbooks").glob("*.yml")}
    roles = {p.name for p in (REPO / "roles").iterdir() if p.is_dir()}
    problems = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"\bplaybooks/([a-z_]+)\.yml\b", text):
            if name not in playbooks:
                problems.append("%s: playbooks/%s.yml" % (page.relative_to(REPO), name))
        for name in re.findall(r"\bzulip_ops\.zulip\.([a-z_]+)\b", text):
            known = playbooks | roles | {p.stem for p in (REPO / "plugins").glob("*/*.py")} | {
                p.stem for p in (REPO / "plugins" / "filter").glob("*.yml")}
            if name not in known and name != "zulip":  # group/zulip_ops.zulip.zulip is the action group
                problems.append("%s: zulip_ops.zulip.%s" % (page.relative_to(REPO), name))
    assert not problems, "named but not in the collection: %s" % problems


def supported_statement() -> tuple[str, str]:
    """("ansible-core 2.16 or newer", "tested with 2.16 to 2.21") from meta/runtime.yml and the locks."""
    requires = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"]
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)(?:\.\d+)?", requires.strip())
    assert floor, "requires_ansible %r is not a plain floor: say the range in the README" % requires
    oldest = gatelib.pinned("requirements-oldest.lock", "ansible-core")
    newest = gatelib.pinned("requirements-newest.lock", "ansible-core")
    return ("ansible-core %s.%s or newer" % floor.groups(),
            "tested with %d.%d to %d.%d" % (oldest.major, oldest.minor, newest.major, newest.minor))


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("*", "").replace("`", ""))


def test_one_supported_versions_statement() -> None:
    core, tested = supported_statement()
    readme = one_line(README.read_text(encoding="utf-8"))
    zulip = re.search(r"Zulip Server (\d+\.\d+ to \d+\.x)", readme)
    assert zulip, "README.md: no 'Zulip Server A.B to N.x' statement"
    changes = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    first = min(changes, key=lambda v: tuple(int(x) for x in v.split(".")))
    places = {
        "README.md": readme,
        "docs/development.md": one_line((DOCS / "development.md").read_text(encoding="utf-8")),
        "changelog release summary %s" % first: one_line(changes[first]["changes"]["release_summary"]),
    }
    problems = ["%s does not say %r" % (where, claim)
                for where, text in places.items() for claim in (core, tested) if claim not in text]
    problems += ["%s does not say %r" % (where, zulip.group(0))
                 for where, text in places.items() if where != "docs/development.md" and zulip.group(0) not in text]
    meta = yaml.safe_load((REPO / "roles" / "scim" / "meta" / "main.yml").read_text())["galaxy_info"]
    if core != "ansible-core %s or newer" % meta["min_ansible_version"]:
        problems.append("roles/scim/meta/main.yml min_ansible_version %s" % meta["min_ansible_version"])
    assert not problems, problems


def test_pages_the_code_names_exist() -> None:
    """Messages and comments in plugins/, roles/, playbooks/ send users to docs/<page>.md or a README section."""
    readme_sections = anchors(README)
    problems = []
    for path in sorted(p for top in ("plugins", "roles", "playbooks", "meta") for p in (REPO / top).rglob("*")
                       if p.is_file() and p.suffix in (".py", ".yml", ".yaml", ".j2")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in re.findall(r"\bdocs/([\w.-]+\.md)", text):
            if not (DOCS / name).is_file():
                problems.append("%s: docs/%s" % (path.relative_to(REPO), name))
        for section in re.findall(r"README(?:\.md)?[:,]? \"?([A-Z][\w ,.-]+?)\"? says", text) + re.findall(
                r"\(README: ([A-Z][\w -]+)\)", text):
            if slug(section) not in readme_sections:
                problems.append("%s: README section %r" % (path.relative_to(REPO), section))
    assert not problems, "named but missing: %s" % problems


def test_the_first_release_lists_no_changes_against_history() -> None:
    """The first release has no earlier release to break, fix or secure: it says what it does (issue 25)."""
    releases = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    first = min(releases, key=lambda v: tuple(int(x) for x in v.split(".")[:3]))
    against_history = {"breaking_changes", "bugfixes", "security_fixes", "deprecated_features", "removed_features"}
    found = sorted(against_history & set(releases[first].get("changes") or {}))
    assert not found, (
        "release %s is the first: %s compare it with unreleased history; say what it does in minor_changes "
        "(or make the change part of a later release)" % (first, found))


def test_the_collection_table_lists_every_module_and_filter() -> None:
    """docs/modules.md "What is in the collection": each module and filter is listed, and each listed one exists."""
    rows = re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \| (\w+) \|", (DOCS / "modules.md").read_text(encoding="utf-8"),
                      re.MULTILINE)
    listed = {name.rsplit(".", 1)[-1] for names, kind in rows if kind in ("module", "action")
              for name in re.findall(r"`([^`]+)`", names)}
    modules = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.name.startswith("_")}
    assert listed == modules, "docs/modules.md lists modules %s that do not exist and misses %s" % (
        sorted(listed - modules), sorted(modules - listed))
    filters = {name for names, kind in rows if kind in ("filter", "filters") for name in re.findall(r"`([^`]+)`", names)}
    documented = {p.stem for p in (REPO / "plugins" / "filter").glob("*.yml")}
    assert filters == documented, "docs/modules.md lists filters %s that do not exist and misses %s" % (
        sorted(filters - documented), sorted(documented - filters))
