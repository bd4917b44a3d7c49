"""The web side of the stand-in: one pure function from request to response.

Order of decisions follows Zulip + django-scim2: Host -> realm (unknown
subdomain: 404 before anything else), URL resolution (no SCIM route: 404),
then the SCIM auth check wrapped around every SCIM view (401/500), then the
view (501 for what Zulip leaves unimplemented, else the Users API). Before
6.0 the auth check is a middleware and comes before URL resolution.
PATCH goes through django-scim2's operation handling (scim_patch.py).
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import db, orm, scim_patch
from .scim_patch import AttrPath, PatchError
from .db import ROLE_API_NAMES, ROLE_MEMBER, realm_host
from .settings_loader import Settings
from .versions import Rules

SCIM_CONTENT_TYPE = "application/scim+json"
HTML = "text/html; charset=utf-8"
SCHEMA_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCHEMA_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCHEMA_LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCHEMA_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
WWW_AUTHENTICATE = 'Basic realm="django-scim2"'
DEFAULT_PAGE_SIZE = 50
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""  # for the server log only (never secrets)


@dataclass
class AppState:
    """What a running server holds: settings read once at start."""

    rules: Rules
    settings: Settings | None
    settings_error: str | None = None
    error_log: Callable[[str], None] = lambda text: None


class SCIMError(Exception):
    """django_scim.exceptions.SCIMException and friends."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def response(self) -> Response:
        body: dict[str, Any] = {"schemas": [SCHEMA_ERROR], "detail": self.detail, "status": self.status}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return json_response(self.status, body, SCIM_CONTENT_TYPE)


def json_response(status: int, body: Any, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(body).encode(), content_type)


def html(status: int, text: str) -> Response:
    return Response(status, f"<!DOCTYPE html><html><body><p>{text}</p></body></html>\n".encode(), HTML)


def server_error() -> Response:
    return html(500, "Internal server error")


# ------------------------------------------------------------------ hosts


def split_host(value: str | None) -> str:
    """The Host header's name, without port, lower-cased (what Django validates)."""
    host = (value or "").strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_host(name: str, external_host: str) -> bool:
    """Django's ALLOWED_HOSTS check as computed_settings.py sets it up; False means 400.

    ALLOWED_HOSTS = 127.0.0.1, localhost, EXTERNAL_HOST without port and "." + that
    (the name itself and every subdomain).
    """
    external = split_host(external_host)
    return name in ("127.0.0.1", "localhost", external) or name.endswith("." + external)


def subdomain_for(host_header: str | None, external_host: str) -> str | None:
    """zerver.lib.subdomains.get_subdomain(); None when Django rejects the Host (400).

    Zulip matches the whole Host, port and all, against r"\\.EXTERNAL_HOST(:\\d+)?$"
    (EXTERNAL_HOST may carry a port itself, e.g. "localhost:9991"); a Host that
    does not match is the root domain.
    """
    host = (host_header or "").strip().lower()
    if not allowed_host(split_host(host), external_host):
        return None
    # Unescaped, like Zulip's own pattern: its dots match any character.
    match = re.search(rf"\.{external_host.lower()}(:\d+)?$", host)
    return host[: match.start()] if match else ""


def find_realm(subdomain: str) -> orm.Realm | None:
    try:
        return orm.get_realm(subdomain)
    except orm.Realm.DoesNotExist:
        return None


# ------------------------------------------------------------------ entry point


def handle(state: AppState, request: Request) -> Response:
    try:
        return _handle(state, request)
    except Exception:  # noqa: BLE001 - Django turns anything uncaught into its 500 page
        state.error_log(traceback.format_exc())
        return server_error()


