"""What IdPs send beyond the basics, answered as real Zulip does (marker standin, in-process).

Issue 24: an independent SCIM client found the stand-in and real Zulip 9.2/5.6 apart on PATCH
"add"/"remove", "remove" of "active", a "replace" of a whole "name" object, the Location of PUT
and PATCH answers, itemsPerPage and unknown /scim/v2/ URLs. The expected answers here are the
ones the fidelity probe (tests/fidelity) got from the real 9.2 and 5.6 hosts; the group PATCH
cases (11.0+, no real image) follow ZulipSCIMGroup in Zulip's zerver/lib/scim.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from zulip_standin import app, db, orm
from zulip_standin.config import StandinConfig
from zulip_standin.settings_loader import load_settings
from zulip_standin.templates import settings_py
from zulip_standin.versions import Rules

pytestmark = pytest.mark.standin
HOST = "zulip.example.test"
ACME = f"acme.{HOST}"
TOKEN = "t0k"
FLAVOURS = ["5.6", "9.0", "11.2"]
SCIM = ('SCIM_CONFIG = {"acme": {"bearer_token": get_secret("tok"), "scim_client_name": "okta",'
        ' "name_formatted_included": False}, "beta": {"bearer_token": "b", "scim_client_name": "okta",'
        ' "name_formatted_included": False}}\n')
GENERIC_500 = "Exception occurred while processing the SCIM request"
SCHEMA_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def app_state(tmp_path: Path, flavour: str) -> app.AppState:
    path = tmp_path / f"{flavour}.db"
    conn = db.connect(str(path))
    db.init_db(conn, Rules(flavour), ["acme", "beta", ""], HOST)
    conn.close()
    orm.configure(str(path))
    (tmp_path / "deploy").mkdir(exist_ok=True)
    (tmp_path / "settings.py").write_text(settings_py(HOST) + SCIM)
    (tmp_path / "secrets.conf").write_text(f"[secrets]\nsecret_key = k\ntok = {TOKEN}\n")
    config = StandinConfig(deploy_dir=str(tmp_path / "deploy"), settings_path=str(tmp_path / "settings.py"),
                           secrets_path=str(tmp_path / "secrets.conf"), db_path=str(path))
    state = app.AppState(rules=Rules(flavour), settings=load_settings(config, Rules(flavour)))
    if Rules(flavour).scim_client_table:
        for realm in ("acme", "beta"):
            orm.SCIMClient.objects.create(realm=orm.get_realm(realm), name="okta")
    return state


def call(state: app.AppState, path: str, method: str = "GET", body: Any = None, token: str | None = TOKEN,
         host: str = ACME) -> app.Response:
    headers = {"host": host}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    return app.handle(state, app.Request(method, path, headers, data))


def answer(response: app.Response) -> tuple[int, Any]:
    """(status, detail) of a SCIM error, (status, body) otherwise."""
    body = json.loads(response.body) if response.body.strip().startswith(b"{") else response.body
    if isinstance(body, dict) and body.get("schemas") == [SCHEMA_ERROR]:
        assert body["status"] == response.status
        return response.status, body["detail"]
    return response.status, body


def new_user(state: app.AppState, email: str = "target@example.test", host: str = ACME) -> int:
    user = {"userName": email, "name": {"givenName": "Patch", "familyName": "Target"}, "active": True}
    created = call(state, "/scim/v2/Users", "POST", user, host=host, token=TOKEN if host == ACME else "b")
    assert created.status == 201, created.body
    return int(json.loads(created.body)["id"])


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


# ---------------------------------------------------------------- users: PATCH

ACTIVE_NONE = '"active" should be of type "bool". Got type "NoneType"'
ACTIVE_STR = '"active" should be of type "bool". Got type "str"'
REFUSED_PATCHES = [
    # name, body, (status, detail) as real 9.2 and 5.6 answered the fidelity probe
    ("add", patch({"op": "add", "path": "name.formatted", "value": "Added"}), (501, "")),
    ("add_without_path", patch({"op": "add", "value": {"nickName": "pt"}}), (501, "")),
    ("remove", patch({"op": "remove", "path": "name.formatted"}), (501, "")),
    ("remove_active", patch({"op": "remove", "path": "active"}), (400, ACTIVE_NONE)),
    ("remove_without_path", patch({"op": "remove"}), (500, GENERIC_500)),
    ("replace_active_string", patch({"op": "replace", "path": "active", "value": "False"}), (400, ACTIVE_STR)),
    ("replace_name_object", patch({"op": "replace", "path": "name", "value": {"givenName": "W", "familyName": "N"}}),
     (500, GENERIC_500)),
    ("replace_name_object_without_path",
     patch({"op": "replace", "value": {"name": {"givenName": "W", "familyName": "N"}}}), (500, GENERIC_500)),
    # from django-scim2's source (views.PatchView, adapters.SCIMMixin)
    ("unknown_op", patch({"op": "Move", "path": "active", "value": False}), (400, 'Unknown PATCH op "move"')),
    ("no_operations", {"Operations": []}, (400, "PATCH call made without operations array")),
    ("no_op", patch({"path": "active", "value": False}), (500, GENERIC_500)),
    ("active_without_path_key", patch({"op": "replace", "value": {"active": "no"}}), (500, GENERIC_500)),
    ("active_null_path", patch({"op": "replace", "path": None, "value": {"active": 0}}),
     (400, '"None" should be of type "bool". Got type "int"')),
    ("unknown_attribute", patch({"op": "replace", "path": "title", "value": "x"}), (501, "Not Implemented")),
    ("case_matters", patch({"op": "replace", "path": "username", "value": "x@example.test"}),
     (501, "Not Implemented")),
    ("bad_email", patch({"op": "replace", "path": "userName", "value": "no-at-sign"}), (400, "Invalid email value")),
    ("unparsable_path", patch({"op": "replace", "path": "1abc", "value": "x"}), (500, GENERIC_500)),
    ("later_operation_refused", patch({"op": "replace", "path": "name.formatted", "value": "Changed Name"},
                                      {"op": "replace", "path": "active", "value": False},
                                      {"op": "add", "path": "emails", "value": []}), (501, "")),
]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("body", "expected"), [pytest.param(b, e, id=n) for n, b, e in REFUSED_PATCHES])
def test_refused_user_patches_change_nothing(tmp_path: Path, flavour: str, body: dict[str, Any],
                                             expected: tuple[int, str]) -> None:
    state = app_state(tmp_path, flavour)
    user_id = new_user(state)
    before = json.loads(call(state, f"/scim/v2/Users/{user_id}").body)
    response = call(state, f"/scim/v2/Users/{user_id}", "PATCH", body)
    assert answer(response) == expected
    assert response.content_type == "application/scim+json"
    assert not any(name == "Location" for name, _ in response.headers)  # only a success carries it
    assert json.loads(call(state, f"/scim/v2/Users/{user_id}").body) == before


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_replace_of_an_empty_name_object_is_a_no_op(tmp_path: Path, flavour: str) -> None:
    """The crash needs a key: {} gives Zulip's handle_replace nothing to read, and save() nothing to do."""
    state = app_state(tmp_path, flavour)
    user_id = new_user(state)
    response = call(state, f"/scim/v2/Users/{user_id}", "PATCH", patch({"op": "replace", "path": "name", "value": {}}))
    assert response.status == 200 and json.loads(response.body)["displayName"] == "Patch Target"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patch_and_put_answers_carry_the_location(tmp_path: Path, flavour: str) -> None:
    state = app_state(tmp_path, flavour)
    user_id = new_user(state)
    url = f"/scim/v2/Users/{user_id}"
    answers = {
        "replace": call(state, url, "PATCH", patch({"op": "Replace", "path": "name.formatted", "value": "New Name"})),
        "replace_without_path": call(state, url, "PATCH", patch({"op": "replace",
                                                                 "value": {"userName": "moved@example.test"}})),
        "put": call(state, url, "PUT", {"userName": "target@example.test", "active": False,
                                        "name": {"givenName": "Put", "familyName": "Name"}}),
        "get": call(state, url),
    }
    for name, response in answers.items():
        body = json.loads(response.body)
        assert response.status == 200, (name, body)
        location = f"https://{ACME}/scim/v2/Users/{user_id}"
        assert ("Location", location) in response.headers and body["meta"]["location"] == location, name
    final = json.loads(answers["get"].body)
    assert (final["userName"], final["displayName"], final["active"]) == ("target@example.test", "Put Name", False)


