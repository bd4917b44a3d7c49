"""A booted test host with the Zulip stand-in, driven by ansible-playbook as an operator runs it; not a test file.

The host tests of this folder (test_host_*.py) share it: :func:`booted` boots a test host
(tests/testhost), writes an inventory for it and a vault password, installs the stand-in and, at
the end, tears the host down and checks that it left nothing behind. What differs between the
tests (the stand-in's version, its realms, the realms the collection turns on, more host
variables) is a parameter. Import it with this folder on ``sys.path`` (pytest runs with
``--import-mode=importlib``, which does not put it there).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests" / "testhost") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "testhost"))
import testhost  # noqa: E402  pylint: disable=wrong-import-position

ENABLE_PLAYBOOK = REPO / "playbooks" / "enable_scim.yml"
INSTALL_PLAYBOOK = REPO / "tests" / "zulip_standin" / "install.yml"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
STANDIN_DELAY = 0.1  # manage.py and restart-server delays of the stand-in: the tests run many of both
NO_VAULT_PASSWORD = Path()  # as ``vault_pass`` of StandinHost.play: no --vault-password-file at all


def ansible_env(work: Path, **extra: str) -> dict[str, str]:
    """The environment of an operator's ansible-playbook: no colours, no retry files, this checkout's venv first."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(testhost.CP_DIR),
               ANSIBLE_LOCAL_TEMP=str(work / "ansible-local"))
    env["PATH"] = "%s:%s" % (REPO / ".venv" / "bin", env.get("PATH", os.defpath))
    env.pop("ANSIBLE_CONFIG", None)  # the checkout's own ansible.cfg, not one the caller points at
    env.update(extra)
    return env


@dataclass
class StandinHost:
    """One booted test host (``name``), known to the inventory as ``inventory_host``."""

    name: str
    inventory_host: str
    work: Path
    inventory: Path
    vault_pass: Path

    @property
    def vault_file(self) -> Path:
        return self.inventory / ".zulip_scim_tokens.vault.yml"

    @property
    def sheet(self) -> str:
        """The IdP connection sheet the role writes beside the token file."""
        return (self.inventory / ("zulip-scim-sheet-%s.md" % self.inventory_host)).read_text()

    def play(self, *args: str, playbook: Path = ENABLE_PLAYBOOK, env: dict[str, str] | None = None,
             timeout: float = 600, vault_pass: Path | None = None) -> subprocess.CompletedProcess[str]:
        """ansible-playbook as an operator runs it; ``vault_pass`` another password file, NO_VAULT_PASSWORD none."""
        vault_pass = self.vault_pass if vault_pass is None else vault_pass
        secret = [] if vault_pass == NO_VAULT_PASSWORD else ["--vault-password-file", str(vault_pass)]
        argv = [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory), *secret, str(playbook), *args]
        return subprocess.run(argv, cwd=self.work, env=env or ansible_env(self.work), text=True, capture_output=True,
                              timeout=timeout, check=False)

    def ssh(self, command: str, stdin: str = "", timeout: float = 120) -> str:
        """``command`` as root on the host; its output. It must succeed."""
        proc = subprocess.run(testhost.ssh_argv(self.name) + [command], input=stdin, text=True, capture_output=True,
                              timeout=timeout, check=False)
        assert proc.returncode == 0, "ssh %s: rc %d %s" % (command[:60], proc.returncode, proc.stderr[-2000:])
        return proc.stdout


HostT = TypeVar("HostT", bound=StandinHost)


def write_inventory(work: Path, inventory_host: str, address: dict[str, Any], host_vars: dict[str, Any]) -> Path:
    """``work``/inventory/hosts.yml: the group zulip with the one host, reached as testhost.up says."""
    inventory = work / "inventory"
    inventory.mkdir()
    hosts = {"zulip": {"hosts": {inventory_host: {
        "ansible_host": address["address"],
        "ansible_user": address["user"],
        "ansible_ssh_private_key_file": address["identity_file"],
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        **host_vars,
    }}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    return inventory


def write_vault_password(work: Path) -> Path:
    vault_pass = work / "vault-pass"
    vault_pass.write_text(secrets.token_urlsafe(24) + "\n")
    vault_pass.chmod(0o600)
    return vault_pass


@contextlib.contextmanager
def booted(name: str, inventory_host: str, *, flavour: str, scim_realms: list[dict[str, Any]], work_prefix: str,
           standin_realms: list[str] | None = None, extra_vars: dict[str, Any] | None = None,
           host_class: type[HostT] = StandinHost) -> Iterator[HostT]:  # type: ignore[assignment]
    """Boot test host ``name`` with the stand-in of Zulip ``flavour`` and yield it; down, and checked for leaks, after.

    ``standin_realms``: the stand-in's realms (its default when None); ``scim_realms``: zulip_scim_realms;
    ``extra_vars``: more host variables; ``host_class``: a StandinHost subclass the test adds to.
    """
    work = Path(tempfile.mkdtemp(prefix=work_prefix))
    try:
        address = testhost.up([name])[0]
        host_vars: dict[str, Any] = {"zulip_standin_flavour": flavour}
        if standin_realms is not None:
            host_vars["zulip_standin_realms"] = standin_realms
        host_vars.update({"zulip_standin_manage_delay": STANDIN_DELAY, "zulip_standin_restart_delay": STANDIN_DELAY,
                          "zulip_scim_realms": scim_realms, **(extra_vars or {})})
        target = host_class(name, inventory_host, work, write_inventory(work, inventory_host, address, host_vars),
                            write_vault_password(work))
        proc = target.play(playbook=INSTALL_PLAYBOOK)
        assert proc.returncode == 0, "installing the stand-in failed:\n" + proc.stdout[-4000:]
        yield target
    finally:
        testhost.down([name])
        shutil.rmtree(work, ignore_errors=True)
    assert testhost.leaks([name]) == [], "the test host left resources behind"