def _handle(state: AppState, request: Request) -> Response:
    if state.settings is None:
        # The app could not load settings.py at start (uWSGI: "no app loaded").
        state.error_log(state.settings_error or "settings not loaded")
        return server_error()
    settings = state.settings
    parts = urlsplit(request.target)
    subdomain = subdomain_for(request.header("Host"), str(settings.EXTERNAL_HOST))
    if subdomain is None:
        return html(400, "Bad Request (400)")
    if parts.path == "/api/v1/server_settings":
        return server_settings(state, subdomain)
    if parts.path.startswith("/api/") or parts.path.startswith("/json/"):
        return json_response(404, {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"})
    realm = find_realm(subdomain)
    if realm is None:
        return html(404, "There is no Zulip organization hosted at this subdomain.")
    if parts.path.startswith("/scim/v2/"):
        # Django's QueryDict keeps blank values ("count=" is an int() error, not a default).
        return scim(state, request, realm, parts.path[len("/scim/v2/"):],
                    parse_qs(parts.query, keep_blank_values=True))
    if parts.path == "/":
        return html(200, f"Zulip stand-in {state.rules.version_string}: {realm.name}")
    return html(404, "Page not found")


def server_settings(state: AppState, subdomain: str) -> Response:
    settings = state.settings
    assert settings is not None
    body: dict[str, Any] = {
        "result": "success", "msg": "",
        "authentication_methods": {"password": True, "dev": False, "email": True, "ldap": False},
        "zulip_version": state.rules.version_string,
        "zulip_merge_base": state.rules.version_string,
        "push_notifications_enabled": False,
        "is_incompatible": False,
        "email_auth_enabled": True,
        "require_email_format_usernames": True,
    }
    realm = find_realm(subdomain)
    if realm is not None:
        url = f"{settings.EXTERNAL_URI_SCHEME}{realm_host(realm.string_id, str(settings.EXTERNAL_HOST))}"
        body.update(realm_uri=url, realm_url=url, realm_name=realm.name)
    return json_response(200, body)


# ------------------------------------------------------------------ SCIM


ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^$"), "unimplemented"),  # django-scim2's "root" view, there for its middleware only
    (re.compile(r"^Users$"), "users"),
    (re.compile(r"^Users/\.search$"), "unimplemented"),
    (re.compile(r"^Users/(?P<uuid>[^/]+)$"), "user"),
    (re.compile(r"^Groups/\.search$"), "unimplemented"),
    (re.compile(r"^Groups$"), "groups"),
    (re.compile(r"^Groups/(?P<uuid>[^/]+)$"), "group"),
    (re.compile(r"^\.search$"), "unimplemented"),
    (re.compile(r"^Me$"), "unimplemented"),
    (re.compile(r"^ServiceProviderConfig$"), "unimplemented"),
    (re.compile(r"^ResourceTypes(?:/[^/]+)?$"), "unimplemented"),
    (re.compile(r"^Schemas(?:/[^/]+)?$"), "unimplemented"),
    (re.compile(r"^Bulk$"), "unimplemented"),
]


def match_route(rest: str) -> tuple[str, str | None] | None:
    for pattern, view in ROUTES:
        match = pattern.match(rest)
        if match:
            return view, match.groupdict().get("uuid")
    return None


def authenticate(state: AppState, request: Request, realm: orm.Realm) -> Response | None:
    """ZulipSCIMAuthCheckMiddleware + validate_scim_bearer_token(); None = allowed.

    Exceptions here are outside django-scim2's try, so they become Django's 500 page.
    """
    settings = state.settings
    assert settings is not None
    config = settings.SCIM_CONFIG.get(realm.string_id)  # AttributeError < 11.0 without SCIM_CONFIG
    if not config:
        return unauthorized()
    token = config.get("bearer_token")
    client_name = config.get("scim_client_name")
    assert token  # a misconfiguration must never mean free access
    assert client_name
    if request.header("Authorization") != f"Bearer {token}":
        return unauthorized()
    if state.rules.scim_client_table:
        # 5.x: SCIMClient.objects.get(realm=..., name=...), per request.
        orm.SCIMClient.objects.get(realm=realm, name=client_name)
    return None


def unauthorized() -> Response:
    return Response(401, b"", HTML, [("WWW-Authenticate", WWW_AUTHENTICATE)], note="unauthorized")


def scim(state: AppState, request: Request, realm: orm.Realm, rest: str, query: dict[str, list[str]]) -> Response:
    route = match_route(rest)
    if route is None and not state.rules.scim_auth_in_middleware:
        return html(404, "Page not found")  # 6.0+: the auth check wraps the SCIM views only
    denied = authenticate(state, request, realm)
    if denied is not None:
        return denied
    if route is None:
        return html(404, "Page not found")
    view, uuid = route
    if view in ("groups", "group") and not state.rules.scim_groups:
        view = "unimplemented"
    if view == "unimplemented":
        return Response(501, b"", SCIM_CONTENT_TYPE)
    assert state.settings is not None
    entry = state.settings.SCIM_CONFIG[realm.string_id]
    try:
        return VIEWS[view](ScimContext(state, request, realm, entry), uuid, query)
    except SCIMError as exc:
        return exc.response()
    except PatchError as exc:
        return SCIMError(exc.status, exc.detail, exc.scim_type).response()
    except Exception:  # noqa: BLE001 - django-scim2 dispatch() turns it into a SCIM 500
        state.error_log(traceback.format_exc())
        return SCIMError(500, "Exception occurred while processing the SCIM request").response()


@dataclass
class ScimContext:
    state: AppState
    request: Request
    realm: orm.Realm
    entry: dict[str, Any]

    @property
    def base_url(self) -> str:
        settings = self.state.settings
        assert settings is not None
        host = realm_host(self.realm.string_id, str(settings.EXTERNAL_HOST))
        return f"{settings.EXTERNAL_URI_SCHEME}{host}/scim/v2"

    def json_body(self) -> Any:
        """SCIMView.load_body(): an empty body is {}, bad JSON a 400 with the decoder's message."""
        text = self.request.body.decode("utf-8").strip() or "{}"
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SCIMError(400, "Could not decode JSON body: " + exc.args[0]) from None

    def resource_body(self, method: str) -> dict[str, Any]:
        """A POST or PUT body: PostView/PutView refuse an empty one, then validate_dict() checks "active"."""
        data = self.json_body()
        if not data:
            raise SCIMError(400, f"{method} call made with empty body")
        if not isinstance(data, dict):
            raise TypeError("the body is not a JSON object")  # data.items() on a real Zulip: a 500
        validate_dict(data)
        return data


def validate_dict(data: dict[str, Any]) -> None:
    """SCIMMixin.validate_dict(): only "active" has a checked type."""
    active = data.get("active", True)
    if "active" in data and not isinstance(active, bool):
        raise SCIMError(400, f'"active" should be of type "bool". Got type "{scim_patch.python_type_name(active)}"')


# ------------------------------------------------------------------ Users


def name_formatted_included(ctx: ScimContext) -> bool:
    return bool(ctx.entry["name_formatted_included"])  # Zulip reads it with [] -> KeyError -> 500


def user_dict(ctx: ScimContext, user: orm.UserProfile) -> dict[str, Any]:
    if name_formatted_included(ctx):
        name: dict[str, str] = {"formatted": user.full_name}
    else:
        given, _, family = user.full_name.partition(" ")
        name = {"givenName": given, "familyName": family}
    location = f"{ctx.base_url}/Users/{user.id}"
    body: dict[str, Any] = {
        "schemas": [SCHEMA_USER],
        "id": user.id,  # a JSON integer, as observed on 5.6 and 9.3
        "userName": user.delivery_email,
        "name": name,
        "displayName": user.full_name,
        "active": bool(user.is_active),
    }
    if ctx.state.rules.scim_user_role:
        body["role"] = ROLE_API_NAMES.get(int(user.role), "member")  # type: ignore[attr-defined]
    body["meta"] = {"resourceType": "User", "created": user.date_joined,  # type: ignore[attr-defined]
                    "lastModified": user.date_joined, "location": location}  # type: ignore[attr-defined]
    return body


def realm_users(ctx: ScimContext) -> orm.QuerySet:
    return orm.UserProfile.objects.filter(realm=ctx.realm)


def get_user(ctx: ScimContext, uuid: str | None) -> orm.UserProfile:
    if uuid is None or not uuid.isdigit():
        raise SCIMError(404, f"Resource {uuid} not found")
    user = realm_users(ctx).filter(id=int(uuid)).first()
    if user is None:
        raise SCIMError(404, f"Resource {uuid} not found")
    return user  # type: ignore[return-value]


FILTER_RE = re.compile(r'^\s*(userName|id)\s+eq\s+"?([^"]*)"?\s*$', re.IGNORECASE)


def query_value(query: dict[str, list[str]], name: str) -> str | None:
    """QueryDict.get(): the last value given."""
    values = query.get(name)
    return values[-1] if values else None


def filtered_users(ctx: ScimContext, query: dict[str, list[str]]) -> orm.QuerySet:
    users = realm_users(ctx)
    expression = query_value(query, "filter")
    if not expression:
        return users
    match = FILTER_RE.match(expression)
    if match is None:
        raise SCIMError(400, f"Unsupported filter: {expression}", "invalidFilter")
    attribute, value = match.group(1).lower(), match.group(2)
    if attribute == "username":
        return users.filter(delivery_email__iexact=value)
    return users.filter(id=int(value)) if value.isdigit() else users.none()


def page_numbers(query: dict[str, list[str]]) -> tuple[int, int]:
    """FilterMixin._page(): startIndex (default 1, at least 1) and count (default 50), as sent."""
    try:
        start = int(query_value(query, "startIndex") or "") if "startIndex" in query else 1
        if start < 1:
            raise SCIMError(400, "Invalid startIndex (must be >= 1)")
        count = int(query_value(query, "count") or "") if "count" in query else DEFAULT_PAGE_SIZE
    except ValueError as exc:
        raise SCIMError(400, f"Invalid pagination values: {exc}") from None
    return start, count


def page_of(rows: list[Any], start: int, count: int, database_query: bool) -> list[Any]:
    """FilterMixin._build_response()'s slice. A database query (no filter) refuses a negative end
    as Django's QuerySet does; a filtered search is a Python list and slices like one."""
    if database_query and start - 1 + count < 0:
        raise SCIMError(400, "Negative indexing is not supported.")
    return rows[start - 1 : start - 1 + count]


def list_response(total: int, start: int, count: int, resources: list[dict[str, Any]]) -> Response:
    """The ListResponse: itemsPerPage is the count asked for (or 50), not the number returned."""
    return json_response(200, {
        "schemas": [SCHEMA_LIST], "totalResults": total, "itemsPerPage": count,
        "startIndex": start, "Resources": resources,
    }, SCIM_CONTENT_TYPE)


def view_users(ctx: ScimContext, uuid: str | None, query: dict[str, list[str]]) -> Response:
    method = ctx.request.method
    if method == "POST":
        return create_user(ctx)
    if method != "GET":
        return html(405, "Method Not Allowed")
    name_formatted_included(ctx)  # the user adapter reads it even for an empty page
    start, count = page_numbers(query)  # get_many() reads them before it queries
    users = list(filtered_users(ctx, query))
    page = page_of(users, start, count, database_query=not query_value(query, "filter"))
    return list_response(len(users), start, count, [user_dict(ctx, u) for u in page])  # type: ignore[arg-type]


@dataclass
class UserChanges:
    email: str | None = None
    full_name: str | None = None
    active: bool | None = None
    role: int | None = None


def role_from_name(ctx: ScimContext, value: Any) -> int | None:
    if not ctx.state.rules.scim_user_role or not value:
        return None  # before 8.0 Zulip ignores "role"
    by_name = {name: role for role, name in ROLE_API_NAMES.items()}
    if value not in by_name:
        raise SCIMError(400, f"Invalid role: {value}. Valid values are: {list(by_name)}")
    return by_name[value]


def mapped_profile_fields(ctx: ScimContext) -> dict[str, str]:
    """SCIM attribute (lower-cased) -> custom profile field var name, from SCIM_CONFIG (12.0+ reads it)."""
    if not ctx.state.rules.scim_key_custom_profile_field_map:
        return {}
    mapping = ctx.entry.get("custom_profile_field_map") or {}
    return {str(attr).lower(): str(var) for attr, var in mapping.items()}


def check_mapped_fields(ctx: ScimContext, attributes: Iterable[str]) -> None:
    """A request that sets a mapped attribute needs the field in the realm, else 400 (as Zulip answers)."""
    mapping = mapped_profile_fields(ctx)
    if not mapping:
        return
    existing = {db.profile_field_var_name(field.name)
                for field in orm.CustomProfileField.objects.filter(realm=ctx.realm)}
    for attribute in attributes:
        var_name = mapping.get(str(attribute).lower())
        if var_name is not None and var_name not in existing:
            raise SCIMError(400, f"Custom profile field with name {var_name} not found.")


def changes_from_dict(ctx: ScimContext, data: dict[str, Any], is_new: bool) -> UserChanges:
    """ZulipSCIMUser.from_dict()."""
    check_mapped_fields(ctx, data.keys())
    email = data.get("userName")
    assert isinstance(email, str)
    if not EMAIL_RE.match(email):
        raise SCIMError(400, "Invalid email value")
    name = data.get("name") or {}
    if name_formatted_included(ctx):
        full_name = str(name.get("formatted", ""))
    else:
        full_name = f"{name.get('givenName', '')} {name.get('familyName', '')}".strip()
    if is_new and not full_name:
        raise SCIMError(400, "Must specify name.formatted, name.givenName or name.familyName when creating a new user")
    active = data.get("active")
    if is_new and not active:
        raise SCIMError(400, "New user must have active=True")
    if active is not None:
        assert isinstance(active, bool)
    return UserChanges(email, full_name or None, active, role_from_name(ctx, data.get("role")))


def check_email_free(ctx: ScimContext, email: str, user_id: int | None) -> None:
    clash = realm_users(ctx).filter(delivery_email__iexact=email)
    if user_id is not None:
        clash = clash.exclude(id=user_id)
    if clash.exists():
        raise SCIMError(409, f"Email address already in use: ['{email} already has an account']", "uniqueness")


def create_user(ctx: ScimContext) -> Response:
    changes = changes_from_dict(ctx, ctx.resource_body("POST"), is_new=True)
    assert changes.email is not None and changes.full_name is not None
    check_email_free(ctx, changes.email, None)
    user = orm.UserProfile.objects.create(
        realm=ctx.realm, delivery_email=changes.email, full_name=changes.full_name,
        is_active=True, role=changes.role or ROLE_MEMBER,
    )
    body = user_dict(ctx, user)  # type: ignore[arg-type]
    response = json_response(201, body, SCIM_CONTENT_TYPE)
    response.headers.append(("Location", body["meta"]["location"]))
    return response


def apply_changes(ctx: ScimContext, user: orm.UserProfile, changes: UserChanges) -> None:
    if changes.email is not None and changes.email.lower() != user.delivery_email.lower():
        check_email_free(ctx, changes.email, user.id)
    updates = {"delivery_email": changes.email, "full_name": changes.full_name,
               "is_active": None if changes.active is None else int(changes.active), "role": changes.role}
    for column, value in updates.items():
        if value is not None:
            orm.connection().execute(f"UPDATE zerver_userprofile SET {column} = ? WHERE id = ?", (value, user.id))


def user_patch_changes(ctx: ScimContext, body: Any) -> UserChanges:
    """ZulipSCIMUser under django-scim2's PATCH: only "replace" is Zulip's own, "add" and "remove"
    are the base adapter's 501 with an empty detail (see scim_patch.py for the order of checks)."""
    changes = UserChanges()

    def replace(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
        # ZulipSCIMUser.handle_replace(): an object value is read as {path: value} already, so the
        # keys of a whole "name" object are plain strings, and .first_path on a string crashes.
        items = value.items() if isinstance(value, dict) else [(path, value)]
        for attr_path, item in items:
            if not isinstance(attr_path, AttrPath):
                raise AttributeError("'str' object has no attribute 'first_path'")
            replace_one(ctx, changes, attr_path, item)

    scim_patch.handle_operations(body, {"add": scim_patch.not_implemented, "remove": scim_patch.not_implemented,
                                        "replace": replace})
    return changes


def replace_one(ctx: ScimContext, changes: UserChanges, path: AttrPath, value: Any) -> None:
    """One attribute of a "replace": the names are compared as sent (case-sensitive)."""
    first = path.first_path
    if path.text.lower() in mapped_profile_fields(ctx):
        check_mapped_fields(ctx, [path.text])  # the value itself is not kept by the stand-in
    elif first == ("userName", None, None):
        assert isinstance(value, str)
        if not EMAIL_RE.match(value):
            raise SCIMError(400, "Invalid email value")
        changes.email = value
    elif first == ("name", "formatted", None):
        # Zulip's TODO: name_formatted_included=False is not looked at here.
        assert isinstance(value, str)
        changes.full_name = value or changes.full_name
    elif first == ("active", None, None):
        assert isinstance(value, bool)
        changes.active = value
    elif first == ("role", None, None) and ctx.state.rules.scim_user_role:
        assert isinstance(value, str)
        changes.role = role_from_name(ctx, value)
    else:
        raise SCIMError(501, "Not Implemented")


def view_user(ctx: ScimContext, uuid: str | None, query: dict[str, list[str]]) -> Response:
    user = get_user(ctx, uuid)
    method = ctx.request.method
    if method == "DELETE":
        raise SCIMError(400, "DELETE operation not supported. "
                             'Use PUT or PATCH to modify the "active" attribute instead.')
    if method == "PUT":
        apply_changes(ctx, user, changes_from_dict(ctx, ctx.resource_body("PUT"), is_new=False))
    elif method == "PATCH":
        apply_changes(ctx, user, user_patch_changes(ctx, ctx.json_body()))
    elif method != "GET":
        return html(405, "Method Not Allowed")
    body = user_dict(ctx, get_user(ctx, uuid))
    response = json_response(200, body, SCIM_CONTENT_TYPE)
    # django-scim2's get_single(), PutView and PatchView all send the resource's Location.
    response.headers.append(("Location", body["meta"]["location"]))
    return response


# ------------------------------------------------------------------ Groups (11.0+)


def member_ids(group_id: int) -> list[int]:
    rows = orm.connection().execute("SELECT user_profile_id FROM zerver_usergroupmembership WHERE user_group_id = ? "
                                    "ORDER BY user_profile_id", (group_id,)).fetchall()
    return [row[0] for row in rows]


def group_members(ctx: ScimContext, group_id: int) -> list[dict[str, Any]]:
    """ZulipSCIMGroup.members: the user adapter's id is a string ("value"), ordered by id."""
    users = realm_users(ctx).filter(id__in=member_ids(group_id)).order_by("id")
    return [{"value": str(user.id), "$ref": f"{ctx.base_url}/Users/{user.id}", "display": user.full_name,
             "type": "User"} for user in users]


def group_dict(ctx: ScimContext, row: Any) -> dict[str, Any]:
    location = f"{ctx.base_url}/Groups/{row['id']}"
    return {"schemas": [SCHEMA_GROUP], "id": row["id"], "displayName": row["name"],
            "members": group_members(ctx, row["id"]),
            "meta": {"resourceType": "Group", "location": location}}


def view_groups(ctx: ScimContext, uuid: str | None, query: dict[str, list[str]]) -> Response:
    conn = orm.connection()
    if ctx.request.method == "POST":
        name = ctx.json_body().get("displayName")
        if not isinstance(name, str) or not name:
            raise SCIMError(400, "Group name must be a non-empty string")
        if conn.execute("SELECT 1 FROM zerver_namedusergroup WHERE realm_id = ? AND name = ?",
                        (ctx.realm.id, name)).fetchone():
            raise SCIMError(409, f"Group name already in use: {name}", "uniqueness")
        cur = conn.execute("INSERT INTO zerver_namedusergroup (realm_id, name) VALUES (?, ?)", (ctx.realm.id, name))
        row = conn.execute("SELECT * FROM zerver_namedusergroup WHERE id = ?", (cur.lastrowid,)).fetchone()
        body = group_dict(ctx, row)
        response = json_response(201, body, SCIM_CONTENT_TYPE)
        response.headers.append(("Location", body["meta"]["location"]))
        return response
    if ctx.request.method != "GET":
        return html(405, "Method Not Allowed")
    start, count = page_numbers(query)
    rows = conn.execute("SELECT * FROM zerver_namedusergroup WHERE realm_id = ? ORDER BY id",
                        (ctx.realm.id,)).fetchall()
    page = page_of(rows, start, count, database_query=True)
    return list_response(len(rows), start, count, [group_dict(ctx, r) for r in page])


def get_group(ctx: ScimContext, uuid: str | None) -> Any:
    row = None
    if uuid is not None and uuid.isdigit():
        row = orm.connection().execute("SELECT * FROM zerver_namedusergroup WHERE realm_id = ? AND id = ?",
                                       (ctx.realm.id, int(uuid))).fetchone()
    if row is None:
        raise SCIMError(404, f"Resource {uuid} not found")
    return row


def view_group(ctx: ScimContext, uuid: str | None, query: dict[str, list[str]]) -> Response:
    """One group, as ZulipSCIMGroup (Zulip's zerver/lib/scim.py) handles it under django-scim2's views."""
    row = get_group(ctx, uuid)
    method = ctx.request.method
    if method == "DELETE":
        raise SCIMError(501, "")  # ZulipSCIMGroup.delete(): NotImplementedError, no detail
    if method in ("PUT", "PATCH"):
        body = ctx.resource_body("PUT") if method == "PUT" else ctx.json_body()
        in_one_transaction(lambda: update_group(ctx, row["id"], method, body))
    elif method != "GET":
        return html(405, "Method Not Allowed")
    result = group_dict(ctx, get_group(ctx, uuid))
    response = json_response(200, result, SCIM_CONTENT_TYPE)
    response.headers.append(("Location", result["meta"]["location"]))
    return response


def in_one_transaction(action: Callable[[], None]) -> None:
    """PatchView's transaction.atomic(): a failing operation undoes the ones before it."""
    conn = orm.connection()
    conn.execute("BEGIN IMMEDIATE")
    try:
        action()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass
class GroupChanges:
    """ZulipSCIMGroup's pending changes; save() applies them after each operation (or the PUT)."""

    name: str | None = None
    intended: set[int] | None = None  # the whole member list (PUT, "replace" of members)
    to_add: set[int] | None = None
    to_remove: set[int] | None = None


def update_group(ctx: ScimContext, group_id: int, method: str, body: Any) -> None:
    if method == "PUT":
        changes = GroupChanges()
        name = body.get("displayName")
        if name is not None:
            assert isinstance(name, str)
            changes.name = name
        if body.get("members"):
            changes.intended = {int(member["value"]) for member in body["members"]}
        save_group(ctx, group_id, changes)
        return
    scim_patch.handle_operations(body, group_patch_handlers(ctx, group_id))


def group_patch_handlers(ctx: ScimContext, group_id: int) -> dict[str, scim_patch.Handler]:
    """ZulipSCIMGroup.handle_replace / handle_add / handle_remove: each ends with save()."""

    def replace(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
        changes = GroupChanges()
        items = value.items() if isinstance(value, dict) else [(path, value)]
        for attr_path, item in items:
            if not isinstance(attr_path, AttrPath):
                raise AttributeError("'str' object has no attribute 'first_path'")
            first = attr_path.first_path
            if first == ("displayName", None, None):
                assert isinstance(item, str)
                changes.name = item
            elif first == ("members", None, None):
                changes.intended = {int(member["value"]) for member in item}
            elif first == ("id", None, None):
                assert int(item) == group_id  # a sanity check of Zulip's: another id is a crash
            else:
                raise SCIMError(501, "")
        save_group(ctx, group_id, changes)

    def add(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
        if path.first_path != ("members", None, None):
            raise SCIMError(501, "")
        members = value or []
        assert isinstance(members, list)
        save_group(ctx, group_id, GroupChanges(to_add={int(member.get("value")) for member in members}))

    def remove(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
        if path.is_complex:
            # Okta's 'members[value eq "<id>"]', the one complex path Zulip reads (from the filter
            # django-scim2 builds: the path + ' eq ""').
            match = re.match(r'^members\[value eq "(\d+)"\] eq ""$', path.text + ' eq ""')
            if not match:
                raise SCIMError(501, "")
            save_group(ctx, group_id, GroupChanges(to_remove={int(match.group(1))}))
            return
        if path.first_path != ("members", None, None):
            raise SCIMError(501, "")
        members = value or []
        assert isinstance(members, list)
        save_group(ctx, group_id, GroupChanges(to_remove={int(member.get("value")) for member in members}))

    return {"replace": replace, "add": add, "remove": remove}


def check_group_members(ctx: ScimContext, ids: set[int]) -> None:
    """validate_group_member_ids_from_request()."""
    if not ids:
        return
    rows = orm.connection().execute(
        f"SELECT DISTINCT realm_id FROM zerver_userprofile WHERE id IN ({','.join('?' * len(ids))})",
        tuple(ids)).fetchall()
    realm_ids = [row[0] for row in rows]
    # No known user at all: Zulip reads realm_ids[0] of an empty list, an IndexError (a 500).
    if len(realm_ids) > 1 or realm_ids[0] != ctx.realm.id:
        raise SCIMError(400, "Users outside of the realm can't be removed or added to the group")
    found = set(realm_users(ctx).filter(id__in=sorted(ids)).values_list("id", flat=True))
    if len(ids) != len(found):
        raise SCIMError(400, f"Invalid user ids found in the request: {ids - found}")


def save_group(ctx: ScimContext, group_id: int, changes: GroupChanges) -> None:
    """ZulipSCIMGroup.save() for an existing group."""
    conn = orm.connection()
    row = conn.execute("SELECT * FROM zerver_namedusergroup WHERE id = ?", (group_id,)).fetchone()
    name = changes.name if changes.name and changes.name != row["name"] else None
    if name is not None and conn.execute("SELECT 1 FROM zerver_namedusergroup WHERE realm_id = ? AND name = ?",
                                         (ctx.realm.id, name)).fetchone():
        raise SCIMError(409, f"Group name already in use: {name}", "uniqueness")
    for ids in (changes.intended, changes.to_remove, changes.to_add):
        if ids is not None:
            check_group_members(ctx, ids)
    if name is not None:
        conn.execute("UPDATE zerver_namedusergroup SET name = ? WHERE id = ?", (name, group_id))
    current = set(member_ids(group_id))
    to_add, to_remove = changes.to_add or set(), changes.to_remove or set()
    if changes.intended is not None:
        to_add, to_remove = changes.intended - current, current - changes.intended
    for user_id in sorted(to_remove & current):
        conn.execute("DELETE FROM zerver_usergroupmembership WHERE user_group_id = ? AND user_profile_id = ?",
                     (group_id, user_id))
    for user_id in sorted(to_add - current):
        conn.execute("INSERT INTO zerver_usergroupmembership (user_group_id, user_profile_id) VALUES (?, ?)",
                     (group_id, user_id))


VIEWS: dict[str, Callable[[ScimContext, str | None, dict[str, list[str]]], Response]] = {
    "users": view_users, "user": view_user, "groups": view_groups, "group": view_group,
}
