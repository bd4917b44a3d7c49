"""The scim role's guard rails that act on the controller, before any host is contacted.

ansible-playbook runs the collection's own playbooks and role against an
inventory host whose SSH port is a listener of this test on 127.0.0.1: the
listener records every connection, so "nothing reached the host" is measured,
not assumed. No test host is booted.

* playbooks/disable_scim.yml (the role's disable entry point) without a realm
  list, and with both a list and the all-realms switch, stops at the token
  look-up, naming the host's realms, with no connection to the host and no
  token store written.
* The token look-up of the preflight (tasks/tokens.yml as a trial, in check
  mode) reports no change on a first run, when it writes nothing, and still
  says (store_changed) that the run would make tokens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as action_plugin

COLLECTIONS = Path(action_plugin.__file__).parents[5]
REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
if not (BIN / "ansible-playbook").exists():  # ansible-test units: its venv has no ansible commands of its own
    BIN = Path(shutil.which("ansible-playbook") or BIN / "ansible-playbook").parent
PASSWORD = "controller-only vault password"
HOST = "zulip1.example.test"
REALMS = [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "", "client_name": "entra-id"}]


class Listener(threading.Thread):
    """A TCP port on 127.0.0.1 that counts the connections made to it (and closes each at once)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn = self.sock.accept()[0]
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.sock.close()


@pytest.fixture
def listener():
    made = Listener()
    made.start()
    yield made
    made.stop()


class Project:
    """An inventory of one host reached over SSH at the listener's port, and a vault password file."""

    def __init__(self, root: Path, port: int, connection: str = "ssh") -> None:
        self.root = root
        (root / "inventory").mkdir()
        host_vars = {"ansible_connection": connection, "ansible_host": "127.0.0.1", "ansible_port": port,
                     "ansible_user": "nobody", "ansible_python_interpreter": sys.executable,
                     "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                                "-o ConnectTimeout=3",
                     "zulip_scim_realms": REALMS}
        inventory = {"zulip": {"hosts": {HOST: host_vars}}}
        (root / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
        (root / "vault-pass").write_text(PASSWORD + "\n")
        self.store = root / "inventory" / ".zulip_scim_tokens.vault.yml"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(HOME=str(self.root), ANSIBLE_HOME=str(self.root / ".ansible"),
                   ANSIBLE_LOCAL_TEMP=str(self.root / ".ansible" / "tmp"),
                   ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_HOST_KEY_CHECKING="False", PATH="%s:%s" % (BIN, env.get("PATH", "")))
        return env

    def playbook(self, playbook: Path, *args: str) -> subprocess.CompletedProcess:
        argv = [str(BIN / "ansible-playbook"), "-i", "inventory/hosts.yml", "--vault-password-file", "vault-pass",
                str(playbook), *args]
        return subprocess.run(argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=300,
                              check=False)


def refused(case: str, extra: dict | None, message: str):
    return pytest.param(extra, message, id=case, marks=pytest.mark.reliability(
        area="bad_input", case="playbooks/disable_scim.yml " + case,
        outcome="the play stops at the token look-up, saying how to name the realms to turn off; no "
                "connection to the host (measured), no token store written"))


@pytest.mark.parametrize("extra, message", [
    refused("without a realm list", None,
            'turning SCIM off needs the realms named, and none were for %s: name them, for example '
            '-e \'{"zulip_scim_disable_realms": ["acme"]}\' (%s lists: acme, "" (root domain)), or turn off every '
            'realm it lists with -e \'{"zulip_scim_disable_all_realms": true}\'. Nothing was changed' % (HOST, HOST)),
    refused("with an empty realm list", {"zulip_scim_disable_realms": []}, "turning SCIM off needs the realms named"),
    refused("with both a realm list and zulip_scim_disable_all_realms: true",
            {"zulip_scim_disable_realms": ["acme"], "zulip_scim_disable_all_realms": True},
            "zulip_scim_disable_realms and zulip_scim_disable_all_realms: true are both set"),
])
def test_disable_without_an_explicit_choice_stops_before_any_host_contact(tmp_path, listener, extra, message):
    project = Project(tmp_path, listener.port)
    args = ["-e", json.dumps(extra)] if extra is not None else []
    run = project.playbook(REPO / "playbooks" / "disable_scim.yml", *args)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    # The JSON of the result escapes the message's quotes.
    assert message in output.replace('\\"', '"'), output[-3000:]
    assert re.search(r"TASK \[zulip_ops\.zulip\.scim : Get each realm's bearer token", output), output[-3000:]
    assert listener.connections == 0, "the play contacted the host before refusing"
    assert not project.store.exists(), "the refused run wrote the token store"


# A play that runs only the preflight's token look-up (tasks/tokens.yml, as the trial).
TRIAL = """\
- hosts: zulip
  gather_facts: false
  tasks:
    - name: The preflight's token look-up
      ansible.builtin.include_role:
        name: zulip_ops.zulip.scim
        tasks_from: tokens
      vars:
        _zulip_scim_token_trial: true

    - name: Show what it registered (no token)
      ansible.builtin.debug:
        msg: "TRIAL changed={{ _zulip_scim_tokens is changed }} store_changed={{ _zulip_scim_tokens.store_changed }}
              generated={{ _zulip_scim_tokens.generated | join(',') }}"
"""


@pytest.mark.parametrize("check", [False, True], ids=["normal run", "--check"])
def test_the_preflight_token_look_up_reports_no_change_when_it_writes_nothing(tmp_path, listener, check):
    # Before: a first run showed the look-up as changed (it ran in check mode and would make tokens).
    project = Project(tmp_path, listener.port, connection="local")
    (tmp_path / "trial.yml").write_text(TRIAL)
    run = project.playbook(tmp_path / "trial.yml", *(["--check"] if check else []))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "TRIAL changed=False store_changed=True generated=acme," in output, output[-3000:]
    recap = re.search(r"^%s\s*:.*\bchanged=(\d+)" % re.escape(HOST), output, re.M)
    assert recap and recap.group(1) == "0", output[-3000:]
    assert not project.store.exists(), "the look-up wrote the token store"
    assert listener.connections == 0