@pytest.mark.parametrize(("flavour", "expected"), [("5.6", 501), ("9.0", 200), ("11.2", 200)])
def test_patch_of_role(tmp_path: Path, flavour: str, expected: int) -> None:
    """Zulip reads "role" from 8.0 on; before, a "replace" of it is one Zulip does not implement."""
    state = app_state(tmp_path, flavour)
    user_id = new_user(state)
    response = call(state, f"/scim/v2/Users/{user_id}", "PATCH",
                    patch({"op": "replace", "path": "role", "value": "moderator"}))
    assert response.status == expected


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("method", "body", "expected"), [
    ("PUT", {"userName": "target@example.test", "active": "true"}, (400, ACTIVE_STR)),
    ("PUT", {"userName": "target@example.test", "active": None}, (400, ACTIVE_NONE)),
    ("PUT", None, (400, "PUT call made with empty body")),
    ("POST", {"userName": "n@example.test", "active": "yes", "name": {"givenName": "N"}}, (400, ACTIVE_STR)),
    ("POST", None, (400, "POST call made with empty body")),
])
def test_put_and_post_check_the_type_of_active(tmp_path: Path, flavour: str, method: str, body: Any,
                                              expected: tuple[int, str]) -> None:
    state = app_state(tmp_path, flavour)
    user_id = new_user(state)
    path = f"/scim/v2/Users/{user_id}" if method == "PUT" else "/scim/v2/Users"
    assert answer(call(state, path, method, body)) == expected


