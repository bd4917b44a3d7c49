"""A hand-edited token file that is not valid YAML: the message gives where and what kind, never what.

PyYAML's own texts quote the file: ``exc.problem`` names an undefined alias ("found undefined alias
'<name>'") or an unknown tag ("could not determine a constructor for the tag '!<name>'"), and
``str(exc)`` prints the offending line. After ``ansible-vault edit`` a token can stand at any of
those places, so the store reports the line, the column and the error's class only (issue 23).
"""

from __future__ import annotations

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _vault_file_store as vfs

SECRETS = [("default", VaultSecret(b"correct horse battery staple"))]
TOKEN = "Hand3ditedTok3n_that-must-never-print"
GOOD_ENTRY = "      created: 2026-11-28T16:40:00Z\n      state: active\n"


def encrypt(path, text: str) -> None:
    with open(path, "wb") as handle:
        handle.write(VaultLib(SECRETS).encrypt(text, secret=SECRETS[0][1], vault_id="default"))


CASES = [
    # (case, the file's text, the message after "<path>: not valid YAML")
    ("an alias named with the token",
     "zulip_scim_tokens:\n  web1:\n    acme:\n      token: *%s\n%s" % (TOKEN, GOOD_ENTRY),
     r" at line 4, column 14 \(ComposerError: an alias \(\*name\) without its anchor \(&name\), or more than one "
     r"document\)$"),
    ("an anchor and alias named with the token",
     "zulip_scim_tokens:\n  web1: &%s\n    acme: {}\n  web2: *%s-x\n" % (TOKEN, TOKEN),
     r" at line 4, column 9 \(ComposerError: "),
    ("a tag named with the token",
     "zulip_scim_tokens:\n  web1:\n    acme:\n      token: !%s x\n%s" % (TOKEN, GOOD_ENTRY),
     r" at line 4, column 14 \(ConstructorError: a tag \(!name\) or a value that plain YAML data cannot hold\)$"),
    ("a python tag with the token",
     "zulip_scim_tokens: !!python/name:%s\n" % TOKEN,
     r" at line 1, column 20 \(ConstructorError: "),
    ("bad indentation after the token",
     "zulip_scim_tokens:\n  web1:\n    acme:\n      token: %s\n     created: x\n" % TOKEN,
     r" at line 5, column 6 \(ParserError: the structure is not valid YAML there \(indentation, a missing ':' "
     r"or '-'\)\)$"),
    ("an unclosed quote around the token",
     "zulip_scim_tokens:\n  web1:\n    acme:\n      token: \"%s\n" % TOKEN,
     r" at line \d+, column \d+ \(ScannerError: "),
    ("a tab before the token",
     "zulip_scim_tokens:\n  web1:\n    acme:\n\t%s: x\n" % TOKEN,
     r" at line 4, column 1 \(ScannerError: "),
]


@pytest.mark.parametrize("text, expected", [pytest.param(text, expected, id=case) for case, text, expected in CASES])
@pytest.mark.reliability(area="token_file", case="hand-edited token file with a YAML error at a token (alias, tag, "
                         "indentation, quote, tab)", outcome="refused with line, column and error class only, never "
                         "the token; nothing overwritten")
def test_yaml_errors_give_position_and_class_only(tmp_path, text, expected):
    path = str(tmp_path / "zulip_scim_tokens.vault.yml")
    encrypt(path, text)
    with open(path, "rb") as handle:
        before = handle.read()
    store = vfs.VaultFileStore(path, SECRETS)
    with pytest.raises(ts.TokenStoreError, match="^" + path + ": not valid YAML" + expected) as info:
        with store.transaction("web1"):
            pass
    assert TOKEN not in str(info.value) and TOKEN[:12] not in str(info.value)
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    with open(path, "rb") as handle:
        assert handle.read() == before


@pytest.mark.parametrize("problem", ["found undefined alias %r" % TOKEN,
                                     "could not determine a constructor for the tag '!%s'" % TOKEN])
def test_pyyaml_texts_are_never_used(monkeypatch, problem):
    import yaml

    def broken(*_args, **_kwargs):
        raise yaml.composer.ComposerError("while composing", None, problem, None, note=TOKEN)

    monkeypatch.setattr(vfs.yaml, "load", broken)
    with pytest.raises(ts.TokenStoreError) as info:
        vfs.parse_document("x", "w")
    assert TOKEN not in str(info.value)
    assert str(info.value).startswith("w: not valid YAML (ComposerError: ")
