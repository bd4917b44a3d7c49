"""One interface over a stand-in under test: local (temp prefix) or on a booted test host.

The behaviour tests are written once against :class:`Target` and run on both
layers: fast local installs (identity faked through $ZULIP_STANDIN_FAKE_USER,
server as a plain process) and real Debian hosts (users, systemd, SSH).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from zulip_standin import service

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "tests" / "zulip_standin" / "files"
PLAYBOOK = REPO / "tests" / "zulip_standin" / "install.yml"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
EXTERNAL_HOST = "zulip.example.test"
FLAVOURS = ["5.6", "9.0", "11.2"]  # every behaviour test runs on each of these
HOST_MANAGE_DELAY = 0.3  # shorter than the 1.0 default: hundreds of calls
HOST_RESTART_DELAY = 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

# Writes a file the way a careful tool does: same mode/owner, complete file renamed into place.
WRITE_FILE = """
import os, sys
path, text = sys.argv[1], sys.stdin.read()
st = os.stat(path)
tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tests-tmp")
with open(tmp, "w") as handle:
    handle.write(text)
os.chmod(tmp, st.st_mode & 0o7777)
os.chown(tmp, st.st_uid, st.st_gid)
os.replace(tmp, path)
"""

READ_FILE = "import sys; sys.stdout.write(open(sys.argv[1]).read())"

SQL = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=15, isolation_level=None)
rows = conn.execute(sys.argv[2], json.loads(sys.argv[3])).fetchall()
print(json.dumps([list(r) for r in rows]))
"""


@dataclass
class Result:
    rc: int
    out: str
    err: str
    seconds: float


