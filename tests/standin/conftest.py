"""Fixtures for the stand-in self-tests.

Two layers, same behaviour tests:
  * marker ``standin``:  local installs under a temp prefix (seconds),
  * marker ``testhost``: one booted Debian host per flavour, installed with
    tests/zulip_standin/install.yml through ansible-playbook (minutes).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
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
    HostTarget,
    LocalTarget,
    Target,
    free_port,
    multiplexed_ssh_argv,
    run_install_playbook,
    write_inventory,
)

LOCAL_MANAGE_DELAY = 0.1
LOCAL_RESTART_DELAY = 0.1
HOST_MANAGE_DELAY = 0.3
HOST_RESTART_DELAY = 0.3


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


def host_name(flavour: str) -> str:
    return f"standin-{flavour.replace('.', '-')}-{os.getpid()}"


@pytest.fixture(scope="session")
def host_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, HostTarget]]:
    """Boot one host per flavour (in parallel), install the stand-in on all with one playbook run."""
    if os.geteuid() != 0:
        pytest.skip("booted test hosts need root")
    try:
        import testhost  # tests/testhost/testhost.py, the colleague's harness
    except ImportError as exc:
        pytest.skip(f"test host harness not available: {exc}")
    names = {flavour: host_name(flavour) for flavour in FLAVOURS}
    targets: dict[str, HostTarget] = {}
    control_dir = Path(tempfile.mkdtemp(prefix="standin-ssh-"))
    try:
        infos = testhost.up(list(names.values()))
        inventory = tmp_path_factory.mktemp("inventory") / "hosts.yml"
        write_inventory(inventory, [
            (names[f], info, {"zulip_standin_flavour": f, "zulip_standin_manage_delay": HOST_MANAGE_DELAY,
                              "zulip_standin_restart_delay": HOST_RESTART_DELAY})
            for f, info in zip(FLAVOURS, infos, strict=True)])
        result = run_install_playbook(inventory)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        for flavour in FLAVOURS:
            ssh = multiplexed_ssh_argv(testhost.ssh_argv(names[flavour]), control_dir)
            target = HostTarget(flavour, names[flavour], ssh, HOST_MANAGE_DELAY, HOST_RESTART_DELAY)
            target.inventory = inventory  # type: ignore[attr-defined]
            target.after_install()
            targets[flavour] = target
        yield targets
    finally:
        for target in targets.values():
            target.close()
        testhost.down(list(names.values()))
        shutil.rmtree(control_dir, ignore_errors=True)


def target_params() -> list[pytest.param]:  # type: ignore[valid-type]
    params = [pytest.param(("local", f), marks=pytest.mark.standin, id=f"local-{f}") for f in FLAVOURS]
    params += [pytest.param(("host", f), marks=pytest.mark.testhost, id=f"host-{f}") for f in FLAVOURS]
    return params


@pytest.fixture(params=target_params())
def target(request: pytest.FixtureRequest) -> Target:
    layer, flavour = request.param
    if layer == "local":
        return request.getfixturevalue("local_targets").get(flavour)
    return request.getfixturevalue("host_targets")[flavour]
