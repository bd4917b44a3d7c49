"""End to end: ansible-playbook (localhost, connection local) with a real vault password file.

Proves what unit tests cannot: the action is found in the collection, the
play's vault secret reaches it, forks share the file safely, and no token
shows up in the output even at -vvv.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.zulip_ops.zulip.plugins.action import zulip_scim_token as action_plugin

# The folder holding the ansible_collections tree the collection was imported from:
# playbooks/collections in a checkout, ansible-test's copy under ansible-test units.
COLLECTIONS = Path(action_plugin.__file__).parents[5]
BIN = Path(sys.executable).parent
if not (BIN / "ansible-playbook").exists():  # ansible-test units: its venv has no ansible commands of its own
    BIN = Path(shutil.which("ansible-playbook") or BIN / "ansible-playbook").parent
PASSWORD = "e2e vault password"

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: SCIM tokens
      zulip_ops.zulip.zulip_scim_token:
        realms: [acme, ""]
        rotate: "{{ rotate | default([]) }}"
        adopt: "{{ host_tokens | default({}) }}"
      register: scim

    - name: Report digests only
      ansible.builtin.debug:
        msg: >-
          RESULT {{ inventory_hostname }}
          acme={{ scim.tokens['acme'] | hash('sha256') }}
          root={{ scim.tokens[''] | hash('sha256') }}
          previous={{ (scim.previous_tokens['acme'] | default('')) | hash('sha256') }}
          changed={{ scim.changed }}
          generated={{ scim.generated | join(',') }}
          rotated={{ scim.rotated | join(',') }}
          adopted={{ scim.adopted | join(',') }}
          conflicts={{ scim.conflicts | join(',') }}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Project:
    """A throw-away Ansible project: inventory dir, playbook, vault password file."""

    def __init__(self, root: Path, hosts: list[str], host_vars: str = "") -> None:
        self.root = root
        (root / "inventory").mkdir()
        lines = ["%s ansible_connection=local ansible_python_interpreter=%s %s" % (h, sys.executable, host_vars)
                 for h in hosts]
        (root / "inventory" / "hosts.ini").write_text("\n".join(lines) + "\n")
        (root / "play.yml").write_text(PLAYBOOK)
        (root / "vault-pass").write_text(PASSWORD + "\n")
        self.store = root / "inventory" / ".zulip_scim_tokens.vault.yml"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(
            HOME=str(self.root),
            ANSIBLE_HOME=str(self.root / ".ansible"),
            ANSIBLE_LOCAL_TEMP=str(self.root / ".ansible" / "tmp"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            PATH="%s:%s" % (BIN, env.get("PATH", "")),
        )
        return env

    def playbook(self, *args: str, vault: bool = True) -> subprocess.CompletedProcess:
        argv = [str(BIN / "ansible-playbook"), "-i", "inventory/hosts.ini", "play.yml", "-vvv", *args]
        if vault:
            argv += ["--vault-password-file", "vault-pass"]
        return subprocess.run(argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=300, check=False)

    def view(self) -> subprocess.CompletedProcess:
        argv = [str(BIN / "ansible-vault"), "view", "--vault-password-file", "vault-pass", str(self.store)]
        return subprocess.run(argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=120, check=False)

    def tokens(self) -> dict:
        """{host: {realm: token}} straight from the file, with Ansible's own vault code."""
        import yaml

        data = VaultLib([("default", VaultSecret(PASSWORD.encode()))]).decrypt(self.store.read_bytes())
        hosts = yaml.safe_load(data)["zulip_scim_tokens"]
        return {host: {realm: entry["token"] for realm, entry in realms.items()} for host, realms in hosts.items()}


def results(run: subprocess.CompletedProcess) -> dict:
    """The RESULT lines of the debug task, by host."""
    found = {}
    for line in run.stdout.splitlines():
        match = re.search(r'"msg": "RESULT (\S+) (.*)"', line)
        if match:
            found[match.group(1)] = dict(item.split("=", 1) for item in match.group(2).split(" "))
    return found


