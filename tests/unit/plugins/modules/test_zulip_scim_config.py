# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""zulip_scim_config against real files in a temporary /etc/zulip."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import BEGIN_MARKER, END_MARKER
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_config


import _module_runner as runner  # noqa: E402 - found through conftest.py

TOKEN_ACME = "acme-TOKEN-0123456789abcdef"
TOKEN_ROOT = "root-TOKEN-fedcba9876543210"
TOKEN_GLOBEX = "globex-TOKEN-00112233445566"
OTHER_SECRET = "rabbit-PASSWORD-never-shown"
ALL_SECRETS = (TOKEN_ACME, TOKEN_ROOT, TOKEN_GLOBEX, OTHER_SECRET)

ZULIP_UID, ZULIP_GID = 1234, 1235
SETTINGS = (
    "from typing import Any\n"
    "\n"
    "from .config import get_config, get_secret\n"
    "\n"
    "################\n"
    "# Outgoing email (SMTP) settings.\n"
    'EXTERNAL_HOST = "zulip.example.com"\n'
    'ZULIP_ADMINISTRATOR = "admin@example.com"\n'
    "# AUTHENTICATION_BACKENDS: tuple[str, ...] = ()\n"
)
SECRETS = (
    "[secrets]\n"
    "avatar_salt = s4lt-value-never-shown\n"
    "rabbitmq_password = %s\n"
    "\n"
    "[other]\n"
    "x = y\n" % OTHER_SECRET
)


class Host:
    """A temporary Zulip host: settings.py, zulip-secrets.conf and a deployment."""

    def __init__(self, root: Path):
        self.etc = root / "etc" / "zulip"
        self.etc.mkdir(parents=True)
        self.settings = self.etc / "settings.py"
        self.secrets = self.etc / "zulip-secrets.conf"
        self.deploy = root / "deployments" / "current"
        self.deploy.mkdir(parents=True)
        self.write_settings(SETTINGS)
        self.write_secrets(SECRETS)
        self.set_version("9.3")

    def write_settings(self, text, raw: bytes | None = None):
        self.settings.write_bytes(raw if raw is not None else text.encode("utf-8"))
        os.chown(self.settings, ZULIP_UID, ZULIP_GID)
        os.chmod(self.settings, 0o644)

    def write_secrets(self, text: str):
        self.secrets.write_bytes(text.encode("utf-8"))
        os.chown(self.secrets, ZULIP_UID, ZULIP_GID)
        os.chmod(self.secrets, 0o640)

    def set_version(self, version: str):
        (self.deploy / "version.py").write_text('ZULIP_VERSION = "%s"\nLATEST_MAJOR_VERSION = "9"\n' % version)

    def args(self, realms, **extra):
        """Module arguments; a test's realm items may carry a "token", which goes into ``tokens``."""
        tokens = {r["subdomain"]: r["token"] for r in realms if "token" in r}
        items = [{k: v for k, v in r.items() if k != "token"} for r in realms]
        args = dict(realms=items, tokens=tokens, settings_path=str(self.settings), secrets_path=str(self.secrets),
                    deploy_path=str(self.deploy))
        args.update(extra)
        return args

    def state(self):
        """Everything a run could change: bytes, owner, mode, mtime of both files, the directory."""
        result = {}
        for path in (self.settings, self.secrets):
            if path.exists():
                info = path.stat()
                result[path.name] = (path.read_bytes(), info.st_uid, info.st_gid,
                                     stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_ino)
        result["dir"] = sorted(p.name for p in self.etc.iterdir())
        return result

    def secrets_text(self) -> str:
        return self.secrets.read_text()


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def assert_no_secret(outcome):
    """No token and no other secret of the file, anywhere in what the module returned."""
    dumped = json.dumps(outcome.result) + json.dumps(outcome.warnings)
    for secret in ALL_SECRETS + ("s4lt-value-never-shown",):
        assert secret not in dumped