class Target:
    """What the tests need from a stand-in, wherever it runs."""

    layer = "?"

    def __init__(self, flavour: str, prefix: str, https_port: int, http_port: int = 80) -> None:
        self.flavour = flavour
        self.prefix = prefix
        self.https_port = https_port  # what "443" means for this install
        self.http_port = http_port  # what "80" means (0 = nothing)
        self.base_settings = ""
        self.settings_on_disk = ""  # what we last wrote (only the tests write settings.py)
        self.loaded_settings: str | None = None  # what the running server read at start
        self.secrets_set: dict[str, str] = {}

    # ---- transport (layer specific)
    def run(self, argv: list[str], user: str = "root", stdin: str | None = None, timeout: float = 120) -> Result:
        raise NotImplementedError

    def python(self) -> str:
        raise NotImplementedError

    def probe_argv(self) -> list[str]:
        raise NotImplementedError

    # ---- paths
    def path(self, absolute: str) -> str:
        return self.prefix + absolute

    @property
    def deploy(self) -> str:
        return self.path("/home/zulip/deployments/current")

    @property
    def settings_path(self) -> str:
        return self.path("/etc/zulip/settings.py")

    @property
    def secrets_path(self) -> str:
        return self.path("/etc/zulip/zulip-secrets.conf")

    @property
    def ledger_path(self) -> str:
        return self.path("/var/lib/zulip-standin/ledger.jsonl")

    @property
    def db_path(self) -> str:
        return self.path("/var/lib/zulip-standin/db/zulip.db")

    # ---- commands
    def manage(self, *args: str, user: str = "zulip", stdin: str | None = None) -> Result:
        return self.run([f"{self.deploy}/manage.py", *args], user=user, stdin=stdin)

    def restart(self, *args: str, user: str = "zulip") -> Result:
        return self.run([f"{self.deploy}/scripts/restart-server", *args], user=user)

    def py(self, code: str, *args: str, stdin: str | None = None) -> Result:
        result = self.run([self.python(), "-c", code, *args], stdin=stdin)
        assert result.rc == 0, result
        return result

    def read(self, path: str) -> str:
        return self.py(READ_FILE, path).out

    def write(self, path: str, text: str) -> None:
        self.py(WRITE_FILE, path, stdin=text)
        if path == self.settings_path:
            self.settings_on_disk = text

    def sql(self, statement: str, *params: Any) -> list[list[Any]]:
        return json.loads(self.py(SQL, self.db_path, statement, json.dumps(list(params))).out)

    def ledger(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read(self.ledger_path).splitlines() if line.strip()]

    def server_pid(self) -> int | None:
        text = self.read(self.path("/run/zulip-standin/server.pid")).strip()
        return int(text) if text else None

    def http(self, *requests: dict[str, Any], verify: bool = True) -> list[dict[str, Any]]:
        # No port or scheme: the probe follows zulip.conf, as the server does.
        job = {"zulip_conf": self.path("/etc/zulip/zulip.conf"), "https_port": self.https_port,
               "http_port": self.http_port, "requests": list(requests),
               "cafile": self.path("/etc/ssl/certs/zulip.combined-chain.crt") if verify else None}
        result = self.run(self.probe_argv(), stdin=json.dumps(job))
        assert result.rc == 0, result
        return json.loads(result.out)

    def get(self, path: str, host: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
        headers = dict(extra.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http({"method": extra.pop("method", "GET"), "path": path, "host": host,
                          "headers": headers, **extra})[0]

    # ---- state the tests set up
    def fresh_state(self) -> None:
        """Right after an install: remember the installed settings.py."""
        self.base_settings = self.read(self.settings_path)
        self.settings_on_disk = self.loaded_settings = self.base_settings
        self.secrets_set = {}

    def set_secret(self, name: str, value: str) -> None:
        if self.secrets_set.get(name) == value:
            return
        self.secrets_set[name] = value
        lines = [line for line in self.read(self.secrets_path).splitlines() if not line.startswith(f"{name} =")]
        self.write(self.secrets_path, "\n".join(lines) + f"\n{name} = {value}\n")

    def apply_settings(self, extra: str | None) -> None:
        """settings.py = installed text + extra; restart only when the server runs something else."""
        wanted = self.base_settings + (extra or "")
        if self.settings_on_disk != wanted:
            self.write(self.settings_path, wanted)
        if self.loaded_settings != wanted:
            result = self.restart()
            assert result.rc == 0, result
            self.loaded_settings = wanted


def realm_host(subdomain: str) -> str:
    return f"{subdomain}.{EXTERNAL_HOST}" if subdomain else EXTERNAL_HOST


class LocalTarget(Target):
    layer = "local"

    def __init__(self, flavour: str, root: Path, https_port: int, manage_delay: float, restart_delay: float,
                 http_port: int = 0, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(flavour, str(root), https_port, http_port)
        self.manage_delay, self.restart_delay = manage_delay, restart_delay
        self.extra_args = extra_args  # e.g. ("--http-only", "--nginx-listen-port", "N")

    def install(self) -> None:
        result = subprocess.run(
            [sys.executable, str(FILES / "installer.py"), "--flavour", self.flavour, "--prefix", self.prefix,
             "--local", "--https-port", str(self.https_port), "--http-port", str(self.http_port),
             "--manage-delay", str(self.manage_delay), "--restart-delay", str(self.restart_delay),
             *self.extra_args],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        self.fresh_state()

    def stop(self) -> None:
        pid_file = Path(self.path("/run/zulip-standin/server.pid"))
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists() or service.is_zombie(pid):
                return
            time.sleep(0.05)
        os.kill(pid, 9)

    def run(self, argv: list[str], user: str = "root", stdin: str | None = None, timeout: float = 120) -> Result:
        env = {**os.environ, "ZULIP_STANDIN_FAKE_USER": user, "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, cwd="/")
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def python(self) -> str:
        return sys.executable

    def probe_argv(self) -> list[str]:
        return [sys.executable, str(FILES / "probe.py")]


class HostTarget(Target):
    layer = "host"

    def __init__(self, flavour: str, name: str, ssh_argv: list[str], manage_delay: float, restart_delay: float) -> None:
        super().__init__(flavour, "", 443)
        self.name = name
        self.ssh_argv = ssh_argv
        self.manage_delay, self.restart_delay = manage_delay, restart_delay

    def run(self, argv: list[str], user: str = "root", stdin: str | None = None, timeout: float = 120) -> Result:
        command = argv if user == "root" else ["runuser", "-u", user, "--", *argv]
        remote = "cd / && " + shlex.join(command)
        started = time.monotonic()
        proc = subprocess.run([*self.ssh_argv, remote], input=stdin if stdin is not None else "",
                              capture_output=True, text=True, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def python(self) -> str:
        return "/usr/bin/python3"

    def close(self) -> None:
        """End our SSH master connection (see multiplexed_ssh_argv)."""
        subprocess.run([*self.ssh_argv[:-1], "-O", "exit", self.ssh_argv[-1]], capture_output=True, timeout=30)

    def probe_argv(self) -> list[str]:
        return ["/usr/bin/python3", "/opt/zulip-standin/probe.py"]

    def after_install(self) -> None:
        self.fresh_state()


def write_inventory(path: Path, hosts: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    """hosts: (inventory name, harness info from testhost.up(), extra host vars)."""
    inventory: dict[str, Any] = {"all": {"hosts": {}}}
    for name, info, extra in hosts:
        inventory["all"]["hosts"][name] = {
            "ansible_host": info["address"], "ansible_port": info.get("port", 22),
            "ansible_user": info.get("user", "root"), "ansible_ssh_private_key_file": info["identity_file"],
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3", **extra,
        }
    path.write_text(json.dumps(inventory, indent=2))  # JSON is valid YAML


def run_install_playbook(inventory: Path, extra_args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_PIPELINING": "True"}
    return subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK), *(extra_args or [])],
                          capture_output=True, text=True, env=env, timeout=600)


def multiplexed_ssh_argv(harness_argv: list[str], control_dir: Path) -> list[str]:
    """The harness's ssh command, sharing one master connection per host.

    A new SSH handshake costs ~0.4 s and these tests make hundreds of calls.
    ssh takes the first value of an option, so ours go before the harness's
    "ControlMaster=no"; HostTarget.close() ends the master before tear-down.
    """
    control = ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/%C", "-o", "ControlPersist=300"]
    return [harness_argv[0], *control, *harness_argv[1:]]


def host_name(flavour: str) -> str:
    return f"standin-{flavour.replace('.', '-')}-{os.getpid()}"


def host_marks(flavour: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.testhost, pytest.mark.xdist_group(f"standin-host-{flavour}")]


class HostTargets:
    """One booted host per flavour, booted and installed on first use, removed at session end.

    Under pytest-xdist (--dist loadgroup) each flavour's host tests share one
    xdist_group, so each host is booted once, by the worker that runs them.
    """

    def __init__(self, testhost: Any, workdir: Path) -> None:
        self.testhost = testhost
        self.workdir = workdir
        self.control_dir = Path(tempfile.mkdtemp(prefix="standin-ssh-"))
        self.targets: dict[str, HostTarget] = {}
        self.booted: list[str] = []
        self.failed: dict[str, str] = {}

    def get(self, flavour: str) -> HostTarget:
        if flavour in self.failed:
            pytest.fail(f"host for {flavour} could not be set up: {self.failed[flavour]}")
        if flavour not in self.targets:
            try:
                self.targets[flavour] = self._boot(flavour)
            except Exception as exc:  # noqa: BLE001 - fail its other tests fast, not by rebooting
                self.failed[flavour] = str(exc)[-2000:]
                raise
        return self.targets[flavour]

    def _boot(self, flavour: str) -> HostTarget:
        name = host_name(flavour)
        self.booted.append(name)
        info = self.testhost.up([name])[0]
        inventory = self.workdir / f"{name}.yml"
        write_inventory(inventory, [(name, info, {
            "zulip_standin_flavour": flavour, "zulip_standin_manage_delay": HOST_MANAGE_DELAY,
            "zulip_standin_restart_delay": HOST_RESTART_DELAY})])
        result = run_install_playbook(inventory)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        ssh = multiplexed_ssh_argv(self.testhost.ssh_argv(name), self.control_dir)
        target = HostTarget(flavour, name, ssh, HOST_MANAGE_DELAY, HOST_RESTART_DELAY)
        target.inventory = inventory  # type: ignore[attr-defined]
        target.after_install()
        return target

    def close(self) -> None:
        for target in self.targets.values():
            target.close()
        if self.booted:
            self.testhost.down(self.booted)
        shutil.rmtree(self.control_dir, ignore_errors=True)