def test_bad_json_is_a_400_with_the_decoder_message(tmp_path: Path) -> None:
    state = app_state(tmp_path, "9.0")
    user_id = new_user(state)
    request = app.Request("PATCH", f"/scim/v2/Users/{user_id}", {"host": ACME, "authorization": f"Bearer {TOKEN}"},
                          b"{nope")
    response = app.handle(state, request)
    assert answer(response) == (400, "Could not decode JSON body: Expecting property name enclosed in double quotes: "
                                     "line 1 column 2 (char 1)")


# ---------------------------------------------------------------- users: lists


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("query", "items_per_page", "resources"), [
    ('?filter=userName%20eq%20%22target%40example.test%22&count=10', 10, 1),  # seen: 10 on 9.2 and 5.6
    ('?filter=userName%20eq%20%22nobody%40example.test%22', 50, 0),  # seen: 50 on 9.2 and 5.6
    ("?count=0", 0, 0),
    ("?count=1", 1, 1),
    ("?count=100", 100, 2),
    ("?filter=", 50, 2),  # a blank filter is no filter
])
def test_items_per_page_is_the_count_asked_for(tmp_path: Path, flavour: str, query: str, items_per_page: int,
                                               resources: int) -> None:
    state = app_state(tmp_path, flavour)
    new_user(state)
    body = json.loads(call(state, f"/scim/v2/Users{query}").body)
    assert (body["itemsPerPage"], len(body["Resources"])) == (items_per_page, resources)


@pytest.mark.parametrize(("query", "detail"), [
    ("?startIndex=0", "Invalid startIndex (must be >= 1)"),
    ("?count=x", "Invalid pagination values: invalid literal for int() with base 10: 'x'"),
    ("?count=", "Invalid pagination values: invalid literal for int() with base 10: ''"),
    ("?count=-1", "Negative indexing is not supported."),
])
def test_bad_pagination(tmp_path: Path, query: str, detail: str) -> None:
    state = app_state(tmp_path, "9.0")
    assert answer(call(state, f"/scim/v2/Users{query}")) == (400, detail)


# ---------------------------------------------------------------- unknown URLs and the root


@pytest.mark.parametrize(("flavour", "without_token"), [("5.6", 401), ("9.0", 404), ("11.2", 404)])
@pytest.mark.parametrize("path", ["/scim/v2/NoSuchResource", "/scim/v2/Users/"])
def test_unknown_scim_urls(tmp_path: Path, flavour: str, without_token: int, path: str) -> None:
    """Seen: 5.6 checks the token first (401), 9.2 resolves the URL first (404); with a token both 404."""
    state = app_state(tmp_path, flavour)
    anonymous = call(state, path, token=None)
    assert anonymous.status == without_token
    assert (anonymous.body == b"") == (without_token == 401)
    found = call(state, path)
    assert (found.status, found.content_type) == (404, "text/html; charset=utf-8")
    assert call(state, path, "POST", {"a": 1}).status == 404


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_scim_root_is_unimplemented(tmp_path: Path, flavour: str) -> None:
    """django-scim2's root view: 501 with an empty body, 401 without a token (seen on 9.2 and 5.6)."""
    state = app_state(tmp_path, flavour)
    root = call(state, "/scim/v2/")
    assert (root.status, root.body, root.content_type) == (501, b"", "application/scim+json")
    assert call(state, "/scim/v2/", token=None).status == 401


# ---------------------------------------------------------------- groups (11.0+)


def new_group(state: app.AppState, name: str) -> int:
    created = call(state, "/scim/v2/Groups", "POST", {"displayName": name})
    assert created.status == 201, created.body
    return int(json.loads(created.body)["id"])


def members_of(state: app.AppState, group_id: int) -> list[str]:
    return [m["value"] for m in json.loads(call(state, f"/scim/v2/Groups/{group_id}").body)["members"]]


@pytest.mark.parametrize("flavour", ["5.6", "9.0"])
def test_group_patch_before_11_is_unimplemented(tmp_path: Path, flavour: str) -> None:
    state = app_state(tmp_path, flavour)
    response = call(state, "/scim/v2/Groups/1", "PATCH", patch({"op": "replace", "path": "displayName",
                                                                 "value": "x"}))
    assert (response.status, response.body, response.content_type) == (501, b"", "application/scim+json")