def run(host, realms, check_mode=False, diff=False, **extra):
    outcome = runner.run_module(zulip_scim_config.main, host.args(realms, **extra),
                                check_mode=check_mode, diff=diff)
    assert_no_secret(outcome)
    return outcome


def ok(host, realms, **kwargs):
    outcome = run(host, realms, **kwargs)
    assert not outcome.failed, outcome
    return outcome.result


def _content_and_metadata(state):
    return {name: value[:4] if name != "dir" else value for name, value in state.items()}


def fails(host, realms, restored=False, **kwargs):
    """Run a failing task; also prove it wrote nothing (or, ``restored``, put everything back)."""
    before = host.state()
    outcome = run(host, realms, **kwargs)
    assert outcome.failed, outcome
    if restored:  # written then put back: same bytes, owner and mode, newer mtime
        assert _content_and_metadata(host.state()) == _content_and_metadata(before)
    else:
        assert host.state() == before
    return outcome.result["msg"]


def acme(**extra):
    return dict(dict(subdomain="acme", token=TOKEN_ACME), **extra)


def read_config(host: Host) -> dict:
    """SCIM_CONFIG as Zulip would see it: settings.py run with a get_secret that reads the file."""
    import configparser

    parser = configparser.RawConfigParser()
    parser.read_string(host.secrets_text())
    source = host.settings.read_text().replace("from .config import get_config, get_secret\n", "")
    source = source.replace("from .config import get_secret\n", "")
    namespace = {"get_secret": lambda name: parser.get("secrets", name, fallback=None)}
    exec(compile(source, str(host.settings), "exec"), namespace)
    return namespace.get("SCIM_CONFIG")


# -- first run, format, idempotence ----------------------------------------------------


def test_first_run_appends_block_and_sets_secret(host):
    result = ok(host, [acme()])
    assert result == dict(changed=True, settings_changed=True, secrets_changed=True,
                          realms_changed=["acme"], realms_present=["acme"], tokens_replaced=[], unproven=False, checked=False)
    text = host.settings.read_text()
    assert text == SETTINGS + "\n" + "\n".join([
        BEGIN_MARKER,
        "from .config import get_secret",
        "",
        "SCIM_CONFIG = {",
        '    "acme": {',
        '        "bearer_token": get_secret("scim_bearer_token_acme"),',
        '        "scim_client_name": "okta",',
        '        "name_formatted_included": False,',
        "    },",
        "}",
        END_MARKER,
        "",
    ])
    assert host.secrets_text() == SECRETS.replace(
        "\n\n[other]", "\nscim_bearer_token_acme = %s\n\n[other]" % TOKEN_ACME)
    assert read_config(host) == {"acme": {"bearer_token": TOKEN_ACME, "scim_client_name": "okta",
                                          "name_formatted_included": False}}


def test_second_run_changes_and_writes_nothing(host):
    ok(host, [acme()])
    before = host.state()
    result = ok(host, [acme()])
    assert result["changed"] is False
    assert result["settings_changed"] is False and result["secrets_changed"] is False
    assert result["realms_changed"] == []
    assert result["realms_present"] == ["acme"]
    assert host.state() == before  # same bytes, mtime and inode: no write at all


def test_owner_and_mode_are_kept(host):
    ok(host, [acme()])
    assert host.state()["settings.py"][1:4] == (ZULIP_UID, ZULIP_GID, 0o644)
    assert host.state()["zulip-secrets.conf"][1:4] == (ZULIP_UID, ZULIP_GID, 0o640)
    assert host.state()["dir"] == ["settings.py", "zulip-secrets.conf"]  # no temp file left


