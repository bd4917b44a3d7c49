"""Unit tests for plugins/modules/zulip_scim_token_info.py (real temp files)."""

from __future__ import annotations

import pytest

from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_token_info as mod

import _module_runner as H  # noqa: E402 - found through conftest.py

ACME = "acme-token-0123456789abcdefghij"
ROOT = "root-token-0123456789abcdefghij"
LITERAL = "literal-token-0123456789abcdefg"


@pytest.fixture
def files(tmp_path):
    settings = tmp_path / "settings.py"
    secrets = tmp_path / "zulip-secrets.conf"
    settings.write_text("from .config import get_secret\nEXTERNAL_HOST = 'zulip.example.com'\n")
    secrets.write_text("[secrets]\nsecret_key = other\nscim_bearer_token_acme = %s\nscim_bearer_token__root = %s\n" % (ACME, ROOT))
    return settings, secrets


def run(files, realms, **kwargs):
    settings, secrets = files
    return H.run_module(mod.main, dict(realms=realms, settings_path=str(settings), secrets_path=str(secrets)), **kwargs)


def test_collection_secret_names_without_any_scim_config(files):
    out = run(files, ["acme", "", "beta"])
    assert not out.failed and out.result["changed"] is False
    assert out.result["tokens"] == {"acme": ACME, "": ROOT}
    assert out.result["sources"]["acme"].endswith("[secrets] scim_bearer_token_acme")
    assert out.run.argvs == []


def test_hand_written_config_literal_and_get_secret_last_assignment_wins(files):
    settings, secrets = files
    secrets.write_text(secrets.read_text() + "my_scim = %s\n" % ROOT)
    settings.write_text(settings.read_text() + (
        "SCIM_CONFIG = {'acme': {'bearer_token': 'stale-token-not-used-any-more'}}\n"
        "SCIM_CONFIG = {\n    'acme': {'bearer_token': %r, 'scim_client_name': 'okta'},\n}\n"
        "SCIM_CONFIG['beta'] = {'bearer_token': get_secret('my_scim')}\n" % LITERAL))
    out = run(files, ["acme", "beta"])
    assert out.result["tokens"] == {"acme": LITERAL, "beta": ROOT}
    assert out.result["sources"]["acme"] == "%s:5 (a literal bearer_token)" % settings
    assert out.result["sources"]["beta"].endswith("[secrets] my_scim")


def test_entries_it_cannot_read_fall_back_to_the_collection_secret_name(files):
    settings = files[0]
    settings.write_text(settings.read_text() + "TOKEN = 'x'\nSCIM_CONFIG = {'acme': {'bearer_token': TOKEN}, 'beta': 'no dict'}\n")
    out = run(files, ["acme", "beta"])
    assert out.result["tokens"] == {"acme": ACME}
    assert "x" not in out.result["tokens"].values()


def test_missing_secrets_file_means_no_tokens(files):
    secrets = files[1]
    secrets.unlink()
    assert run(files, ["acme"]).result["tokens"] == {}


@pytest.mark.parametrize("problem, message", [
    ("bad-subdomain", "is not a valid Zulip subdomain"),
    ("no-settings", "cannot read"),
    ("syntax", "does not compile"),
    ("bad-secrets", "cannot read"),
])
def test_clear_failures(files, problem, message):
    settings, secrets = files
    realms = ["acme"]
    if problem == "bad-subdomain":
        realms = ["Acme"]
    elif problem == "no-settings":
        settings.unlink()
    elif problem == "syntax":
        settings.write_text("SCIM_CONFIG = = {}\n")
    else:
        secrets.write_text("not an ini file\n")
    out = run(files, realms)
    assert out.failed and message in out.result["msg"]
    assert ACME not in out.result["msg"]


def test_check_mode_reads_the_same(files):
    assert run(files, ["acme"], check_mode=True).result["tokens"] == {"acme": ACME}
