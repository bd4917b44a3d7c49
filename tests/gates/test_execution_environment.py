"""Gate: execution-environment.yml (for AWX) makes a build context with what the collection needs.

No image is built (there is no container engine here): the collection is
built with ``ansible-galaxy collection build`` as the file's header says, then
``ansible-builder create`` writes the build context, and this checks it: the
ansible-core range agrees with meta/runtime.yml and admits the newest tested
release, hvac (the hashicorp_vault token store) is in the Python
requirements and admits the tested version, and the collection's own tarball
is in the context and installed from there.
"""

from __future__ import annotations

import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

EE_FILE = gatelib.REPO / "execution-environment.yml"
TARBALL = "zulip_ops-zulip.tar.gz"


def definition() -> dict:
    return yaml.safe_load(EE_FILE.read_text())


def test_the_definition_names_what_the_controller_needs() -> None:
    ee = definition()
    assert ee["version"] == 3
    core = Requirement(ee["dependencies"]["ansible_core"]["package_pip"])
    assert core.name == "ansible-core"
    floor = re.search(r">=\s*([0-9.]+)", yaml.safe_load((gatelib.REPO / "meta" / "runtime.yml").read_text())
                      ["requires_ansible"]).group(1)
    assert Version(floor) in core.specifier and Version(floor) == min(
        Version(s.version) for s in core.specifier if s.operator == ">="), core
    # The tests pin their tools (tests/requirements*.lock); what users get stays a range.
    runtime = [core, Requirement(ee["dependencies"]["ansible_runner"]["package_pip"])]
    runtime += [Requirement(r) for r in ee["dependencies"]["python"]]
    pins = [str(r) for r in runtime if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pins, "a pin where users need a range: %s" % pins
    for dummy, lock in gatelib.VENV_LOCKS.values():
        assert gatelib.pinned(lock, "ansible-core") in core.specifier, (lock, core)
    hvac = [Requirement(r) for r in ee["dependencies"]["python"] if Requirement(r).name == "hvac"]
    assert hvac and gatelib.pinned("requirements.lock", "hvac") in hvac[0].specifier


def test_ansible_builder_create() -> None:
    with tempfile.TemporaryDirectory(prefix="zulip-gate-ee-") as tmp:
        work = Path(tmp)
        shutil.copy2(EE_FILE, work / EE_FILE.name)
        (work / "build").mkdir()
        rc, output = gatelib.run("ee-collection-build", [gatelib.tool("ansible-galaxy"), "collection", "build",
                                                         "--force", "--output-path", str(work / "build"), str(gatelib.REPO)],
                                 timeout=300)
        assert rc == 0, output
        built = sorted((work / "build").glob("zulip_ops-zulip-*.tar.gz"))
        assert len(built) == 1, built
        shutil.copy2(built[0], work / "build" / TARBALL)

        rc, output = gatelib.run("ee-builder-create", [gatelib.tool("ansible-builder"), "create", "-f", EE_FILE.name,
                                                       "-c", "context", "--output-filename", "Containerfile"],
                                 timeout=300, cwd=work)
        assert rc == 0, output
        context = work / "context"
        containerfile = (context / "Containerfile").read_text()
        requirements_txt = (context / "_build" / "requirements.txt").read_text()
        requirements_yml = yaml.safe_load((context / "_build" / "requirements.yml").read_text())

        core = definition()["dependencies"]["ansible_core"]["package_pip"]
        assert 'ARG ANSIBLE_INSTALL_REFS="%s ' % core in containerfile, containerfile[:800]
        assert any(Requirement(line).name == "hvac" for line in requirements_txt.splitlines() if line.strip())
        assert requirements_yml["collections"] == [{"name": "collections/%s" % TARBALL, "type": "file"}]
        # The galaxy stage installs from /build (the context's _build): the tarball must be there.
        assert "COPY _build /build" in containerfile and "WORKDIR /build" in containerfile
        with tarfile.open(context / "_build" / "collections" / TARBALL) as tar:
            names = set(tar.getnames())
        assert {"MANIFEST.json", "plugins/plugin_utils/_hashicorp_vault_store.py",
                "plugins/action/zulip_scim_token_copy.py", "roles/scim/tasks/copy_tokens.yml"} <= names