def test_several_realms_sorted_with_root_and_options(host):
    host.set_version("12.0-dev+git")
    realms = [
        dict(subdomain="globex", token=TOKEN_GLOBEX, client_name="Azure AD (prod)", name_formatted_included=True,
             create_guests_without_streams=False),
        dict(subdomain="", token=TOKEN_ROOT, custom_profile_field_map={"urn:x:dept": "department"}),
        acme(),
    ]
    result = ok(host, realms)
    assert result["realms_present"] == ["", "acme", "globex"]
    assert result["realms_changed"] == ["", "acme", "globex"]
    text = host.settings.read_text()
    assert text.index('    "": {') < text.index('    "acme": {') < text.index('    "globex": {')
    assert read_config(host) == {
        "": {"bearer_token": TOKEN_ROOT, "scim_client_name": "okta", "name_formatted_included": False,
             "custom_profile_field_map": {"urn:x:dept": "department"}},
        "acme": {"bearer_token": TOKEN_ACME, "scim_client_name": "okta", "name_formatted_included": False},
        "globex": {"bearer_token": TOKEN_GLOBEX, "scim_client_name": "Azure AD (prod)",
                   "name_formatted_included": True, "create_guests_without_streams": False},
    }
    assert "scim_bearer_token__root = %s\n" % TOKEN_ROOT in host.secrets_text()
    # The same realms in another order change nothing.
    assert ok(host, list(reversed(realms)))["changed"] is False


def test_missing_import_is_supplied_by_the_block(host):
    host.write_settings('EXTERNAL_HOST = "zulip.example.com"\n')
    ok(host, [acme()])
    assert read_config(host)["acme"]["bearer_token"] == TOKEN_ACME
    assert "from .config import get_secret" in host.settings.read_text()


# -- updates in place ----------------------------------------------------------------


def test_existing_block_replaced_in_place(host):
    ok(host, [acme()])
    host.write_settings(host.settings.read_text() + "\n# added by an admin after the block\nX = 1\n")
    before = host.settings.read_text()
    result = ok(host, [acme(client_name="onelogin")])
    assert result["realms_changed"] == ["acme"]
    assert result["secrets_changed"] is False
    after = host.settings.read_text()
    assert after == before.replace('"scim_client_name": "okta"', '"scim_client_name": "onelogin"')
    assert after.endswith("# added by an admin after the block\nX = 1\n")


def test_new_token_changes_only_the_secret(host):
    ok(host, [acme()])
    settings_before = host.state()["settings.py"]
    result = ok(host, [acme(token="acme-NEW-TOKEN-99999999")])
    assert result == dict(changed=True, settings_changed=False, secrets_changed=True,
                          realms_changed=["acme"], realms_present=["acme"], tokens_replaced=["acme"], unproven=False, checked=False)
    assert host.state()["settings.py"] == settings_before
    assert "scim_bearer_token_acme = acme-NEW-TOKEN-99999999\n" in host.secrets_text()


def test_unlisted_realms_are_kept(host):
    ok(host, [acme(), dict(subdomain="globex", token=TOKEN_GLOBEX)])
    result = ok(host, [acme(name_formatted_included=True)])
    assert result["realms_present"] == ["acme", "globex"]
    assert result["realms_changed"] == ["acme"]
    assert TOKEN_GLOBEX in host.secrets_text()


def test_exclusive_removes_unlisted_realms_and_their_secrets(host):
    ok(host, [acme(), dict(subdomain="globex", token=TOKEN_GLOBEX), dict(subdomain="", token=TOKEN_ROOT)])
    result = ok(host, [acme()], exclusive=True)
    assert result["realms_present"] == ["acme"]
    assert result["realms_changed"] == ["", "globex"]
    assert set(read_config(host)) == {"acme"}
    secrets = host.secrets_text()
    assert TOKEN_GLOBEX not in secrets and TOKEN_ROOT not in secrets
    assert OTHER_SECRET in secrets and TOKEN_ACME in secrets


def test_exclusive_with_no_realms_removes_every_realm(host):
    ok(host, [acme()])
    result = ok(host, [], exclusive=True)
    assert result["realms_present"] == [] and result["realms_changed"] == ["acme"]
    assert read_config(host) == {}
    assert host.secrets_text() == SECRETS


