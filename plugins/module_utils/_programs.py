# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Running the zulip user's programs (manage.py, psql, restart-server) from root, handing them nothing.

Those programs belong to the ``zulip`` user, who is not trusted (docs/security.md):
``runuser`` gives them that user's rights, and this runner makes sure they get
nothing else of the root process that starts them:

* **no terminal**: a new session (``setsid``) and standard input from
  ``/dev/null``. A child that kept root's controlling terminal could push
  keystrokes into it (``TIOCSTI``) that root's shell runs after Ansible exits;
* **no environment** but a fixed ``PATH`` and locale (plus what the caller names,
  never a secret): a play's ``environment:`` (a Vault token, proxy credentials)
  stays with root;
* **no descriptor** but its three pipes (``close_fds``; every descriptor the
  collection opens is close-on-exec anyway);
* **bounded time and output**: the runner keeps its own deadline. At it, the
  child's process group gets SIGTERM, then SIGKILL, and the runner returns
  without waiting for the pipes to close (a grandchild that left the group and
  keeps printing cannot hold the run), and only the last :data:`MAX_OUTPUT` bytes
  of each stream are kept (an endless ``yes`` cannot fill root's memory).
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import signal
import subprocess
import time

# What a program of the zulip user finds in its environment: no variable of root's.
CLEAN_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}
MAX_OUTPUT = 64 * 1024  # per stream: more than any message quotes
TERM_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of the process group
DRAIN_AFTER_EXIT = 2.0  # how long output is still read once the program itself has ended
# manage_timeout 0 ("waits for ever"): a year is for ever for an Ansible run.
NO_DEADLINE = 365 * 24 * 3600.0
# restart-server takes 17-25 s on a real server; far longer means it hangs (it is the zulip user's program).
RESTART_DEADLINE = 600.0
_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Finished:
    """How a program ended: its exit code, the tail of what it printed, whether the deadline stopped it."""

    rc: int
    out: str
    err: str
    timed_out: bool = False


def _environment(extra: dict | None) -> dict:
    environment = dict(CLEAN_ENVIRONMENT)
    environment.update(extra or {})
    return environment


def _keep_tail(buffer: bytearray, chunk: bytes) -> None:
    buffer.extend(chunk)
    if len(buffer) > MAX_OUTPUT:
        del buffer[:len(buffer) - MAX_OUTPUT]


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the program leads its own session, so its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _read_until(selector: selectors.BaseSelector, buffers: dict, deadline: float, process: subprocess.Popen | None) -> None:
    """Read the pipes until both are closed, ``deadline`` passes, or ``process`` (when given) has ended."""
    while selector.get_map():
        if process is not None and process.poll() is not None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for key, _events in selector.select(min(left, 0.5)):
            chunk = os.read(key.fd, _CHUNK)
            if chunk:
                _keep_tail(buffers[key.fd], chunk)
            else:
                selector.unregister(key.fd)


def run(argv: list[str], timeout: float, cwd: str = "/", environ_update: dict | None = None) -> Finished:
    """Run ``argv`` in a session of its own, with a clean environment, for at most ``timeout`` seconds."""
    # Not AnsibleModule.run_command: it can neither start a new session, nor clear the environment, nor stop
    # reading at a deadline while a grandchild holds the pipes open, nor bound what it keeps.
    process = subprocess.Popen(  # pylint: disable=consider-using-with,ansible-bad-function
        argv, cwd=cwd, env=_environment(environ_update), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, close_fds=True, start_new_session=True)
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    selector = selectors.DefaultSelector()
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    try:
        deadline = time.monotonic() + timeout
        _read_until(selector, buffers, deadline, process)
        _wait_until(process, deadline)  # a program may close its output and go on running
        timed_out = _stop_if_running(process)
        # What the program printed last may still be in the pipes; a grandchild that keeps them open
        # is not waited for.
        _read_until(selector, buffers, time.monotonic() + DRAIN_AFTER_EXIT, None)
    finally:
        selector.close()
        process.stdout.close()
        process.stderr.close()
    return Finished(process.returncode, _text(buffers[out_fd]), _text(buffers[err_fd]), timed_out)


def _wait_until(process: subprocess.Popen, deadline: float) -> None:
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass


def _stop_if_running(process: subprocess.Popen) -> bool:
    """Whether the program was still running at its deadline (then its group is stopped: TERM, then KILL)."""
    if process.poll() is not None:
        return False
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=TERM_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()
    return True


def _text(buffer: bytearray) -> str:
    return bytes(buffer).decode("utf-8", "replace")
