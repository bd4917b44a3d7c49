# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""docker-zulip containers (issue 25): refused where the entrypoint would undo the edits, nothing changed.

The container is a tree under tmp_path laid out as docker-zulip's image lays it out (its
Dockerfile and entrypoint.sh, 5.0-0 to 12.1-0): the entrypoint, the image's Zulip tree, the
environment PID 1 started with, /run/secrets and the /data volume.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _docker_zulip as docker_zulip
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_config

import _module_runner as runner  # noqa: E402 - found through conftest.py

TOKEN = "acme-TOKEN-0123456789abcdef-never-shown"
ENV_SECRET = "postgres-PASSWORD-from-the-environment"
ZULIP_UID, ZULIP_GID = 1234, 1235
ENTRYPOINT = (
    "#!/bin/bash\n"
    'MANUAL_CONFIGURATION="$(normalize_bool MANUAL_CONFIGURATION)"\n'
    "cp -a /home/zulip/deployments/current/zproject/prod_settings_template.py /etc/zulip/settings.py\n"
)
SETTINGS = 'from .config import get_secret\nEXTERNAL_HOST = "zulip.example.com"\n'
SECRETS = "[secrets]\nrabbitmq_password = %s\n" % ENV_SECRET


class Container:
    """A docker-zulip container's tree; ``etc`` is /etc/zulip, in the container's own file system."""

    def __init__(self, root: Path):
        self.root = root
        self.layout = docker_zulip.ContainerLayout(
            entrypoint=str(root / "sbin" / "entrypoint.sh"),
            source_tree_marker=str(root / "root" / "zulip" / "README.custom_zulip_files.md"),
            init_environment=str(root / "proc" / "1" / "environ"),
            docker_secrets=str(root / "run" / "secrets"),
            data_dir=str(root / "data"),
        )
        (root / "data").mkdir()
        (root / "proc" / "1").mkdir(parents=True)
        self.etc = root / "etc" / "zulip"
        self.use_settings_directory(self.etc)
        self.deploy = root / "deployments" / "current"
        self.deploy.mkdir(parents=True)
        (self.deploy / "version.py").write_text('ZULIP_VERSION = "9.3"\n')
        self.start_with(SECRETS_postgres_password=ENV_SECRET)

    def use_settings_directory(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.settings = directory / "settings.py"
        self.secrets = directory / "zulip-secrets.conf"
        for path, text, mode in ((self.settings, SETTINGS, 0o644), (self.secrets, SECRETS, 0o640)):
            if not path.exists():
                path.write_text(text)
                os.chown(path, ZULIP_UID, ZULIP_GID)
                os.chmod(path, mode)

    def add_entrypoint(self, text: str = ENTRYPOINT, mode: int = 0o755, uid: int = 0):
        path = Path(self.layout.entrypoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chown(path, uid, 0)
        os.chmod(path, mode)

    def add_source_tree_marker(self):
        path = Path(self.layout.source_tree_marker)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("The custom_zulip_files mechanism allows you to test edits to Zulip\n")

    def start_with(self, **environment):
        entries = ["PATH=/usr/local/sbin:/usr/bin", "DATA_DIR=/data"] + ["%s=%s" % item for item in environment.items()]
        Path(self.layout.init_environment).write_bytes("\0".join(entries).encode() + b"\0")

    def add_docker_secret(self, name: str):
        directory = Path(self.layout.docker_secrets)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(TOKEN)

    def state(self):
        return {str(p): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
                for p in (self.settings, self.secrets) if p.exists()}

    def check(self):
        return docker_zulip.check_host(str(self.settings), str(self.secrets), self.layout)

    def refusal(self) -> str:
        with pytest.raises(ZulipError) as raised:
            self.check()
        message = str(raised.value)
        assert TOKEN not in message and ENV_SECRET not in message
        return message


@pytest.fixture
def container(tmp_path):
    return Container(tmp_path)


@pytest.fixture
def docker_zulip_host(container):
    """The container as the host the modules look at: docker-zulip's signs present, not MANUAL_CONFIGURATION."""
    container.add_entrypoint()
    container.add_source_tree_marker()
    return container


@pytest.fixture(autouse=True)
def host_layout(container, monkeypatch):
    """The modules look at the container's tree instead of the machine's /sbin, /root, /proc/1 and /data."""
    monkeypatch.setattr(docker_zulip, "HOST", container.layout)


# -- which hosts are docker-zulip containers -------------------------------------------------


def test_a_host_without_any_sign_is_not_looked_at_further(container):
    # No entrypoint, no image tree: PID 1's environment is not even read.
    os.unlink(container.layout.init_environment)
    assert container.check() is None


def test_another_images_entrypoint_is_no_sign(container):
    container.add_entrypoint("#!/bin/sh\nexec \"$@\"\n")
    assert container.check() is None


def test_docker_zulips_entrypoint_is_a_sign(container):
    container.add_entrypoint()
    assert "entrypoint.sh (docker-zulip's entrypoint)" in container.refusal()


def test_the_images_zulip_tree_is_a_sign_without_the_entrypoint(container):
    container.add_source_tree_marker()
    assert "README.custom_zulip_files.md" in container.refusal()


@pytest.mark.parametrize("owner_and_mode", [(ZULIP_UID, 0o755), (0, 0o777)])
def test_an_entrypoint_another_user_could_rewrite_counts_whatever_it_says(container, owner_and_mode):
    uid, mode = owner_and_mode
    container.add_entrypoint("#!/bin/sh\nexec \"$@\"\n", mode=mode, uid=uid)
    assert "writable by users other than root" in container.refusal()


# -- without MANUAL_CONFIGURATION: settings.py is written afresh at every start ---------------


@pytest.mark.parametrize("value", [None, "false", "False", "", "maybe"])
def test_without_manual_configuration_it_is_refused(docker_zulip_host, value):
    environment = {} if value is None else {"MANUAL_CONFIGURATION": value}
    docker_zulip_host.start_with(SECRETS_postgres_password=ENV_SECRET, **environment)
    message = docker_zulip_host.refusal()
    assert "docker-zulip container" in message
    assert "copies settings.py afresh from Zulip's template and the SETTING_* variables at every container start" in message
    assert "Nothing was changed" in message
    assert "docs/docker-zulip.md" in message
    assert "SETTING_SCIM_CONFIG and one SECRETS_scim_bearer_token_<subdomain> per realm" in message


def test_a_scim_config_set_through_the_environment_is_named(docker_zulip_host):
    docker_zulip_host.start_with(SETTING_SCIM_CONFIG='{"acme": {}}')
    assert "SETTING_SCIM_CONFIG is set" in docker_zulip_host.refusal()


def test_an_unreadable_start_environment_is_refused(docker_zulip_host):
    os.unlink(docker_zulip_host.layout.init_environment)
    message = docker_zulip_host.refusal()
    assert "cannot be read" in message and "MANUAL_CONFIGURATION" in message


# -- MANUAL_CONFIGURATION: works where both files are on the /data volume ------------------------


def on_the_volume(container: Container) -> Path:
    """LINK_SETTINGS_TO_DATA: /etc/zulip is /data/etc-zulip."""
    directory = Path(container.layout.data_dir) / "etc-zulip"
    container.use_settings_directory(directory)
    return directory


@pytest.mark.parametrize("value", ["True", "true", "yes", "1", "ON", "enabled"])
def test_manual_configuration_on_the_volume_is_accepted(docker_zulip_host, value):
    directory = on_the_volume(docker_zulip_host)
    docker_zulip_host.start_with(MANUAL_CONFIGURATION=value, SECRETS_postgres_password=ENV_SECRET)
    verdict = docker_zulip_host.check()
    assert verdict is not None
    assert verdict.settings_dir == verdict.secrets_dir == str(directory)


def test_manual_configuration_through_roots_link_to_the_volume_is_accepted(docker_zulip_host):
    # The entrypoint's `ln -sfT /data/etc-zulip /etc/zulip`: root's link in a directory only root writes.
    directory = on_the_volume(docker_zulip_host)
    etc = docker_zulip_host.root / "etc-linked"
    etc.mkdir(mode=0o755)
    (etc / "zulip").symlink_to(directory)
    docker_zulip_host.settings, docker_zulip_host.secrets = etc / "zulip" / "settings.py", etc / "zulip" / "zulip-secrets.conf"
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    assert docker_zulip_host.check().settings_dir == str(directory)


def test_a_link_the_zulip_user_planted_to_the_volume_is_not_followed(docker_zulip_host):
    directory = on_the_volume(docker_zulip_host)
    etc = docker_zulip_host.root / "etc-of-zulip"
    etc.mkdir()
    (etc / "zulip").symlink_to(directory)
    os.lchown(etc / "zulip", ZULIP_UID, ZULIP_GID)
    os.chown(etc, ZULIP_UID, ZULIP_GID)
    docker_zulip_host.settings, docker_zulip_host.secrets = etc / "zulip" / "settings.py", etc / "zulip" / "zulip-secrets.conf"
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    assert "directory cannot be opened" in docker_zulip_host.refusal()


def test_manual_configuration_in_the_containers_own_file_system_is_refused(docker_zulip_host):
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    message = docker_zulip_host.refusal()
    assert "with MANUAL_CONFIGURATION, but %s is not kept on its data volume" % docker_zulip_host.settings in message
    assert "its directory is %s, outside the volume" % docker_zulip_host.etc in message
    assert "own file system is lost when it is made again" in message
    assert "LINK_SETTINGS_TO_DATA" in message


def test_a_settings_file_mounted_onto_the_volume_is_refused(docker_zulip_host, monkeypatch):
    # A bind mount shows as a file whose device is not its directory's: simulated, since a unit test cannot mount.
    on_the_volume(docker_zulip_host)
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    real_lstat = safe_dir.SafeDir.lstat

    def lstat(self, name):
        info = real_lstat(self, name)
        if info is None or name != "settings.py":
            return info
        fields = list(info)
        fields[stat.ST_DEV] = info.st_dev + 1
        return os.stat_result(fields)

    monkeypatch.setattr(safe_dir.SafeDir, "lstat", lstat)
    assert "it is mounted from elsewhere (a bind mount from the Docker host)" in docker_zulip_host.refusal()


def test_a_secrets_file_off_the_volume_is_refused(docker_zulip_host):
    on_the_volume(docker_zulip_host)
    docker_zulip_host.secrets = docker_zulip_host.etc / "zulip-secrets.conf"
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    assert "%s is not kept on its data volume" % docker_zulip_host.secrets in docker_zulip_host.refusal()


def test_a_token_variable_that_would_come_back_at_each_start_is_refused(docker_zulip_host):
    on_the_volume(docker_zulip_host)
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True", SECRETS_scim_bearer_token_acme=TOKEN)
    message = docker_zulip_host.refusal()
    assert "SECRETS_scim_bearer_token_acme sets a SCIM bearer token in zulip-secrets.conf at every container start" in message


def test_a_token_docker_secret_that_would_come_back_at_each_start_is_refused(docker_zulip_host):
    on_the_volume(docker_zulip_host)
    docker_zulip_host.add_docker_secret("zulip__scim_bearer_token__root")
    docker_zulip_host.add_docker_secret("zulip__email_password")
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    message = docker_zulip_host.refusal()
    assert "zulip__scim_bearer_token__root sets a SCIM bearer token" in message
    assert "email_password" not in message


# -- the modules: refused first, nothing read further, nothing changed ------------------------


def no_secret_in(outcome):
    dumped = json.dumps(outcome.result) + json.dumps(outcome.warnings)
    assert TOKEN not in dumped and ENV_SECRET not in dumped


def config_args(container: Container) -> dict:
    return dict(realms=[{"subdomain": "acme", "client_name": "okta"}], tokens={"acme": TOKEN},
                settings_path=str(container.settings), secrets_path=str(container.secrets),
                deploy_path=str(container.deploy))


@pytest.mark.parametrize("check_mode", [False, True])
def test_zulip_scim_config_refuses_a_docker_zulip_container_and_changes_nothing(docker_zulip_host, check_mode):
    before = docker_zulip_host.state()
    entries = sorted(os.listdir(docker_zulip_host.etc))
    outcome = runner.run_module(zulip_scim_config.main, config_args(docker_zulip_host), check_mode=check_mode)
    assert outcome.failed, outcome
    assert "docker-zulip container" in outcome.result["msg"] and "Nothing was changed" in outcome.result["msg"]
    assert docker_zulip_host.state() == before
    assert sorted(os.listdir(docker_zulip_host.etc)) == entries
    no_secret_in(outcome)


def test_zulip_scim_config_works_with_manual_configuration_on_the_volume(docker_zulip_host):
    on_the_volume(docker_zulip_host)
    docker_zulip_host.start_with(MANUAL_CONFIGURATION="True")
    outcome = runner.run_module(zulip_scim_config.main, config_args(docker_zulip_host))
    assert not outcome.failed, outcome
    assert outcome.result["changed"]
    assert "SCIM_CONFIG" in docker_zulip_host.settings.read_text()
    assert "scim_bearer_token_acme = %s" % TOKEN in docker_zulip_host.secrets.read_text()
    no_secret_in(outcome)


def test_zulip_scim_config_is_unchanged_on_a_host_without_signs(container):
    outcome = runner.run_module(zulip_scim_config.main, config_args(container))
    assert not outcome.failed, outcome
    assert "scim_bearer_token_acme = %s" % TOKEN in container.secrets.read_text()


def test_zulip_scim_preflight_refuses_before_it_reads_the_host_or_runs_anything(docker_zulip_host, monkeypatch):
    read = []
    monkeypatch.setattr(zulip_scim_preflight, "read_version", lambda path: read.append(path) or "9.3")
    before = docker_zulip_host.state()
    outcome = runner.run_module(zulip_scim_preflight.main, dict(
        realms=["acme"], check_settings=True, settings_path=str(docker_zulip_host.settings),
        secrets_path=str(docker_zulip_host.secrets), deploy_path=str(docker_zulip_host.deploy)))
    assert outcome.failed, outcome
    assert "docker-zulip container" in outcome.result["msg"]
    assert "docs/docker-zulip.md" in outcome.result["msg"]
    assert read == [] and outcome.run.argvs == []
    assert docker_zulip_host.state() == before
    no_secret_in(outcome)


def test_zulip_scim_preflight_reads_a_host_without_signs_as_before(container):
    outcome = runner.run_module(zulip_scim_preflight.main, dict(
        settings_path=str(container.settings), secrets_path=str(container.secrets),
        deploy_path=str(container.deploy)))
    assert not outcome.failed, outcome
    assert outcome.result["version"] == "9.3"


def test_the_entrypoint_read_is_bounded_and_not_through_a_link(container, tmp_path):
    # A link at the entrypoint's name (not root's in a root-only directory when run unprivileged,
    # and never followed for a file) cannot be read through: it counts as a sign, so the run stops.
    target = tmp_path / "elsewhere.sh"
    target.write_text(ENTRYPOINT)
    link = Path(container.layout.entrypoint)
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert "not readable as a file" in container.refusal()


# -- the guide: its SETTING_SCIM_CONFIG and SECRETS_ variables give what the collection writes ------------

GUIDE = Path(__file__).resolve().parents[4] / "docs" / "docker-zulip.md"


def guide_yaml_blocks() -> list:
    import yaml

    blocks, current = [], None
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if current is None and line.strip() == "```yaml":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append(yaml.safe_load("\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def as_docker_zulip_starts(setting_value: str, env_lines: list[str]) -> dict:
    """SCIM_CONFIG as the entrypoint makes it: the template, then setConfigurationValue's "array" line, and the
    secrets file from SECRETS_<key> variables; then evaluated as Zulip does, get_secret reading that file."""
    compact = "".join(setting_value.split())
    assert compact.startswith("{") and compact.endswith("}")  # the entrypoint's test for an "array" value
    settings = "from .config import get_secret\n" + "SCIM_CONFIG = %s\n" % setting_value
    secrets = {}
    for line in env_lines:
        name, _sep, value = line.partition("=")
        assert name.startswith("SECRETS_") and name.isidentifier(), name  # else the entrypoint's shell drops it
        secrets[name[len("SECRETS_"):]] = value
    namespace = {"get_secret": secrets.get}
    exec(compile(settings.replace("from .config import get_secret\n", ""), "settings.py", "exec"), namespace)
    return namespace["SCIM_CONFIG"]


def as_the_collection_writes(tmp_path: Path, items: list[dict], tokens: dict) -> dict:
    import configparser

    etc = tmp_path / "plain-host"
    etc.mkdir()
    settings, secrets = etc / "settings.py", etc / "zulip-secrets.conf"
    settings.write_text(SETTINGS)
    secrets.write_text("[secrets]\n")
    deploy = etc / "current"
    deploy.mkdir()
    (deploy / "version.py").write_text('ZULIP_VERSION = "9.3"\n')
    outcome = runner.run_module(zulip_scim_config.main, dict(
        realms=items, tokens=tokens, settings_path=str(settings), secrets_path=str(secrets), deploy_path=str(deploy)))
    assert not outcome.failed, outcome
    parser = configparser.RawConfigParser()
    parser.read_string(secrets.read_text())
    namespace = {"get_secret": lambda name: parser.get("secrets", name, fallback=None)}
    exec(compile(settings.read_text().replace("from .config import get_secret\n", ""), "settings.py", "exec"), namespace)
    return namespace["SCIM_CONFIG"]


def test_the_guides_variables_configure_what_the_role_would(tmp_path):
    jinja2 = pytest.importorskip("jinja2")

    compose, play = guide_yaml_blocks()[:2]
    setting = compose["services"]["zulip"]["environment"]["SETTING_SCIM_CONFIG"]
    tasks = play[0]["tasks"]
    realms = play[0]["vars"]["realms"]
    tokens = {"acme": "acme-" + "a" * 40, "": "root-" + "b" * 40}
    content = next(task["ansible.builtin.copy"]["content"] for task in tasks if "ansible.builtin.copy" in task)
    rendered = jinja2.Environment(trim_blocks=True).from_string(content).render(realms=realms, scim={"tokens": tokens})
    env_lines = [line for line in rendered.splitlines() if line.strip()]

    items = [{"subdomain": "acme", "client_name": "okta"},
             {"subdomain": "", "client_name": "entra-id", "name_formatted_included": True}]
    assert as_docker_zulip_starts(setting, env_lines) == as_the_collection_writes(tmp_path, items, tokens)
