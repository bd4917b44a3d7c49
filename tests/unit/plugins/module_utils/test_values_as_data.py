"""Values read from files the zulip user owns are data: parsed (never matched across lines), then checked.

EXTERNAL_HOST (settings.py) and ZULIP_VERSION (version.py) come from the top-level assignments of
the parsed file only (module_utils/_python_source.py), and must fit a host[:port] or a version
grammar (module_utils/_zulip.py) before they go into a URL, a Host header, a result or the
connection sheet. Issue 23: a docstring holding an ``EXTERNAL_HOST = "..."`` line put
"- API Token: send it to https://..." into the IdP connection sheet.
"""

from __future__ import annotations

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _settings_file as settings_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._python_source import (
    Assignment,
    NotPython,
    top_level_assignments,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_external_host,
    external_host_problem,
    parse_version,
    read_version,
    version_in_source,
    version_problem,
)

ATTACK_LINE = "- API Token: send it to https://attacker.example/collect"


def bad(case: str, *values):
    return pytest.param(*values, id=case, marks=pytest.mark.reliability(
        area="bad_input", case="zulip-owned value: " + case, outcome="refused or ignored; shown only as a cut repr"))


# --------------------------------------------------------------------------- the parsed file, not its text

def test_only_top_level_assignments_count():
    source = (
        '"""Site notes.\n'
        'EXTERNAL_HOST = "docstring.example.com"\n'
        '"""\n'
        '# EXTERNAL_HOST = "comment.example.com"\n'
        'EXTERNAL_HOST = "zulip.example.com"\n'
        "if False:\n"
        '    EXTERNAL_HOST = "nested.example.com"\n'
        "def f():\n"
        '    EXTERNAL_HOST = "function.example.com"\n'
        'NOTE = """\n'
        'EXTERNAL_HOST = "string.example.com"\n'
        '"""\n'
    )
    assert top_level_assignments(source, "EXTERNAL_HOST") == [Assignment(5, "zulip.example.com")]


@pytest.mark.parametrize("line, value", [
    ('EXTERNAL_HOST = "a.example.com"', "a.example.com"),
    ('EXTERNAL_HOST: str = "a.example.com"', "a.example.com"),
    ('OTHER = EXTERNAL_HOST = "a.example.com"', "a.example.com"),
    ('EXTERNAL_HOST = "a." "example.com"', "a.example.com"),  # one constant to Python
    ("EXTERNAL_HOST = compute()", None),
    ('EXTERNAL_HOST = f"{X}.example.com"', None),
    ('EXTERNAL_HOST = b"a.example.com"', None),
    ('EXTERNAL_HOST += ".example.com"', None),
    ('EXTERNAL_HOST, OTHER = "a", "b"', None),
    ('*EXTERNAL_HOST, = ["a"]', None),
])
def test_what_an_assignment_gives(line, value):
    assert top_level_assignments("X = 1\n" + line + "\n", "EXTERNAL_HOST") == [Assignment(2, value)]


def test_bytes_with_a_bom_and_a_coding_line_parse():
    source = b"\xef\xbb\xbf# -*- coding: utf-8 -*-\nEXTERNAL_HOST = 'zulip.example.com'\n"
    assert top_level_assignments(source, "EXTERNAL_HOST") == [Assignment(2, "zulip.example.com")]


@pytest.mark.parametrize("source, reason", [
    ("EXTERNAL_HOST = = 1\n", "invalid syntax"),
    ("  EXTERNAL_HOST = 'x'\n", "unexpected indent"),
    ("X = 1\x00\n", "null bytes"),
])
def test_a_file_that_does_not_parse_says_so(source, reason):
    with pytest.raises(NotPython, match=reason):
        top_level_assignments(source, "EXTERNAL_HOST")


# --------------------------------------------------------------------------- EXTERNAL_HOST: the grammar

@pytest.mark.parametrize("value", [
    "zulip.example.com",
    "example.com",  # the root domain
    "localhost",
    "Zulip.Example.COM",
    "chat-1.example.org:8443",
    "zulip.example.com:1",
    "zulip.example.com:65535",
    "127.0.0.1",
    "192.0.2.10:443",
    "[::1]",
    "[2001:db8::1]:8443",
    "a" * 63 + ".example.com",
    ".".join(["a" * 61] * 4),  # 247 characters
])
def test_good_hosts(value):
    assert external_host_problem(value) is None
    assert check_external_host(value, "EXTERNAL_HOST") == value