def test_group_patch_members_and_name(tmp_path: Path) -> None:
    state = app_state(tmp_path, "11.2")
    ann, bob = new_user(state, "ann@example.test"), new_user(state, "bob@example.test")
    group = new_group(state, "ops")
    url = f"/scim/v2/Groups/{group}"
    added = call(state, url, "PATCH", patch({"op": "add", "path": "members",
                                             "value": [{"value": str(ann)}, {"value": bob}]}))
    assert added.status == 200 and ("Location", f"https://{ACME}{url}") in added.headers
    member = json.loads(added.body)["members"][0]
    assert member == {"value": str(ann), "$ref": f"https://{ACME}/scim/v2/Users/{ann}", "display": "Patch Target",
                      "type": "User"}
    assert members_of(state, group) == [str(ann), str(bob)]
    # Okta's removal: the member in a value filter of the path, no value.
    removed = call(state, url, "PATCH", patch({"op": "remove", "path": f'members[value eq "{ann}"]'}))
    assert removed.status == 200 and members_of(state, group) == [str(bob)]
    # Okta's rename: no path, the group's own id beside the new name.
    renamed = call(state, url, "PATCH", patch({"op": "replace", "value": {"id": str(group), "displayName": "sre"}}))
    assert renamed.status == 200 and json.loads(renamed.body)["displayName"] == "sre"
    replaced = call(state, url, "PATCH", patch({"op": "replace", "path": "members", "value": [{"value": ann}]}))
    assert replaced.status == 200 and members_of(state, group) == [str(ann)]
    put = call(state, url, "PUT", {"displayName": "sre", "members": [{"value": str(bob)}]})
    assert put.status == 200 and members_of(state, group) == [str(bob)]


def test_group_patch_refusals_change_nothing(tmp_path: Path) -> None:
    state = app_state(tmp_path, "11.2")
    ann = new_user(state, "ann@example.test")
    other = new_user(state, "eve@example.test", host=f"beta.{HOST}")
    group, taken = new_group(state, "ops"), new_group(state, "taken")
    url = f"/scim/v2/Groups/{group}"
    call(state, url, "PATCH", patch({"op": "add", "path": "members", "value": [{"value": ann}]}))
    before = json.loads(call(state, url).body)
    refusals = [
        (patch({"op": "add", "path": "members", "value": [{"value": ann}, {"value": 99999}]}),
         (400, "Invalid user ids found in the request: {99999}")),
        (patch({"op": "add", "path": "members", "value": [{"value": other}]}),
         (400, "Users outside of the realm can't be removed or added to the group")),
        (patch({"op": "add", "path": "members", "value": [{"value": 99999}]}), (500, GENERIC_500)),
        (patch({"op": "replace", "path": "displayName", "value": "taken"}), (409, "Group name already in use: taken")),
        (patch({"op": "replace", "path": "id", "value": str(taken)}), (500, GENERIC_500)),
        (patch({"op": "add", "path": "displayName", "value": "x"}), (501, "")),
        (patch({"op": "remove", "path": 'members[display eq "x"]'}), (501, "")),
        (patch({"op": "replace", "path": "displayName", "value": "renamed"},
               {"op": "remove", "path": "members", "value": [{"value": ann}]},
               {"op": "replace", "path": "externalId", "value": "x"}), (501, "")),
    ]
    for body, expected in refusals:
        assert answer(call(state, url, "PATCH", body)) == expected, body
        assert json.loads(call(state, url).body) == before, body
    assert (taken_answer := call(state, f"/scim/v2/Groups/{taken}")).status == 200, taken_answer.body
    assert answer(call(state, url, "DELETE")) == (501, "")
    assert answer(call(state, "/scim/v2/Groups/99999", "PATCH", patch({"op": "add", "path": "members"}))) == (
        404, "Resource 99999 not found")


# ---------------------------------------------------------------- the path reader


@pytest.mark.parametrize(("text", "first_path", "is_complex"), [
    ("active", ("active", None, None), False),
    ("name.formatted", ("name", "formatted", None), False),
    ("urn:ietf:params:scim:schemas:core:2.0:User:userName",
     ("userName", None, "urn:ietf:params:scim:schemas:core:2.0:User"), False),
    ('members[value eq "5"]', ("members", None, None), True),
])
def test_split_path(text: str, first_path: tuple[str, str | None, str | None], is_complex: bool) -> None:
    from zulip_standin import scim_patch

    path = scim_patch.split_path(text)
    assert (path.first_path, path.is_complex) == (first_path, is_complex)


@pytest.mark.parametrize("text", ["1abc", "a b", "name..x", "members[]"])
def test_split_path_refuses_what_the_lexer_cannot_read(text: str) -> None:
    from zulip_standin import scim_patch

    with pytest.raises(scim_patch.PatchCrash):
        scim_patch.split_path(text)
