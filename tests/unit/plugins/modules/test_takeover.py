# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Taking over a SCIM_CONFIG written by hand (zulip_scim_config takeover=true, zulip_scim_preflight's preflight).

Each form Zulip's docs and real admins use, run against real files: the result
is proven with ast/configparser (valid Python, the same token in force), and
no token may remain in settings.py, its backup or the kept previous copy.
"""

from __future__ import annotations

import ast
import configparser
import os

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import BEGIN_MARKER
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_config

import _module_runner as runner  # noqa: E402 - found through conftest.py
from test_zulip_scim_config import (  # noqa: E402 - the same temporary host and helpers
    SECRETS,
    SETTINGS,
    TOKEN_ACME,
    TOKEN_ROOT,
    Host,
    fails,
    ok,
    read_config,
)

OLD_TOKEN = "old-TOKEN-overridden-0123456789"


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def docs_form(realms: dict) -> str:
    """SCIM_CONFIG as Zulip's docs say to write it: the token inline."""
    lines = ["SCIM_CONFIG = {"]
    for subdomain, token in realms.items():
        lines += ['    "%s": {' % subdomain,
                  '        "bearer_token": "%s",' % token,
                  '        "scim_client_name": "okta",',
                  '        "name_formatted_included": False,',
                  "    },"]
    return "\n".join(lines + ["}"]) + "\n"


def take(host, realms, **extra):
    return ok(host, realms, takeover=True, backup=True, **extra)


def realm(subdomain, token, **extra):
    return dict(dict(subdomain=subdomain, token=token), **extra)


def secrets_of(host) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()  # Zulip's own reader: strict, fails on a repeated key
    parser.read_string(host.secrets_text())
    return parser


def backups(host) -> list:
    return sorted(p for p in host.etc.iterdir() if p.name.startswith("settings.py.") and p.name.endswith("~"))


def assert_no_token_in(data: bytes, *tokens: str) -> None:
    for token in tokens:
        assert token.encode() not in data


def run_with(source: str, secrets: configparser.RawConfigParser) -> dict:
    """SCIM_CONFIG of a settings.py, run with a get_secret that reads ``secrets``."""
    source = source.replace("from .config import get_config, get_secret\n", "").replace(
        "from .config import get_secret\n", "")
    namespace = {"get_secret": lambda name: secrets.get("secrets", name, fallback=None)}
    exec(compile(source, "settings.py", "exec"), namespace)
    return namespace["SCIM_CONFIG"]


# -- the forms that are taken over ----------------------------------------------------------


def test_docs_form_inline_token_is_taken_over(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME, "": TOKEN_ROOT}))
    result = take(host, [realm("acme", TOKEN_ACME), realm("", TOKEN_ROOT)])
    assert result["changed"] and result["takeover"]["realms"] == ["acme", ""]
    assert 'acme, "" (root domain) moved into the managed block' in result["takeover"]["message"]
    data = host.settings.read_bytes()
    ast.parse(data)  # valid Python
    assert_no_token_in(data, TOKEN_ACME, TOKEN_ROOT)
    assert data.count(b"SCIM_CONFIG = {") == 1 and BEGIN_MARKER.encode() in data
    # Zulip reads the same tokens, now from zulip-secrets.conf.
    parser = secrets_of(host)
    assert parser.get("secrets", "scim_bearer_token_acme") == TOKEN_ACME
    assert parser.get("secrets", "scim_bearer_token__root") == TOKEN_ROOT
    config = read_config(host)
    assert config["acme"]["bearer_token"] == TOKEN_ACME and config[""]["bearer_token"] == TOKEN_ROOT
    # The backup holds no token, compiles, and still gives the same tokens with the new secrets file.
    (backup,) = backups(host)
    assert result["backup_file"] == str(backup)
    assert_no_token_in(backup.read_bytes(), TOKEN_ACME, TOKEN_ROOT)
    assert oct(backup.stat().st_mode & 0o777) == oct(host.settings.stat().st_mode & 0o777)
    assert run_with(backup.read_text(), parser)["acme"]["bearer_token"] == TOKEN_ACME
    # Taken over: the next run changes nothing, with or without the opt-in.
    assert not take(host, [realm("acme", TOKEN_ACME), realm("", TOKEN_ROOT)])["changed"]
    assert not ok(host, [realm("acme", TOKEN_ACME), realm("", TOKEN_ROOT)])["changed"]