@pytest.mark.parametrize("value, rule", [
    bad("a trailing newline", "zulip.example.com\n", "'\\n' is not allowed in a host"),
    bad("a Markdown line after a newline", "zulip.example.com\n" + ATTACK_LINE, "'\\n' is not allowed in a host"),
    bad("a space", "zulip example.com", "' ' is not allowed"),
    bad("a path", "zulip.example.com/scim", "'/' is not allowed"),
    bad("a scheme", "https://zulip.example.com", "'/' is not allowed"),
    bad("user info", "user@zulip.example.com", "'@' is not allowed"),
    bad("a query", "zulip.example.com?x=1", "'?' is not allowed"),
    bad("a fragment", "zulip.example.com#x", "'#' is not allowed"),
    bad("Markdown backticks", "zulip.example.com`", "'`' is not allowed"),
    bad("Markdown link", "[x](https://attacker.example)", "'(' is not allowed"),
    bad("a carriage return", "zulip.example.com\r", "'\\r' is not allowed"),
    bad("a tab", "zulip.example.com\t", "'\\t' is not allowed"),
    bad("unicode", "zülip.example.com", "'ü' is not allowed"),
    bad("an underscore", "zulip_1.example.com", "'_' is not allowed in a host"),
    bad("an empty value", "", "the host is empty"),
    bad("two dots", "zulip..example.com", "no empty labels"),
    bad("a trailing dot", "zulip.example.com.", "no empty labels"),
    bad("a leading hyphen", "-zulip.example.com", "cannot start or end with a hyphen"),
    bad("a label of 64 characters", "a" * 64 + ".example.com", "at most 63 characters"),
    bad("a name of 254 characters", ".".join(["a" * 62] * 4) + ".ab", "at most 253 characters, this one 254"),
    bad("port 0", "zulip.example.com:0", "port must be a number from 1 to 65535"),
    bad("port 65536", "zulip.example.com:65536", "port must be a number from 1 to 65535"),
    bad("an empty port", "zulip.example.com:", "port must be a number"),
    bad("a port that is not a number", "zulip.example.com:http", "port must be a number"),
    bad("an IPv6 address without brackets", "2001:db8::1", "must be written in brackets"),
    bad("a bracket that is not closed", "[::1", "is not closed"),
    bad("brackets around a name", "[zulip.example.com]", "is not an IPv6 address"),
    bad("text after the brackets", "[::1]x", "only :PORT may follow"),
    bad("a number that is no IPv4 address", "300.1.2.3", "neither a DNS name nor an IPv4 address"),
    bad("not a string", 12, "a host is a string, not int"),
])
def test_bad_hosts_name_the_rule_and_show_the_value_safely(value, rule):
    problem = external_host_problem(value)
    assert problem is not None and rule in problem
    with pytest.raises(ZulipError) as info:
        check_external_host(value, "EXTERNAL_HOST")
    message = str(info.value)
    assert message.startswith("EXTERNAL_HOST: %r" % (value,) if len(str(value)) <= 60 else "EXTERNAL_HOST: ")
    # Shown as a repr: never a raw line end that would start a new line in a log or a sheet.
    assert "\n" not in message and "\r" not in message


def test_a_long_bad_host_is_cut_in_the_message():
    value = "x" * 300 + "\n" + ATTACK_LINE
    with pytest.raises(ZulipError) as info:
        check_external_host(value, "EXTERNAL_HOST")
    assert "characters)" in str(info.value) and "attacker" not in str(info.value)


# --------------------------------------------------------------------------- EXTERNAL_HOST from settings.py

# The reported attack: the regex read a docstring's "assignment" across lines, last one winning, and the
# connection sheet printed it: an IdP administrator was told to send the token elsewhere.
CRAFTED_DOCSTRING = (
    "from .config import get_secret\n"
    'EXTERNAL_HOST = "zulip.example.com"\n'
    'NOTES = """\n'
    'EXTERNAL_HOST = "zulip.example.com\n' + ATTACK_LINE + '\n'
    '"\n'
    '"""\n'
)


@pytest.mark.reliability(area="bad_input", case="a settings.py docstring that holds an EXTERNAL_HOST line (the "
                         "connection sheet attack)", outcome="ignored: the top-level assignment is read")
def test_a_docstring_cannot_set_external_host():
    compile(CRAFTED_DOCSTRING, "settings.py", "exec")  # a real, valid settings.py
    assert settings_file.read_external_host(CRAFTED_DOCSTRING) == "zulip.example.com"


def test_a_docstring_line_alone_is_not_an_external_host():
    assert settings_file.read_external_host('"""\nEXTERNAL_HOST = "x"\n"""\n') is None


@pytest.mark.parametrize("literal", [
    bad("EXTERNAL_HOST with a Markdown line", '"zulip.example.com\\n%s"' % ATTACK_LINE),
    bad("EXTERNAL_HOST with a space", '"zulip.example.com evil"'),
    bad("EXTERNAL_HOST with a path", '"zulip.example.com/x"'),
])
def test_a_top_level_external_host_that_is_no_host_is_refused(literal):
    source = "X = 1\nEXTERNAL_HOST = %s\n" % literal
    with pytest.raises(ZulipError) as info:
        settings_file.read_external_host(source, "/etc/zulip/settings.py")
    message = str(info.value)
    assert message.startswith("/etc/zulip/settings.py:2: EXTERNAL_HOST ")
    assert "is not a valid host" in message and "set external_host (zulip_scim_external_host" in message
    assert "\n" not in message


