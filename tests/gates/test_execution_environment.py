"""Gate: the collection's execution-environment metadata, and execution-environment.yml (for AWX).

No image is built (there is no container engine here).

1. The collection says what it needs on the controller the way ansible-builder
   3 reads it: ``meta/execution-environment.yml`` names ``requirements.txt``
   (hvac, and msal for Entra ID: ranges) and ``bindep.txt`` (the OpenSSH
   client, with bindep platform selectors for RPM and Debian images).
   requirements.txt is what the controller-side code (plugins/ but modules and
   module_utils) imports from outside the standard library, less what ansible-core
   or a listed package brings: no more, no less. The built tarball carries the
   three files (galaxy.yml's build_ignore drops none of them), and
   ``ansible-builder introspect --sanitize`` on an installed copy lists
   requirements.txt's packages and the ssh client: what a user's own EE that
   includes the collection gets.
2. ``execution-environment.yml`` pins the base image (a versioned tag) and
   ansible-core (one release of meta/runtime.yml's range: the one the suite
   runs, tests/requirements.lock) and repeats nothing the collection declares.
   ``ansible-builder create`` writes the build context; the Containerfile names
   the image and the ansible-core pin and installs the collection's tarball,
   which is in the context; the context's own introspection script, run as the
   image build runs it on that tarball installed, writes hvac (and the rest of
   requirements.txt) and the ssh client into the requirements the build installs.

The tarball is built and installed with test_build_install.py's fixtures.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position
import test_build_install  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

# The built and the installed collection, made as the build-and-install gate makes them.
workdir = test_build_install.workdir
tarball = test_build_install.tarball
installed = test_build_install.installed

EE_FILE = gatelib.REPO / "execution-environment.yml"
META_EE = "meta/execution-environment.yml"
# The tarball's name in the build context, as execution-environment.yml's header makes it.
TARBALL = "zulip_ops-zulip.tar.gz"
COLLECTION = "%s.%s" % (gatelib.NAMESPACE, gatelib.NAME)
# What the controller needs for the collection, by name: the Python package and,
# per kind of image, the OpenSSH client's package (bindep platform profiles).
PYTHON_NEEDS = {"hvac"}
SSH_CLIENT = {"platform:rpm": "openssh-clients", "platform:dpkg": "openssh-client"}
# Profiles bindep gives such images (bindep adds more, such as platform:redhat or platform:debian).
IMAGE_PROFILES = {"platform:rpm": ["platform:rpm", "platform:redhat", "platform:rhel", "platform:dnf"],
                  "platform:dpkg": ["platform:dpkg", "platform:debian", "platform:ubuntu"]}
# A base image at a versioned tag (optionally with its digest), never a moving one such as latest or stream9.
PINNED_IMAGE = re.compile(r"^[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9._-]+)+:(?P<tag>[0-9]+\.[0-9][0-9A-Za-z._-]*)"
                          r"(?:@sha256:[0-9a-f]{64})?$")
# Collection code that runs on the managed hosts (their standard library only, ansible-test sanity checks it).
HOST_SIDE = ("modules", "module_utils")


def definition() -> dict:
    return yaml.safe_load(EE_FILE.read_text())


def collection_metadata(root: Path) -> dict[str, str]:
    """The files meta/execution-environment.yml of the collection at ROOT names, by kind (python, system)."""
    meta = yaml.safe_load((root / META_EE).read_text())
    return meta["dependencies"]


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements.txt (comments and blank lines dropped)."""
    return [line.split(" #", 1)[0].strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def python_requirements(text: str) -> dict[str, Requirement]:
    return {gatelib.canonical_name(req.name): req for req in map(Requirement, requirement_lines(text))}


def system_packages(bindep_text: str, kind: str) -> set[str]:
    """The packages bindep would install from BINDEP_TEXT on an image of KIND (platform:rpm, platform:dpkg)."""
    return {rule[0] for rule in Depends(bindep_text).active_rules(IMAGE_PROFILES[kind])}


def introspected(output: str) -> dict[str, list[str]]:
    """What ``ansible-builder introspect`` printed: its YAML document after the "---" line."""
    lines = output.splitlines()
    assert "---" in lines, "no introspection data in:\n%s" % gatelib.tail(output)
    data = yaml.safe_load("\n".join(lines[lines.index("---") + 1:])) or {}
    return {"python": data.get("python") or [], "system": data.get("system") or []}


def from_collection(lines: list[str]) -> list[str]:
    """The requirement lines introspection took from this collection (it appends "# from collection NAME")."""
    mark = "# from collection %s" % COLLECTION
    return [line.split(mark, 1)[0].strip() for line in lines if line.rstrip().endswith(mark)]


def assert_lists_what_the_controller_needs(python_lines: list[str], system_lines: list[str]) -> None:
    """hvac, whatever else requirements.txt names, and the ssh client for RPM and Debian images."""
    names = {gatelib.canonical_name(Requirement(line).name) for line in python_lines}
    wanted = PYTHON_NEEDS | set(python_requirements((gatelib.REPO / "requirements.txt").read_text()))
    assert names == wanted, "introspection lists %s, not %s: %s" % (sorted(names), sorted(wanted), python_lines)
    bindep_text = "\n".join(system_lines) + "\n"
    for kind, package in SSH_CLIENT.items():
        assert system_packages(bindep_text, kind) == {package}, (kind, system_lines)


# --------------------------------------------------------------------------- the collection's own metadata

def test_the_collection_declares_what_the_controller_needs() -> None:
    assert (gatelib.REPO / META_EE).is_file(), "%s is missing: ansible-builder would fall back to the root files" % META_EE
    assert collection_metadata(gatelib.REPO) == {"python": "requirements.txt", "system": "bindep.txt"}
    requirements = python_requirements((gatelib.REPO / "requirements.txt").read_text())
    assert PYTHON_NEEDS <= set(requirements), requirements
    # Ranges: an EE merges them with every other collection's; only the tests pin (tests/*.lock).
    pins = [str(req) for req in requirements.values() if any(s.operator in ("==", "===") for s in req.specifier)]
    assert not pins, "a pin where users need a range: %s" % pins
    # Each admits the release the suite tests it with, where the suite has it.
    locked = gatelib.pins(gatelib.REPO / "tests" / "requirements.lock")
    assert "hvac" in locked
    refused = [str(req) for name, req in requirements.items() if name in locked and Version(locked[name]) not in req.specifier]
    assert not refused, "requirements.txt refuses what tests/requirements.lock tests: %s" % refused
    bindep_text = (gatelib.REPO / "bindep.txt").read_text()
    for kind, package in SSH_CLIENT.items():
        assert system_packages(bindep_text, kind) == {package}, "%s on an image with %s" % (bindep_text, kind)


def imported_top_level_names(path: Path) -> set[str]:
    """Top-level modules PATH imports: import statements and importlib.import_module("...") calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def distribution_requires(name: str) -> set[str]:
    """The distributions NAME needs, extras left out (none known when it is not installed here)."""
    try:
        requires = [Requirement(line) for line in importlib.metadata.requires(name) or []]
    except importlib.metadata.PackageNotFoundError:
        return set()
    return {gatelib.canonical_name(req.name) for req in requires if not (req.marker and "extra" in str(req.marker))}


def controller_imports() -> dict[str, set[str]]:
    """Third-party distribution names the controller-side code imports -> the files that import them.

    A module installed here is mapped to its distribution; one that is not is taken as its own name.
    """
    providers = importlib.metadata.packages_distributions()
    plugins = gatelib.REPO / "plugins"
    found: dict[str, set[str]] = {}
    for path in sorted(plugins.rglob("*.py")):
        if path.relative_to(plugins).parts[0] in HOST_SIDE:
            continue
        for name in imported_top_level_names(path):
            if name in sys.stdlib_module_names or name in ("ansible", "ansible_collections", "__future__"):
                continue
            for dist in providers.get(name, [name]):
                found.setdefault(gatelib.canonical_name(dist), set()).add(str(path.relative_to(gatelib.REPO)))
    return found


def test_requirements_txt_is_what_the_controller_side_code_imports() -> None:
    """A new controller-side import (an IdP's client library, say) must reach requirements.txt, or EEs lack it."""
    declared = set(python_requirements((gatelib.REPO / "requirements.txt").read_text()))
    imported = controller_imports()
    assert "hvac" in imported, "the import scan no longer sees the hashicorp_vault store's hvac"
    provided = declared | {"ansible-core"}
    for name in set(provided):
        provided |= distribution_requires(name)
    undeclared = {dist: sorted(files) for dist, files in imported.items() if dist not in provided}
    assert not undeclared, "controller-side imports missing from requirements.txt: %s" % undeclared
    unused = sorted(declared - set(imported))
    assert not unused, "requirements.txt names what no controller-side code imports: %s" % unused


def test_the_tarball_carries_the_metadata(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        for rel in (META_EE, "requirements.txt", "bindep.txt"):
            member = archive.extractfile(rel) if rel in archive.getnames() else None
            assert member is not None, "%s is not in the tarball (galaxy.yml build_ignore?)" % rel
            assert member.read() == (gatelib.REPO / rel).read_bytes(), rel


def test_ansible_builder_introspect_on_the_installed_collection(installed: Path, workdir: Path) -> None:
    rc, output = gatelib.run("ee-introspect", [gatelib.tool("ansible-builder"), "introspect", "--sanitize", str(installed)],
                             timeout=120, cwd=workdir)
    assert rc == 0, output
    data = introspected(output)
    assert_lists_what_the_controller_needs(from_collection(data["python"]), from_collection(data["system"]))


# --------------------------------------------------------------------------- execution-environment.yml

def test_the_definition_pins_the_image_and_ansible_core() -> None:
    ee = definition()
    assert ee["version"] == 3
    image = ee["images"]["base_image"]["name"]
    assert PINNED_IMAGE.match(image), "the base image is not at a versioned tag: %s" % image
    core = Requirement(ee["dependencies"]["ansible_core"]["package_pip"])
    assert core.name == "ansible-core" and len(core.specifier) == 1, core
    spec = next(iter(core.specifier))
    assert spec.operator == "==", "ansible-core is not pinned to one release: %s" % core
    version = Version(spec.version)
    requires = SpecifierSet(yaml.safe_load((gatelib.REPO / "meta" / "runtime.yml").read_text())["requires_ansible"])
    assert version in requires, "ansible-core %s is outside meta/runtime.yml's %s" % (version, requires)
    suite = gatelib.pinned("requirements.lock", "ansible-core")
    assert version == suite, "the EE has ansible-core %s, the suite runs %s (tests/requirements.lock)" % (version, suite)
    runner = Requirement(ee["dependencies"]["ansible_runner"]["package_pip"])
    assert runner.name == "ansible-runner" and not any(s.operator in ("==", "===") for s in runner.specifier), runner


def test_the_definition_takes_the_collections_needs_from_introspection() -> None:
    """hvac and the ssh client come from the collection's metadata; repeated here they could drift apart."""
    deps = definition()["dependencies"]
    collection_python = set(python_requirements((gatelib.REPO / "requirements.txt").read_text()))
    python = deps.get("python") or []
    repeated = [line for line in (python if isinstance(python, list) else [])
                if gatelib.canonical_name(Requirement(line).name) in collection_python]
    system = deps.get("system") or []
    repeated += [line for line in (system if isinstance(system, list) else []) if line.split()[0] in SSH_CLIENT.values()]
    assert not isinstance(python, str) and not isinstance(system, str), "keep the EE's own files out: %s" % deps
    assert not repeated, "execution-environment.yml repeats what the collection declares: %s" % repeated
    assert deps["galaxy"]["collections"] == [{"name": "collections/%s" % TARBALL, "type": "file"}]


def test_ansible_builder_create(tarball: Path) -> None:
    ee = definition()
    with tempfile.TemporaryDirectory(prefix="zulip-gate-ee-") as tmp:
        work = Path(tmp)
        shutil.copy2(EE_FILE, work / EE_FILE.name)
        (work / "build").mkdir()
        shutil.copy2(tarball, work / "build" / TARBALL)
        rc, output = gatelib.run("ee-builder-create", [gatelib.tool("ansible-builder"), "create", "-f", EE_FILE.name,
                                                       "-c", "context", "--output-filename", "Containerfile"],
                                 timeout=300, cwd=work)
        assert rc == 0, output
        context = work / "context"
        containerfile = (context / "Containerfile").read_text()
        assert 'ARG EE_BASE_IMAGE="%s"\n' % ee["images"]["base_image"]["name"] in containerfile, containerfile[:800]
        core = ee["dependencies"]["ansible_core"]["package_pip"]
        assert 'ARG ANSIBLE_INSTALL_REFS="%s ' % core in containerfile, containerfile[:800]
        requirements_yml = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
        assert requirements_yml["collections"] == [{"name": "collections/%s" % TARBALL, "type": "file"}]
        # The galaxy stage installs from /build (the context's _build) into /usr/share/ansible/collections,
        # which the builder stage introspects.
        assert "COPY _build /build" in containerfile and "WORKDIR /build" in containerfile
        assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in containerfile
        assert re.search(r"^RUN \$PYCMD /output/scripts/introspect\.py introspect .*--write-pip=/tmp/src/requirements\.txt",
                         containerfile, re.M), containerfile
        in_context = context / "_build" / "collections" / TARBALL
        with tarfile.open(in_context) as tar:
            names = set(tar.getnames())
        assert {"MANIFEST.json", META_EE, "requirements.txt", "bindep.txt",
                "plugins/plugin_utils/_hashicorp_vault_store.py", "roles/scim/tasks/copy_tokens.yml"} <= names

        # What the builder stage does: the context's introspect.py on the collection installed from the context.
        collections = work / "collections"
        rc, output = gatelib.run("ee-context-install", [gatelib.tool("ansible-galaxy"), "collection", "install", "--offline",
                                                        "-p", str(collections), str(in_context)], timeout=300, cwd=work)
        assert rc == 0, output
        pip_file, bindep_file = work / "src" / "requirements.txt", work / "src" / "bindep.txt"
        rc, output = gatelib.run("ee-context-introspect",
                                 [sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                                  str(collections), "--write-pip=%s" % pip_file, "--write-bindep=%s" % bindep_file],
                                 timeout=120, cwd=work)
        assert rc == 0, output
        assert_lists_what_the_controller_needs(from_collection(pip_file.read_text().splitlines()),
                                               from_collection(bindep_file.read_text().splitlines()))
