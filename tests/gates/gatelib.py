"""Helpers shared by the quality gates in tests/gates/.

Each gate runs a tool as a subprocess, keeps its whole output in
.cache/gates/<name>.log and shows the tail of it when the gate fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CACHE = REPO / ".cache" / "gates"
LOGS = CACHE / "logs"
# The link that lets a checkout find itself as a collection; never copied.
SELF_LINK = "playbooks/collections/"


def tool(name: str, venv_bin: Path = BIN) -> str:
    """A command of the venv the gates run in (or of another venv)."""
    return str(venv_bin / name)


def gate_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (BIN, env.get("PATH", os.defpath))
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", NO_COLOR="1", PY_COLORS="0")
    env.update(extra)
    return env


def run(name: str, argv: list[str], timeout: float, cwd: Path = REPO, env: dict[str, str] | None = None,
        stdin: str | None = None) -> tuple[int, str]:
    """Run argv, log stdout+stderr to .cache/gates/logs/<name>.log; return (rc, output)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env if env is not None else gate_env(), input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              check=False)
        rc, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, output = -1, out + "\nTIMEOUT after %d s" % timeout
    took = time.monotonic() - started
    (LOGS / ("%s.log" % name)).write_text("$ %s\n(cwd %s, rc %d, %.1f s)\n%s" % (" ".join(argv), cwd, rc, took, output))
    print("%s: rc %d in %.1f s (log: %s)" % (name, rc, took, LOGS / ("%s.log" % name)))
    return rc, output


# --------------------------------------------------------------------------- the test venvs and their locks

# venv -> (hand-written pins, the lock tests/setup.sh installs from; tests/lock.sh makes it).
VENV_LOCKS = {
    ".venv": ("requirements.txt", "requirements.lock"),
    ".venv-oldest": ("requirements-oldest.txt", "requirements-oldest.lock"),
    ".venv-newest": ("requirements-newest.txt", "requirements-newest.lock"),
}
# "name==version" at the start of a line: a hand-written pin, or a lock's entry
# (followed there by " \" and its --hash lines).
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)", re.M)


def canonical_name(name: str) -> str:
    """A package name as the index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """Package -> version of every exact pin in a requirements or lock file."""
    return {canonical_name(m.group("name")): m.group("version") for m in PIN.finditer(path.read_text())}


def pinned(file_name: str, package: str) -> Version:
    """The version of PACKAGE that tests/FILE_NAME pins (a lock: what the venv is made of)."""
    version = pins(REPO / "tests" / file_name).get(canonical_name(package))
    assert version, "tests/%s pins no %s" % (file_name, package)
    return Version(version)


# --------------------------------------------------------------------------- what tools print

# A Python warning as warnings.formatwarning prints it: "path:lineno: Category: message",
# then the source line, indented by two spaces, when Python can read it.
# (A path with a blank in it other than Python's "<frozen ...>" is not taken for one.)
PYTHON_WARNING = re.compile(r"^(?P<path>[^\s:]+|<[^>\n]+>):(?P<lineno>\d+): (?P<category>[A-Za-z_]\w*Warning): (?P<message>.*)$")
# Folders that hold installed libraries: a warning raised there is about the library.
LIBRARY_DIRS = ("site-packages", "dist-packages")
# Where Python loads the collection's code from: an installed copy, the checkout
# through playbooks/collections, or a module's AnsiballZ payload on a host.
COLLECTION_PATH = "/ansible_collections/%s/%s/" % ("zulip_ops", "zulip")


def is_collection_path(path: str) -> bool:
    """Whether a warning raised in PATH is about the collection (its code or its tests), not a library.

    Not the collection's: a file in a library folder (a venv's included, also
    one inside the checkout), any other absolute path outside the checkout, and
    Python's own frozen modules ("<frozen ...>"). A relative path cannot be
    placed: it counts as the collection's, so that nothing of ours slips by.
    """
    if COLLECTION_PATH in path:
        return True
    if path.startswith("<") or any(folder in Path(path).parts for folder in LIBRARY_DIRS):
        return False
    if not os.path.isabs(path):
        return True
    try:
        Path(os.path.normpath(path)).relative_to(REPO)
    except ValueError:
        return False
    return True


def without_unrelated_warnings(output: str) -> str:
    """OUTPUT less the Python warnings that libraries raise about themselves.

    A tool's own dependencies warn about their dependencies (a
    CryptographyDeprecationWarning from ansible-core's import of
    cryptography, say), naming files of the venv; that is not about the
    collection and changes with versions nobody here chose. Such a warning
    line and its source line go; every other line stays, also a warning
    raised in the collection's own files, which a gate must still see.
    """
    kept: list[str] = []
    drop_source_line = False
    for line in output.splitlines(keepends=True):
        if drop_source_line:
            drop_source_line = False
            if line.startswith("  ") and line.strip():
                continue
        match = PYTHON_WARNING.match(line.rstrip("\n"))
        if match and not is_collection_path(match.group("path")):
            drop_source_line = True
            continue
        kept.append(line)
    return "".join(kept)


def collection_warnings(output: str) -> list[str]:
    """The Python warning lines of OUTPUT raised in the collection's own files."""
    return [line for line in without_unrelated_warnings(output).splitlines() if PYTHON_WARNING.match(line)]