def test_get_secret_of_another_name_is_renamed_with_its_value(host):
    host.write_settings(SETTINGS + 'SCIM_CONFIG = {"acme": {"bearer_token": get_secret("okta_scim"), '
                        '"scim_client_name": "okta", "name_formatted_included": False}}\n')
    host.write_secrets(SECRETS.replace("[other]", "okta_scim = %s\n\n[other]" % TOKEN_ACME))
    result = take(host, [realm("acme", TOKEN_ACME)])
    assert result["takeover"]["renamed_secrets"] == {"acme": {"from": "okta_scim", "to": "scim_bearer_token_acme"}}
    parser = secrets_of(host)
    assert parser.get("secrets", "scim_bearer_token_acme") == TOKEN_ACME
    assert not parser.has_option("secrets", "okta_scim")  # moved, not copied
    assert parser.get("secrets", "avatar_salt") == "s4lt-value-never-shown"  # the rest stays
    assert read_config(host)["acme"]["bearer_token"] == TOKEN_ACME


def test_a_renamed_secret_still_read_elsewhere_stays(host):
    host.write_settings(SETTINGS + 'OTHER = get_secret("okta_scim")\n'
                        'SCIM_CONFIG = {"acme": {"bearer_token": get_secret("okta_scim"), '
                        '"scim_client_name": "okta", "name_formatted_included": False}}\n')
    host.write_secrets(SECRETS.replace("[other]", "okta_scim = %s\n\n[other]" % TOKEN_ACME))
    take(host, [realm("acme", TOKEN_ACME)])
    assert secrets_of(host).get("secrets", "okta_scim") == TOKEN_ACME


def test_several_assignments_the_last_wins_and_all_go(host):
    host.write_settings(SETTINGS + docs_form({"acme": OLD_TOKEN}) + "X = 1\n" + docs_form({"acme": TOKEN_ACME})
                        + 'SCIM_CONFIG[""] = {"bearer_token": "%s", "scim_client_name": "okta",\n'
                          '                   "name_formatted_included": False}\n' % TOKEN_ROOT)
    result = take(host, [realm("acme", TOKEN_ACME), realm("", TOKEN_ROOT)])
    assert result["takeover"]["realms"] == ["acme", ""]
    assert len(result["takeover"]["lines"]) == 3
    data = host.settings.read_bytes()
    assigned = [n for n in ast.parse(data).body if isinstance(n, ast.Assign) and "SCIM_CONFIG" in ast.dump(n.targets[0])]
    assert len(assigned) == 1  # the block's own
    assert b"X = 1\n" in data
    assert_no_token_in(data, TOKEN_ACME, TOKEN_ROOT, OLD_TOKEN)
    (backup,) = backups(host)
    assert_no_token_in(backup.read_bytes(), TOKEN_ACME, TOKEN_ROOT, OLD_TOKEN)
    config = run_with(backup.read_text(), secrets_of(host))
    assert config["acme"]["bearer_token"] == TOKEN_ACME and config[""]["bearer_token"] == TOKEN_ROOT


def test_an_annotated_assignment_is_taken_over_and_its_token_adopted(host):
    from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import token_references

    text = SETTINGS + docs_form({"acme": TOKEN_ACME}).replace("SCIM_CONFIG = {", "SCIM_CONFIG: dict[str, Any] = {")
    assert token_references(text)["acme"][:2] == ("literal", TOKEN_ACME)  # what adoption reads
    host.write_settings(text)
    take(host, [realm("acme", TOKEN_ACME)])
    assert read_config(host)["acme"]["bearer_token"] == TOKEN_ACME
    assert_no_token_in(host.settings.read_bytes() + backups(host)[0].read_bytes(), TOKEN_ACME)