def test_absent_removes_entry_and_secret(host):
    ok(host, [acme(), dict(subdomain="globex", token=TOKEN_GLOBEX)])
    result = ok(host, [dict(subdomain="globex", state="absent")])
    assert result["realms_changed"] == ["globex"]
    assert result["realms_present"] == ["acme"]
    assert TOKEN_GLOBEX not in host.secrets_text()
    assert set(read_config(host)) == {"acme"}


def test_absent_for_the_last_realm_leaves_an_empty_scim_config(host):
    ok(host, [acme()])
    result = ok(host, [dict(subdomain="acme", state="absent")])
    assert result["realms_present"] == []
    assert read_config(host) == {}
    assert host.settings.read_text().startswith(SETTINGS)  # everything before the block kept
    assert host.secrets_text() == SECRETS
    assert ok(host, [dict(subdomain="acme", state="absent")])["changed"] is False


def test_absent_on_a_host_that_never_had_it(host):
    before = host.state()
    result = ok(host, [dict(subdomain="acme", state="absent")])
    assert result["changed"] is False and result["realms_changed"] == []
    assert host.state() == before


def test_absent_removes_a_left_over_secret(host):
    host.write_secrets(SECRETS.replace("[other]", "scim_bearer_token_acme = %s\n[other]" % TOKEN_ACME))
    result = ok(host, [dict(subdomain="acme", state="absent")])
    assert result == dict(changed=True, settings_changed=False, secrets_changed=True,
                          realms_changed=["acme"], realms_present=[], tokens_replaced=[], unproven=False, checked=False)
    assert TOKEN_ACME not in host.secrets_text()


# -- files that are not plain ----------------------------------------------------------


def test_crlf_settings_and_secrets(host):
    host.write_settings(SETTINGS.replace("\n", "\r\n"))
    host.write_secrets(SECRETS.replace("\n", "\r\n"))
    ok(host, [acme()])
    raw = host.settings.read_bytes()
    assert raw.startswith(SETTINGS.replace("\n", "\r\n").encode())
    assert raw.count(b"\n") == raw.count(b"\r\n")
    secrets = host.secrets.read_bytes()
    assert secrets.count(b"\n") == secrets.count(b"\r\n")
    assert ("scim_bearer_token_acme = %s\r\n" % TOKEN_ACME).encode() in secrets
    assert ok(host, [acme()])["changed"] is False


def test_settings_without_trailing_newline(host):
    host.write_settings(SETTINGS + "X = 1  # no newline at the end")
    ok(host, [acme()])
    text = host.settings.read_text()
    assert text.startswith(SETTINGS + "X = 1  # no newline at the end\n\n" + BEGIN_MARKER)


def test_unicode_and_odd_bytes_outside_the_block(host):
    raw = (SETTINGS + "# Zulip für Ünïcødé — 名前\nNAME = 'caf\u00e9'\n").encode("utf-8") + b"# \xff\xfe\n"
    host.write_settings(None, raw=raw)
    ok(host, [acme(client_name="Okta EU")])
    new = host.settings.read_bytes()
    assert new.startswith(raw)
    assert '"scim_client_name": "Okta EU"' in new.decode("utf-8", "replace")


def test_settings_symlink_is_refused(host, tmp_path):
    """/etc/zulip is the zulip user's: a link there could point root at any file (issue 23)."""
    real = tmp_path / "settings-real.py"
    host.settings.rename(real)
    host.settings.symlink_to(real)
    before = real.read_bytes()
    msg = fails(host, [acme()])
    assert msg == ("cannot read %s: it is a symbolic link, which is not followed here (the directory's owner could "
                   "point it at any file root can reach); put the file itself there" % host.settings)
    assert host.settings.is_symlink() and real.read_bytes() == before


# -- the secrets file --------------------------------------------------------------------


def test_secrets_file_without_section(host):
    host.write_secrets("[other]\nx = y\n")
    ok(host, [acme()])
    assert host.secrets_text() == "[other]\nx = y\n\n[secrets]\nscim_bearer_token_acme = %s\n" % TOKEN_ACME


