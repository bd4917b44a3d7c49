"""The stand-in behaves like /work/shared/zulip-scim-behaviour.md, per version.

Every test runs against each flavour on both layers (see conftest.target):
local installs (marker standin) and booted Debian hosts (marker testhost).
Expectations are written out per flavour here, independently of the
stand-in's own version table, so a wrong table fails these tests.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from targets import EXTERNAL_HOST, Target, realm_host

# What the behaviour page says, per flavour (not derived from the stand-in's code).
EXPECT: dict[str, dict[str, Any]] = {
    "5.6": {"add_scim_client": True, "no_scim_config": 500, "root_restart_ok": False, "check_first": False,
            "groups": 501, "checkconfig": True, "role": False},
    "9.0": {"add_scim_client": False, "no_scim_config": 500, "root_restart_ok": True, "check_first": True,
            "groups": 501, "checkconfig": True, "role": True},
    "11.2": {"add_scim_client": False, "no_scim_config": 401, "root_restart_ok": True, "check_first": True,
             "groups": 200, "checkconfig": True, "role": True},
}

ACME_TOKEN = "acme-token-0123456789abcdef"
ROOT_TOKEN = "root-literal-token-42"
SCIM_BLOCK = '''
# SCIM, added by the stand-in self-tests.
SCIM_CONFIG = {
    "acme": {
        "bearer_token": get_secret("scim_token_acme"),
        "scim_client_name": "okta",
        "name_formatted_included": False,
    },
    "": {
        "bearer_token": "ROOT_TOKEN",
        "scim_client_name": "root-idp",
        "name_formatted_included": True,
    },
    "beta": {
        "bearer_token": get_secret("scim_token_that_is_missing"),
        "scim_client_name": "onelogin",
        "name_formatted_included": True,
    },
}
'''.replace("ROOT_TOKEN", ROOT_TOKEN)
STRANGER = "Error accessing Zulip secrets; manage.py in production must be run as the zulip user.\n"
EXISTS_QUERY = ("from zerver.models import SCIMClient, get_realm; "
                "print(SCIMClient.objects.filter(realm=get_realm('acme'), name='okta').exists())")


def expect(target: Target, key: str) -> Any:
    return EXPECT[target.flavour][key]


def scim_ready(target: Target) -> None:
    """SCIM_CONFIG for acme/""/beta loaded; on 5.x the client rows exist too."""
    target.set_secret("scim_token_acme", ACME_TOKEN)
    target.apply_settings(SCIM_BLOCK)
    if expect(target, "add_scim_client"):
        rows = target.sql("SELECT c.name, r.string_id FROM zerver_scimclient c JOIN zerver_realm r "
                          "ON r.id = c.realm_id")
        for name, realm in (("okta", "acme"), ("root-idp", "")):
            if [name, realm] not in rows:
                assert target.manage("add_scim_client", name, "-r", realm).rc == 0


def new_ledger(target: Target, before: int) -> list[dict[str, Any]]:
    return target.ledger()[before:]


def users_url(count: int | None = 1) -> str:
    return "/scim/v2/Users" + (f"?count={count}" if count is not None else "")


# ---------------------------------------------------------------- layout, version


def test_version_py_and_server_settings(target: Target) -> None:
    assert f'ZULIP_VERSION = "{target.flavour}"' in target.read(f"{target.deploy}/version.py")
    response = target.get("/api/v1/server_settings", EXTERNAL_HOST)
    assert response["status"] == 200
    assert response["json"]["zulip_version"] == target.flavour


def test_settings_py_starts_with_zulip_header_and_has_no_scim(target: Target) -> None:
    text = target.base_settings
    assert text.startswith("from .config import get_secret\n")
    assert f'EXTERNAL_HOST = "{EXTERNAL_HOST}"' in text
    assert "AUTHENTICATION_BACKENDS = (" in text
    assert "SCIM_CONFIG" not in text
    assert "[secrets]" in target.read(target.secrets_path)


# ---------------------------------------------------------------- manage.py identity


def test_manage_refuses_root(target: Target) -> None:
    before = len(target.ledger())
    result = target.manage("list_realms", user="root")
    assert result.rc == 1
    manage = f"{target.deploy}/manage.py"
    assert result.out == (
        "manage.py should not be run as root. Use `su zulip` to switch to the 'zulip'\n"
        f"user before rerunning this, or use \n  su zulip -c '{manage} ...'\n"
        "to switch users and run this as a single command.\n")
    entry = new_ledger(target, before)[-1]
    assert (entry["event"], entry["user"], entry["rc"], entry["argv"]) == ("manage", "root", 1, ["list_realms"])


def test_manage_refuses_other_users(target: Target) -> None:
    result = target.manage("list_realms", user="nobody")
    assert (result.rc, result.out) == (1, STRANGER)
    assert target.ledger()[-1]["user"] == "nobody"


def test_every_manage_call_pays_the_start_up_delay_and_is_ledgered(target: Target) -> None:
    before = len(target.ledger())
    result = target.manage("check")
    assert result.rc == 0
    assert result.seconds >= target.manage_delay
    entry = new_ledger(target, before)[-1]
    assert entry["event"] == "manage" and entry["user"] == "zulip" and entry["rc"] == 0
    assert entry["argv"] == ["check"] and entry["seconds"] >= target.manage_delay
    assert isinstance(entry["time"], float)


# ---------------------------------------------------------------- manage.py commands


def test_list_realms_table(target: Target) -> None:
    result = target.manage("list_realms")
    assert result.rc == 0, result
    row = "%-5s %-20s %-30s %-50s"
    assert result.out.splitlines() == [
        row % ("id", "string_id", "name", "domain"),
        row % ("--", "---------", "----", "------"),
        row % (1, "zulipinternal", "System bot realm", f"https://zulipinternal.{EXTERNAL_HOST}"),
        row % (2, "acme", "Acme SCIM Test", f"https://acme.{EXTERNAL_HOST}"),
        row % (3, "beta", "Beta SCIM Test", f"https://beta.{EXTERNAL_HOST}"),
        row % (4, "''", "Root SCIM Test", f"https://{EXTERNAL_HOST}"),
    ]


def test_add_scim_client(target: Target) -> None:
    name = f"idp-{uuid.uuid4().hex[:8]}"
    first = target.manage("add_scim_client", name, "-r", "acme")
    if not expect(target, "add_scim_client"):
        assert first.rc == 1
        assert "Unknown command: 'add_scim_client'" in first.err
        assert "Type 'manage.py help' for usage." in first.err
        return
    assert (first.rc, first.out, first.err) == (0, "", "")
    again = target.manage("add_scim_client", name, "-r", "acme")
    assert again.rc == 1
    assert "django.db.utils.IntegrityError: duplicate key value violates unique constraint" in again.err
    assert "zerver_scimclient_realm_id_name_" in again.err
    unknown = target.manage("add_scim_client", name, "-r", "nope")
    assert (unknown.rc, unknown.err) == (1, "There is no realm with id 'nope'. Aborting.\n")
    no_realm = target.manage("add_scim_client", name)
    assert no_realm.rc == 1
    assert "Traceback (most recent call last)" in no_realm.err and no_realm.err.rstrip().endswith("AssertionError")
    root = target.manage("add_scim_client", name, "-r", "")
    assert root.rc == 0, root


def test_existence_query_from_the_page(target: Target) -> None:
    if not expect(target, "add_scim_client"):
        result = target.manage("shell", "-c", EXISTS_QUERY)
        assert result.rc == 1
        assert "ImportError: cannot import name 'SCIMClient' from 'zerver.models'" in result.err
        return
    target.sql("DELETE FROM zerver_scimclient WHERE name = 'okta'")
    assert target.manage("shell", "-c", EXISTS_QUERY).out == "False\n"
    assert target.manage("add_scim_client", "okta", "-r", "acme").rc == 0
    assert target.manage("shell", "-c", EXISTS_QUERY).out == "True\n"


def test_shell_orm_api(target: Target) -> None:
    realms = target.manage("shell", "-c", (
        "from zerver.models import Realm, get_realm\n"
        "print(list(Realm.objects.all().values_list('string_id', flat=True)))\n"
        "print(Realm.objects.filter(string_id='acme').count(), get_realm('').id)\n"
        "try:\n    get_realm('nope')\nexcept Realm.DoesNotExist as e:\n    print('missing:', e)\n"))
    assert realms.out == "['zulipinternal', 'acme', 'beta', '']\n1 4\nmissing: Realm matching query does not exist.\n"
    uncaught = target.manage("shell", "-c", "from zerver.models import get_realm; get_realm('nope')")
    assert uncaught.rc == 1
    assert "Realm.DoesNotExist: Realm matching query does not exist." in uncaught.err
    if not expect(target, "add_scim_client"):
        return
    code = (
        "from zerver.models import SCIMClient, get_realm\n"
        "SCIMClient.objects.create(realm=get_realm('beta'), name='orm-a')\n"
        "SCIMClient.objects.create(realm=get_realm('beta'), name='orm-b')\n"
        "qs = SCIMClient.objects.filter(realm__string_id='beta', name__startswith='orm-')\n"
        "print(qs.count(), qs.exists(), [c.name for c in qs], qs.first().realm.string_id)\n"
        "print(list(qs.values_list('name', 'realm__string_id')))\n"
        "print(qs.filter(name='orm-a').delete())\n"
        "print(SCIMClient.objects.filter(realm=get_realm('beta'), name='orm-b').delete())\n"
        "print(SCIMClient.objects.filter(name='orm-none').delete())\n")
    result = target.manage("shell", "-c", code)
    assert result.rc == 0, result
    assert result.out.splitlines() == [
        "2 True ['orm-a', 'orm-b'] beta",
        "[('orm-a', 'beta'), ('orm-b', 'beta')]",
        "(1, {'zerver.SCIMClient': 1})",
        "(1, {'zerver.SCIMClient': 1})",
        "(0, {})",
    ]


def test_shell_reads_code_from_stdin(target: Target) -> None:
    result = target.manage("shell", stdin="from zerver.models import get_realm\nprint(get_realm('acme').name)\n")
    assert (result.rc, result.out) == (0, "Acme SCIM Test\n")


def test_check_and_checkconfig(target: Target) -> None:
    check = target.manage("check")
    assert check.rc == 0 and "System check identified no issues" in check.out
    checkconfig = target.manage("checkconfig")
    if expect(target, "checkconfig"):
        assert (checkconfig.rc, checkconfig.out, checkconfig.err) == (0, "", "")
    else:
        assert checkconfig.rc == 1 and "Unknown command: 'checkconfig'" in checkconfig.err


# ---------------------------------------------------------------- restart-server


def test_restart_as_zulip_gives_a_new_server_process(target: Target) -> None:
    old = target.server_pid()
    before = len(target.ledger())
    result = target.restart()
    assert result.rc == 0, result
    assert "Zulip restarted successfully!" in result.out
    new = target.server_pid()
    assert new is not None and new != old
    entries = new_ledger(target, before)
    restart = entries[-1]
    assert restart["event"] == "restart" and restart["user"] == "zulip" and restart["rc"] == 0
    assert (restart["old_pid"], restart["new_pid"]) == (old, new)
    checks = [e for e in entries if e["event"] == "manage" and e["argv"][:1] == ["check"]]
    assert len(checks) == (1 if expect(target, "check_first") else 0)
    assert restart["seconds"] < 15
    assert target.get("/api/v1/server_settings", EXTERNAL_HOST)["status"] == 200


def test_restart_as_root(target: Target) -> None:
    old = target.server_pid()
    result = target.restart(user="root")
    entry = target.ledger()[-1]
    assert entry["event"] == "restart" and entry["user"] == "root"
    if expect(target, "root_restart_ok"):
        assert result.rc == 0 and "Zulip restarted successfully!" in result.out
        assert target.server_pid() not in (None, old)
    else:
        assert result.rc == 1
        assert "restart-server: Must be run as user 'zulip'." in result.err
        assert target.server_pid() == old
        assert (entry["old_pid"], entry["new_pid"], entry["rc"]) == (old, old, 1)


def test_restart_refuses_other_users(target: Target) -> None:
    old = target.server_pid()
    result = target.restart(user="nobody")
    assert result.rc == 1 and "Must be run as user 'zulip'." in result.err
    assert target.server_pid() == old


def test_restart_options_per_version(target: Target) -> None:
    if target.flavour == "5.6":
        result = target.restart("--skip-checks")
        assert result.rc == 2 and "unrecognized arguments: --skip-checks" in result.err
    else:
        result = target.restart("--bogus-option")
        assert result.rc == 2


def test_broken_settings(target: Target) -> None:
    target.apply_settings(None)
    good = target.base_settings
    old = target.server_pid()
    before = len(target.ledger())
    target.write(target.settings_path, good + "\nSCIM_CONFIG = {\n")
    try:
        check = target.manage("check")
        assert check.rc == 1 and "SyntaxError" in check.err
        result = target.restart()
        assert result.rc == 1
        if expect(target, "check_first"):
            # The check stops it: nothing restarted, the old server keeps serving.
            assert target.server_pid() == old
            assert target.get("/api/v1/server_settings", EXTERNAL_HOST)["status"] == 200
        else:
            # 5.x restarts first and only then trips over settings.py: the server is down (500).
            assert target.server_pid() != old
            assert target.get("/api/v1/server_settings", EXTERNAL_HOST)["status"] == 500
        seen = [e for e in new_ledger(target, before) if e["event"] == "settings_broken_seen"]
        assert seen, "the settings watcher (queue worker) must notice a broken settings.py"
    finally:
        target.write(target.settings_path, good)
        target.loaded_settings = None
        target.apply_settings(None)
    assert target.get("/api/v1/server_settings", EXTERNAL_HOST)["status"] == 200


def wait_for_events(target: Target, before: int, event: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in new_ledger(target, before) if e["event"] == event]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_settings_watcher_reports_how_settings_py_changed(target: Target) -> None:
    target.apply_settings(None)
    before = len(target.ledger())
    target.write(target.settings_path, target.base_settings + "\n# a harmless comment\n")  # renamed into place
    renamed = wait_for_events(target, before, "settings_changed", 1)
    target.py("import sys; open(sys.argv[1], 'w').write(sys.stdin.read())", target.settings_path,
              stdin=target.base_settings)  # rewritten in place
    target.settings_on_disk = target.base_settings
    changes = wait_for_events(target, before, "settings_changed", 2)
    time.sleep(0.3)  # the watcher may also have caught the truncated file mid-write: take all events
    changes = [e for e in new_ledger(target, before) if e["event"] == "settings_changed"]
    assert len(renamed) == 1 and len(changes) >= 2
    assert (changes[0]["in_place"], changes[0]["compiles"], changes[0]["mode"]) == (False, True, "0644")
    assert all(c["in_place"] and c["mode"] == "0644" for c in changes[1:])
    if target.layer == "host":
        assert {(c["owner"], c["group"]) for c in changes} == {("zulip", "zulip")}
    assert not [e for e in new_ledger(target, before) if e["event"] == "settings_broken_seen"]


# ---------------------------------------------------------------- SCIM over HTTPS


def test_hosts_and_realms(target: Target) -> None:
    target.apply_settings(None)
    unknown, bad_host, internal = target.http(
        {"path": users_url(), "host": realm_host("nope")},
        {"path": users_url(), "host": "evil.example.org"},
        {"path": "/api/v1/server_settings", "host": realm_host("acme")},
        verify=False)
    assert unknown["status"] == 404
    assert bad_host["status"] == 400
    assert internal["status"] == 200 and internal["json"]["realm_name"] == "Acme SCIM Test"


def test_without_scim_config(target: Target) -> None:
    target.apply_settings(None)
    response = target.get(users_url(), realm_host("acme"), token="anything")
    assert response["status"] == expect(target, "no_scim_config")
    unknown = target.get(users_url(), realm_host("nope"), token="anything")
    assert unknown["status"] == 404  # before the auth check, whatever SCIM_CONFIG says


def test_settings_are_read_at_start_only(target: Target) -> None:
    target.set_secret("scim_token_acme", ACME_TOKEN)
    target.apply_settings(None)
    target.write(target.settings_path, target.base_settings + SCIM_BLOCK)  # no restart
    try:
        response = target.get(users_url(), realm_host(""), token=ROOT_TOKEN)
        assert response["status"] == expect(target, "no_scim_config")
    finally:
        target.write(target.settings_path, target.base_settings)
    scim_ready(target)
    assert target.get(users_url(), realm_host(""), token=ROOT_TOKEN)["status"] == 200


def test_auth_matrix(target: Target) -> None:
    scim_ready(target)
    acme = realm_host("acme")
    responses = target.http(
        {"path": users_url(), "host": acme},
        {"path": users_url(), "host": acme, "headers": {"Authorization": "Bearer wrong"}},
        {"path": users_url(), "host": acme, "headers": {"WWW-Authenticate": f"Bearer {ACME_TOKEN}"}},
        {"path": users_url(), "host": acme, "headers": {"Authorization": f"bearer {ACME_TOKEN}"}},
        {"path": users_url(), "host": acme, "headers": {"Authorization": f"Bearer {ACME_TOKEN} "}},
        {"path": users_url(), "host": realm_host("zulipinternal"), "headers": {"Authorization": "Bearer x"}},
    )
    for response in responses:
        assert response["status"] == 401, response
        assert response["headers"]["www-authenticate"] == 'Basic realm="django-scim2"'
        assert response["body"] == ""
    ok = target.get(users_url(), acme, token=ACME_TOKEN)
    assert ok["status"] == 200
    assert ok["headers"]["content-type"].startswith("application/scim+json")
    body = ok["json"]
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["startIndex"] == 1 and body["itemsPerPage"] == 1 and body["totalResults"] >= 1
    assert isinstance(body["Resources"][0]["id"], int)
    with_port = target.get(users_url(), f"{acme}:443", token=ACME_TOKEN)
    assert with_port["status"] == 200
    root = target.get(users_url(), realm_host(""), token=ROOT_TOKEN)
    assert root["status"] == 200


def test_token_from_missing_secret_is_a_500(target: Target) -> None:
    scim_ready(target)
    beta = realm_host("beta")
    assert target.get(users_url(), beta)["status"] == 500  # asserted before the header is read
    assert target.get(users_url(), beta, token="None")["status"] == 500


def test_5x_client_row_is_looked_up_per_request(target: Target) -> None:
    scim_ready(target)
    acme = realm_host("acme")
    if not expect(target, "add_scim_client"):
        assert target.get(users_url(), acme, token=ACME_TOKEN)["status"] == 200
        return
    target.sql("DELETE FROM zerver_scimclient WHERE name = 'okta'")
    assert target.get(users_url(), acme, token=ACME_TOKEN)["status"] == 500
    assert target.get(users_url(), acme, token="wrong")["status"] == 401
    assert target.manage("add_scim_client", "okta", "-r", "acme").rc == 0
    assert target.get(users_url(), acme, token=ACME_TOKEN)["status"] == 200  # no restart needed


def test_users_api(target: Target) -> None:
    scim_ready(target)
    acme, root = realm_host("acme"), realm_host("")
    email = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    auth = {"Authorization": f"Bearer {ACME_TOKEN}"}
    new_user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
                "name": {"givenName": "Ada", "familyName": "Lovelace"}, "active": True}
    created, duplicate, formatted_only = target.http(
        {"method": "POST", "path": "/scim/v2/Users", "host": acme, "headers": auth, "json": new_user},
        {"method": "POST", "path": "/scim/v2/Users", "host": acme, "headers": auth, "json": new_user},
        {"method": "POST", "path": "/scim/v2/Users", "host": acme, "headers": auth,
         "json": {**new_user, "userName": f"x-{email}", "name": {"formatted": "Only Formatted"}}},
    )
    assert created["status"] == 201, created
    user = created["json"]
    assert isinstance(user["id"], int)
    assert created["headers"]["location"] == f"https://{acme}/scim/v2/Users/{user['id']}"
    assert user["userName"] == email and user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert ("role" in user) == expect(target, "role")
    assert duplicate["status"] == 409 and duplicate["json"]["scimType"] == "uniqueness"
    assert formatted_only["status"] == 400
    fetched, filtered, deleted = target.http(
        {"path": f"/scim/v2/Users/{user['id']}", "host": acme, "headers": auth},
        {"path": f'/scim/v2/Users?filter=userName%20eq%20%22{email}%22', "host": acme, "headers": auth},
        {"method": "DELETE", "path": f"/scim/v2/Users/{user['id']}", "host": acme, "headers": auth},
    )
    assert fetched["status"] == 200 and fetched["json"]["id"] == user["id"]
    assert filtered["json"]["totalResults"] == 1
    assert deleted["status"] == 400
    other_realm = target.get(f"/scim/v2/Users/{user['id']}", root, token=ROOT_TOKEN)
    assert other_realm["status"] == 404
    formatted = target.http({"method": "POST", "path": "/scim/v2/Users", "host": root,
                             "headers": {"Authorization": f"Bearer {ROOT_TOKEN}"},
                             "json": {**new_user, "name": {"formatted": "Grace Hopper"}}})[0]
    assert formatted["status"] == 201 and formatted["json"]["name"] == {"formatted": "Grace Hopper"}


@pytest.mark.parametrize("path", ["ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "Me", ".search",
                                  "Users/.search"])
def test_unimplemented_endpoints(target: Target, path: str) -> None:
    scim_ready(target)
    acme = realm_host("acme")
    method = "POST" if "search" in path or path == "Bulk" else "GET"
    authed, anonymous = target.http(
        {"method": method, "path": f"/scim/v2/{path}", "host": acme,
         "headers": {"Authorization": f"Bearer {ACME_TOKEN}"}},
        {"method": method, "path": f"/scim/v2/{path}", "host": acme})
    assert authed["status"] == 501
    assert anonymous["status"] == 401


def test_groups(target: Target) -> None:
    scim_ready(target)
    response = target.get("/scim/v2/Groups", realm_host("acme"), token=ACME_TOKEN)
    assert response["status"] == expect(target, "groups")


def test_request_log_has_no_tokens(target: Target) -> None:
    scim_ready(target)
    target.get(users_url(), realm_host("acme"), token=ACME_TOKEN)
    log = target.read(target.path("/var/log/zulip/scim.log"))
    assert "/scim/v2/Users?count=1" in log
    assert ACME_TOKEN not in log and ROOT_TOKEN not in log
