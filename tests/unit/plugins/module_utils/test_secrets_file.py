# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import configparser

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import (
    SecretsFile,
    read_secret,
    read_secrets_file,
    redacted_view,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

TOKEN = "tok-0123456789abcdef"
ZULIP_LIKE = (
    "# Zulip secrets\n"
    "[secrets]\n"
    "avatar_salt = s4lt\n"
    "; a comment\n"
    "rabbitmq_password=rabbit\n"
    "\n"
    "[other]\n"
    "scim_bearer_token_acme = not-ours\n"
)


def _zulip_reads(text: str) -> dict:
    """What Zulip's get_secret would see (configparser, strict)."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return dict(parser.items("secrets"))


def test_get_reads_only_the_secrets_section():
    secrets = SecretsFile(ZULIP_LIKE)
    assert secrets.get("avatar_salt") == "s4lt"
    assert secrets.get("rabbitmq_password") == "rabbit"
    assert secrets.get("scim_bearer_token_acme") is None


def test_new_key_goes_to_the_end_of_the_section():
    secrets = SecretsFile(ZULIP_LIKE)
    assert secrets.apply({"scim_bearer_token_acme": TOKEN})
    assert secrets.render() == ZULIP_LIKE.replace(
        "rabbitmq_password=rabbit\n", "rabbitmq_password=rabbit\nscim_bearer_token_acme = %s\n" % TOKEN)
    assert _zulip_reads(secrets.render())["scim_bearer_token_acme"] == TOKEN


def test_same_value_keeps_the_line_as_it_is():
    text = "[secrets]\nscim_bearer_token_acme=%s\n" % TOKEN
    secrets = SecretsFile(text)
    assert not secrets.apply({"scim_bearer_token_acme": TOKEN})
    assert secrets.render() == text


def test_replace_value_keeps_everything_else():
    text = ZULIP_LIKE.replace("[other]", "scim_bearer_token_acme = old-token-value-123\n\n[other]")
    secrets = SecretsFile(text)
    assert secrets.apply({"scim_bearer_token_acme": TOKEN})
    assert secrets.render() == text.replace("old-token-value-123", TOKEN)


def test_remove_key_and_its_continuation_lines():
    text = "[secrets]\na = 1\nscim_bearer_token_x = first\n  second\nb = 2\n"
    secrets = SecretsFile(text)
    assert secrets.get("scim_bearer_token_x") == "first\nsecond"
    assert secrets.apply({"scim_bearer_token_x": None})
    assert secrets.render() == "[secrets]\na = 1\nb = 2\n"


def test_remove_missing_key_changes_nothing():
    secrets = SecretsFile(ZULIP_LIKE)
    assert not secrets.apply({"scim_bearer_token_x": None})
    assert secrets.render() == ZULIP_LIKE


def test_repeated_key_is_collapsed_to_one():
    # Zulip (strict configparser) refuses a repeated key; setting it mends the file.
    text = "[secrets]\nscim_bearer_token_x = %s\nSCIM_BEARER_TOKEN_X : other\n" % TOKEN
    secrets = SecretsFile(text)
    assert secrets.apply({"scim_bearer_token_x": TOKEN})
    assert secrets.render() == "[secrets]\nscim_bearer_token_x = %s\n" % TOKEN


def test_replacing_a_multiline_value_drops_its_continuation():
    secrets = SecretsFile("[secrets]\nk = a\n b\n")
    assert secrets.apply({"k": TOKEN})
    assert secrets.render() == "[secrets]\nk = %s\n" % TOKEN


def test_missing_section_is_appended():
    text = "[other]\nx = 1"
    secrets = SecretsFile(text)
    assert secrets.apply({"b": TOKEN, "a": TOKEN})
    assert secrets.render() == "[other]\nx = 1\n\n[secrets]\na = %s\nb = %s\n" % (TOKEN, TOKEN)


def test_empty_file_gets_the_section():
    secrets = SecretsFile("")
    assert secrets.apply({"a": TOKEN})
    assert secrets.render() == "[secrets]\na = %s\n" % TOKEN


def test_section_at_end_without_newline():
    secrets = SecretsFile("[secrets]")
    secrets.apply({"a": TOKEN})
    assert secrets.render() == "[secrets]\na = %s\n" % TOKEN


def test_new_key_before_trailing_blank_lines_of_last_section():
    secrets = SecretsFile("[secrets]\nx = 1\n\n\n")
    secrets.apply({"a": TOKEN})
    assert secrets.render() == "[secrets]\nx = 1\na = %s\n\n\n" % TOKEN


def test_crlf_is_kept():
    text = "[secrets]\r\nx = 1\r\n\r\n[other]\r\ny = 2\r\n"
    secrets = SecretsFile(text)
    secrets.apply({"a": TOKEN, "x": None})
    assert secrets.render() == "[secrets]\r\na = %s\r\n\r\n[other]\r\ny = 2\r\n" % TOKEN


def test_indented_key_is_not_a_continuation_of_a_less_indented_one():
    secrets = SecretsFile("[secrets]\n  a = 1\n  b = 2\n")
    assert secrets.get("a") == "1"
    assert secrets.get("b") == "2"


def test_second_secrets_section_is_an_error():
    with pytest.raises(ZulipError, match=r"conf:4: a second \[secrets\] section \(the first is at line 1\)"):
        SecretsFile("[secrets]\na = 1\n[x]\n[secrets]\n", "conf")


def test_redacted_view_shows_names_and_change_notes_only():
    before = {"k_changed": "VAL-old", "k_same": "VAL-same", "k_gone": "VAL-gone", "k_new": None}
    after = {"k_changed": "VAL-new", "k_same": "VAL-same", "k_gone": None, "k_new": "VAL-fresh"}
    old, new = redacted_view(before, after)
    assert old == ("[secrets]\nk_changed = <redacted>\nk_gone = <redacted>\nk_same = <redacted>\n")
    assert new == ("[secrets]\nk_changed = <redacted>  # value changed\nk_new = <redacted>  # new value\n"
                   "k_same = <redacted>\n")
    assert "VAL" not in old + new


def test_line_without_delimiter_is_left_alone():
    text = "[secrets]\njust some words\na = 1\n"
    secrets = SecretsFile(text)
    assert secrets.get("a") == "1"
    assert secrets.get("just some words") is None
    secrets.apply({"a": None})
    assert secrets.render() == "[secrets]\njust some words\n"


# --------------------------------------------------------------------------- reading (moved from scim_http)

READ_TOKEN = "tok-9f8e7d6c5b4a3928-SECRET"


def test_read_secret(tmp_path):
    path = tmp_path / "zulip-secrets.conf"
    path.write_text(
        "[secrets]\n"
        "avatar_salt = abc\n"
        "scim_bearer_token_acme = %s\n"
        "scim_bearer_token__root: root-token%%with%%percent\n"
        "empty_one =\n"
        "[other]\n"
        "scim_bearer_token_beta = not-in-secrets\n" % READ_TOKEN,
        encoding="utf-8",
    )
    assert read_secret(str(path), "scim_bearer_token_acme") == READ_TOKEN
    # RawConfigParser: no interpolation of "%"
    assert read_secret(str(path), "scim_bearer_token__root") == "root-token%with%percent"
    assert read_secret(str(path), "empty_one") == ""
    assert read_secret(str(path), "scim_bearer_token_beta") is None
    assert read_secret(str(path), "scim_bearer_token_nope") is None


def test_read_secret_missing_file_is_an_error_that_names_it(tmp_path):
    missing = str(tmp_path / "missing.conf")
    with pytest.raises(ZulipError, match="cannot read .*missing.conf"):
        read_secret(missing, "x")


def test_read_secret_missing_section(tmp_path):
    path = tmp_path / "s.conf"
    path.write_text("[other]\nx = 1\n", encoding="utf-8")
    assert read_secret(str(path), "x") is None


def test_read_secret_utf8(tmp_path):
    path = tmp_path / "s.conf"
    path.write_text("[secrets]\nname = wert-ä\n", encoding="utf-8")
    assert read_secret(str(path), "name") == "wert-ä"


def test_read_secrets_file_missing_is_none_and_a_directory_is_an_error(tmp_path):
    assert read_secrets_file(str(tmp_path / "absent.conf")) is None
    with pytest.raises(ZulipError, match="^cannot read %s: " % tmp_path):
        read_secrets_file(str(tmp_path))


def test_read_secrets_file_gives_the_parser_used_for_writing(tmp_path):
    path = tmp_path / "zulip-secrets.conf"
    path.write_text("[secrets]\nScim_Bearer_Token_Acme = a\n  continued\n", encoding="utf-8")
    secrets = read_secrets_file(str(path))
    assert isinstance(secrets, SecretsFile) and secrets.get("scim_bearer_token_acme") == "a\ncontinued"


@pytest.mark.parametrize("text, line", [
    ("not an ini file\n", 1),
    ("# comment\n\nleaked-secret-value\n[secrets]\nx = 1\n", 3),
])
def test_a_line_before_any_section_is_refused_as_configparser_does(text, line):
    with pytest.raises(ZulipError) as exc:
        SecretsFile(text, "/etc/zulip/zulip-secrets.conf")
    assert str(exc.value).startswith("/etc/zulip/zulip-secrets.conf:%d: a line before the first [section] header" % line)
    assert "leaked" not in str(exc.value)
    with pytest.raises(configparser.MissingSectionHeaderError):
        configparser.RawConfigParser().read_string(text)