def test_missing_secrets_file_is_created_0640_for_zulip(host, monkeypatch):
    host.secrets.unlink()
    monkeypatch.setattr(files, "owner_ids", lambda user: (ZULIP_UID, ZULIP_GID) if user == "zulip" else None)
    result = ok(host, [acme()])
    assert result["secrets_changed"] is True
    info = host.secrets.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, ZULIP_UID, ZULIP_GID)
    assert host.secrets_text() == "[secrets]\nscim_bearer_token_acme = %s\n" % TOKEN_ACME


def test_missing_secrets_file_without_zulip_user(host, monkeypatch):
    host.secrets.unlink()
    monkeypatch.setattr(files, "owner_ids", lambda user: None)
    ok(host, [acme()])
    info = host.secrets.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o640, os.getuid())


def test_missing_secrets_file_is_not_created_for_absent(host):
    host.secrets.unlink()
    assert ok(host, [dict(subdomain="acme", state="absent")])["changed"] is False
    assert not host.secrets.exists()


def test_missing_secrets_directory(host, tmp_path):
    msg = fails(host, [acme()], secrets_path=str(tmp_path / "nowhere" / "zulip-secrets.conf"))
    assert "neither does its directory" in msg


def test_two_secrets_sections_are_refused(host):
    host.write_secrets(SECRETS + "[secrets]\nz = 1\n")
    assert "a second [secrets] section" in fails(host, [acme()])


# -- check mode and diff -------------------------------------------------------------------


def test_check_mode_reports_and_writes_nothing(host):
    before = host.state()
    result = ok(host, [acme()], check_mode=True, backup=True)
    assert result["changed"] is True and result["realms_changed"] == ["acme"]
    assert "backup_file" not in result
    assert host.state() == before


def test_check_mode_with_missing_secrets_file(host):
    host.secrets.unlink()
    assert ok(host, [acme()], check_mode=True)["secrets_changed"] is True
    assert not host.secrets.exists()


def test_diff_shows_settings_and_redacted_secrets(host):
    ok(host, [dict(subdomain="globex", token=TOKEN_GLOBEX)])
    realms = [acme(), dict(subdomain="globex", token="globex-ROTATED-token-0000")]
    result = ok(host, realms, diff=True, check_mode=True)
    settings_diff, secrets_diff = result["diff"]
    assert settings_diff["before_header"] == settings_diff["after_header"] == str(host.settings)
    assert settings_diff["before"] == host.settings.read_text()
    assert '"acme": {' in settings_diff["after"] and '"acme": {' not in settings_diff["before"]
    assert secrets_diff["before_header"] == "%s (managed keys, values redacted)" % host.secrets
    assert secrets_diff["before"] == "[secrets]\nscim_bearer_token_globex = <redacted>\n"
    assert secrets_diff["after"] == ("[secrets]\nscim_bearer_token_acme = <redacted>  # new value\n"
                                     "scim_bearer_token_globex = <redacted>  # value changed\n")
    dumped = json.dumps(result)
    assert "globex-ROTATED-token-0000" not in dumped and "avatar_salt" not in dumped


def test_diff_when_nothing_changes(host):
    ok(host, [acme()])
    result = ok(host, [acme()], diff=True)
    assert result["changed"] is False
    assert result["diff"][0]["before"] == result["diff"][0]["after"]
    assert result["diff"][1]["before"] == "[secrets]\nscim_bearer_token_acme = <redacted>\n"
    assert result["diff"][1]["after"] == "[secrets]\nscim_bearer_token_acme = <redacted>\n"


# -- backup --------------------------------------------------------------------------------


def test_backup_of_settings_only(host):
    result = ok(host, [acme()], backup=True)
    backup = Path(result["backup_file"])
    assert backup.parent == host.etc
    assert backup.read_bytes() == SETTINGS.encode()
    assert sorted(p.name for p in host.etc.iterdir()) == sorted(["settings.py", "zulip-secrets.conf", backup.name])
    # No backup when settings.py does not change.
    assert "backup_file" not in ok(host, [acme(token="acme-OTHER-token-777777")], backup=True)


