"""Fixtures for the stand-in self-tests.

Two layers, same behaviour tests:
  * marker ``standin``:  local installs under a temp prefix (seconds),
  * marker ``testhost``: one booted Debian host per flavour, installed with
    tests/zulip_standin/install.yml through ansible-playbook (a minute or two).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The stand-in's files are copied to hosts as they are: keep __pycache__ out of them.
sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for extra in (HERE, REPO / "tests" / "zulip_standin" / "files", REPO / "tests" / "testhost"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from targets import (  # noqa: E402
    FLAVOURS,
    HostTargets,
    LocalTarget,
    Target,
    free_port,
    host_marks,
)

LOCAL_MANAGE_DELAY = 0.1
LOCAL_RESTART_DELAY = 0.1


class LocalTargets:
    """One local install per flavour, made on first use, stopped at session end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.targets: dict[str, LocalTarget] = {}

    def get(self, flavour: str) -> LocalTarget:
        if flavour not in self.targets:
            target = LocalTarget(flavour, self.base / flavour.replace("+", "_"), free_port(),
                                 LOCAL_MANAGE_DELAY, LOCAL_RESTART_DELAY)
            target.install()
            self.targets[flavour] = target
        return self.targets[flavour]

    def stop_all(self) -> None:
        for target in self.targets.values():
            target.stop()


@pytest.fixture(scope="session")
def local_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTargets]:
    targets = LocalTargets(tmp_path_factory.mktemp("standin"))
    yield targets
    targets.stop_all()


@pytest.fixture(scope="session")
def host_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostTargets]:
    if os.geteuid() != 0:
        pytest.skip("booted test hosts need root")
    try:
        import testhost  # tests/testhost/testhost.py, the colleague's harness
    except ImportError as exc:
        pytest.skip(f"test host harness not available: {exc}")
    hosts = HostTargets(testhost, tmp_path_factory.mktemp("inventory"))
    try:
        yield hosts
    finally:
        hosts.close()


def target_params() -> list[pytest.param]:  # type: ignore[valid-type]
    params = [pytest.param(("local", f), marks=pytest.mark.standin, id=f"local-{f}") for f in FLAVOURS]
    params += [pytest.param(("host", f), marks=host_marks(f), id=f"host-{f}") for f in FLAVOURS]
    return params


@pytest.fixture(params=target_params())
def target(request: pytest.FixtureRequest) -> Target:
    layer, flavour = request.param
    if layer == "local":
        return request.getfixturevalue("local_targets").get(flavour)
    return request.getfixturevalue("host_targets").get(flavour)