def test_a_settings_py_that_does_not_parse_says_so():
    with pytest.raises(ZulipError, match=r"^/x/settings.py does not parse as Python \(line 1: .*\), so its "
                                         r"EXTERNAL_HOST cannot be read; fix it, or set external_host"):
        settings_file.read_external_host("EXTERNAL_HOST = = 1\n", "/x/settings.py")


def test_a_given_external_host_goes_through_the_same_grammar(tmp_path):
    with pytest.raises(ZulipError, match=r"^external_host \(zulip_scim_external_host in the scim role\): "
                                         r"'zulip.example.com\\n- API"):
        settings_file.external_host_of(str(tmp_path / "not-read.py"), "zulip.example.com\n" + ATTACK_LINE)
    assert settings_file.external_host_of(str(tmp_path / "not-read.py"), "chat.example.org:8443") == "chat.example.org:8443"


# --------------------------------------------------------------------------- ZULIP_VERSION: the grammar

@pytest.mark.parametrize("value", [
    "5.6", "9.2", "11.2", "11.2.1", "12.0-dev+git", "11.0-beta1", "10.0-rc1", "9.0-beta1+git", "2.0.4+git",
    "1.9.0-rc1+git",
])
def test_good_versions(value):
    assert version_problem(value) is None
    assert parse_version(value) == tuple(int(part) for part in value.split("-")[0].split("+")[0].split(".")[:2])


@pytest.mark.parametrize("value", [
    bad("a version with a Markdown line", "9.2\n" + ATTACK_LINE),
    bad("a version with a trailing newline", "9.2\n"),
    bad("a version with a space", "9.2 beta"),
    bad("a version with a URL", "9.2-https://attacker.example"),
    bad("a version with unicode digits", "٩.٢"),
    bad("a version with text after it", "12.0-dev+git - 5 commits"),
    bad("a version that is a word", "main"),
])
def test_bad_versions_are_refused_with_a_safe_message(value):
    assert version_problem(value) is not None
    with pytest.raises(ZulipError) as info:
        parse_version(value)
    assert str(info.value).startswith("cannot read a Zulip version from ")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- ZULIP_VERSION from version.py

# Zulip's version.py since 5.x: a literal, then the same name set again from zulip-git-version at run time.
REAL_VERSION_PY = (
    "import os\n\n"
    'ZULIP_VERSION = "9.2"\n\n'
    "# Add information on number of commits and commit hash to version, if available\n"
    "ZULIP_VERSION_WITHOUT_COMMIT = ZULIP_VERSION\n"
    'zulip_git_version_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zulip-git-version")\n'
    'lines = [ZULIP_VERSION, ""]\n'
    "if os.path.exists(zulip_git_version_file):\n"
    "    with open(zulip_git_version_file) as f:\n"
    '        lines = [*f, "", ""]\n'
    "ZULIP_VERSION = lines.pop(0).strip()\n"
    "ZULIP_MERGE_BASE = lines.pop(0).strip()\n\n"
    'LATEST_MAJOR_VERSION = "9.0"\n'
)


def test_a_real_version_py_gives_its_literal():
    assert version_in_source(REAL_VERSION_PY, "version.py") == "9.2"


@pytest.mark.reliability(area="bad_input", case="a version.py docstring that holds a ZULIP_VERSION line",
                         outcome="ignored: the top-level assignment is read")
def test_a_docstring_cannot_set_the_version(tmp_path):
    source = ('"""Release notes.\nZULIP_VERSION = "99.0"\n"""\n'
              '"""\nZULIP_VERSION = "9.2\n' + ATTACK_LINE + '\n"\n"""\n' + REAL_VERSION_PY)
    (tmp_path / "version.py").write_text(source, encoding="utf-8")
    assert read_version(str(tmp_path)) == "9.2"


def test_a_version_py_with_only_a_docstring_has_no_version(tmp_path):
    (tmp_path / "version.py").write_text('"""\nZULIP_VERSION = "99.0"\n"""\n', encoding="utf-8")
    with pytest.raises(ZulipError, match=r"version\.py has no ZULIP_VERSION line"):
        read_version(str(tmp_path))


@pytest.mark.reliability(area="bad_input", case="a ZULIP_VERSION that is no version (a Markdown line in it)",
                         outcome="refused, shown only as a cut repr")
def test_a_top_level_version_that_is_no_version_is_refused(tmp_path):
    (tmp_path / "version.py").write_text('ZULIP_VERSION = "9.2\\n%s"\n' % ATTACK_LINE, encoding="utf-8")
    with pytest.raises(ZulipError) as info:
        read_version(str(tmp_path))
    message = str(info.value)
    assert message.startswith("%s:1: cannot read a Zulip version from '9.2\\n- API Token" % (tmp_path / "version.py"))
    assert "\n" not in message


def test_a_version_py_that_does_not_parse_says_so(tmp_path):
    (tmp_path / "version.py").write_text('ZULIP_VERSION = "9.2\n', encoding="utf-8")
    with pytest.raises(ZulipError, match=r"version\.py does not parse as Python \(line 1: "):
        read_version(str(tmp_path))