def lines_naming(output: str, path: Path) -> list[str]:
    """The lines of OUTPUT that name PATH, unrelated library warnings aside (a venv inside PATH is no sign)."""
    return [line for line in without_unrelated_warnings(output).splitlines() if str(path) in line]


def tail(output: str, chars: int = 8000) -> str:
    return output if len(output) <= chars else "...\n" + output[-chars:]


def collection_files() -> list[str]:
    """The files of the checkout: tracked and new (not git-ignored) ones that exist."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, stdout=subprocess.PIPE, check=True).stdout.decode()
    files = []
    for rel in sorted(set(filter(None, out.split("\0")))):
        if rel.startswith(SELF_LINK) or rel + "/" == SELF_LINK:
            continue
        path = REPO / rel
        if path.is_file() and not path.is_symlink():
            files.append(rel)
    return files


def copy_files(files: list[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)


# --------------------------------------------------------------------------- the collection's plugins

NAMESPACE, NAME = "zulip_ops", "zulip"
# plugins/ folders that hold no plugins of their own.
NOT_PLUGINS = {"module_utils", "plugin_utils", "doc_fragments", "action"}


def _jinja_plugin_names(path: Path, kind: str) -> list[str]:
    """Names a filter or test plugin file defines (FilterModule.filters() / TestModule.tests())."""
    import importlib  # pylint: disable=import-outside-toplevel

    collections = str(REPO / "playbooks" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    module = importlib.import_module("ansible_collections.%s.%s.plugins.%s.%s" % (NAMESPACE, NAME, kind, path.stem))
    holder = getattr(module, "FilterModule" if kind == "filter" else "TestModule")()
    return sorted((holder.filters() if kind == "filter" else holder.tests()).keys())


def documented_plugins() -> list[tuple[str, str]]:
    """(ansible-doc type, FQCN) of every module, plugin and role of the tree.

    Action plugins are documented by the module of the same name (sanity's
    action-plugin-docs checks that it exists), so they appear as modules.
    """
    found: list[tuple[str, str]] = []
    plugins = REPO / "plugins"
    for folder in sorted(p for p in plugins.iterdir() if p.is_dir() and p.name not in NOT_PLUGINS):
        kind = "module" if folder.name == "modules" else folder.name
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            names = _jinja_plugin_names(path, kind) if kind in ("filter", "test") else [path.stem]
            found.extend((kind, "%s.%s.%s" % (NAMESPACE, NAME, name)) for name in names)
    for role in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        found.append(("role", "%s.%s.%s" % (NAMESPACE, NAME, role.parents[1].name)))
    return found


def doc_problems(kind: str, fqcn: str, rc: int, output: str) -> str:
    """Why an ``ansible-doc -t KIND FQCN`` run did not render, or "" when it did."""
    if rc != 0:
        return "rc %d" % rc
    if fqcn.lower() not in output.lower():
        return "no documentation for %s in the output" % fqcn
    complaints = [
        line for line in without_unrelated_warnings(output).splitlines()
        if ("[WARNING]" in line or "[ERROR]" in line or PYTHON_WARNING.match(line))
        # ansible-core 2.21 warns about its own internal collection: not ours to fix.
        and "/ansible/_internal/ansible_collections/" not in line
    ]
    return "\n".join(complaints)
