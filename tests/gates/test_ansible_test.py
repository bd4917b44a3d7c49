"""Gates: ``ansible-test sanity`` (validate-modules included) and ``ansible-test units``.

Sanity runs twice: with the main venv's ansible-core on Python 3.11 (the newest
ansible-core this Python allows) and with .venv-newest's, the newest release,
on Python 3.12. The style checks whose verdict does not depend on the ansible-core
release, pylint and pep8, run only in the second (its pylint is the newer and the
stricter); everything that does (validate-modules, ansible-doc, import, compile,
runtime-metadata, ...) runs in both. pylint alone is most of a sanity run's time.

ansible-test only works on a collection that sits at
``.../ansible_collections/<namespace>/<name>/``, so each test copies the
checkout's files into ``<tmp>/ansible_collections/zulip_ops/zulip`` and runs
there, with ``--venv --python 3.11`` (no containers here).

What is copied: the collection as shipped (everything but molecule/, tests/ and bench/)
plus the tests that belong to it: tests/unit/, tests/gates/ and tests/sanity/.
The test harness (tests/testhost, tests/zulip_standin, tests/standin,
tests/demo, tests/molecule, molecule/) and the benchmark (bench/) are not collection content: code
for the CI machine and the test hosts (its scripts need ``python3`` shebangs on
Debian 12, where no ``python`` exists), which ansible-test's rules for modules
and plugins do not fit. ansible-lint covers the molecule playbooks.

No ignore file may list anything: tests/sanity/ignore-*.txt are absent or empty.

Two things make ansible-test work on a machine without its download host:
- ansible-test fetches a ``get-pip`` script from a host this network does not
  reach; a stand-in (ensurepip, then ``pip install`` of what it was asked for)
  is written into the cache ansible-test looks in, ``~/.ansible/test/cache``.
- ansible-test runs pip with a scrubbed environment (HOME, PATH, LC_ALL only),
  so PIP_CERT / REQUESTS_CA_BUNDLE / SSL_CERT_FILE never reach it, and the pip
  that ``ensurepip`` puts in a fresh venv trusts only its own bundled CA list.
  Where the network intercepts TLS with its own CA (as here), that pip fails
  with CERTIFICATE_VERIFY_FAILED unless a pip config file names the CA bundle.
  ansible-test therefore runs with a HOME of its own whose pip.conf carries the
  machine's CA bundle and index settings. That HOME also holds ansible-test's
  venvs (one per sanity test and Python, named by what they hold: minutes to
  build, nothing of the checkout in them), so as root it is kept with the
  test-host images, /var/cache/zulip-ops-ansible-test/home, and a fresh clone
  reuses them; otherwise .cache/ansible-test/home in the checkout.
  ZULIP_OPS_ANSIBLE_TEST_HOME chooses another. Runs from two checkouts take
  turns (a lock next to it), so that neither sees the other's half-built venv.
"""

from __future__ import annotations

import configparser
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gatelib  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.gates, pytest.mark.xdist_group("gates")]

PYTHON = "%d.%d" % sys.version_info[:2]
# The newest ansible-core (tests/requirements-newest.txt) needs Python 3.12: its own venv.
NEWEST = gatelib.REPO / ".venv-newest" / "bin"
MACHINE_HOME = Path("/var/cache/zulip-ops-ansible-test/home")


def _home() -> Path:
    chosen = os.environ.get("ZULIP_OPS_ANSIBLE_TEST_HOME")
    if chosen:
        return Path(chosen)
    return MACHINE_HOME if os.geteuid() == 0 else gatelib.REPO / ".cache" / "ansible-test" / "home"


HOME = _home()
NOT_COLLECTION = ("molecule/", "tests/", "bench/")
COLLECTION_TESTS = ("tests/unit/", "tests/gates/", "tests/sanity/")
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")

GET_PIP_STAND_IN = '''\
"""Stand-in for get-pip.py, written by tests/gates/test_ansible_test.py.

ansible-test downloads get-pip.py from a host this network cannot reach. This
does the same job: bootstrap pip with ensurepip, then install what ansible-test
asked for (a pinned pip, setuptools, wheel) with it.
"""
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
'''


def sanity_files() -> list[str]:
    return [
        rel for rel in gatelib.collection_files()
        if not rel.startswith(NOT_COLLECTION) or rel.startswith(COLLECTION_TESTS)
    ]