def test_failed_backup_writes_nothing(host, monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "fchmod", refuse)  # the backup's, the first file made
    msg = fails(host, [acme()], backup=True)  # also: no half-made backup left
    assert msg.startswith("cannot back up %s: cannot write %s.%d." % (host.settings, host.settings, os.getpid())), msg
    assert "Operation not permitted" in msg


# -- refusals, all before any write ----------------------------------------------------------


@pytest.mark.reliability(area="fault", case="a foreign SCIM_CONFIG (set by hand outside the managed block)",
                         outcome="refused, naming the line; nothing written")
@pytest.mark.parametrize("statement", [
    "SCIM_CONFIG = {}",
    "SCIM_CONFIG: dict[str, Any] = {}",
    "SCIM_CONFIG |= {}",
    'SCIM_CONFIG["acme"] = {"bearer_token": get_secret("x")}',
    'SCIM_CONFIG.update({"acme": {}})',
])
def test_scim_config_outside_the_block(host, statement):
    host.write_settings(SETTINGS + statement + "\n")
    msg = fails(host, [acme()])
    assert "%s:%d" % (host.settings, SETTINGS.count("\n") + 1) in msg
    assert "outside the block" in msg


def test_scim_config_added_after_our_block(host):
    ok(host, [acme()])
    host.write_settings(host.settings.read_text() + 'SCIM_CONFIG["x"] = {}\n')
    line = host.settings.read_text().count("\n")
    assert "%s:%d" % (host.settings, line) in fails(host, [acme()])


def test_broken_settings_is_left_untouched(host):
    host.write_settings(SETTINGS + "if True\n    X = 1\n")
    msg = fails(host, [acme()])
    assert "does not compile, so it was left untouched" in msg
    assert "%s:%d" % (host.settings, SETTINGS.count("\n") + 1) in msg


@pytest.mark.parametrize("tail, expected", [
    (BEGIN_MARKER + "\n", "without an END marker"),
    (END_MARKER + "\n", "without a BEGIN marker"),
])
def test_broken_markers(host, tail, expected):
    host.write_settings(SETTINGS + tail)
    assert expected in fails(host, [acme()])


def test_missing_settings_is_an_error(host):
    host.settings.unlink()
    assert "is Zulip installed" in fails(host, [acme()])


@pytest.mark.parametrize("version, key, value, minimum", [
    ("5.6", "create_guests_without_streams", True, "9.0"),
    ("8.4", "create_guests_without_streams", False, "9.0"),
    ("11.2", "custom_profile_field_map", {"a": "b"}, "12.0"),
])
def test_key_unknown_to_the_server_version(host, version, key, value, minimum):
    host.set_version(version)
    msg = fails(host, [acme(**{key: value})])
    assert msg == ("realm acme: %s needs Zulip %s or later, but this server runs %s; remove the key or "
                   "upgrade Zulip first" % (key, minimum, ".".join(version.split(".")[:2])))


def test_version_option_wins_over_version_py(host):
    host.set_version("5.6")
    assert ok(host, [acme(create_guests_without_streams=True)], version="9.0")["changed"] is True
    assert "needs Zulip 12.0" in fails(host, [acme(custom_profile_field_map={})], version="11.0")


def test_version_py_is_only_read_when_needed(host):
    (host.deploy / "version.py").unlink()
    assert ok(host, [acme()])["changed"] is True
    assert "no Zulip deployment" in fails(host, [acme(create_guests_without_streams=True)])


def test_bad_version_option(host):
    assert "cannot read a Zulip version" in fails(host, [acme()], version="latest")


