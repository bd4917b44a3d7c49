"""Starting, restarting and finding the stand-in's server process.

On a test host the server is the systemd unit zulip-standin.service; the
zulip user restarts it through one narrow sudoers rule (a stand-in detail:
real Zulip uses supervisorctl). In local self-tests ("process" mode) it is a
plain child process found through its pid file.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

from . import frontend
from .config import StandinConfig

SYSTEMCTL = "/usr/bin/systemctl"


def read_pid(config: StandinConfig) -> int | None:
    try:
        pid = int(Path(config.pid_file).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def answers_http(config: StandinConfig, timeout: float = 2.0) -> bool:
    """Any HTTP answer counts: a server with broken settings answers 500, but it is up."""
    front = frontend.front_end(config.zulip_conf_path, config.https_port, config.http_port)
    conn: http.client.HTTPConnection
    if front.http_only:
        conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=timeout)
    else:
        context = ssl._create_unverified_context()  # noqa: S323 - our own self-signed test cert
        conn = http.client.HTTPSConnection("127.0.0.1", front.port, timeout=timeout, context=context)
    try:
        conn.request("GET", "/api/v1/server_settings", headers={"Host": "localhost"})
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def start_process(config: StandinConfig) -> None:
    log = open(Path(config.log_dir) / "server-stdio.log", "ab")
    subprocess.Popen(config.server_argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     start_new_session=True, close_fds=True)
    log.close()


def stop_process(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or is_zombie(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def restart(config: StandinConfig) -> None:
    if config.service_mode == "systemd":
        argv = [SYSTEMCTL, "restart", config.service_unit]
        if os.geteuid() != 0:
            argv = ["sudo", "-n", *argv]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        return
    old = read_pid(config)
    if old is not None:
        stop_process(old)
    start_process(config)


def wait_until_serving(config: StandinConfig, old_pid: int | None, timeout: float = 30.0) -> int:
    """The new server's pid, once it is a different process and answers HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(config)
        if pid is not None and pid != old_pid and answers_http(config):
            return pid
        time.sleep(0.05)
    raise TimeoutError(f"server did not come back within {timeout:.0f}s (old pid {old_pid})")
