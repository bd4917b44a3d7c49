# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The realms and SCIM client rows of a Zulip 5.x server, read without starting Django.

``manage.py shell`` costs a Django start (3.5 s on the real 5.6 test image, 7-9 s on a
production 9.x). The same two tables can be read straight from the database Zulip
already uses: PostgreSQL on the same host, reached over its Unix socket with peer
authentication as the ``zulip`` user, database ``zulip`` (schema ``zulip`` comes from
the role's search_path). Measured on the real 5.6 image: 0.12-0.3 s a call.

The query runs in a read-only transaction (``PGOPTIONS=-c default_transaction_read_only=on``:
the server itself refuses any write). Zero bytes separate fields and records, so no
name can be mistaken for a separator. When psql is missing or cannot connect (a remote
database: ``REMOTE_POSTGRES_HOST``), the caller falls back to ``manage.py shell``.
"""

from __future__ import annotations

import json
import time
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    MANAGE_KILL_GRACE,
    ZULIP_USER,
    ManageRunner,
    ZulipError,
    as_user,
)

# One row per realm ('realm', string_id, '') and per client ('client', realm, name).
LIST_SQL = (
    "SELECT 'realm', string_id, '' FROM zerver_realm "
    "UNION ALL SELECT 'client', r.string_id, c.name FROM zerver_scimclient c "
    "JOIN zerver_realm r ON r.id = c.realm_id"
)
PSQL_OPTIONS = ["-X", "-q", "-A", "-t", "-z", "-0", "-w", "-v", "ON_ERROR_STOP=1", "-d", "zulip", "-c"]
PSQL_ENV = {"PGOPTIONS": "-c default_transaction_read_only=on", "LC_ALL": "C.UTF-8"}
PSQL_TIMEOUT = 30  # a query of two small tables; longer means the database hangs
COLUMNS = 3

# Marks the one line of manage.py shell output that is ours: Django or Zulip
# may print warnings around it.
OUTPUT_MARKER = "ZULIP_OPS_SCIM_CLIENTS "

MANAGE_LIST_CODE = (
    "import json\n"
    "from zerver.models import Realm, SCIMClient\n"
    "print(%r + json.dumps({\n"
    "    'realms': [r.string_id for r in Realm.objects.all()],\n"
    "    'clients': [[c.realm.string_id, c.name] for c in SCIMClient.objects.all()],\n"
    "}))\n" % OUTPUT_MARKER
)

if t.TYPE_CHECKING:  # annotations only: the host's Python may be older
    Listing = tuple[list[str], set[tuple[str, str]]]


def parse_psql(stdout: str) -> Listing:
    """Realms and (realm, name) client pairs from psql's zero-separated unaligned output."""
    # psql ends the last record with a separator too when it is a zero byte.
    text = stdout[:-1] if stdout.endswith("\0") else stdout
    fields = text.split("\0") if text else []
    if len(fields) % COLUMNS:
        raise ZulipError("psql printed %d fields, not rows of %d" % (len(fields), COLUMNS))
    realms, clients = [], set()
    for index in range(0, len(fields), COLUMNS):
        kind, realm, name = fields[index:index + COLUMNS]
        if kind == "realm":
            realms.append(realm)
        elif kind == "client":
            clients.add((realm, name))
        else:
            raise ZulipError("psql printed a row of unknown kind %r" % kind)
    return realms, clients


def parse_manage(stdout: str) -> Listing:
    for line in stdout.splitlines():
        if line.startswith(OUTPUT_MARKER):
            data = json.loads(line[len(OUTPUT_MARKER):])
            return list(data["realms"]), {(pair[0], pair[1]) for pair in data["clients"]}
    raise ZulipError("manage.py shell did not print the SCIM client listing: %s" % stdout.strip()[-500:])


def psql_argv(psql: str, user: str = ZULIP_USER) -> list[str]:
    # Peer authentication: the OS user must be the database role, so run as zulip.
    limit = ["timeout", "--kill-after=%d" % MANAGE_KILL_GRACE, str(PSQL_TIMEOUT)]
    return limit + as_user([psql] + PSQL_OPTIONS + [LIST_SQL], user)


def read_with_psql(module, user: str = ZULIP_USER) -> tuple[Listing | None, dict]:
    """The listing from psql, or None and why not; the call itself is described in the dict."""
    psql = module.get_bin_path("psql")
    if not psql:
        return None, {"tool": "psql", "rc": None, "seconds": 0.0, "error": "psql is not installed"}
    started = time.monotonic()
    finished = programs.run(psql_argv(psql, user), timeout=PSQL_TIMEOUT + MANAGE_KILL_GRACE + 5, environ_update=PSQL_ENV)
    rc, out, err = finished.rc, finished.out, finished.err
    call = {"tool": "psql", "rc": rc, "seconds": round(time.monotonic() - started, 2)}
    if rc != 0:
        call["error"] = (err or out).strip()[-500:] or "rc=%d" % rc
        return None, call
    try:
        return parse_psql(out), call
    except ZulipError as exc:
        call["error"] = str(exc)
        return None, call


def read_listing(module, runner: ManageRunner) -> tuple[Listing, dict]:
    """psql first; ``manage.py shell`` (seconds) with a warning when psql cannot answer."""
    listing, call = read_with_psql(module, runner.user)
    if listing is not None:
        return listing, call
    module.warn("could not read the SCIM clients with psql as %s from the local database zulip (%s); "
                "using manage.py shell instead, which takes seconds" % (runner.user, call["error"]))
    return parse_manage(runner.run(["shell", "-c", MANAGE_LIST_CODE])[1]), call


def clients_to_change(realms: list, listing: t.Any) -> bool:
    """Whether zulip_scim_client must run: the listing (zulip_scim_preflight's scim_clients) is unknown, or a
    present realm's client row is missing, or an absent realm's row is still there."""
    if not isinstance(listing, dict):
        return True
    rows = {(pair[0], pair[1]) for pair in listing.get("clients") or []}
    for item in realms:
        row = (item["subdomain"], item["client_name"])
        if (item.get("state", "present") == "present") != (row in rows):
            return True
    return False
