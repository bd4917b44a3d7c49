"""PostgreSQL's ``psql`` client, as a real Zulip host has it, over the stand-in's sqlite database.

A real Zulip keeps its data in a local PostgreSQL 15 (database ``zulip``, role
``zulip``, schema ``zulip`` first in the role's search_path) reached over the Unix
socket with peer authentication. What was seen on the real 5.6 image, and is
imitated here:

- peer authentication: the OS user must be the role (``-U``, default: the OS user).
  Root gets ``FATAL:  role "root" does not exist``; root with ``-U zulip`` gets
  ``FATAL:  Peer authentication failed for user "zulip"``; both exit 2. Another
  database than ``zulip`` gets ``FATAL:  database "X" does not exist``, exit 2.
- ``-c SQL`` runs one statement; an SQL error prints ``ERROR:  ...`` on stderr, exit 1.
- ``PGOPTIONS='-c default_transaction_read_only=on'``: a write gets
  ``ERROR:  cannot execute DELETE in a read-only transaction``, exit 1.
- output: ``-A`` unaligned, ``-t`` rows only, ``-F``/``-z`` field separator ("|" or a
  zero byte), ``-R``/``-0`` record separator (newline or a zero byte). After the last
  row psql prints a newline, or a zero byte with ``-0``. NULL prints as nothing.
- the options the collection's tools use are understood (``-X -q -w -v NAME=VALUE -d``);
  an unknown one is refused as psql refuses it. Aligned (table) output is not imitated:
  without ``-A`` this prints unaligned rows anyway.

Every call is a ``psql`` event in the ledger (argv, user, rc, seconds): cheap, but
counted, like manage.py calls.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field

from zulip_standin import ledger
from zulip_standin.config import StandinConfig, current_username, load_config

SOCKET = '/var/run/postgresql/.s.PGSQL.5432'
DATABASE = "zulip"
ROLES = ("zulip", "postgres")
READ_ONLY = re.compile(r"default_transaction_read_only\s*=\s*(on|true|1)\b")
WRITES = re.compile(r"^\s*(insert|update|delete|create|drop|alter)\b", re.IGNORECASE)
NO_TABLE = re.compile(r"no such table: (\S+)")
FLAGS = {"-X": "no_psqlrc", "--no-psqlrc": "no_psqlrc", "-q": "quiet", "--quiet": "quiet",
         "-A": "unaligned", "--no-align": "unaligned", "-t": "tuples_only", "--tuples-only": "tuples_only",
         "-z": "field_zero", "--field-separator-zero": "field_zero",
         "-0": "record_zero", "--record-separator-zero": "record_zero",
         "-w": "no_password", "--no-password": "no_password"}
VALUED = {"-c": "command", "--command": "command", "-d": "dbname", "--dbname": "dbname",
          "-U": "username", "--username": "username", "-v": "set", "--set": "set",
          "-F": "field_sep", "--field-separator": "field_sep", "-R": "record_sep", "--record-separator": "record_sep"}


@dataclass
class Options:
    flags: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    def __init__(self, message: str, rc: int) -> None:
        super().__init__(message)
        self.rc = rc


def parse(argv: list[str]) -> Options:
    opts, args = Options(), list(argv)
    while args:
        arg = args.pop(0)
        if arg in FLAGS:
            opts.flags.add(FLAGS[arg])
        elif arg in VALUED and args:
            opts.values[VALUED[arg]] = args.pop(0)
        elif arg.startswith("-") or "dbname" in opts.values:
            raise Refused(f"psql: error: invalid option -- '{arg.lstrip('-')}'\n"
                          'psql: hint: Try "psql --help" for more information.', 1)
        else:
            opts.values["dbname"] = arg
    return opts


def connection_failure(reason: str) -> Refused:
    return Refused(f'psql: error: connection to server on socket "{SOCKET}" failed: FATAL:  {reason}', 2)


def authenticate(opts: Options, os_user: str) -> None:
    """Peer authentication, then the database, in PostgreSQL's order."""
    role = opts.values.get("username", os_user)
    if role not in ROLES:
        raise connection_failure(f'role "{role}" does not exist')
    if role != os_user:
        raise connection_failure(f'Peer authentication failed for user "{role}"')
    database = opts.values.get("dbname", role)
    if database != DATABASE:
        raise connection_failure(f'database "{database}" does not exist')


def run_sql(config: StandinConfig, sql: str, read_only: bool) -> list[tuple]:
    if read_only and WRITES.match(sql):
        raise Refused(f"ERROR:  cannot execute {WRITES.match(sql).group(1).upper()} in a read-only transaction", 1)
    conn = sqlite3.connect(config.db_path, timeout=15, isolation_level=None)
    try:
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        return conn.execute(sql).fetchall()
    except sqlite3.Error as exc:
        missing = NO_TABLE.search(str(exc))
        text = f'relation "{missing.group(1)}" does not exist' if missing else str(exc)
        raise Refused(f"ERROR:  {text}", 1) from None
    finally:
        conn.close()


def render(rows: list[tuple], opts: Options) -> str:
    field_sep = "\0" if "field_zero" in opts.flags else opts.values.get("field_sep", "|")
    record_sep = "\0" if "record_zero" in opts.flags else opts.values.get("record_sep", "\n")
    lines = [field_sep.join("" if value is None else str(value) for value in row) for row in rows]
    return "".join(line + record_sep for line in lines)


def answer(config: StandinConfig, argv: list[str]) -> tuple[int, str, str]:
    try:
        opts = parse(argv)
        authenticate(opts, current_username(config))
        if "command" not in opts.values:
            return 0, "", ""  # an interactive session: nothing the tools need
        read_only = bool(READ_ONLY.search(os.environ.get("PGOPTIONS", "")))
        return 0, render(run_sql(config, opts.values["command"], read_only), opts), ""
    except Refused as exc:
        return exc.rc, "", str(exc) + "\n"


def main(argv: list[str] | None = None) -> int:
    config = load_config()
    args = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    rc, out, err = answer(config, args)
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.stdout.flush()
    ledger.append(config.ledger_path, {"event": "psql", "user": current_username(config), "argv": args, "rc": rc,
                                       "seconds": round(time.monotonic() - started, 3)})
    return rc