def assert_no_secret(run: subprocess.CompletedProcess, secrets) -> None:
    output = run.stdout + run.stderr
    for secret in secrets:
        assert secret not in output


def recap_changed(run: subprocess.CompletedProcess, host: str = "localhost") -> int:
    return int(re.search(r"^%s\s*: ok=\d+\s+changed=(\d+)" % re.escape(host), run.stdout, re.M).group(1))


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path, ["localhost"])


def test_generate_then_reuse_and_never_print(project):
    first = project.playbook()
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap_changed(first) == 1
    assert "censored" in first.stdout  # the task's own result line, at -vvv
    tokens = project.tokens()["localhost"]
    assert set(tokens) == {"acme", ""}
    assert all(len(token) >= 43 for token in tokens.values())
    report = results(first)["localhost"]
    assert report["acme"] == sha(tokens["acme"]) and report["root"] == sha(tokens[""])
    assert report["changed"] == "True" and report["generated"] == "acme,"
    assert_no_secret(first, tokens.values())

    before = project.store.read_bytes()
    mtime = project.store.stat().st_mtime_ns
    second = project.playbook()
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap_changed(second) == 0
    report = results(second)["localhost"]
    assert report["acme"] == sha(tokens["acme"]) and report["root"] == sha(tokens[""])
    assert report["changed"] == "False" and report["generated"] == ""
    assert project.store.read_bytes() == before and project.store.stat().st_mtime_ns == mtime
    assert_no_secret(second, tokens.values())

    view = project.view()
    assert view.returncode == 0, view.stderr
    assert view.stdout.startswith("# Bearer tokens for Zulip SCIM, written by zulip_ops.zulip.")
    assert "zulip_scim_tokens:\n  localhost:\n" in view.stdout
    assert "token: %s\n" % tokens["acme"] in view.stdout


def test_rotation_and_adoption_never_print(tmp_path):
    host_token = "HostSideToken_0123456789abcdefghijklmnopqrstu"
    project = Project(tmp_path, ["localhost"], host_vars="host_tokens='{\"acme\": \"%s\"}'" % host_token)
    first = project.playbook()
    assert first.returncode == 0, first.stdout + first.stderr
    report = results(first)["localhost"]
    assert report["adopted"] == "acme" and report["generated"] == ""
    assert project.tokens()["localhost"]["acme"] == host_token

    rotated = project.playbook("-e", '{"rotate": ["acme"]}')
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    report = results(rotated)["localhost"]
    new = project.tokens()["localhost"]
    assert report["rotated"] == "acme" and report["previous"] == sha(host_token)
    assert new["acme"] != host_token and report["acme"] == sha(new["acme"])
    assert report["conflicts"] == ""  # replaced by this very rotation: expected, not a conflict

    # The host (in this play) still reports the old token: a conflict now; the store wins
    # and the warning names the realm, never a token.
    again = project.playbook()
    assert again.returncode == 0, again.stdout + again.stderr
    report = results(again)["localhost"]
    assert report["conflicts"] == "acme" and report["changed"] == "False"
    assert report["acme"] == sha(new["acme"])
    assert "realm acme on localhost" in again.stdout + again.stderr
    for run in (first, rotated, again):
        assert_no_secret(run, [host_token, *new.values()])


def test_no_vault_secret_fails_clearly(project):
    run = project.playbook(vault=False)
    assert run.returncode == 2
    assert "no vault secret" in run.stdout
    assert "run with --vault-password-file, --ask-vault-pass or --vault-id" in run.stdout
    assert not project.store.exists()


