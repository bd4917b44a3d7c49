"""The runner of the zulip user's programs hands them no terminal, no environment, no descriptor and no unbounded time.

Each case runs real child processes (the zulip user's manage.py, psql and
restart-server stand in as small scripts): what they can reach is what an
attacker who owns those files can reach.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sys
import textwrap
import time

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _restart as restart

PY = sys.executable


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!%s\n%s" % (PY, textwrap.dedent(body)))
    path.chmod(0o755)
    return str(path)


# Runs in a child of the test that has a pseudo-terminal as its controlling terminal, as a module
# started from an operator's terminal has: the program it runs tries to reach that terminal.
_CHILD_WITH_A_TERMINAL = """
import json, os, sys
sys.path[:0] = %(path)r
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
done = programs.run([%(py)r, "-c", %(probe)r], timeout=20)
print("RESULT " + json.dumps([done.rc, done.out, done.err]), flush=True)
"""

_TERMINAL_PROBE = """
import fcntl, termios
try:
    tty = open("/dev/tty", "wb", buffering=0)
except OSError as exc:
    print("no terminal: errno %d" % exc.errno)
else:
    try:
        for byte in b"id\\n":
            fcntl.ioctl(tty, termios.TIOCSTI, bytes([byte]))
        print("INJECTED")
    except OSError as exc:
        print("terminal, but no injection: errno %d" % exc.errno)
"""


@pytest.mark.reliability(area="attack", case="a program of the zulip user (restart-server, manage.py, psql) opens the "
                         "controlling terminal of the root process that runs it and pushes keystrokes into it (TIOCSTI)",
                         outcome="it has no terminal: it runs in a session of its own with stdin from /dev/null")
def test_a_program_gets_no_controlling_terminal_to_type_into():
    code = _CHILD_WITH_A_TERMINAL % {"path": list(sys.path), "py": PY, "probe": _TERMINAL_PROBE}
    pid, master = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execv(PY, [PY, "-c", code])
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    os.close(master)
    line = next(x for x in output.decode().splitlines() if x.startswith("RESULT "))
    rc, out, _err = json.loads(line[len("RESULT "):])
    assert rc == 0, output
    assert "INJECTED" not in out
    assert out.startswith("no terminal"), out  # ENXIO: no controlling terminal at all


def test_a_program_gets_a_clean_environment_and_no_descriptor_but_its_pipes(tmp_path, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s.root-only-vault-token")
    monkeypatch.setenv("https_proxy", "http://user:secret@proxy.invalid:3128")
    keep_open = os.open(str(tmp_path), os.O_RDONLY)  # a descriptor the root process holds (not inheritable)
    os.set_inheritable(keep_open, True)  # even one marked inheritable must not reach the program
    try:
        probe = _script(tmp_path, "probe", """
            import json, os
            print(json.dumps({"env": dict(os.environ), "fds": sorted(int(x) for x in os.listdir("/proc/self/fd"))}))
        """)
        done = programs.run([probe], timeout=20, environ_update={"PGOPTIONS": "-c x=1"})
    finally:
        os.close(keep_open)
    seen = json.loads(done.out)
    assert done.rc == 0 and not done.timed_out
    assert seen["env"] == dict(programs.CLEAN_ENVIRONMENT, PGOPTIONS="-c x=1")
    # 0, 1, 2 and the one listdir itself opened
    assert len(seen["fds"]) == 4 and seen["fds"][:3] == [0, 1, 2], seen["fds"]


def test_stdin_is_dev_null(tmp_path):
    probe = _script(tmp_path, "probe", """
        import os, sys
        print(os.path.realpath("/proc/self/fd/0"), repr(sys.stdin.read()))
    """)
    assert programs.run([probe], timeout=20).out.split() == ["/dev/null", "''"]


@pytest.mark.reliability(area="attack", case="a program of the zulip user escapes the time limit: a grandchild leaves "
                         "the process group (setsid), ignores SIGTERM and keeps printing, holding the output pipes open",
                         outcome="the run stops waiting at its own deadline and returns, marked as stopped")
def test_a_grandchild_that_escapes_cannot_hold_the_run(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    program = _script(tmp_path, "stubborn", """
        import os, signal, sys, time
        if os.fork() == 0:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open(%r, "w").write(str(os.getpid()))
            while True:
                print("still here", flush=True)
                time.sleep(0.2)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
    """ % str(pid_file))
    started = time.monotonic()
    try:
        done = programs.run([program], timeout=1.0)
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    took = time.monotonic() - started
    assert done.timed_out
    assert done.rc == -signal.SIGKILL  # TERM was ignored, KILL was not
    assert "still here" in done.out
    assert took < 1.0 + programs.TERM_GRACE + programs.DRAIN_AFTER_EXIT + 3, took


def test_output_is_bounded(tmp_path):
    program = _script(tmp_path, "loud", """
        import sys
        sys.stdout.write("x" * (8 * 1024 * 1024) + "END")
    """)
    done = programs.run([program], timeout=30)
    assert done.rc == 0
    assert len(done.out) == programs.MAX_OUTPUT and done.out.endswith("END")


def test_a_program_that_closes_its_output_is_still_waited_for(tmp_path):
    program = _script(tmp_path, "quiet", """
        import os, time
        os.close(1); os.close(2)
        time.sleep(1)
        raise SystemExit(3)
    """)
    done = programs.run([program], timeout=20)
    assert done.rc == 3 and not done.timed_out


@pytest.mark.reliability(area="attack", case="restart-server (the zulip user's) never returns",
                         outcome="the restart is stopped at its deadline and reported as failed, not waited for")
def test_a_restart_that_never_returns_is_stopped(tmp_path, monkeypatch):
    deploy = tmp_path / "deploy"
    (deploy / "scripts").mkdir(parents=True)
    _script(deploy / "scripts", "restart-server", """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("restart-server: waiting for ever")
        time.sleep(3600)
    """)
    monkeypatch.setattr(programs, "RESTART_DEADLINE", 1.0)
    monkeypatch.setattr(restart, "as_user", lambda argv, user: list(argv))  # the test runs it as itself
    started = time.monotonic()
    outcome = restart.restart(None, str(deploy), "zulip", [])
    assert not outcome.ok
    assert "still running after" in outcome.failure()
    assert time.monotonic() - started < 1.0 + programs.TERM_GRACE + programs.DRAIN_AFTER_EXIT + 3
