"""Lets the module tests ``import _module_runner``, their shared harness."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import os  # noqa: E402 - after the path set-up above

import pytest  # noqa: E402
from ansible.module_utils import basic  # noqa: E402


@pytest.fixture
def as_root(monkeypatch):
    """The modules run as root (become): manage.py, psql and restart-server then go through runuser."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.fixture
def with_psql(monkeypatch):
    """A host with psql (Zulip's local PostgreSQL client), which FakeZulip answers."""
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, arg, *a, **k: "/usr/bin/psql" if arg == "psql" else None)
