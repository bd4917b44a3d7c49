"""In-process tests of the stand-in's parts (marker standin): no processes, no sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from targets import ANSIBLE_PLAYBOOK, PLAYBOOK, REPO
from zulip_standin import app, db, frontend, orm
from zulip_standin.config import StandinConfig
from zulip_standin.fakes import IntegrityError, UniqueViolation
from zulip_standin.settings_loader import Settings, config_errors, exec_settings_file, load_settings
from zulip_standin.templates import settings_py
from zulip_standin.versions import RULE_TABLE, Rules, parse_version

pytestmark = pytest.mark.standin
FLAVOURS = ["5.6", "9.0", "11.2"]
HOST = "zulip.example.test"


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize(("text", "parsed"), [("5.6", (5, 6)), ("9.0", (9, 0)), ("11.2", (11, 2)),
                                              ("12.0-dev+git", (12, 0)), ("10.10", (10, 10))])
def test_parse_version(text: str, parsed: tuple[int, int]) -> None:
    assert parse_version(text) == parsed


def test_parse_version_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_version("latest")


@pytest.mark.parametrize(("flavour", "expected"), [
    ("5.6", {"scim_client_table": True, "restart_runs_check": False, "restart_drops_root": False,
             "scim_config_default": False, "scim_groups": False, "checkconfig_command": True,
             "check_runs_config_checks": False, "scim_key_custom_profile_field_map": False}),
    ("9.0", {"scim_client_table": False, "restart_runs_check": True, "restart_drops_root": True,
             "scim_config_default": False, "scim_groups": False, "checkconfig_command": True,
             "scim_key_create_guests_without_streams": True, "scim_user_role": True}),
    ("11.2", {"scim_client_table": False, "scim_config_default": True, "scim_groups": True,
              "checkconfig_command": True, "check_runs_config_checks": False, "scim_user_role": True}),
    ("11.5", {"checkconfig_command": False, "check_runs_config_checks": True}),
    ("12.0-dev+git", {"checkconfig_command": False, "scim_key_custom_profile_field_map": True}),
    ("5.7", {"constant_time_token_compare": True, "scim_client_table": True}),
    ("6.0", {"scim_client_table": False, "restart_option_skip_checks": True, "restart_drops_root": False}),
    ("7.4", {"scim_user_role": False, "models_is_package": False}),
    ("8.0", {"scim_user_role": True, "models_is_package": True}),
    ("12.1", {"checkconfig_command": False, "scim_key_custom_profile_field_map": True, "scim_groups": True}),
])
def test_rule_table_matches_the_behaviour_page(flavour: str, expected: dict[str, bool]) -> None:
    rules = Rules(flavour)
    assert {name: rules.has(name) for name in expected} == expected


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(AttributeError):
        Rules("9.0").no_such_rule  # noqa: B018
    assert set(Rules("9.0").summary()) == set(RULE_TABLE)


# ---------------------------------------------------------------- settings loading


def make_config(tmp_path: Path, settings: str, secrets: str = "[secrets]\nsecret_key = s3cret\n") -> StandinConfig:
    (tmp_path / "deploy").mkdir(exist_ok=True)
    (tmp_path / "settings.py").write_text(settings)
    (tmp_path / "secrets.conf").write_text(secrets)
    return StandinConfig(deploy_dir=str(tmp_path / "deploy"), settings_path=str(tmp_path / "settings.py"),
                         secrets_path=str(tmp_path / "secrets.conf"), db_path=str(tmp_path / "zulip.db"))


def test_settings_load_like_zulip(tmp_path: Path) -> None:
    text = settings_py(HOST) + 'SCIM_CONFIG = {"acme": {"bearer_token": get_secret("tok")}}\n'
    cfg = make_config(tmp_path, text, "[secrets]\nsecret_key = k\ntok = abc\n")
    settings = load_settings(cfg, Rules("9.0"))
    assert settings.EXTERNAL_HOST == HOST
    assert settings.SCIM_CONFIG == {"acme": {"bearer_token": "abc"}}
    assert settings.SECRET_KEY == "k"


def test_get_secret_missing_is_none_and_last_assignment_wins(tmp_path: Path) -> None:
    text = ("from .config import get_secret\nSCIM_CONFIG = {'a': 1}\n"
            "SCIM_CONFIG = {'b': get_secret('nope')}\n")
    assert load_settings(make_config(tmp_path, text), Rules("5.6")).SCIM_CONFIG == {"b": None}


def test_unreadable_secrets_mean_no_secrets(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "from .config import get_secret\nX = get_secret('secret_key')\n")
    cfg.secrets_path = str(tmp_path / "missing.conf")
    assert load_settings(cfg, Rules("9.0")).X is None


@pytest.mark.parametrize(("flavour", "has_default"), [("5.6", False), ("9.0", False), ("11.2", True)])
def test_scim_config_default_per_version(tmp_path: Path, flavour: str, has_default: bool) -> None:
    settings = load_settings(make_config(tmp_path, settings_py(HOST)), Rules(flavour))
    if has_default:
        assert settings.SCIM_CONFIG == {}
    else:
        with pytest.raises(AttributeError, match="'Settings' object has no attribute 'SCIM_CONFIG'"):
            settings.SCIM_CONFIG  # noqa: B018


def test_broken_settings_raise_syntax_error_naming_prod_settings(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings_py(HOST) + "SCIM_CONFIG = {\n")
    with pytest.raises(SyntaxError) as info:
        exec_settings_file(cfg)
    assert info.value.filename.endswith("zproject/prod_settings.py")


def test_config_errors(tmp_path: Path) -> None:
    good = load_settings(make_config(tmp_path, settings_py(HOST)), Rules("9.0"))
    assert config_errors(good) == []
    bare = Settings({"SECRET_KEY": "k"}, Rules("9.0"))
    assert config_errors(bare)[0] == "Error: You must set EXTERNAL_HOST in /etc/zulip/settings.py."


# ---------------------------------------------------------------- ORM


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "zulip.db"
    conn = db.connect(str(path))
    db.init_db(conn, Rules("5.6"), ["acme", "beta", ""], HOST)
    conn.close()
    orm.configure(str(path))
    return path


def test_orm_realms(database: Path) -> None:
    assert [r.string_id for r in orm.Realm.objects.all()] == ["zulipinternal", "acme", "beta", ""]
    assert orm.get_realm("").id == 4
    assert orm.Realm.objects.filter(string_id__in=["acme", "beta"]).count() == 2
    with pytest.raises(orm.Realm.DoesNotExist, match="Realm matching query does not exist."):
        orm.get_realm("nope")
    assert orm.Realm.DoesNotExist.__qualname__ == "Realm.DoesNotExist"


def test_orm_scim_clients(database: Path) -> None:
    acme = orm.get_realm("acme")
    client = orm.SCIMClient.objects.create(realm=acme, name="okta")
    assert client.realm == acme and client.realm.string_id == "acme"
    assert orm.SCIMClient.objects.filter(realm=acme, name="okta").exists()
    assert not orm.SCIMClient.objects.filter(realm__string_id="beta").exists()
    assert list(orm.SCIMClient.objects.values_list("id", "name", "realm_id", "realm__string_id")) == [
        (client.id, "okta", acme.id, "acme")]
    assert list(orm.SCIMClient.objects.values_list("name", flat=True)) == ["okta"]
    with pytest.raises(TypeError):
        orm.SCIMClient.objects.values_list("id", "name", flat=True)
    with pytest.raises(IntegrityError) as info:
        orm.SCIMClient.objects.create(realm=acme, name="okta")
    assert isinstance(info.value.__cause__, UniqueViolation)
    assert "duplicate key value violates unique constraint" in str(info.value)
    assert orm.SCIMClient.objects.exclude(name="okta").count() == 0
    assert orm.SCIMClient.objects.filter(realm=acme).delete() == (1, {"zerver.SCIMClient": 1})
    assert orm.SCIMClient.objects.all().delete() == (0, {})


def test_orm_unknown_field(database: Path) -> None:
    with pytest.raises(orm.FieldError, match="Cannot resolve keyword 'nope'"):
        orm.Realm.objects.filter(nope=1).count()


# ---------------------------------------------------------------- web app (routing, auth order)


def app_state(tmp_path: Path, flavour: str, scim: str = "") -> app.AppState:
    path = tmp_path / f"{flavour}.db"
    conn = db.connect(str(path))
    db.init_db(conn, Rules(flavour), ["acme", "beta", ""], HOST)
    conn.close()
    orm.configure(str(path))
    cfg = make_config(tmp_path, settings_py(HOST) + scim, "[secrets]\nsecret_key = k\ntok = t0k\n")
    return app.AppState(rules=Rules(flavour), settings=load_settings(cfg, Rules(flavour)))


def call(state: app.AppState, host: str, path: str, token: str | None = None, method: str = "GET",
         body: dict[str, Any] | None = None) -> app.Response:
    headers = {"host": host}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return app.handle(state, app.Request(method, path, headers, json.dumps(body).encode() if body else b""))


SCIM = ('SCIM_CONFIG = {"acme": {"bearer_token": get_secret("tok"), "scim_client_name": "okta",'
        ' "name_formatted_included": False}, "beta": {"bearer_token": "b", "scim_client_name": "x"}}\n')


@pytest.mark.parametrize(("host", "subdomain"), [
    (HOST, ""), (f"acme.{HOST}", "acme"), (f"ACME.{HOST}", "acme"), ("localhost", ""),
    (f"a.b.{HOST}", "a.b"), ("evil.example.org", None), (f"x{HOST}", None),
    (f"acme.{HOST}:443", "acme"), (f"{HOST}:8443", ""), ("127.0.0.1", ""), ("[::1]", None),
])
def test_subdomain_for(host: str, subdomain: str | None) -> None:
    assert app.subdomain_for(host, HOST) == subdomain


@pytest.mark.parametrize(("host", "subdomain"), [
    ("localhost:9991", ""), ("acme.localhost:9991", "acme"), ("nosuch.localhost:9991", "nosuch"),
    ("localhost", ""), ("acme.localhost", ""), ("evil.example.org:9991", None),
])
def test_subdomain_for_external_host_with_port(host: str, subdomain: str | None) -> None:
    """EXTERNAL_HOST "localhost:9991" (a Zulip behind a proxy): Zulip matches the Host with its port."""
    assert app.subdomain_for(host, "localhost:9991") == subdomain


# ---------------------------------------------------------------- front end (zulip.conf)


@pytest.mark.parametrize(("conf", "expected"), [
    ("", frontend.FrontEnd(http_only=False, port=443, redirect_port=80)),
    ("[application_server]\nhttp_only = false\n", frontend.FrontEnd(False, 443, 80)),
    ("[application_server]\nhttp_only = true\n", frontend.FrontEnd(True, 80, 0)),
    ("[application_server]\nhttp_only = Enabled\nnginx_listen_port = 9991\n", frontend.FrontEnd(True, 9991, 0)),
    ("[application_server]\nhttp_only = no\nnginx_listen_port = 8443\n", frontend.FrontEnd(False, 8443, 80)),
    ("[application_server]\nhttp_only = 1\n", frontend.FrontEnd(True, 80, 0)),
])
def test_front_end_follows_zulip_conf_like_puppet(tmp_path: Path, conf: str, expected: frontend.FrontEnd) -> None:
    path = tmp_path / "zulip.conf"
    path.write_text("[machine]\ndeploy_type = production\n" + conf)
    assert frontend.front_end(str(path)) == expected


def test_front_end_without_zulip_conf_is_https(tmp_path: Path) -> None:
    assert frontend.front_end(str(tmp_path / "missing.conf"), 8443, 0) == frontend.FrontEnd(False, 8443, 0)


@pytest.mark.parametrize(("http_only", "port"), [(False, None), (True, None), (True, 9991), (False, 8443)])
def test_zulip_conf_text_round_trips(tmp_path: Path, http_only: bool, port: int | None) -> None:
    path = tmp_path / "zulip.conf"
    path.write_text(frontend.zulip_conf_text(http_only, port))
    front = frontend.front_end(str(path))
    assert front.http_only is http_only
    assert front.port == (port or (80 if http_only else 443))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_app_auth_order(tmp_path: Path, flavour: str) -> None:
    state = app_state(tmp_path, flavour, SCIM)
    users = "/scim/v2/Users?count=1"
    assert call(state, f"nope.{HOST}", users).status == 404
    # An unknown SCIM URL without a token: 401 before 6.0 (the auth check is a middleware, seen on
    # 5.6), 404 after (URL resolution first, seen on 9.2).
    assert call(state, f"acme.{HOST}", "/scim/v2/Nothing").status == (401 if flavour == "5.6" else 404)
    denied = call(state, f"acme.{HOST}", users, token="wrong")
    assert (denied.status, denied.body) == (401, b"")
    assert ("WWW-Authenticate", 'Basic realm="django-scim2"') in denied.headers
    assert call(state, f"acme.{HOST}", "/scim/v2/Me", token="t0k").status == (500 if flavour == "5.6" else 501)
    # beta lacks name_formatted_included (read with []): 500 on 5.x (no client row) and later alike.
    assert call(state, f"beta.{HOST}", users, token="b").status == 500
    if flavour == "5.6":
        orm.SCIMClient.objects.create(realm=orm.get_realm("acme"), name="okta")
    assert call(state, f"acme.{HOST}", "/scim/v2/Me", token="t0k").status == 501
    ok = call(state, f"acme.{HOST}", users, token="t0k")
    assert ok.status == 200 and ok.content_type == "application/scim+json"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_app_without_scim_config(tmp_path: Path, flavour: str) -> None:
    state = app_state(tmp_path, flavour)
    expected = 401 if flavour == "11.2" else 500
    assert call(state, f"acme.{HOST}", "/scim/v2/Users", token="x").status == expected


def test_app_broken_settings_answer_500(tmp_path: Path) -> None:
    state = app.AppState(rules=Rules("9.0"), settings=None, settings_error="SyntaxError")
    assert call(state, HOST, "/api/v1/server_settings").status == 500


def test_app_missing_name_formatted_included_is_a_scim_500(tmp_path: Path) -> None:
    scim = 'SCIM_CONFIG = {"acme": {"bearer_token": "t", "scim_client_name": "okta"}}\n'
    state = app_state(tmp_path, "9.0", scim)
    response = call(state, f"acme.{HOST}", "/scim/v2/Users", token="t")
    assert response.status == 500 and json.loads(response.body)["status"] == 500


def test_app_new_user_needs_active(tmp_path: Path) -> None:
    state = app_state(tmp_path, "9.0", SCIM)
    user = {"userName": "a@example.test", "name": {"givenName": "A", "familyName": "B"}}
    assert call(state, f"acme.{HOST}", "/scim/v2/Users", "t0k", "POST", user).status == 400
    created = call(state, f"acme.{HOST}", "/scim/v2/Users", "t0k", "POST", {**user, "active": True})
    assert created.status == 201
    user_id = json.loads(created.body)["id"]
    patch = {"Operations": [{"op": "replace", "path": "active", "value": False}]}
    patched = call(state, f"acme.{HOST}", f"/scim/v2/Users/{user_id}", "t0k", "PATCH", patch)
    assert patched.status == 200 and json.loads(patched.body)["active"] is False


# ---------------------------------------------------------------- the playbook


def test_playbook_defaults_and_syntax() -> None:
    import yaml

    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    assert play["hosts"] == "all" and play["gather_facts"] is False
    variables = play["vars"]
    assert "default('9.0')" in variables["standin_flavour"]
    assert "default(['acme', 'beta', ''])" in variables["standin_realms"]
    assert "default(1.0)" in variables["standin_manage_delay"]
    assert "default('zulip.example.test')" in variables["standin_external_host"]
    assert "default(false)" in variables["standin_http_only"]
    assert "default('')" in variables["standin_nginx_listen_port"]
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", "localhost,", str(PLAYBOOK)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_standin_does_not_reference_the_collection() -> None:
    files = REPO / "tests" / "zulip_standin"
    for path in files.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".yml", ".md"):
            text = path.read_text()
            assert "zulip_ops" not in text and "plugins/" not in text, path
    assert sys.dont_write_bytecode