@pytest.mark.parametrize("realm, expected", [
    (dict(subdomain="Acme", token=TOKEN_ACME), "realms[0].subdomain: 'Acme' is not a valid Zulip subdomain"),
    (dict(subdomain="a_b", token=TOKEN_ACME), "is not a valid Zulip subdomain"),
    (acme(token=""), "realms[0] (acme): the token is empty"),
    (acme(token="has a space in the token"), "contains whitespace, quotes, control or non-ASCII"),
    (acme(token='double"quote-token-0123'), "realms[0] (acme): the token contains whitespace, quotes"),
    (acme(token="single'quote-token-0123"), "the token contains whitespace, quotes"),
    (acme(token="new\nline-token-0123456"), "the token contains whitespace"),
    (acme(token="tab\tseparated-token-0123"), "contains whitespace"),
    (acme(token="bell\x07-control-token-0123"), "contains whitespace"),
    (acme(token="ünïcødé-token-0123456789"), "non-ASCII"),
    (acme(client_name=""), "realms[0].client_name: '' is not a valid client name: a client name cannot be empty"),
    (acme(client_name="two\nlines"), "'\\n' is not allowed in a client name"),
    (acme(custom_profile_field_map={"a": 1}), "realms[0].custom_profile_field_map: 'a' -> 1: both sides must be"),
    (acme(custom_profile_field_map={"": "b"}), "custom_profile_field_map: '' -> 'b': both sides must be"),
])
def test_invalid_realm(host, realm, expected):
    msg = fails(host, [realm])
    assert expected in msg
    if realm.get("token"):
        assert realm["token"] not in msg


@pytest.mark.parametrize("subdomain, label", [("acme", "realm acme"), ("", 'realm "" (root domain)')])
def test_weak_token_is_written_with_a_warning(host, subdomain, label):
    # A short token that an IdP already uses keeps working; the module says it should be replaced.
    weak = "short-token"
    outcome = run(host, [dict(subdomain=subdomain, token=weak)])
    assert not outcome.failed, outcome
    assert outcome.result["changed"] is True
    assert "= " + weak in host.secrets_text()
    assert len(outcome.warnings) == 1
    assert outcome.warnings[0].startswith(label + ": the token is shorter than 16 characters")
    assert weak not in outcome.warnings[0]
    again = run(host, [dict(subdomain=subdomain, token=weak)])
    assert again.result["changed"] is False and len(again.warnings) == 1


def test_strong_and_absent_realms_give_no_token_warning(host):
    outcome = run(host, [acme(), dict(subdomain="globex", state="absent")])
    assert not outcome.failed and outcome.warnings == []


def test_missing_token_for_present(host):
    assert fails(host, [dict(subdomain="acme")]) == "realms[0] (acme): no token for the realm in tokens"


def test_a_missing_token_names_only_that_realm(host):
    msg = fails(host, [acme(), dict(subdomain="nope")], tokens={"acme": TOKEN_ACME, "": TOKEN_ROOT})
    assert msg == "realms[1] (nope): no token for the realm in tokens"


def test_the_root_realm_token_is_found_under_the_empty_subdomain(host):
    ok(host, [dict(subdomain="")], tokens={"": TOKEN_ROOT})
    assert "scim_bearer_token__root = %s\n" % TOKEN_ROOT in host.secrets_text()
    assert fails(host, [dict(subdomain="")], tokens={"acme": TOKEN_ACME}) == (
        'realms[0] ("" (root domain)): no token for the realm in tokens')


def test_tokens_are_their_own_argument_and_extra_ones_are_ignored(host):
    # The shape the scim role has: realm items as they are, and the token store's {subdomain: token}.
    result = ok(host, [dict(subdomain="acme"), dict(subdomain="globex", state="absent")],
                tokens={"acme": TOKEN_ACME, "globex": TOKEN_GLOBEX, "other": TOKEN_ROOT})
    assert result["realms_present"] == ["acme"]
    assert "scim_bearer_token_acme = %s\n" % TOKEN_ACME in host.secrets_text()
    assert TOKEN_GLOBEX not in host.secrets_text() and TOKEN_ROOT not in host.secrets_text()