def test_a_file_without_the_get_secret_import_gets_it_in_the_backup(host):
    host.write_settings('EXTERNAL_HOST = "zulip.example.com"\n' + docs_form({"acme": TOKEN_ACME}))
    take(host, [realm("acme", TOKEN_ACME)])
    (backup,) = backups(host)
    assert b"from .config import get_secret\n" in backup.read_bytes()
    ast.parse(backup.read_bytes())


def test_check_and_diff_mode_write_nothing_and_show_no_token(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}))
    before = host.state()
    outcome = runner.run_module(zulip_scim_config.main,
                                host.args([realm("acme", TOKEN_ACME)], takeover=True, backup=True),
                                check_mode=True, diff=True)
    assert not outcome.failed and outcome.result["changed"]
    assert TOKEN_ACME not in repr(outcome.result)  # the diff's "before" is scrubbed too
    assert outcome.result["takeover"]["message"].startswith("Would take over the hand-written SCIM_CONFIG")
    assert host.state() == before


def test_the_kept_previous_copy_holds_no_token_and_still_works(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}))
    take(host, [realm("acme", TOKEN_ACME)], keep_previous=True)
    kept_settings = host.etc / ".settings.py.zulip-scim-previous"
    kept_secrets = host.etc / ".zulip-secrets.conf.zulip-scim-previous"
    assert_no_token_in(kept_settings.read_bytes(), TOKEN_ACME)
    # A roll-back puts both back: the hand-written config then reads the same token from the secrets file.
    assert previous.restore([str(host.secrets), str(host.settings)]) == []
    assert not kept_settings.exists() and not kept_secrets.exists()
    assert run_with(host.settings.read_text(), secrets_of(host))["acme"]["bearer_token"] == TOKEN_ACME


def test_a_key_this_version_does_not_read_is_dropped_with_a_warning(host):
    host.set_version("5.6")
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}).replace(
        '"name_formatted_included": False,', '"name_formatted_included": False, "create_guests_without_streams": True,'))
    outcome = runner.run_module(zulip_scim_config.main,
                                host.args([realm("acme", TOKEN_ACME)], takeover=True))
    assert not outcome.failed
    assert any("create_guests_without_streams is not read by Zulip 5.6" in w for w in outcome.warnings)
    assert "create_guests_without_streams" not in read_config(host)["acme"]


# -- refusals: nothing changes ----------------------------------------------------------------


@pytest.mark.reliability(area="bad_input", case="a hand-written SCIM_CONFIG without the opt-in (zulip_scim_takeover)",
                         outcome="refused, naming file:line, the realms in plain words and zulip_scim_takeover: true; nothing written")
def test_without_the_opt_in_the_message_says_what_and_how(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME, "": TOKEN_ROOT}))
    msg = fails(host, [realm("acme", TOKEN_ACME)])
    line = SETTINGS.count("\n") + 1
    assert "%s:%d" % (host.settings, line) in msg
    assert 'realms acme, "" (root domain)' in msg
    assert "zulip_scim_takeover: true" in msg and "takeover_scim.yml" in msg
    assert "\\\"" not in msg  # plain words, not JSON-escaped


@pytest.mark.reliability(area="bad_input", case="a hand-written token from os.environ or other Python",
                         outcome="refused with the line and what to write instead; nothing written")
@pytest.mark.parametrize("expression", [
    'os.environ["SCIM_TOKEN"]',
    'open("/etc/zulip/token").read().strip()',
    '"abc" + "defghijklmnopqrst"',
    'get_secret(NAME)',
])
def test_a_token_from_python_is_refused(host, expression):
    host.write_settings(SETTINGS + "import os\n" + docs_form({"acme": TOKEN_ACME}).replace(
        '"%s"' % TOKEN_ACME, expression))
    msg = fails(host, [realm("acme", TOKEN_ACME)], takeover=True, backup=True)
    assert "%s:%d" % (host.settings, SETTINGS.count("\n") + 4) in msg
    assert "neither a string nor get_secret" in msg and "Nothing was changed" in msg


@pytest.mark.reliability(area="bad_input", case="a hand-written realm that the inventory does not list",
                         outcome="refused, naming the realm and how to list it (present or absent); nothing written")
