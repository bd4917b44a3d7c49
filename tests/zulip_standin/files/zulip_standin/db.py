"""The realm database: sqlite standing in for Zulip's PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from .versions import Rules

INTERNAL_REALM = ("zulipinternal", "System bot realm")

ROLE_OWNER, ROLE_ADMIN, ROLE_MODERATOR, ROLE_MEMBER, ROLE_GUEST = 100, 200, 300, 400, 600
ROLE_API_NAMES = {
    ROLE_OWNER: "owner",
    ROLE_ADMIN: "administrator",
    ROLE_MODERATOR: "moderator",
    ROLE_MEMBER: "member",
    ROLE_GUEST: "guest",
}

BASE_SCHEMA = """
CREATE TABLE zerver_realm (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    string_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    deactivated INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE zerver_userprofile (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES zerver_realm(id) ON DELETE CASCADE,
    delivery_email TEXT NOT NULL COLLATE NOCASE,
    full_name TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    role INTEGER NOT NULL DEFAULT 400,
    date_joined TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    UNIQUE (realm_id, delivery_email)
);
CREATE TABLE zerver_customprofilefield (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES zerver_realm(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    field_type INTEGER NOT NULL DEFAULT 1,
    UNIQUE (realm_id, name)
);
CREATE TABLE zerver_namedusergroup (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES zerver_realm(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (realm_id, name)
);
CREATE TABLE zerver_usergroupmembership (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_group_id INTEGER NOT NULL REFERENCES zerver_namedusergroup(id) ON DELETE CASCADE,
    user_profile_id INTEGER NOT NULL REFERENCES zerver_userprofile(id) ON DELETE CASCADE,
    UNIQUE (user_group_id, user_profile_id)
);
"""

# Zulip < 6.0 only (migration 0415_delete_scimclient drops it).
SCIM_CLIENT_SCHEMA = """
CREATE TABLE zerver_scimclient (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES zerver_realm(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (realm_id, name)
);
"""


def connect(path: str) -> sqlite3.Connection:
    # Autocommit; the server and manage.py calls share the file, so wait on locks.
    conn = sqlite3.connect(path, timeout=15, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def realm_display_name(string_id: str) -> str:
    return f"{string_id.capitalize()} SCIM Test" if string_id else "Root SCIM Test"


def realm_host(string_id: str, external_host: str) -> str:
    return f"{string_id}.{external_host}" if string_id else external_host


def host_name(external_host: str) -> str:
    """EXTERNAL_HOST without its port ("localhost:9991" -> "localhost"): what emails and certificates use."""
    return external_host.rsplit(":", 1)[0] if external_host.count(":") == 1 else external_host


def profile_field_var_name(name: str) -> str:
    """How SCIM_CONFIG's custom_profile_field_map names a field: its name lower-cased, spaces as "_"."""
    return name.lower().replace(" ", "_")


def init_db(conn: sqlite3.Connection, rules: Rules, realms: Iterable[str], external_host: str,
            profile_fields: dict[str, list[str]] | None = None) -> None:
    """A fresh database: zulipinternal (id 1), then the realms in order, one owner each, and their
    custom profile fields (short text, type 1)."""
    conn.executescript(BASE_SCHEMA)
    if rules.scim_client_table:
        conn.executescript(SCIM_CLIENT_SCHEMA)
    conn.execute("INSERT INTO zerver_realm (string_id, name) VALUES (?, ?)", INTERNAL_REALM)
    for string_id in realms:
        cur = conn.execute(
            "INSERT INTO zerver_realm (string_id, name) VALUES (?, ?)",
            (string_id, realm_display_name(string_id)),
        )
        # Every real organization has an owner; SCIM lists them too.
        conn.execute(
            "INSERT INTO zerver_userprofile (realm_id, delivery_email, full_name, role) VALUES (?, ?, ?, ?)",
            (cur.lastrowid, f"owner@{realm_host(string_id, host_name(external_host))}", "Realm Owner", ROLE_OWNER),
        )
        for field_name in (profile_fields or {}).get(string_id, []):
            conn.execute("INSERT INTO zerver_customprofilefield (realm_id, name) VALUES (?, ?)",
                         (cur.lastrowid, field_name))


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None
