"""The bad-input matrix: each bad value an operator can give, the rule it breaks, the message it gets.

Every rule lives once, in module_utils/_zulip.py (realm items, realm name lists)
and module_utils/_token.py (tokens). These cases feed each bad value through
the entry points that apply those rules, the scim role's filters (what a play
runs on the controller, before it connects) and zulip_scim_config (what
writes the files), and check that:

* the message names the offending value (or, for a token, the realm: a token
  is never shown) and the one rule it breaks, with its own wording;
* zulip_scim_config changes nothing (bytes, owner, mode, mtime, inode, no
  file left), which ``fails`` of its test module proves.

Then the values the rules let through are written for real, and settings.py
and zulip-secrets.conf are read back with Python's own parsers (``ast``,
``configparser``): whatever a value holds, the block is one ``SCIM_CONFIG``
assignment of literals equal to the input, and the secrets file has exactly
the keys it should.
"""

from __future__ import annotations

import ast
import configparser
import typing as t

import pytest

try:  # the filters are controller code: ansible-test units runs module tests without it
    from ansible.errors import AnsibleFilterError

    from ansible_collections.zulip_ops.zulip.plugins.filter.scim import scim_realm_names, scim_realms
except ImportError:  # pragma: no cover - only under ansible-test units
    AnsibleFilterError = None
needs_controller = pytest.mark.skipif(AnsibleFilterError is None, reason="controller code (filters) not importable here")
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import check_optional_keys, ZulipError

import test_zulip_scim_config as cfg  # noqa: E402 - the Host harness, found through conftest.py

SUBDOMAIN_CHARS = "only lower-case ASCII letters, digits and hyphens"
CLIENT_CHARS = "not allowed in a client name (only ASCII letters, digits, spaces and . _ - ( ) + @ :)"


def bad(case: str, outcome: str, *values: t.Any) -> t.Any:
    return pytest.param(*values, id=case, marks=pytest.mark.reliability(area="bad_input", case=case, outcome=outcome))