def test_check_mode_writes_nothing(project):
    run = project.playbook("--check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert results(run)["localhost"]["generated"] == "acme,"
    assert not project.store.exists()


def test_forks_share_the_file(tmp_path):
    hosts = ["zulip%02d" % i for i in range(10)]
    project = Project(tmp_path, hosts)
    run = project.playbook("--forks", "10")
    assert run.returncode == 0, run.stdout + run.stderr
    stored = project.tokens()
    assert sorted(stored) == hosts
    every = [token for realms in stored.values() for token in realms.values()]
    assert len(set(every)) == len(every) == 20
    reported = results(run)
    for host in hosts:
        assert reported[host]["acme"] == sha(stored[host]["acme"])
    assert_no_secret(run, every)


GROUP_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  module_defaults:
    group/zulip_ops.zulip.zulip:
      deploy_path: "{{ zulip_root }}/deployments/current"
      settings_path: "{{ zulip_root }}/etc/settings.py"
      secrets_path: "{{ zulip_root }}/etc/zulip-secrets.conf"
      zulip_conf_path: "{{ zulip_root }}/etc/zulip.conf"
  tasks:
    - name: The action and the module it runs on the host get the paths from the group's defaults
      zulip_ops.zulip.zulip_scim_token:
        realms: [acme]
        adopt_from_host: true
      register: scim

    - name: So does every module
      zulip_ops.zulip.zulip_scim_preflight: {}
      register: server

    - name: Report
      ansible.builtin.debug:
        msg: "GROUP adopted={{ scim.adopted | join(',') }} version={{ server.version }} api_url={{ server.api_url }}"
"""


def test_module_defaults_for_the_action_group_reach_action_and_modules(project):
    root = project.root / "zulip"
    (root / "deployments" / "current").mkdir(parents=True)
    (root / "deployments" / "current" / "version.py").write_text('ZULIP_VERSION = "9.2"\n')
    (root / "etc").mkdir()
    (root / "etc" / "settings.py").write_text('EXTERNAL_HOST = "zulip.example.com"\n')
    host_token = "hand-made-host-token-0123456789"
    (root / "etc" / "zulip-secrets.conf").write_text("[secrets]\nscim_bearer_token_acme = %s\n" % host_token)
    (root / "etc" / "zulip.conf").write_text("[application_server]\nhttp_only = true\nnginx_listen_port = 9991\n")
    (project.root / "play.yml").write_text(GROUP_PLAYBOOK)
    run = project.playbook("-e", "zulip_root=%s" % root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "GROUP adopted=acme version=9.2 api_url=http://127.0.0.1:9991" in run.stdout
    assert project.tokens()["localhost"] == {"acme": host_token}
    assert_no_secret(run, [host_token])


def test_the_audit_playbook_lists_ages_and_no_token(tmp_path):
    """playbooks/audit_scim_tokens.yml over a store with two hosts; the hosts are never contacted."""
    made = Project(tmp_path, ["web1", "web2"])
    assert made.playbook().returncode == 0
    tokens = made.tokens()
    (tmp_path / "inventory" / "hosts.ini").write_text(
        "[zulip]\nweb1 ansible_host=192.0.2.1\nweb2 ansible_host=192.0.2.2\n")  # unreachable on purpose
    audit = Path(action_plugin.__file__).parents[2] / "playbooks" / "audit_scim_tokens.yml"
    argv = [str(BIN / "ansible-playbook"), "-i", "inventory/hosts.ini", str(audit), "--vault-password-file",
            "vault-pass", "-e", "zulip_scim_token_max_age_days=30", "-v"]
    run = subprocess.run(argv, cwd=tmp_path, env=made.env(), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for host in ("web1", "web2"):
        assert '%s acme: active, made ' % host in run.stdout
        assert '%s \\"\\" (root domain): active' % host in run.stdout or '%s "" (root domain): active' % host in run.stdout
    assert "0 days old" in run.stdout and "OVERDUE" not in run.stdout
    assert_no_secret(run, [t for realms in tokens.values() for t in realms.values()])


INFO_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  module_defaults:
    group/zulip_ops.zulip.zulip:
      deploy_path: "{{ host_root }}/current"
      settings_path: "{{ host_root }}/settings.py"
      secrets_path: "{{ host_root }}/zulip-secrets.conf"
  tasks:
    - name: SCIM state
      zulip_ops.zulip.zulip_scim_info:
        realms: [beta]
      register: info

    - name: Report it
      ansible.builtin.debug:
        msg: >-
          INFO {{ info.realms | to_json }} STORE {{ info.store | to_json }} CHANGED {{ info.changed }}
"""

INFO_SETTINGS = '''from .config import get_secret
# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten
SCIM_CONFIG = {
    "acme": {
        "bearer_token": get_secret("scim_bearer_token_acme"),
        "scim_client_name": "okta",
        "name_formatted_included": False,
    },
}
# END zulip_ops.zulip SCIM_CONFIG
'''


def info_of(run: subprocess.CompletedProcess) -> tuple[dict, t.Any, str]:
    import json

    match = re.search(r'"msg": "INFO (.*) STORE (.*) CHANGED (\w+)"', run.stdout)
    assert match, run.stdout + run.stderr

    def unescape(text: str) -> str:  # the debug line is a JSON string
        return json.loads('"%s"' % text)

    return json.loads(unescape(match.group(1))), json.loads(unescape(match.group(2))), match.group(3)


def test_zulip_scim_info_joins_the_host_and_the_store_and_shows_no_token(project):
    made = project.playbook()  # the store: acme and "" for localhost
    assert made.returncode == 0, made.stdout + made.stderr
    tokens = project.tokens()["localhost"]
    host_root = project.root / "host"
    (host_root / "current").mkdir(parents=True)
    (host_root / "current" / "version.py").write_text('ZULIP_VERSION = "9.2"\n')
    (host_root / "settings.py").write_text(INFO_SETTINGS)
    (host_root / "zulip-secrets.conf").write_text("[secrets]\nscim_bearer_token_acme = %s\n" % tokens["acme"])
    (project.root / "play.yml").write_text(INFO_PLAYBOOK)
    store_before = project.store.read_bytes()

    run = project.playbook("-e", "host_root=%s" % host_root)
    assert run.returncode == 0, run.stdout + run.stderr
    realms, store, changed = info_of(run)
    assert changed == "False" and store == str(project.store)
    assert realms["acme"]["state"] == "managed" and realms["acme"]["token"]["set"] is True
    assert realms["acme"]["store"]["state"] == "active" and realms["acme"]["store"]["age_days"] == 0
    # "" is only in the store: shown, off on the host; beta only asked for: off, nothing in the store.
    assert realms[""]["state"] == "off" and realms[""]["store"]["state"] == "active"
    assert realms["beta"]["state"] == "off" and realms["beta"]["store"] is None
    assert_no_secret(run, tokens.values())
    assert project.store.read_bytes() == store_before

    # Without the vault password: a warning, and the host's part all the same.
    blind = project.playbook("-e", "host_root=%s" % host_root, vault=False)
    assert blind.returncode == 0, blind.stdout + blind.stderr
    realms, store, _changed = info_of(blind)
    assert store is None and realms["acme"]["store"] is None and realms["acme"]["state"] == "managed"
    assert "the token store was not read" in blind.stdout + blind.stderr
    assert_no_secret(blind, tokens.values())


def test_the_old_name_zulip_info_still_runs_the_preflight_and_says_it_is_deprecated(project):
    host_root = project.root / "host"
    (host_root / "current").mkdir(parents=True)
    (host_root / "current" / "version.py").write_text('ZULIP_VERSION = "9.2"\n')
    (host_root / "settings.py").write_text('EXTERNAL_HOST = "zulip.example.test"\n')
    (project.root / "play.yml").write_text("""\
- hosts: all
  gather_facts: false
  tasks:
    - name: The name of 0.1.0
      zulip_ops.zulip.zulip_info:
        deploy_path: "{{ host_root }}/current"
        settings_path: "{{ host_root }}/settings.py"
        secrets_path: "{{ host_root }}/zulip-secrets.conf"
      register: old

    - name: Report it
      ansible.builtin.debug:
        msg: "OLD {{ old.version }} {{ old.external_host | default(old.settings_external_host) }}"
""")
    run = project.playbook("-e", "host_root=%s" % host_root, vault=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OLD 9.2 zulip.example.test" in run.stdout
    output = " ".join((run.stdout + run.stderr).split())
    assert "zulip_info is now called zulip_scim_preflight" in output and "1.0.0" in output