def pip_versions() -> set[str]:
    """The pip versions the ansible-tests of .venv and .venv-newest bootstrap their venvs with."""
    import ansible_test  # pylint: disable=import-outside-toplevel

    sources = [Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"]
    sources += NEWEST.parent.glob("lib/python3*/site-packages/ansible_test/_internal/python_requirements.py")
    found = set()
    for source in sources:
        found.update(re.findall(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source.read_text()))
    return found or {"24.2"}


def ca_bundle() -> str | None:
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name) and os.path.isfile(os.environ[name]):
            return os.environ[name]
    return next((path for path in CA_BUNDLES if os.path.isfile(path)), None)


def prepare_home() -> Path:
    """HOME for ansible-test: get-pip stand-ins and a pip.conf that survives its scrubbed environment."""
    cache = HOME / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for version in pip_versions():
        script = cache / ("get_pip_%s.py" % version.replace(".", "_"))
        if not script.exists() or script.read_text() != GET_PIP_STAND_IN:
            script.write_text(GET_PIP_STAND_IN)
    config = configparser.ConfigParser()
    config["global"] = {}
    bundle = ca_bundle()
    if bundle:
        config["global"]["cert"] = bundle
    for option in ("index-url", "extra-index-url", "trusted-host"):
        value = os.environ.get("PIP_" + option.upper().replace("-", "_"))
        if value:
            config["global"][option] = value
    pip_conf = HOME / ".config" / "pip" / "pip.conf"
    pip_conf.parent.mkdir(parents=True, exist_ok=True)
    with pip_conf.open("w", encoding="utf-8") as handle:
        config.write(handle)
    return HOME


@pytest.fixture
def collection_root() -> Iterator[Path]:
    """A copy of the collection at <tmp>/ansible_collections/zulip_ops/zulip."""
    tmp = Path(tempfile.mkdtemp(prefix="zulip-gate-"))
    root = tmp / "ansible_collections" / "zulip_ops" / "zulip"
    try:
        gatelib.copy_files(sanity_files(), root)
        yield root
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ansible_test(name: str, args: list[str], root: Path, timeout: float, venv_bin: Path = gatelib.BIN) -> tuple[int, str]:
    HOME.mkdir(parents=True, exist_ok=True)
    with (HOME.parent / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's run may be building the same venv
        env = gatelib.gate_env(HOME=str(prepare_home()))
        env["PATH"] = "%s:%s" % (venv_bin, env["PATH"])
        return gatelib.run(name, [str(venv_bin / "ansible-test")] + args, timeout=timeout, cwd=root, env=env)


def test_sanity_ignore_files_are_empty() -> None:
    listed = {
        path.name: path.read_text().strip()
        for path in sorted((gatelib.REPO / "tests" / "sanity").glob("ignore-*.txt"))
        if path.read_text().strip()
    }
    assert not listed, "sanity findings must be fixed, not ignored: %s" % listed


# Checks that read the code, not ansible-core: the newest core's run has them (see the docstring).
STYLE_ONLY_ON_NEWEST = ("--skip-test", "pylint", "--skip-test", "pep8")


def test_sanity(collection_root: Path) -> None:
    rc, output = ansible_test("ansible-test-sanity", ["sanity", "--venv", "--python", PYTHON, "--color", "no",
                                                      *STYLE_ONLY_ON_NEWEST], collection_root, timeout=1800)
    errors = "\n".join(line for line in output.splitlines() if line.startswith(("ERROR", "FATAL")))
    assert rc == 0, "ansible-test sanity failed:\n%s\n\n%s" % (errors, gatelib.tail(output, 3000))


def test_sanity_newest_core(collection_root: Path) -> None:
    """The same on the newest ansible-core, whose validate-modules and pylint may know more."""
    assert (NEWEST / "python").exists(), "%s is missing: run tests/setup.sh" % NEWEST.parent
    python = subprocess.run([str(NEWEST / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                            stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    rc, output = ansible_test("ansible-test-sanity-newest", ["sanity", "--venv", "--python", python, "--color", "no"],
                              collection_root, timeout=1800, venv_bin=NEWEST)
    errors = "\n".join(line for line in output.splitlines() if line.startswith(("ERROR", "FATAL")))
    assert rc == 0, "ansible-test sanity (newest ansible-core) failed:\n%s\n\n%s" % (errors, gatelib.tail(output, 3000))


def test_units(collection_root: Path) -> None:
    rc, output = ansible_test("ansible-test-units", ["units", "--venv", "--python", PYTHON, "--color", "no"],
                              collection_root, timeout=1800)
    assert rc == 0, "ansible-test units failed:\n%s" % gatelib.tail(output)
