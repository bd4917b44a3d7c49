# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ast

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _settings_file as settings_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import (
    BEGIN_MARKER,
    END_MARKER,
    RealmEntry,
    SettingsFile,
    UnreadableEntry,
    py_str,
    render_block,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

PATH = "/etc/zulip/settings.py"
HEAD = 'from .config import get_secret\n\nEXTERNAL_HOST = "zulip.example.com"\n'

ACME = RealmEntry("acme", "scim_bearer_token_acme", "okta")
ROOT = RealmEntry("", "scim_bearer_token__root", "azure", True, False, {"urn:x:dept": "department"})

EXPECTED_BLOCK = '''\
# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten
from .config import get_secret

SCIM_CONFIG = {
    "": {
        "bearer_token": get_secret("scim_bearer_token__root"),
        "scim_client_name": "azure",
        "name_formatted_included": True,
        "create_guests_without_streams": False,
        "custom_profile_field_map": {
            "urn:x:dept": "department",
        },
    },
    "acme": {
        "bearer_token": get_secret("scim_bearer_token_acme"),
        "scim_client_name": "okta",
        "name_formatted_included": False,
    },
}
# END zulip_ops.zulip SCIM_CONFIG
'''


def block_text(entries, newline="\n"):
    return "".join(render_block(entries, newline))


def parse(text: str, path: str = PATH) -> SettingsFile:
    return SettingsFile(text.encode("utf-8"), path)


def test_block_format_is_exact_and_sorted():
    assert block_text([ACME, ROOT]) == EXPECTED_BLOCK
    assert BEGIN_MARKER in EXPECTED_BLOCK and END_MARKER in EXPECTED_BLOCK


def test_block_evaluates_to_the_wanted_scim_config():
    namespace = {}
    exec(compile(block_text([ACME, ROOT]).replace("from .config import get_secret", ""), "b", "exec"),
         {"get_secret": lambda name: "<%s>" % name}, namespace)
    assert namespace["SCIM_CONFIG"] == {
        "": {"bearer_token": "<scim_bearer_token__root>", "scim_client_name": "azure",
             "name_formatted_included": True, "create_guests_without_streams": False,
             "custom_profile_field_map": {"urn:x:dept": "department"}},
        "acme": {"bearer_token": "<scim_bearer_token_acme>", "scim_client_name": "okta",
                 "name_formatted_included": False},
    }


def test_empty_field_map_is_written():
    entry = RealmEntry("a", "s", "okta", custom_profile_field_map={})
    assert '"custom_profile_field_map": {},' in block_text([entry])


@pytest.mark.parametrize("value", ['plain', 'with "quotes"', "back\\slash", "it's", "ünïcødé 名前", "'''", '"""'])
def test_py_str_round_trips(value):
    assert ast.literal_eval(py_str(value)) == value
    assert py_str(value).startswith('"')


@pytest.mark.parametrize("value", ["new\nline", "tab\t", "\x00", 42])
def test_py_str_refuses_what_cannot_be_a_one_line_literal(value):
    with pytest.raises(ZulipError):
        py_str(value)


def test_file_without_block():
    settings = parse(HEAD)
    assert settings.block is None
    assert settings.entries == {}
    assert settings.with_entries([]) == HEAD.encode()


def test_append_adds_a_blank_line_then_the_block():
    new = parse(HEAD).with_entries([ACME, ROOT])
    assert new == (HEAD + "\n" + EXPECTED_BLOCK).encode()


def test_append_after_existing_blank_line_adds_no_second_one():
    new = parse(HEAD + "\n").with_entries([ACME])
    assert new == (HEAD + "\n" + block_text([ACME])).encode()


def test_append_to_empty_file():
    assert parse("").with_entries([ACME]) == block_text([ACME]).encode()


def test_append_to_file_without_trailing_newline():
    text = HEAD + "# last line"
    new = parse(text).with_entries([ACME]).decode()
    assert new == text + "\n\n" + block_text([ACME])


def test_crlf_file_gets_crlf_block():
    text = HEAD.replace("\n", "\r\n")
    new = parse(text).with_entries([ACME]).decode()
    assert new == text + "\r\n" + block_text([ACME], "\r\n")
    assert "\n" not in new.replace("\r\n", "")


def test_block_read_back_and_replaced_in_place():
    tail = "\n# after the block\nTAIL = 1\n"
    text = HEAD + "\n" + block_text([ACME, ROOT]) + tail
    settings = parse(text)
    assert settings.block == (4, 4 + EXPECTED_BLOCK.count("\n") - 1)
    assert settings.entries == {"acme": ACME, "": ROOT}
    changed = RealmEntry("acme", "scim_bearer_token_acme", "onelogin")
    assert settings.with_entries([changed]).decode() == HEAD + "\n" + block_text([changed]) + tail


def test_removing_last_entries_keeps_an_empty_scim_config():
    # Before 11.0 a server with no SCIM_CONFIG at all answers SCIM with 500;
    # an empty one makes it refuse with 401.
    new = parse(HEAD + "\n" + block_text([ACME])).with_entries([])
    assert new == (HEAD + "\n" + block_text([])).encode()
    namespace = {}
    exec(compile(new.decode().replace("from .config import get_secret", ""), PATH, "exec"), namespace)
    assert namespace["SCIM_CONFIG"] == {}


def test_emptying_a_block_in_the_middle_keeps_surroundings():
    text = HEAD + "\n" + block_text([ACME]) + "\nTAIL = 1\n"
    assert parse(text).with_entries([]).decode() == HEAD + "\n" + block_text([]) + "\nTAIL = 1\n"


def test_no_block_and_no_entries_leaves_the_file_alone():
    assert parse(HEAD).with_entries([]) == HEAD.encode()


def test_block_at_start_of_file_is_emptied_in_place():
    text = block_text([ACME]) + HEAD
    assert parse(text).with_entries([]).decode() == block_text([]) + HEAD


def test_unicode_and_non_utf8_bytes_outside_block_are_kept():
    raw = ("# -*- coding: latin-1 -*-\n# caf\xe9\n".encode("latin-1")
           + "X = 'ünïcødé \u2028 \x0c'\n".encode("latin-1", "replace"))
    settings = SettingsFile(raw, PATH)
    new = settings.with_entries([ACME])
    assert new.startswith(raw)
    assert SettingsFile(new, PATH).entries == {"acme": ACME}


def test_bom_is_kept_and_does_not_hide_markers():
    text = "\ufeff" + HEAD + "\n" + block_text([ACME])
    settings = parse(text)
    assert settings.entries == {"acme": ACME}
    assert settings.with_entries([ACME, ROOT]).decode() == "\ufeff" + HEAD + "\n" + EXPECTED_BLOCK


def test_form_feed_and_line_separator_do_not_shift_lines():
    text = "X = 1\x0c\nY = '\u2028'\n" + block_text([ACME])
    settings = parse(text)
    assert settings.block[0] == 2


@pytest.mark.parametrize("statement", [
    "SCIM_CONFIG = {}",
    "SCIM_CONFIG: dict = {}",
    "SCIM_CONFIG |= {}",
    "SCIM_CONFIG += 1",
    'SCIM_CONFIG["acme"] = {}',
    'SCIM_CONFIG["acme"]["bearer_token"] = "x"',
    "SCIM_CONFIG.update({})",
    'SCIM_CONFIG["acme"].setdefault("a", 1)',
    "del SCIM_CONFIG",
    'del SCIM_CONFIG["acme"]',
    "X = SCIM_CONFIG = {}",
    "SCIM_CONFIG, Y = {}, 1",
    "for SCIM_CONFIG in []: pass",
    "(SCIM_CONFIG := {})",
    "from zproject.other import SCIM_CONFIG",
    "import SCIM_CONFIG",
    "from x import y as SCIM_CONFIG",
    "def SCIM_CONFIG(): pass",
    "with open('x') as SCIM_CONFIG: pass",
    "if True:\n    SCIM_CONFIG = {}",
])
def test_scim_config_outside_the_block_is_refused(statement):
    text = HEAD + statement + "\n"
    line = HEAD.count("\n") + 1 + statement.count("\n")
    with pytest.raises(ZulipError, match="%s:%d" % (PATH, line)) as info:
        parse(text)
    assert "outside the block" in str(info.value)


def test_scim_config_after_an_existing_block_is_refused():
    text = HEAD + block_text([ACME]) + 'SCIM_CONFIG["x"] = {}\n'
    with pytest.raises(ZulipError, match=r"%s:%d\)" % (PATH, text.count("\n"))):
        parse(text)


def test_reading_scim_config_is_allowed():
    settings = parse(HEAD + block_text([ACME]) + "if SCIM_CONFIG:\n    X = list(SCIM_CONFIG)\n")
    assert settings.entries == {"acme": ACME}


def test_marker_text_inside_a_string_is_not_a_marker():
    text = HEAD + 'DOC = """\n%s\n%s\n"""\n' % (BEGIN_MARKER, END_MARKER)
    settings = parse(text)
    assert settings.block is None
    assert settings.with_entries([ACME]).decode() == text + "\n" + block_text([ACME])


def test_reworded_marker_remark_is_still_a_marker():
    text = HEAD + block_text([ACME]).replace("-- managed by Ansible, edits here are overwritten", "(ours)")
    assert parse(text).block is not None


@pytest.mark.parametrize("text, message", [
    (HEAD + BEGIN_MARKER + "\n", r"settings.py:4: BEGIN marker .* without an END"),
    (HEAD + END_MARKER + "\n", r"settings.py:4: END marker .* without a BEGIN"),
    (END_MARKER + "\n" + BEGIN_MARKER + "\n", r"END marker comes before its BEGIN"),
    (HEAD + block_text([ACME]) * 2, r"more than one .* block \(markers at .*settings.py:4, .*settings.py:\d+"),
    ("if True:\n    " + BEGIN_MARKER + "\n    pass\n", r"settings.py:2: .* must start at the beginning"),
])
def test_broken_markers(text, message):
    with pytest.raises(ZulipError, match=message):
        parse(text)


@pytest.mark.reliability(area="fault", case="settings.py does not compile",
                         outcome="refused with the line and the error, nothing written")
def test_file_that_does_not_compile():
    with pytest.raises(ZulipError, match=r"does not compile, so it was left untouched.*settings.py:2: "):
        parse("X = 1\nY = (\n")


def test_file_that_does_not_compile_beyond_the_parser():
    # "return" outside a function passes ast.parse but not compile().
    with pytest.raises(ZulipError, match="does not compile"):
        parse("return 1\n")


def test_file_with_null_byte():
    with pytest.raises(ZulipError, match="does not compile"):
        SettingsFile(b"X = 1\x00\n", PATH)


def test_new_file_that_would_not_compile_is_refused(monkeypatch):
    settings = parse(HEAD)
    monkeypatch.setattr(settings_file, "render_block", lambda entries, newline: ["SCIM_CONFIG = {\n"])
    with pytest.raises(ZulipError, match="the new %s would not compile, so it was not written" % PATH):
        settings.with_entries([ACME])


def test_tokenizer_failure_is_reported(monkeypatch):
    def broken(readline):
        raise settings_file.tokenize.TokenError("boom", (1, 0))

    monkeypatch.setattr(settings_file.tokenize, "generate_tokens", broken)
    with pytest.raises(ZulipError, match="cannot be tokenized"):
        parse(HEAD)


def _with_block(inner: str) -> str:
    return HEAD + BEGIN_MARKER + "\n" + inner + END_MARKER + "\n"


def test_block_without_scim_config_has_no_entries():
    assert parse(_with_block("from .config import get_secret\n")).entries == {}


def test_last_scim_config_in_block_counts():
    inner = block_text([ACME]).split("\n", 1)[1].rsplit(END_MARKER, 1)[0]
    settings = parse(_with_block("SCIM_CONFIG = {}\n" + inner))
    assert settings.entries == {"acme": ACME}


@pytest.mark.parametrize("inner, message", [
    ("SCIM_CONFIG = dict()\n", r"settings.py:5: .* cannot be read back \(SCIM_CONFIG is not a dict literal\)"),
    ("SCIM_CONFIG = {\n    1: {},\n}\n", r"settings.py:6: .*a realm key is not a string literal"),
    ("X = {}\nSCIM_CONFIG = {\n    **X,\n}\n", r"a realm key is not a string literal"),
    ('SCIM_CONFIG = {\n    "a": {},\n    "a": {},\n}\n', r"settings.py:7: .*realm 'a' appears twice"),
])
def test_block_that_cannot_be_read(inner, message):
    with pytest.raises(ZulipError, match=message):
        parse(_with_block(inner))


def test_block_that_is_the_body_of_a_statement_above_it():
    text = "if True:\n" + BEGIN_MARKER + "\n    X = 1\n" + END_MARKER + "\n"
    with pytest.raises(ZulipError, match=r"settings.py:2: .*not valid Python on its own"):
        parse(text)


@pytest.mark.parametrize("entry, reason", [
    ('"x"', "not a dict literal"),
    ('{"bearer_token": "plain-token", "scim_client_name": "o", "name_formatted_included": False}',
     'bearer_token is not get_secret'),
    ('{"bearer_token": get_secret(NAME), "scim_client_name": "o", "name_formatted_included": False}',
     'bearer_token is not get_secret'),
    ('{"bearer_token": get_secret("s"), "scim_client_name": NAME, "name_formatted_included": False}',
     "scim_client_name is not a literal"),
    ('{"bearer_token": get_secret("s"), "scim_client_name": "o", "name_formatted_included": "no"}',
     "unexpected key or value 'name_formatted_included'"),
    ('{"bearer_token": get_secret("s"), "scim_client_name": "o", "name_formatted_included": False, "x": 1}',
     "unexpected key or value 'x'"),
    ('{"bearer_token": get_secret("s"), "scim_client_name": "o", "name_formatted_included": False,'
     ' "custom_profile_field_map": {"a": 1}}', "unexpected key or value 'custom_profile_field_map'"),
    ('{"bearer_token": get_secret("s"), "scim_client_name": "o"}', "a required key is missing"),
])
def test_hand_edited_entry_is_unreadable(entry, reason):
    settings = parse(_with_block('NAME = "n"\nSCIM_CONFIG = {\n    "acme": %s,\n}\n' % entry))
    found = settings.entries["acme"]
    assert isinstance(found, UnreadableEntry)
    assert found.line == 7
    assert found.reason.startswith(reason)
    assert found != ACME and not found == ACME


def test_entry_keeps_a_foreign_secret_name():
    entry = RealmEntry("acme", "my_own_secret", "okta")
    assert parse(HEAD + block_text([entry])).entries == {"acme": entry}


def test_realm_entry_equality_and_optional_keys():
    assert ACME == RealmEntry("acme", "scim_bearer_token_acme", "okta")
    assert ACME != ROOT
    assert ACME != "acme"
    assert ACME.optional_keys() == []
    assert ROOT.optional_keys() == ["create_guests_without_streams", "custom_profile_field_map"]
    assert "acme" in repr(ACME)


def test_text_for_diff():
    settings = SettingsFile(b"X = 1 # \xe9\n", PATH)
    assert settings.text() == "X = 1 # \ufffd\n"
    assert settings.text(b"Y = 2\n") == "Y = 2\n"


def test_one_line_file_without_newline_gets_unix_newlines():
    assert parse("X = 1").with_entries([ACME]).decode() == "X = 1\n\n" + block_text([ACME])


def test_value_error_from_compile_is_reported(monkeypatch):
    # Python before 3.12 raises ValueError, not SyntaxError, for a null byte.
    def old_compile(*args, **kwargs):
        raise ValueError("source code string cannot contain null bytes")

    monkeypatch.setattr(settings_file, "compile", old_compile, raising=False)
    with pytest.raises(ZulipError, match="%s: source code string cannot contain null bytes" % PATH):
        parse("X = 1\n")


# --------------------------------------------------------------------------- EXTERNAL_HOST (moved from scim_http)

@pytest.mark.parametrize("text, expected", [
    ('EXTERNAL_HOST = "zulip.example.com"\n', "zulip.example.com"),
    ("EXTERNAL_HOST = 'zulip.example.com'\n", "zulip.example.com"),
    ('EXTERNAL_HOST="zulip.example.com"', "zulip.example.com"),
    ('EXTERNAL_HOST = "zulip.example.com"  # the public name\n', "zulip.example.com"),
    ('EXTERNAL_HOST = "zulip.example.com:8443"\n', "zulip.example.com:8443"),
    ('EXTERNAL_HOST = "zulip.example.com"   \n', "zulip.example.com"),
])
def test_read_external_host_literals(text, expected):
    assert settings_file.read_external_host(text) == expected


def test_read_external_host_last_assignment_wins():
    text = (
        "from .config import get_secret\n"
        'EXTERNAL_HOST = "old.example.com"\n'
        "ZULIP_ADMINISTRATOR = 'admin@example.com'\n"
        'EXTERNAL_HOST = "new.example.com"\n'
    )
    assert settings_file.read_external_host(text) == "new.example.com"


def test_read_external_host_ignores_comments_and_other_settings():
    text = (
        '# EXTERNAL_HOST = "commented.example.com"\n'
        'if False:\n'
        '    EXTERNAL_HOST = "indented.example.com"\n'
        'MY_EXTERNAL_HOST = "other.example.com"\n'
        'EXTERNAL_HOST = "real.example.com"\n'
        '#EXTERNAL_HOST = "later-comment.example.com"\n'
    )
    assert settings_file.read_external_host(text) == "real.example.com"


@pytest.mark.parametrize("text", [
    "",
    "ZULIP_ADMINISTRATOR = 'admin@example.com'\n",
    'EXTERNAL_HOST = os.environ["HOST"]\n',
    "EXTERNAL_HOST = get_secret('external_host')\n",
    'EXTERNAL_HOST = "zulip" + ".example.com"\n',
    'EXTERNAL_HOST = f"{NAME}.example.com"\n',
    'EXTERNAL_HOST = ""\n',
    '# EXTERNAL_HOST = "zulip.example.com"\n',
])
def test_read_external_host_non_literal_is_none(text):
    assert settings_file.read_external_host(text) is None


def test_read_external_host_last_assignment_non_literal_makes_it_unknown():
    # What Python binds last counts: a later computed value is unknown, not the earlier literal.
    text = 'EXTERNAL_HOST = "a.example.com"\nEXTERNAL_HOST = compute()\n'
    assert settings_file.read_external_host(text) is None


def test_read_external_host_crlf_file():
    # settings.py edited on Windows: "\r" before the newline must not hide the value.
    assert settings_file.read_external_host('EXTERNAL_HOST = "zulip.example.com"\r\nX = 1\r\n') == "zulip.example.com"


def test_external_host_of_prefers_the_given_value_and_reads_the_file_otherwise(tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text('EXTERNAL_HOST = "zulip.example.com"\n')
    assert settings_file.external_host_of(str(settings), "given.example.com") == "given.example.com"
    assert settings_file.external_host_of(str(settings)) == "zulip.example.com"
    settings.write_text("EXTERNAL_HOST = compute()\n")
    assert settings_file.external_host_of(str(settings), "") == ""


def test_external_host_of_unreadable_file_names_it(tmp_path):
    with pytest.raises(ZulipError, match="^cannot read %s: " % (tmp_path / "nope.py")):
        settings_file.external_host_of(str(tmp_path / "nope.py"))
