"""Unit tests for plugins/modules/zulip_scim_info.py (the host part), run through main().

The host is a tmp tree: a deployment with version.py, a settings.py and a
zulip-secrets.conf; psql and manage.py are FakeZulip (_module_runner.py).
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_info

import _module_runner as H  # noqa: E402 - found through conftest.py

pytestmark = pytest.mark.usefixtures("as_root", "with_psql")

TOKEN = "tok-" + "A" * 40  # the test greps every result for it
LITERAL = "lit-" + "B" * 40

MANAGED = '''from .config import get_secret
EXTERNAL_HOST = "zulip.example.test"
# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten
SCIM_CONFIG = {
    "acme": {
        "bearer_token": get_secret("scim_bearer_token_acme"),
        "scim_client_name": "okta",
        "name_formatted_included": False,
    },
}
# END zulip_ops.zulip SCIM_CONFIG
'''


@pytest.fixture
def host(tmp_path):
    deploy = tmp_path / "current"
    deploy.mkdir()
    (deploy / "version.py").write_text('ZULIP_VERSION = "9.2"\n')
    (tmp_path / "settings.py").write_text(MANAGED)
    (tmp_path / "zulip-secrets.conf").write_text("[secrets]\nscim_bearer_token_acme = %s\n" % TOKEN)
    os.chmod(tmp_path / "zulip-secrets.conf", 0o640)
    return tmp_path


def run(host, zulip=None, **args):
    module_args = {"deploy_path": str(host / "current"), "settings_path": str(host / "settings.py"),
                   "secrets_path": str(host / "zulip-secrets.conf")}
    module_args.update(args)
    fake = H.FakeRunCommand(zulip or H.FakeZulip(version="9.2"))
    out = H.run_module(zulip_scim_info.main, module_args, run_command=fake)
    assert TOKEN not in repr(out.result) + repr(out.warnings), "a token in the result"
    assert LITERAL not in repr(out.result) + repr(out.warnings), "a token in the result"
    return out


def test_a_managed_realm_says_where_its_token_is_and_nothing_is_run(host):
    before = {p.name: p.read_bytes() for p in host.iterdir() if p.is_file()}
    out = run(host, realms=["beta"])
    assert not out.failed, out
    acme = out.result["realms"]["acme"]
    assert acme["state"] == "managed" and acme["client_name"] == "okta" and acme["line"] == 5
    assert acme["token"] == {"kind": "secret", "secret": "scim_bearer_token_acme", "set": True}
    assert out.result["realms"]["beta"]["state"] == "off" and out.result["realms"]["beta"]["token"] is None
    assert out.result["changed"] is False and out.result["managed_block"] == [3, 11]
    assert out.result["client_table"] is False and acme["clients"] is None
    assert out.run.argvs == []  # 9.2: no client rows, so neither psql nor manage.py
    assert {p.name: p.read_bytes() for p in host.iterdir() if p.is_file()} == before


def test_hand_written_after_the_block_wins_and_a_literal_token_is_named_not_shown(host):
    (host / "settings.py").write_text(MANAGED + 'SCIM_CONFIG["acme"] = {"bearer_token": "%s", '
                                      '"scim_client_name": "entra"}\n' % LITERAL)
    out = run(host)
    assert not out.failed, out
    acme = out.result["realms"]["acme"]
    assert acme["state"] == "hand-written" and acme["client_name"] == "entra" and acme["line"] == 12
    assert acme["token"] == {"kind": "literal", "secret": None, "set": True}
    # The managed entry's secret is still set but no entry in force uses it.
    assert acme["unused_secret"] == "scim_bearer_token_acme"
    assert any("written into" in w and "takeover" in w for w in out.warnings)


def test_a_later_whole_assignment_turns_the_block_realm_off(host):
    (host / "settings.py").write_text(MANAGED + "SCIM_CONFIG = {}\n")
    out = run(host)
    assert out.result["realms"]["acme"]["state"] == "off"
    assert out.result["realms"]["acme"]["unused_secret"] == "scim_bearer_token_acme"


def test_writes_it_cannot_follow_and_bad_keys_are_warned_about_not_trusted(host):
    crafted = "x" * 500
    (host / "settings.py").write_text(MANAGED + 'if True:\n    SCIM_CONFIG.update({})\n'
                                      'SCIM_CONFIG["%s"] = {}\nSCIM_CONFIG["../etc"] = {}\n' % crafted)
    out = run(host)
    assert not out.failed, out
    assert out.result["unfollowed_lines"] == [13]
    assert len(out.result["ignored_keys"]) == 2 and all(len(k) < 100 for k in out.result["ignored_keys"])
    assert set(out.result["realms"]) == {"acme"}
    assert sum("does not evaluate" in w for w in out.warnings) == 1


def test_5_x_lists_client_rows_with_one_read_only_psql_query(host):
    (host / "current" / "version.py").write_text('ZULIP_VERSION = "5.6"\n')
    crafted = "\x1b[2J" + "y" * 300
    zulip = H.FakeZulip(version="5.6", realms=("acme", "beta"),
                        clients=[("acme", "okta"), ("beta", "old"), ("beta", crafted)])
    out = run(host, zulip)
    assert not out.failed, out
    assert out.result["client_table"] is True
    assert out.result["realms"]["acme"]["clients"] == ["okta"]
    # A realm with only a client row is shown too: a left-over from a SCIM set-up.
    beta = out.result["realms"]["beta"]
    assert beta["state"] == "off" and "old" in beta["clients"] and len(beta["clients"]) == 2
    # A name no client could have (the rows are the zulip user's data) comes shortened and escaped.
    shown = [name for name in beta["clients"] if name != "old"][0]
    assert len(shown) < 100 and "\x1b" not in shown and "(304 characters)" in shown
    assert len(zulip.psql_calls) == 1 and zulip.commands == []
    assert out.result["manage_calls"] == []


def test_clients_false_runs_nothing_on_5_x(host):
    (host / "current" / "version.py").write_text('ZULIP_VERSION = "5.6"\n')
    out = run(host, H.FakeZulip(version="5.6"), clients=False)
    assert out.run.argvs == [] and out.result["realms"]["acme"]["clients"] is None


def test_a_realm_with_only_a_left_over_secret_is_shown(host):
    (host / "zulip-secrets.conf").write_text("[secrets]\nscim_bearer_token_acme = %s\n"
                                             "scim_bearer_token__root = %s\n" % (TOKEN, TOKEN))
    out = run(host)
    assert out.result["realms"][""]["state"] == "off"
    assert out.result["realms"][""]["unused_secret"] == "scim_bearer_token__root"


@pytest.mark.parametrize("content, message", [
    ("SCIM_CONFIG = {\n", "does not compile"),
    ("# BEGIN zulip_ops.zulip SCIM_CONFIG\n", "without an END marker"),
])
def test_a_broken_settings_file_fails_clearly(host, content, message):
    (host / "settings.py").write_text(content)
    out = run(host)
    assert out.failed and message in out.result["msg"], out


def test_a_planted_link_is_not_followed(host, tmp_path_factory):
    secret_elsewhere = tmp_path_factory.mktemp("root-only") / "shadow"
    secret_elsewhere.write_text(MANAGED)
    (host / "settings.py").unlink()
    (host / "settings.py").symlink_to(secret_elsewhere)
    out = run(host)
    assert out.failed and "symbolic link" in out.result["msg"], out


def test_an_invalid_realm_asked_for_fails_before_reading(host):
    out = run(host, realms=["Not A Realm"])
    assert out.failed and "subdomain" in out.result["msg"], out
