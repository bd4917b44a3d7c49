"""Gate: the built collection holds what users need and nothing else, and works once installed.

1. ``ansible-galaxy collection build`` from the checkout (with its caches and
   venvs in place): the tarball has the plugins, roles, playbooks, meta, docs
   and changelog, and no tests, molecule, caches, venvs, build output, .ci,
   .config or the playbooks/collections link.
2. ``ansible-galaxy collection install TARBALL -p DIR --offline`` into an empty
   folder, then the demo against the installed copy: a booted test host with
   the Zulip 11.2 stand-in, ``ansible-playbook zulip_ops.zulip.enable_scim``
   run from outside the checkout with ANSIBLE_COLLECTIONS_PATH=DIR only, twice
   (the second run changes nothing), and an IdP-style request with the token
   from the vault file gets HTTP 200 (a wrong token and none get 401).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, str(gatelib.REPO / "tests" / "testhost"))
import testhost  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

HOST = "gate-installed-1"
INVENTORY_HOST = "zulip.gate"
REALMS = ["acme", ""]
# Top-level names a user's installed collection must not carry.
NOT_SHIPPED = (".ci", ".config", ".cache", ".venv", ".venv-oldest", ".venv-newest", ".git", ".gitignore",
               ".ansible-lint", ".pytest_cache", ".ruff_cache", ".mypy_cache", "molecule", "tests", "build",
               "htmlcov", ".coverage", "pytest.ini", "bench")
SHIPPED_DIRS = ("plugins/", "roles/", "playbooks/", "meta/", "changelogs/")
# The GNU GPL v3 text as the FSF publishes it (gnu.org/licenses/gpl-3.0.txt, Debian's
# /usr/share/common-licenses/GPL-3): galaxy.yml declares GPL-3.0-or-later.
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zulip-gate-build-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tarball(workdir: Path) -> Path:
    dist = workdir / "dist"
    rc, output = gatelib.run("galaxy-build", [gatelib.tool("ansible-galaxy"), "collection", "build", "--force",
                                              "--output-path", str(dist), str(gatelib.REPO)], timeout=300)
    assert rc == 0, output
    found = sorted(dist.glob("zulip_ops-zulip-*.tar.gz"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def installed(workdir: Path, tarball: Path) -> Path:
    collections = workdir / "collections"
    rc, output = gatelib.run(
        "galaxy-install",
        [gatelib.tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections), str(tarball)],
        timeout=300, cwd=workdir,
    )
    assert rc == 0, output
    root = collections / "ansible_collections" / "zulip_ops" / "zulip"
    assert (root / "MANIFEST.json").is_file(), output
    return collections


def test_tarball_contents(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        members = {m.name.rstrip("/") for m in archive.getmembers()}
        files = {m.name for m in archive.getmembers() if m.isfile()}
    unwanted = sorted(m for m in members if m.split("/")[0] in NOT_SHIPPED or m.startswith("playbooks/collections")
                      or "__pycache__" in m or m.endswith((".pyc", ".tar.gz")))
    assert not unwanted, "the tarball holds what users must not get: %s" % unwanted
    tracked = [rel for rel in gatelib.collection_files() if rel.startswith(SHIPPED_DIRS)]
    missing = sorted(set(tracked + ["README.md", "CHANGELOG.md", "LICENSE", "MANIFEST.json", "FILES.json"]) - files)
    assert not missing, "the tarball lacks: %s" % missing


def test_the_tarball_carries_the_license_galaxy_yml_declares(tarball: Path) -> None:
    assert yaml.safe_load((gatelib.REPO / "galaxy.yml").read_text())["license"] == ["GPL-3.0-or-later"]
    with tarfile.open(tarball) as archive:
        text = archive.extractfile("LICENSE").read()
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    assert hashlib.sha256(text).hexdigest() == GPL3_SHA256, "LICENSE is not the GNU GPL v3 text"
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]


def ansible_env(collections: Path) -> dict[str, str]:
    """Only the installed copy: no checkout on the collections path, no ansible.cfg of the checkout."""
    env = gatelib.gate_env(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(testhost.CP_DIR),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env


def test_ansible_doc_finds_the_installed_copy(installed: Path, workdir: Path) -> None:
    rc, output = gatelib.run("installed-doc", [gatelib.tool("ansible-doc"), "-t", "module", "zulip_ops.zulip.zulip_scim_preflight"],
                             timeout=120, cwd=workdir, env=ansible_env(installed))
    assert rc == 0, output
    assert str(installed) in output, output[:500]
    # The venv lives in the checkout: a library's warning names it, and says nothing about the collection.
    checkout = gatelib.lines_naming(output, gatelib.REPO)
    assert not checkout, "ansible-doc used the checkout, not the installed copy:\n%s" % "\n".join(checkout)
    problem = gatelib.doc_problems("module", "zulip_ops.zulip.zulip_scim_preflight", rc, output)
    assert not problem, "ansible-doc on the installed copy: %s\n%s" % (problem, gatelib.tail(output))


def write_inventory(workdir: Path, host: dict) -> tuple[Path, Path]:
    inventory = workdir / "inventory"
    inventory.mkdir(exist_ok=True)
    hosts = {"zulip": {"hosts": {INVENTORY_HOST: {
        "ansible_host": host["address"],
        "ansible_user": host["user"],
        "ansible_ssh_private_key_file": host["identity_file"],
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        "zulip_standin_flavour": "11.2",
        "zulip_scim_realms": [{"subdomain": "acme", "client_name": "okta"},
                              {"subdomain": "", "client_name": "entra-id"}],
    }}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    vault_pass = workdir / "vault-pass"
    vault_pass.write_text(secrets.token_urlsafe(24) + "\n")
    vault_pass.chmod(0o600)
    return inventory, vault_pass


def changed_count(output: str) -> int:
    match = re.search(r"^%s\s*:.*\bchanged=(\d+)" % re.escape(INVENTORY_HOST), output, re.M)
    assert match, "no PLAY RECAP line for %s:\n%s" % (INVENTORY_HOST, gatelib.tail(output))
    return int(match.group(1))


def vaulted_tokens(inventory: Path, vault_pass: Path) -> dict[str, str]:
    secret = VaultSecret(vault_pass.read_bytes().strip())
    data = yaml.safe_load(VaultLib([("default", secret)]).decrypt((inventory / ".zulip_scim_tokens.vault.yml").read_bytes()))
    realms = data["zulip_scim_tokens"][INVENTORY_HOST]
    return {realm: realms[realm]["token"] for realm in REALMS}


@pytest.mark.testhost
@pytest.mark.skipif(os.geteuid() != 0, reason="test hosts need root")
def test_demo_against_the_installed_collection(installed: Path, workdir: Path) -> None:
    env = ansible_env(installed)
    playbook = [gatelib.tool("ansible-playbook")]
    try:
        host = testhost.up([HOST])[0]
        inventory, vault_pass = write_inventory(workdir, host)
        rc, output = gatelib.run(
            "installed-standin",
            playbook + ["-i", str(inventory), str(gatelib.REPO / "tests" / "zulip_standin" / "install.yml"),
                        "-e", "zulip_standin_flavour=11.2"],
            timeout=600, cwd=workdir, env=env,
        )
        assert rc == 0, "installing the Zulip stand-in failed:\n%s" % gatelib.tail(output)

        run_scim = playbook + ["-i", str(inventory), "--vault-password-file", str(vault_pass),
                               "zulip_ops.zulip.enable_scim"]
        rc, first = gatelib.run("installed-enable-scim-1", run_scim, timeout=900, cwd=workdir, env=env)
        assert rc == 0, "first run of zulip_ops.zulip.enable_scim failed:\n%s" % gatelib.tail(first)
        assert changed_count(first) > 0, gatelib.tail(first)
        rc, second = gatelib.run("installed-enable-scim-2", run_scim, timeout=900, cwd=workdir, env=env)
        assert rc == 0, "second run failed:\n%s" % gatelib.tail(second)
        assert changed_count(second) == 0, "the second run changed something:\n%s" % gatelib.tail(second)

        tokens = vaulted_tokens(inventory, vault_pass)
        shown = [realm for realm, token in tokens.items() if token in first or token in second]
        assert not shown, "a bearer token appears in the ansible-playbook output (realms %s)" % shown
        probe = (gatelib.REPO / "molecule" / "_shared" / "files" / "scim_probe.py").read_text()
        proc = subprocess.run(testhost.ssh_argv(HOST) + ["cat > /root/scim_probe.py"], input=probe, text=True,
                              capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run(testhost.ssh_argv(HOST) + ["python3 /root/scim_probe.py"],
                              input=json.dumps({"accept": tokens, "reject": []}), text=True,
                              capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        answers = json.loads(proc.stdout)["accept"]
        assert answers == {realm: {"token": 200, "wrong": 401, "none": 401} for realm in REALMS}, answers
    finally:
        testhost.down([HOST])
    assert testhost.leaks([HOST]) == [], "the test host left resources behind"