def test_absent_needs_no_token_and_ignores_bad_options(host):
    assert ok(host, [dict(subdomain="acme", state="absent", client_name="")])["changed"] is False


def test_duplicate_subdomains(host):
    msg = fails(host, [acme(), dict(subdomain="acme", token=TOKEN_GLOBEX)])
    assert msg == "realms[1]: realm acme is listed twice (also realms[0]); list each once"


def test_hand_edited_entry_blocks_only_when_it_must_be_kept(host):
    ok(host, [acme(), dict(subdomain="globex", token=TOKEN_GLOBEX)])
    host.write_settings(host.settings.read_text().replace(
        'get_secret("scim_bearer_token_globex")', 'get_secret("scim_bearer_token_" + "globex")'))
    msg = fails(host, [acme(name_formatted_included=True)])
    assert "entry of realm globex in the managed block was edited by hand" in msg
    # Listing it rewrites it; exclusive drops it.
    result = ok(host, [dict(subdomain="globex", token=TOKEN_GLOBEX)])
    assert result["realms_changed"] == ["globex"] and result["settings_changed"] is True
    # globex is the last entry: make its client name an expression.
    last = '"scim_client_name": "okta",\n        "name_formatted_included": False,\n    },\n}'
    text = host.settings.read_text()
    assert text.count(last) == 1
    host.write_settings(text.replace(last, last.replace('"okta"', "CLIENT")))
    result = ok(host, [acme()], exclusive=True)
    assert result["realms_present"] == ["acme"] and result["realms_changed"] == ["globex"]


# -- failures while writing ------------------------------------------------------------------


@pytest.mark.reliability(area="fault", case="writing settings.py fails after zulip-secrets.conf was written",
                         outcome="zulip-secrets.conf put back as it was; the task fails naming the cause")
def test_settings_write_failure_restores_secrets(host, monkeypatch):
    real = files.atomic_replace
    calls = []

    def fail_on_settings(path, content, *args):
        calls.append(os.path.basename(path))
        if path == str(host.settings):
            raise files.FileWriteError("cannot write %s: No space left on device" % path)
        return real(path, content, *args)

    monkeypatch.setattr(files, "atomic_replace", fail_on_settings)
    msg = fails(host, [acme()], restored=True)
    assert calls == ["zulip-secrets.conf", "settings.py", "zulip-secrets.conf"]
    assert msg == ("cannot write %s: No space left on device; %s restored to the previous content"
                   % (host.settings, host.secrets))


def test_settings_write_failure_removes_a_created_secrets_file(host, monkeypatch):
    host.secrets.unlink()
    real = files.atomic_replace

    def fail_on_settings(path, content, *args):
        if path == str(host.settings):
            raise files.FileWriteError("cannot write %s: disk full" % path)
        return real(path, content, *args)

    monkeypatch.setattr(files, "atomic_replace", fail_on_settings)
    fails(host, [acme()], restored=True)
    assert not host.secrets.exists()


def test_unexpected_chown_failure_is_reported(host, monkeypatch):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "fchown", refuse)
    msg = fails(host, [acme()])
    assert "cannot give the new %s owner %d:%d" % (host.secrets, ZULIP_UID, ZULIP_GID) in msg


def test_token_never_leaks_even_with_a_failure_in_every_step(host, monkeypatch):
    """The grep test: run many failing and passing variants, the tokens never come back."""
    outcomes = [
        run(host, [acme()], diff=True, check_mode=True),
        run(host, [acme()], diff=True),
        run(host, [acme(token="short")]),
        run(host, [acme(), acme()]),
        run(host, [acme(create_guests_without_streams=True)], version="5.6"),
        run(host, [acme(token="acme-TOKEN-0123456789abcdef ")]),
    ]
    host.write_settings("SCIM_CONFIG = {'acme': {'bearer_token': '%s'}}\n" % TOKEN_ACME)
    outcomes.append(run(host, [acme()], diff=True))
    for outcome in outcomes:
        assert TOKEN_ACME not in json.dumps(outcome.result)
