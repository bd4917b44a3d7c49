"""Gate helpers: what a tool prints about its own libraries does not decide a gate.

The gates read what ansible-doc, ansible-galaxy and antsibull-changelog print.
Those tools' libraries can print Python warnings about each other (cryptography
51 warns about DSA whenever ansible-core 2.19 starts), naming files of the venv,
which sits inside the checkout. gatelib drops such a warning by its origin (a
library's file), so the checks still fail on the collection's own warnings and
on the checkout's path anywhere else.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

VENV_LIBRARY = gatelib.REPO / ".venv" / "lib" / "python3.11" / "site-packages"
INSTALLED = Path("/tmp/zulip-gate-build-x1/collections")
INSTALLED_MODULE = INSTALLED / "ansible_collections" / "zulip_ops" / "zulip" / "plugins" / "modules" / "zulip_scim_preflight.py"
# What ansible-doc of ansible-core 2.19.14 printed with cryptography 51.0.1 in the venv (issue 22).
CRYPTOGRAPHY_WARNING = (
    "%s/ansible/_internal/_ssh/_ssh_agent.py:18: CryptographyDeprecationWarning: DSA is deprecated and support will"
    " be removed in a future release. Use a more modern signature algorithm.\n"
    "  from cryptography.hazmat.primitives.asymmetric.dsa import (\n" % VENV_LIBRARY
)
DOC = (
    "> MODULE zulip_ops.zulip.zulip_scim_preflight (%s)\n\n"
    "  Reads what a Zulip server has: version, realms, SCIM settings.\n\n"
    "OPTIONS (= indicates it is required):\n\n"
    "- deploy_path  The Zulip deployment.\n" % INSTALLED_MODULE
)


def test_a_library_warning_naming_the_venv_does_not_fail_the_installed_copy_check() -> None:
    output = CRYPTOGRAPHY_WARNING + CRYPTOGRAPHY_WARNING + DOC
    assert str(gatelib.REPO) in output  # what failed the gate before
    assert not gatelib.lines_naming(output, gatelib.REPO)
    assert str(INSTALLED) in output
    assert gatelib.without_unrelated_warnings(output) == DOC
    assert gatelib.doc_problems("module", "zulip_ops.zulip.zulip_scim_preflight", 0, output) == ""


def test_the_checkout_named_anywhere_else_still_fails() -> None:
    from_checkout = DOC.replace(str(INSTALLED_MODULE), str(gatelib.REPO / "plugins" / "modules" / "zulip_scim_preflight.py"))
    assert gatelib.lines_naming(CRYPTOGRAPHY_WARNING + from_checkout, gatelib.REPO) == [from_checkout.splitlines()[0]]
    # Also a warning raised in the checkout's own files.
    own = "%s/plugins/module_utils/_zulip.py:12: DeprecationWarning: old API\n  import old\n" % gatelib.REPO
    assert len(gatelib.lines_naming(own + DOC, gatelib.REPO)) == 1
    # Only the one source line under a dropped warning goes with it.
    after = "  see %s\n" % gatelib.REPO
    assert gatelib.lines_naming(CRYPTOGRAPHY_WARNING + after, gatelib.REPO) == [after.rstrip("\n")]


@pytest.mark.parametrize("path", [
    "%s/plugins/filter/scim_sheet.py" % gatelib.REPO,
    "%s/tests/unit/conftest.py" % gatelib.REPO,
    "%s/ansible_collections/zulip_ops/zulip/plugins/modules/zulip_scim_preflight.py" % INSTALLED,
    "/tmp/ansible_zulip_scim_preflight_payload_x/ansible_zulip_scim_preflight_payload.zip/ansible_collections/zulip_ops/zulip/plugins/"
    "module_utils/_zulip.py",
    "%s/ansible_collections/zulip_ops/zulip/plugins/modules/zulip_scim_preflight.py" % VENV_LIBRARY,
    "plugins/filter/scim_sheet.py",
])
def test_the_collections_own_warnings_still_count(path: str) -> None:
    warning = "%s:40: DeprecationWarning: this call goes away\n  value = old_call()\n" % path
    assert gatelib.without_unrelated_warnings(warning + DOC) == warning + DOC
    assert gatelib.collection_warnings(warning + DOC) == [warning.splitlines()[0]]
    problem = gatelib.doc_problems("module", "zulip_ops.zulip.zulip_scim_preflight", 0, warning + DOC)
    assert problem == warning.splitlines()[0]


@pytest.mark.parametrize("path", [
    "%s/cryptography/utils.py" % VENV_LIBRARY,
    "%s/.venv-newest/lib/python3.12/site-packages/ansible/_internal/_ssh/_ssh_agent.py" % gatelib.REPO,
    "/usr/lib/python3/dist-packages/yaml/constructor.py",
    "/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/events.py",
    "<frozen importlib._bootstrap>",
])
def test_warnings_of_libraries_and_python_are_dropped(path: str) -> None:
    for category in ("CryptographyDeprecationWarning", "DeprecationWarning", "UserWarning", "RuntimeWarning"):
        warning = "%s:7: %s: something about the library\n  import thing\n" % (path, category)
        assert gatelib.without_unrelated_warnings(warning + DOC) == DOC
        assert gatelib.collection_warnings(warning + DOC) == []


def test_only_python_warnings_are_dropped() -> None:
    """Ansible's own warnings, errors and other lines stay, whatever path they name."""
    lines = [
        "[WARNING]: Collection zulip_ops.zulip does not support Ansible version 2.15.0\n",
        "[ERROR]: %s/site-packages/x.py:3: could not load\n" % VENV_LIBRARY,
        "%s:3: not a warning line\n" % (VENV_LIBRARY / "x.py"),
        "ERROR! %s:3: SyntaxWarning: in the text of an error\n" % (VENV_LIBRARY / "x.py"),
    ]
    for line in lines:
        assert gatelib.without_unrelated_warnings(line + DOC) == line + DOC
    assert gatelib.doc_problems("module", "zulip_ops.zulip.zulip_scim_preflight", 0, lines[0] + DOC) == lines[0].strip()


def test_a_real_python_warning_from_a_library_inside_the_checkout() -> None:
    """What Python itself prints (warnings.formatwarning), from a library folder inside the checkout."""
    gatelib.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="warning-", dir=gatelib.CACHE) as tmp:
        library = Path(tmp) / "lib" / "python3" / "site-packages"
        own = Path(tmp) / "plugins" / "module_utils"
        for folder, name in ((library, "noisy_library"), (own, "noisy_own")):
            folder.mkdir(parents=True)
            (folder / ("%s.py" % name)).write_text(textwrap.dedent('''\
                import warnings
                class NoisyDeprecationWarning(UserWarning):
                    pass
                warnings.warn("DSA is deprecated", NoisyDeprecationWarning)
            '''))

        def run(module: str, path: Path) -> str:
            return subprocess.run([sys.executable, "-c", "import %s; print('done')" % module], cwd=tmp,
                                  env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=True, timeout=60).stdout

        noisy = run("noisy_library", library)
        assert "NoisyDeprecationWarning: DSA is deprecated" in noisy and str(gatelib.REPO) in noisy, noisy
        assert gatelib.without_unrelated_warnings(noisy) == "done\n", noisy
        ours = run("noisy_own", own)
        assert gatelib.collection_warnings(ours) == [ours.splitlines()[0]], ours
        assert gatelib.lines_naming(ours, gatelib.REPO), ours