# (case, realm item, the message the role's filter gives, which zulip_scim_config gives as well
#  with "realms" for "zulip_scim_realms")
REALM_CASES = [
    bad("subdomain with a trailing newline", "refused: names 'acme\\n' and the character rule",
        {"subdomain": "acme\n"}, "zulip_scim_realms[0].subdomain: 'acme\\n' is not a valid Zulip subdomain: "
        "'\\n' is not allowed in a subdomain (%s" % SUBDOMAIN_CHARS),
    bad("subdomain with an inner newline", "refused: names the value and the character rule",
        {"subdomain": "ac\nme"}, "'ac\\nme' is not a valid Zulip subdomain: '\\n' is not allowed"),
    bad("subdomain with a double quote", "refused: names the value and the character rule",
        {"subdomain": 'ac"me'}, "'ac\"me' is not a valid Zulip subdomain: '\"' is not allowed in a subdomain"),
    bad("subdomain with a single quote", "refused: names the value and the character rule",
        {"subdomain": "ac'me"}, "\"ac'me\" is not a valid Zulip subdomain: \"'\" is not allowed in a subdomain"),
    bad("subdomain with triple quotes", "refused: names the value and the character rule",
        {"subdomain": 'a"""b'}, "'a\"\"\"b' is not a valid Zulip subdomain: '\"' is not allowed"),
    bad("subdomain with #", "refused: names the value and the character rule",
        {"subdomain": "acme#x"}, "'acme#x' is not a valid Zulip subdomain: '#' is not allowed"),
    bad("subdomain with a backslash", "refused: names the value and the character rule",
        {"subdomain": "ac\\me"}, "'ac\\\\me' is not a valid Zulip subdomain: '\\\\' is not allowed"),
    bad("subdomain with unicode", "refused: names the value and the character rule",
        {"subdomain": "acmé"}, "'acmé' is not a valid Zulip subdomain: 'é' is not allowed in a subdomain"),
    bad("subdomain with upper case", "refused: names the value and the character rule",
        {"subdomain": "Acme"}, "'Acme' is not a valid Zulip subdomain: 'A' is not allowed"),
    bad("subdomain of 64 characters", "refused: names the value and the 63-character rule",
        {"subdomain": "a" * 64}, "is not a valid Zulip subdomain: a subdomain has at most 63 characters, this one 64"),
    bad("subdomain starting with a hyphen", "refused: names the value and the hyphen rule",
        {"subdomain": "-acme"}, "'-acme' is not a valid Zulip subdomain: a subdomain cannot start or end with a hyphen"),
    bad("client name with a double quote", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": 'ok"ta'},
        "zulip_scim_realms[0].client_name: 'ok\"ta' is not a valid client name: '\"' is " + CLIENT_CHARS),
    bad("client name with a newline", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": "okta\n"}, "'okta\\n' is not a valid client name: '\\n' is " + CLIENT_CHARS),
    bad("client name with #", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": "okta # x"}, "'#' is " + CLIENT_CHARS),
    bad("client name with triple quotes", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": '"""'}, "'\"\"\"' is not a valid client name: '\"' is " + CLIENT_CHARS),
    bad("client name with a backslash", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": "ok\\ta"}, "'\\\\' is " + CLIENT_CHARS),
    bad("client name with unicode", "refused: names the value and the character rule",
        {"subdomain": "acme", "client_name": "Okta ü"}, "'Okta ü' is not a valid client name: 'ü' is " + CLIENT_CHARS),
    bad("empty client name", "refused: names the value and the empty rule",
        {"subdomain": "acme", "client_name": ""}, "'' is not a valid client name: a client name cannot be empty"),
    bad("blank client name", "refused: names the value and the empty rule",
        {"subdomain": "acme", "client_name": "   "}, "'   ' is not a valid client name: a client name cannot be empty"),
    bad("client name of 65 characters", "refused: names the value and the 64-character rule",
        {"subdomain": "acme", "client_name": "x" * 65}, "a client name has at most 64 characters, this one 65"),
    bad("client name with an edge space", "refused: names the value and the edge-space rule",
        {"subdomain": "acme", "client_name": "okta "}, "'okta ' is not a valid client name: a client name cannot "
        "start or end with a space"),
    bad("field map value with a newline", "refused: names the pair and the printable rule",
        {"subdomain": "acme", "custom_profile_field_map": {"urn:x": "dept\nx = 1"}},
        "zulip_scim_realms[0].custom_profile_field_map: 'urn:x' -> 'dept\\nx = 1': both sides must be non-empty "
        "printable strings"),
]


# Wrong types and choices: the modules' argument spec converts or refuses them in Ansible's own words
# (a subdomain 12 becomes "12"), so these are the role's: its filter sees the values as they were given.
TYPE_CASES = [
    bad("subdomain that is a number", "refused: names the value and the type rule",
        {"subdomain": 12}, "zulip_scim_realms[0].subdomain: 12 is not a valid Zulip subdomain: a subdomain is a "
        "string, not int"),
    bad("client name that is a list", "refused: names the value and the type rule",
        {"subdomain": "acme", "client_name": ["okta"]}, "['okta'] is not a valid client name: a client name is a "
        "string, not list"),
    bad("field map that is a string", "refused: names the type rule",
        {"subdomain": "acme", "custom_profile_field_map": "dept"},
        "custom_profile_field_map: must be a dict of SCIM attribute to custom profile field name, not str"),
    bad("unknown state", "refused: names the value and the allowed states",
        {"subdomain": "acme", "state": "enabled"}, "zulip_scim_realms[0].state: 'enabled' is not a state; use one of "
        "present, absent"),
]


@pytest.mark.parametrize("item, message", REALM_CASES + TYPE_CASES)
@needs_controller
def test_the_role_refuses_a_bad_realm_item_on_the_controller(item: dict, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        scim_realms([item], "okta", [])
    assert message in str(caught.value)


@pytest.mark.parametrize("item, message", REALM_CASES)
def test_zulip_scim_config_refuses_it_with_the_same_message_and_writes_nothing(
        cfg_host: cfg.Host, item: dict, message: str) -> None:
    # cfg.fails also proves both files kept their bytes, owner, mode, mtime and inode.
    realm = dict({"client_name": "okta", "state": "present", "name_formatted_included": False}, **item)
    msg = cfg.fails(cfg_host, [dict(realm, token=cfg.TOKEN_ACME)])
    assert message.replace("zulip_scim_realms[", "realms[") in msg


@pytest.fixture
def cfg_host(tmp_path) -> cfg.Host:
    return cfg.Host(tmp_path)


# The list-level rules of the role's realm variables.
LIST_CASES = [
    bad("realm list listing a realm twice", "refused: names the realm and both items",
        lambda: scim_realms([{"subdomain": "acme"}, {"subdomain": "beta"}, {"subdomain": "acme"}]),
        "zulip_scim_realms[2]: realm acme is listed twice (also zulip_scim_realms[0]); list each once"),
    bad("root realm listed twice", "refused: names the root realm and both items",
        lambda: scim_realms([{"subdomain": ""}, {"subdomain": "", "state": "absent"}]),
        'zulip_scim_realms[1]: realm "" (root domain) is listed twice (also zulip_scim_realms[0])'),
    bad("unknown realm key", "refused: names the key and the keys a realm item has",
        lambda: scim_realms([{"subdomain": "acme", "clientname": "okta"}]),
        "zulip_scim_realms[0]: unknown key(s) 'clientname'; a realm item has only subdomain, client_name,"),
    bad("realm list that is a string", "refused: names the type",
        lambda: scim_realms("acme"), "zulip_scim_realms must be a list of realm items, not the string 'acme'"),
    bad("realm item that is a string", "refused: names the item",
        lambda: scim_realms(["acme"]), "zulip_scim_realms[0]: a realm item is a dict with at least a subdomain, "
        "not 'acme'"),
    bad("realm item without a subdomain", "refused: names the item",
        lambda: scim_realms([{"client_name": "okta"}]), "zulip_scim_realms[0]: a realm item is a dict with at "
        "least a subdomain, not {'client_name': 'okta'"),
    bad("-e zulip_scim_rotate_realms=acme (a string)", "refused: names the string and shows the JSON form",
        lambda: scim_realm_names("acme", "zulip_scim_rotate_realms", ["acme"]),
        "zulip_scim_rotate_realms must be a list of realm subdomains, not the string 'acme'; on the command line "
        "write it as JSON: -e '{\"zulip_scim_rotate_realms\": [\"acme\"]}'"),
    bad("-e zulip_scim_disable_realms=acme,beta (a string)", "refused: names the string and shows the JSON form",
        lambda: scim_realms([{"subdomain": "acme"}, {"subdomain": ""}], "okta", "acme,beta"),
        "zulip_scim_disable_realms must be a list of realm subdomains, not the string 'acme,beta'; on the "
        "command line write it as JSON: -e '{\"zulip_scim_disable_realms\": [\"acme\", \"beta\"]}'"),
    bad("turning off a realm the list does not have", "refused: names the realm and the listed ones",
        lambda: scim_realms([{"subdomain": "acme"}, {"subdomain": ""}], "okta", ["beta"]),
        'zulip_scim_disable_realms names beta, not a realm listed in zulip_scim_realms (those are: acme, "" '
        '(root domain))'),
    bad("a bad realm list and a realm to turn off that it lacks", "refused: the realm list's error comes first",
        lambda: scim_realms([{"subdomain": "Acme"}], "okta", ["beta"]),
        "zulip_scim_realms[0].subdomain: 'Acme' is not a valid Zulip subdomain"),
    bad("rotate list that is a dict", "refused: names the type",
        lambda: scim_realm_names({"acme": 1}, "zulip_scim_rotate_realms"),
        "zulip_scim_rotate_realms must be a list of realm subdomains, not dict"),
    bad("rotate list with a bad subdomain", "refused: names the item, the value and the rule",
        lambda: scim_realm_names(["acme", "Acme\n"], "zulip_scim_rotate_realms"),
        "zulip_scim_rotate_realms[1]: 'Acme\\n' is not a valid Zulip subdomain: 'A' is not allowed"),
    bad("rotating a realm the host does not enable", "refused: names the realm and the enabled ones",
        lambda: scim_realm_names(["beta"], "zulip_scim_rotate_realms", ["acme", ""], "enabled in zulip_scim_realms"),
        'zulip_scim_rotate_realms names beta, not a realm enabled in zulip_scim_realms (those are: acme, "" '
        '(root domain))'),
]


@pytest.mark.parametrize("call, message", LIST_CASES)
@needs_controller
def test_bad_realm_lists_are_refused_naming_the_value_and_the_rule(call: t.Callable[[], t.Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert message in str(caught.value)


@needs_controller
def test_a_string_of_realms_never_matches_the_root_realm() -> None:
    # Before: `"" in "acme"` is true, so -e zulip_scim_disable_realms=acme also turned off the root domain.
    with pytest.raises(AnsibleFilterError):
        scim_realms([{"subdomain": ""}, {"subdomain": "acme"}], "okta", "acme")
    assert [r["state"] for r in scim_realms([{"subdomain": ""}, {"subdomain": "acme"}], "okta", ["acme"])] == [
        "present", "absent"]


@pytest.mark.reliability(area="bad_input", case="a key the server's version does not know",
                         outcome="refused before any change: names the realm, the key, the version it needs")
@pytest.mark.parametrize("key, value, version, needs", [
    ("create_guests_without_streams", True, (5, 6), "9.0"),
    ("custom_profile_field_map", {"urn:x": "dept"}, (11, 2), "12.0"),
])
def test_a_key_the_version_does_not_know(key: str, value: t.Any, version: tuple[int, int], needs: str) -> None:
    with pytest.raises(ZulipError) as caught:
        check_optional_keys("acme", [key], version)
    assert str(caught.value) == (
        "realm acme: %s needs Zulip %s or later, but this server runs %d.%d; remove the key or upgrade Zulip first"
        % (key, needs, *version))


# Tokens given to zulip_scim_config (from the token store, or a module user's own): a token is never shown.
TOKEN_CASES = [
    bad("token with a newline (a second secrets line)", "refused before any change; the token is not shown",
        "acme-token-0123456789\nrabbitmq_password = x", "realms[0] (acme): the token contains whitespace, quotes, "
        "control or non-ASCII characters"),
    bad("token with a double quote", "refused before any change; the token is not shown",
        'acme-token-0123456789"', "realms[0] (acme): the token contains whitespace, quotes"),
    bad("token with a #", "accepted: written as one value, read back equal by configparser",
        "acme-token-0123456789#x", None),
    bad("empty token", "refused before any change", "", "realms[0] (acme): the token is empty"),
]


@pytest.mark.parametrize("token, message", TOKEN_CASES)
def test_a_supplied_token_is_checked_by_the_one_token_rule(cfg_host: cfg.Host, token: str, message: str | None) -> None:
    realm = {"subdomain": "acme", "token": token}
    if message is None:
        cfg.ok(cfg_host, [realm])
        assert read_secrets(cfg_host)["scim_bearer_token_acme"] == token
        return
    msg = cfg.fails(cfg_host, [realm])
    assert msg == message or msg.startswith(message)
    assert not token or token not in msg


@pytest.mark.reliability(area="bad_input", case="a supplied token shorter than 16 characters",
                         outcome="written (an IdP may use it) with a warning naming the realm to rotate; never shown")
def test_a_short_supplied_token_is_written_with_a_warning(cfg_host: cfg.Host) -> None:
    outcome = cfg.run(cfg_host, [{"subdomain": "acme", "token": "short-tok"}])
    assert not outcome.failed
    assert outcome.warnings == ["realm acme: the token is shorter than 16 characters; it is written so that the IdP "
                                "keeps working, but replace it with a longer one"]


# -- what the rules let through cannot inject anything: read back with Python's parsers.

EDGY_MAP = {
    "urn:x:'''": '"""; import os; os.system("id") #',
    "urn:x:\\": "back\\slash \\' and \\\"",
    "#comment": "}, 'evil': {",
    "ünïcødé": "名前 ）",
}


def scim_config_of(host: cfg.Host) -> dict:
    """SCIM_CONFIG as Python reads it, and proof that the block holds nothing but that one assignment."""
    tree = ast.parse(host.settings.read_text())
    assigned = [n for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t_, ast.Name) and t_.id == "SCIM_CONFIG" for t_ in n.targets)]
    assert len(assigned) == 1
    # Every statement is one the original file had, the block's import, or that assignment.
    original = ast.dump(ast.parse(cfg.SETTINGS))
    extra = [ast.dump(n) for n in tree.body if ast.dump(n) not in original and n is not assigned[0]]
    assert extra == [ast.dump(ast.parse("from .config import get_secret").body[0])], extra
    value = assigned[0].value
    # get_secret("name") calls are the only non-literals: replace them to literal_eval the rest.
    return ast.literal_eval(_secret_calls_as_literals(value))


def _secret_calls_as_literals(node: ast.AST) -> ast.AST:
    class Replace(ast.NodeTransformer):
        def visit_Call(self, call: ast.Call) -> ast.AST:  # noqa: N802 - ast's naming
            assert isinstance(call.func, ast.Name) and call.func.id == "get_secret" and len(call.args) == 1
            return ast.Constant("get_secret:" + ast.literal_eval(call.args[0]))
    return Replace().visit(node)


def read_secrets(host: cfg.Host) -> dict[str, str]:
    parser = configparser.RawConfigParser(interpolation=None)
    parser.read_string(host.secrets_text())
    return dict(parser["secrets"])


@pytest.mark.reliability(area="bad_input", case="quotes, #, triple quotes, backslashes, unicode in a field map",
                         outcome="written as literals: ast reads back exactly the input and no other statement")
def test_accepted_values_cannot_inject_python_into_settings_py(cfg_host: cfg.Host) -> None:
    cfg_host.set_version("12.0")
    realms = [{"subdomain": "acme", "token": cfg.TOKEN_ACME, "client_name": "Entra ID (prod) +eu@x:1",
               "custom_profile_field_map": EDGY_MAP},
              {"subdomain": "", "token": cfg.TOKEN_ROOT, "client_name": "a-b_c.d"}]
    cfg.ok(cfg_host, realms)
    assert scim_config_of(cfg_host) == {
        # The client name names Entra ID, whose payloads carry name.formatted: the default follows it.
        "acme": {"bearer_token": "get_secret:scim_bearer_token_acme", "scim_client_name": "Entra ID (prod) +eu@x:1",
                 "name_formatted_included": True, "custom_profile_field_map": EDGY_MAP},
        "": {"bearer_token": "get_secret:scim_bearer_token__root", "scim_client_name": "a-b_c.d",
             "name_formatted_included": False},
    }


@pytest.mark.reliability(area="bad_input", case="tokens with every printable ASCII character zulip-secrets.conf allows",
                         outcome="configparser reads exactly the old keys plus one per realm, values equal")
def test_accepted_tokens_cannot_add_a_line_to_zulip_secrets_conf(cfg_host: cfg.Host) -> None:
    printable = "".join(chr(c) for c in range(0x21, 0x7f) if chr(c) not in "\"'")
    tokens = {"acme": printable, "": "[other]=x;#" + cfg.TOKEN_ROOT}
    before = read_secrets(cfg_host)
    cfg.ok(cfg_host, [{"subdomain": s, "token": tok} for s, tok in tokens.items()])
    after = read_secrets(cfg_host)
    assert after == dict(before, scim_bearer_token_acme=tokens["acme"], scim_bearer_token__root=tokens[""])
    parser = configparser.RawConfigParser(interpolation=None)
    parser.read_string(cfg_host.secrets_text())
    assert parser.sections() == ["secrets", "other"] and dict(parser["other"]) == {"x": "y"}