def test_an_unlisted_realm_is_refused(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME, "": TOKEN_ROOT}))
    msg = fails(host, [realm("acme", TOKEN_ACME)], takeover=True)
    assert 'realms "" (root domain) are in the hand-written SCIM_CONFIG but not in zulip_scim_realms' in msg


def test_a_listed_absent_realm_is_dropped(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME, "": TOKEN_ROOT}))
    result = take(host, [realm("acme", TOKEN_ACME), dict(subdomain="", state="absent")])
    assert result["takeover"]["dropped"] == [""]
    assert list(read_config(host)) == ["acme"]
    assert_no_token_in(host.settings.read_bytes() + backups(host)[0].read_bytes(), TOKEN_ROOT)


@pytest.mark.reliability(area="bad_input", case="a takeover whose hand-written keys disagree with the inventory",
                         outcome="refused, naming the key and the value to set in zulip_scim_realms; nothing written")
@pytest.mark.parametrize("item, needle", [
    (dict(name_formatted_included=True), "set name_formatted_included: false"),
    (dict(client_name="entra"), 'set client_name: "okta"'),
])
def test_hand_keys_that_disagree_are_refused(host, item, needle):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}))
    assert needle in fails(host, [realm("acme", TOKEN_ACME, **item)], takeover=True)


@pytest.mark.reliability(area="bad_input", case="a takeover where the token store holds another token than the host",
                         outcome="refused, the IdP's token is never replaced by a takeover; nothing written")
def test_another_token_than_the_host_uses_is_refused(host):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}))
    assert "would replace the token the host uses now" in fails(host, [realm("acme", TOKEN_ROOT)], takeover=True)


@pytest.mark.reliability(area="bad_input",
                         case="a hand-written token quoted again elsewhere in settings.py, a get_secret() without its "
                              "secret, a SCIM_CONFIG changed by update()",
                         outcome="refused, naming the line; nothing written")
@pytest.mark.parametrize("extra, needle", [
    ("# the token was %s\n" % TOKEN_ACME, "also appears elsewhere"),
    ('SCIM_CONFIG["acme"]["bearer_token"] = get_secret("nope")\n', "cannot be taken over safely"),
    ('SCIM_CONFIG.update({})\n', "cannot be taken over safely"),
    ('SCIM_CONFIG["acme"] = {"bearer_token": get_secret("nope"), "scim_client_name": "okta"}\n', "has no such secret"),
    ("X = len(SCIM_CONFIG)\n", "SCIM_CONFIG is read here"),
])
def test_other_unsafe_forms_are_refused(host, extra, needle):
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}) + extra)
    assert needle in fails(host, [realm("acme", TOKEN_ACME)], takeover=True, backup=True)


def test_preflight_refuses_the_same_before_the_token_store_is_touched(host, tmp_path):
    host.write_settings(SETTINGS + "import os\n" + docs_form({"acme": TOKEN_ACME}).replace(
        '"%s"' % TOKEN_ACME, 'os.environ["T"]'))
    args = dict(check_settings=True, takeover=True, check_config=[{"subdomain": "acme"}],
                settings_path=str(host.settings), secrets_path=str(host.secrets), deploy_path=str(host.deploy),
                zulip_conf_path=str(tmp_path / "none.conf"))
    outcome = runner.run_module(zulip_scim_preflight.main, args)
    assert outcome.failed and "neither a string nor get_secret" in outcome.result["msg"]
    host.write_settings(SETTINGS + docs_form({"acme": TOKEN_ACME}))
    outcome = runner.run_module(zulip_scim_preflight.main, args)
    assert not outcome.failed, outcome.result
    assert outcome.result["takeover"]["realms"] == ["acme"]
    assert TOKEN_ACME not in repr(outcome.result)
    assert os.path.exists(host.settings)


def test_nothing_to_take_over_says_nothing():
    """A failed run's result must not claim a takeover that did not happen (it printed "Took over ... of  ()")."""
    from ansible_collections.zulip_ops.zulip.plugins.module_utils._takeover import Takeover

    assert Takeover().message() == "" and Takeover().summary(check_mode=True)["message"] == ""
