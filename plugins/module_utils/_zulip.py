# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Facts about a Zulip server that every module of the collection shares.

Everything here is read-only and cheap: paths, the version from ``version.py``
(parsed as text, never executed), what each version supports for SCIM, and how
``manage.py`` is run (always as the ``zulip`` user, never through a shell).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import string
import time

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import IDPS
from ansible_collections.zulip_ops.zulip.plugins.module_utils._python_source import NotPython, top_level_assignments
from ansible_collections.zulip_ops.zulip.plugins.module_utils._safe_dir import FileRefused, read_deployment_file

DEFAULT_DEPLOY_PATH = "/home/zulip/deployments/current"
SETTINGS_PATH = "/etc/zulip/settings.py"
SECRETS_PATH = "/etc/zulip/zulip-secrets.conf"
ZULIP_USER = "zulip"

# Subdomains as Zulip accepts them (lower-case ASCII letters, digits, inner
# hyphens, at most 63 characters: one DNS label); "" is the root-domain realm.
# Checked character by character, never with a regex: "$" also matches before
# a trailing newline, and str.isalnum() accepts non-ASCII letters.
SUBDOMAIN_MAX_LENGTH = 63
_SUBDOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
# A SCIM client name is a label (scim_client_name in SCIM_CONFIG, the SCIMClient row's
# name on 5.x): a short, plain ASCII name, so that it means the same in settings.py,
# on a command line and in a log line, and can never carry a quote, "#" or a line end.
CLIENT_NAME_MAX_LENGTH = 64
_CLIENT_NAME_CHARS = frozenset(string.ascii_letters + string.digits + " ._-()+@:")
CLIENT_NAME_CHARS_TEXT = "ASCII letters, digits, spaces and . _ - ( ) + @ :"
REALM_STATES = ("present", "absent")
# Longer values are cut in messages: a message names the value, it need not repeat a page of it.
_SHOWN_LENGTH = 60
# A Zulip version as version.py declares it: 5.6, 11.2.1, 10.0-beta1, 11.0-rc1, 12.0-dev+git.
# fullmatch and [0-9], not $ and \d: "$" also matches before a final newline, \d any Unicode digit.
_VERSION_GRAMMAR = re.compile(r"[0-9]{1,4}\.[0-9]{1,4}(?:\.[0-9]{1,4})?(?:-(?:dev|(?:alpha|beta|rc)[0-9]{1,3}))?(?:\+git)?")
VERSION_FORM_TEXT = "MAJOR.MINOR[.PATCH][-dev|-betaN|-rcN][+git], e.g. 9.2, 11.0-rc1 or 12.0-dev+git"
_VERSION_NUMBERS_RE = re.compile(r"^([0-9]+)\.([0-9]+)")
# EXTERNAL_HOST: a DNS name (labels of ASCII letters, digits and inner hyphens), an IPv4
# address or a bracketed IPv6 address, with an optional :PORT. Nothing else can be in a URL's
# authority, a Host header or the connection sheet without changing what they mean.
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-.:[]")
_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "-")
HOST_NAME_MAX_LENGTH = 253
HOST_LABEL_MAX_LENGTH = 63
HOST_FORM_TEXT = "a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional :PORT"

# The SCIMClient table exists before 6.0 only (migration 0415_delete_scimclient).
SCIM_CLIENT_TABLE_UNTIL = (6, 0)
# CVE-2022-41914: tokens compared with a plain != before 5.7.
CONSTANT_TIME_TOKEN_SINCE = (5, 7)
# Optional SCIM_CONFIG keys and the first version that reads them.
OPTIONAL_KEY_SINCE = {
    "create_guests_without_streams": (9, 0),
    "custom_profile_field_map": (12, 0),
}
# Before 11.0 a server without any SCIM_CONFIG answers every SCIM request with 500.
SCIM_CONFIG_DEFAULT_SINCE = (11, 0)
# Groups (and their members) sync over SCIM from 11.0 on.
GROUPS_SYNC_SINCE = (11, 0)

# manage.py starts Django (7-9 s on a real server); a call that takes minutes hangs.
MANAGE_TIMEOUT = 300
MANAGE_KILL_GRACE = 10
# What coreutils timeout exits with when it stopped the command (TERM: 124, KILL: 128 + 9).
TIMED_OUT_RCS = (124, 137)

SECRET_PREFIX = "scim_bearer_token_"
# Subdomains cannot hold "_", so this name can never collide with a realm's.
ROOT_SECRET_SUFFIX = "_root"


class ZulipError(Exception):
    """A problem an operator must fix, with a message that says how."""


def show_value(value: object) -> str:
    """``value`` for a message: its repr (so a newline shows as \\n), cut when long."""
    if isinstance(value, str) and len(value) > _SHOWN_LENGTH:
        return "%r... (%d characters)" % (value[:_SHOWN_LENGTH], len(value))
    return repr(value)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _first_not_in(value: str, allowed: frozenset) -> str | None:
    return next((ch for ch in value if ch not in allowed), None)


# -- the rules for what an operator gives: one function per kind of value, one message per rule.
# Every check of the collection (modules, filters, the scim role) calls these; none repeats them.


def subdomain_problem(value: object) -> str | None:
    """Which rule ``value`` breaks as a realm subdomain, or None when it is valid."""
    if not isinstance(value, str):
        return "a subdomain is a string, not %s" % _type_name(value)
    if value == "":
        return None  # the root-domain realm
    bad = _first_not_in(value, _SUBDOMAIN_CHARS)
    if bad is not None:
        return ("%r is not allowed in a subdomain (only lower-case ASCII letters, digits and hyphens; "
                "\"\" is the root domain)" % bad)
    if len(value) > SUBDOMAIN_MAX_LENGTH:
        return "a subdomain has at most %d characters, this one %d" % (SUBDOMAIN_MAX_LENGTH, len(value))
    if value.startswith("-") or value.endswith("-"):
        return "a subdomain cannot start or end with a hyphen"
    return None


def is_valid_subdomain(subdomain: object) -> bool:
    return subdomain_problem(subdomain) is None


def subdomain_message(value: object) -> str:
    """The error for an invalid subdomain: the value, then the rule it breaks."""
    return "%s is not a valid Zulip subdomain: %s" % (show_value(value), subdomain_problem(value))


def check_subdomains(subdomains) -> None:
    """Fails, naming every offender and its rule, unless each is a valid subdomain."""
    invalid = [s for s in subdomains if not is_valid_subdomain(s)]
    if invalid:
        raise ZulipError("; ".join(subdomain_message(s) for s in invalid))


def client_name_problem(value: object) -> str | None:
    """Which rule ``value`` breaks as a SCIM client name, or None when it is valid."""
    if not isinstance(value, str):
        return "a client name is a string, not %s" % _type_name(value)
    if not value.strip():
        return "a client name cannot be empty"
    bad = _first_not_in(value, _CLIENT_NAME_CHARS)
    if bad is not None:
        return "%r is not allowed in a client name (only %s)" % (bad, CLIENT_NAME_CHARS_TEXT)
    if len(value) > CLIENT_NAME_MAX_LENGTH:
        return "a client name has at most %d characters, this one %d" % (CLIENT_NAME_MAX_LENGTH, len(value))
    if value != value.strip():
        return "a client name cannot start or end with a space"
    return None


def _field_map_problem(value: object) -> str | None:
    """custom_profile_field_map: SCIM attribute -> custom profile field name, both printable text."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return "must be a dict of SCIM attribute to custom profile field name, not %s" % _type_name(value)
    for key, name in value.items():
        for text in (key, name):
            if not isinstance(text, str) or not text.strip() or not text.isprintable():
                return ("%s -> %s: both sides must be non-empty printable strings (no line ends or control "
                        "characters)" % (show_value(key), show_value(name)))
    return None


def _realm_item_problem(item: dict, where: str) -> str | None:
    """The first rule a (defaults-filled) realm item breaks, located by ``where``; None when none."""
    subdomain = item.get("subdomain")
    if subdomain_problem(subdomain):
        return "%s.subdomain: %s" % (where, subdomain_message(subdomain))
    state = item.get("state", "present")
    if state not in REALM_STATES:
        return "%s.state: %s is not a state; use one of %s" % (where, show_value(state), ", ".join(REALM_STATES))
    if state == "absent":
        return None  # nothing of it is written: the rest does not matter
    problem = client_name_problem(item.get("client_name"))
    if problem:
        return "%s.client_name: %s is not a valid client name: %s" % (
            where, show_value(item.get("client_name")), problem)
    problem = _field_map_problem(item.get("custom_profile_field_map"))
    if problem:
        return "%s.custom_profile_field_map: %s" % (where, problem)
    idp = item.get("idp")
    if idp is not None and idp not in IDPS:
        return "%s.idp: %s is not an identity provider this collection knows; use one of %s" % (
            where, show_value(idp), ", ".join(IDPS))
    return None


def check_realm_items(items, where: str = "realms", one_per_realm: bool = True) -> None:
    """The one check of a list of realm items (zulip_scim_config, zulip_scim_client, the scim role).

    Fails on the first problem: a message that names the item, the offending value and the rule.
    ``one_per_realm``: a realm may be listed once (SCIM_CONFIG has one entry per realm); without
    it, once per client name (a 5.x realm may have several SCIM client rows).
    """
    if not isinstance(items, (list, tuple)):
        raise ZulipError("%s must be a list of realm items, not %s" % (where, _describe(items)))
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        item_where = "%s[%d]" % (where, index)
        if not isinstance(item, dict) or "subdomain" not in item:
            raise ZulipError("%s: a realm item is a dict with at least a subdomain, not %s"
                             % (item_where, show_value(item)))
        problem = _realm_item_problem(item, item_where)
        if problem:
            raise ZulipError(problem)
        subdomain = item["subdomain"]
        key = subdomain if one_per_realm else "%s\0%s" % (subdomain, item.get("client_name"))
        if key in seen:
            what = "realm %s" % realm_label(subdomain)
            if not one_per_realm:
                what = "client %s of %s" % (show_value(item.get("client_name")), what)
            raise ZulipError("%s: %s is listed twice (also %s[%d]); list each once"
                             % (item_where, what, where, seen[key]))
        seen[key] = index


def _describe(value: object) -> str:
    if isinstance(value, str):
        return "the string %s" % show_value(value)
    return _type_name(value)


def check_realm_names(value: object, name: str, allowed=None, allowed_what: str = "") -> list:
    """A list of realm subdomains given as ``name`` (e.g. zulip_scim_rotate_realms), checked.

    A string is refused, not split: ``-e zulip_scim_rotate_realms=acme`` gives a
    string, and ``"" in "acme"`` is true, so the root domain would match it.
    With ``allowed``, every name must be one of them (``allowed_what`` says which those are).
    """
    if not isinstance(value, (list, tuple)):
        hint = ""
        if isinstance(value, str):
            as_json = json.dumps({name: [part.strip() for part in value.split(",")]})
            hint = "; on the command line write it as JSON: -e '%s'" % as_json
        raise ZulipError("%s must be a list of realm subdomains, not %s%s" % (name, _describe(value), hint))
    for index, subdomain in enumerate(value):
        if not is_valid_subdomain(subdomain):
            raise ZulipError("%s[%d]: %s" % (name, index, subdomain_message(subdomain)))
    if allowed is not None:
        unknown = [s for s in value if s not in allowed]
        if unknown:
            raise ZulipError("%s names %s, not a realm %s (those are: %s)"
                             % (name, ", ".join(realm_label(s) for s in unknown), allowed_what or "of the list",
                                ", ".join(realm_label(s) for s in allowed) or "none"))
    return list(value)


# -- values read from zulip-owned files (EXTERNAL_HOST in settings.py, ZULIP_VERSION in version.py) or given
# for them: data, checked before they go into a URL, a Host header, a module's result or the connection sheet.


def _port_problem(port: str) -> str | None:
    if not port or len(port) > 5 or _first_not_in(port, frozenset(string.digits)) is not None:
        return "the port must be a number from 1 to 65535"
    if not 1 <= int(port) <= 65535:
        return "the port must be a number from 1 to 65535"
    return None


def _ipv6_problem(address: str) -> str | None:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return "%s in brackets is not an IPv6 address" % show_value(address)
    return None


def _host_name_problem(name: str) -> str | None:
    """A DNS name of LDH labels, or (when every label is a number) an IPv4 address."""
    if not name:
        return "the host name is empty"
    if len(name) > HOST_NAME_MAX_LENGTH:
        return "a host name has at most %d characters, this one %d" % (HOST_NAME_MAX_LENGTH, len(name))
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return "%s is neither a DNS name nor an IPv4 address" % show_value(name)
        return None
    for label in labels:
        if not label:
            return "a host name has no empty labels (two dots in a row, or a dot at the start or the end)"
        bad = _first_not_in(label, _LABEL_CHARS)
        if bad is not None:
            return "%r is not allowed in a host name (only ASCII letters, digits, hyphens and dots)" % bad
        if len(label) > HOST_LABEL_MAX_LENGTH:
            return "a label of a host name has at most %d characters, %s has %d" % (
                HOST_LABEL_MAX_LENGTH, show_value(label), len(label))
        if label.startswith("-") or label.endswith("-"):
            return "a label of a host name cannot start or end with a hyphen"
    return None


def external_host_problem(value: object) -> str | None:
    """Which rule ``value`` breaks as a host[:port] (EXTERNAL_HOST, a realm's host), or None when it is valid."""
    if not isinstance(value, str):
        return "a host is a string, not %s" % _type_name(value)
    if not value:
        return "the host is empty"
    bad = _first_not_in(value, _HOST_CHARS)
    if bad is not None:
        return "%r is not allowed in a host (%s)" % (bad, HOST_FORM_TEXT)
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "an IPv6 address opened with [ is not closed with ]"
        problem = _ipv6_problem(value[1:end])
        rest = value[end + 1:]
        if problem is None and rest:
            problem = _port_problem(rest[1:]) if rest.startswith(":") else "only :PORT may follow ]"
        return problem
    if "[" in value or "]" in value:
        return "brackets may only enclose an IPv6 address at the start (%s)" % HOST_FORM_TEXT
    name, colon, port = value.partition(":")
    if colon and ":" in port:
        return "an IPv6 address must be written in brackets, e.g. [2001:db8::1]:8443"
    return _host_name_problem(name) or (_port_problem(port) if colon else None)


def check_external_host(value: object, where: str) -> str:
    """``value`` when it is a valid host[:port]; else a ZulipError naming ``where``, the value (shown safely) and the rule."""
    problem = external_host_problem(value)
    if problem:
        raise ZulipError("%s: %s is not a valid host (%s): %s" % (where, show_value(value), HOST_FORM_TEXT, problem))
    return value


def version_problem(value: object) -> str | None:
    """Which rule ``value`` breaks as a Zulip version, or None when it is one."""
    if not isinstance(value, str):
        return "a version is a string, not %s" % _type_name(value)
    if not _VERSION_GRAMMAR.fullmatch(value):
        return "a Zulip version has the form %s" % VERSION_FORM_TEXT
    return None


def as_user(argv: list[str], user: str = ZULIP_USER) -> list[str]:
    """``argv`` run as ``user``: Zulip's tools refuse root, and root may switch without a password."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"] + list(argv)
    return list(argv)


def secret_name(subdomain: str) -> str:
    """Name of the ``[secrets]`` entry that holds the realm's bearer token."""
    if not is_valid_subdomain(subdomain):
        raise ZulipError(subdomain_message(subdomain))
    return SECRET_PREFIX + (subdomain or ROOT_SECRET_SUFFIX)


def realm_label(subdomain: str) -> str:
    """How a realm is named in messages: the root domain has no subdomain."""
    return subdomain if subdomain else '"" (root domain)'


def realm_list(subdomains) -> str:
    """Realms in plain words for a message, in the order given: ``acme, "" (root domain)``."""
    return ", ".join(realm_label(s) for s in subdomains) or "none"


def parse_version(version: str) -> tuple[int, int]:
    """``"12.0-dev+git"`` -> ``(12, 0)``; the whole text must be a version (it is shown in results and the sheet)."""
    problem = version_problem(version)
    match = _VERSION_NUMBERS_RE.match(version) if problem is None else None
    if not match:
        raise ZulipError("cannot read a Zulip version from %s: %s" % (show_value(version), problem))
    return int(match.group(1)), int(match.group(2))


def version_in_source(source: str | bytes, path: str) -> str:
    """``ZULIP_VERSION`` of a version.py's text: the last top-level ``ZULIP_VERSION = "..."``, checked.

    Zulip's own version.py sets it to a literal, then (since 2.1) may set it again from a
    ``zulip-git-version`` file at run time (``ZULIP_VERSION = lines.pop(0).strip()``): that value
    exists only when the file runs, which the collection never does, so the literal is the
    version. Text that only looks like an assignment (a docstring, a comment) is not one.
    """
    try:
        assignments = top_level_assignments(source, "ZULIP_VERSION")
    except NotPython as exc:
        raise ZulipError("%s does not parse as Python (%s), so its ZULIP_VERSION cannot be read" % (path, exc)) from None
    literals = [a for a in assignments if a.value is not None]
    if not literals:
        raise ZulipError("%s has no ZULIP_VERSION line (a top-level ZULIP_VERSION = \"X.Y\")" % path)
    last = literals[-1]
    problem = version_problem(last.value)
    if problem:
        raise ZulipError("%s:%d: cannot read a Zulip version from %s (ZULIP_VERSION): %s"
                         % (path, last.line, show_value(last.value), problem))
    return last.value


def read_version(deploy_path: str) -> str:
    """The ``ZULIP_VERSION`` string of a deployment, read as text."""
    path = os.path.join(deploy_path, "version.py")
    try:
        # Bounded and typed, through the zulip-owned `current` link read as data (see _safe_dir).
        text = read_deployment_file(deploy_path, "version.py").content
    except OSError as exc:
        raise ZulipError(
            "no Zulip deployment at %s: cannot read %s (%s)"
            % (deploy_path, exc.filename if isinstance(exc, FileRefused) else path, exc.strerror)
        ) from None
    return version_in_source(text, path)


def has_scim_client_table(version: tuple[int, int]) -> bool:
    return version < SCIM_CLIENT_TABLE_UNTIL


def unsupported_keys(keys, version: tuple[int, int]) -> list[str]:
    """Optional SCIM_CONFIG keys that this server version does not know."""
    return sorted(k for k in keys if k in OPTIONAL_KEY_SINCE and version < OPTIONAL_KEY_SINCE[k])


def version_label(version: tuple[int, int]) -> str:
    return "%d.%d" % version


def optional_keys_of(item: dict) -> list[str]:
    """The version-gated keys a realm item (or entry) sets; None means "not set"."""
    return [key for key in OPTIONAL_KEY_SINCE if item.get(key) is not None]


def check_optional_keys(subdomain: str, keys, version: tuple[int, int]) -> None:
    """The one check of version-gated SCIM_CONFIG keys: fails on the first key the server lacks."""
    for key in unsupported_keys(keys, version):
        raise ZulipError(
            "realm %s: %s needs Zulip %s or later, but this server runs %s; remove the key or "
            "upgrade Zulip first" % (realm_label(subdomain), key, version_label(OPTIONAL_KEY_SINCE[key]),
                                     version_label(version))
        )


class ManageRunner:
    """Runs ``manage.py`` as the zulip user and counts what it costs.

    ``manage.py`` refuses root, and a Django start costs seconds, so every call
    is recorded in ``calls`` and returned to the operator.
    """

    def __init__(self, module, deploy_path: str, user: str = ZULIP_USER, timeout: int = MANAGE_TIMEOUT):
        self.module = module
        self.deploy_path = deploy_path
        self.user = user
        self.timeout = timeout
        self.calls: list[dict] = []

    def command(self, args: list[str]) -> list[str]:
        # coreutils timeout: a manage.py that hangs (a database that does not answer) is stopped,
        # TERM first, KILL after a grace period, instead of holding the play for ever.
        limit = ["timeout", "--kill-after=%d" % MANAGE_KILL_GRACE, str(self.timeout)] if self.timeout > 0 else []
        return limit + as_user([os.path.join(self.deploy_path, "manage.py")] + list(args), self.user)

    def _deadline(self) -> float:
        """The runner's own limit, past coreutils timeout's: it holds also when a child escapes timeout's kill."""
        return self.timeout + MANAGE_KILL_GRACE + 5 if self.timeout > 0 else programs.NO_DEADLINE

    def run(self, args: list[str], check: bool = True) -> tuple[int, str, str]:
        argv = self.command(args)
        started = time.monotonic()
        finished = programs.run(argv, timeout=self._deadline(), environ_update={"LC_ALL": "C.UTF-8"})
        rc, out, err = finished.rc, finished.out, finished.err
        self.calls.append({"args": list(args), "rc": rc, "seconds": round(time.monotonic() - started, 2)})
        if finished.timed_out or (self.timeout > 0 and rc in TIMED_OUT_RCS):
            raise ZulipError(
                "manage.py %s did not finish within %d s (manage_timeout) and was stopped; nothing was changed "
                "by it. Is Zulip's database up (systemctl status postgresql)?" % (args[0] if args else "", self.timeout)
            )
        if check and rc != 0:
            raise ZulipError(
                "manage.py %s failed (rc=%d): %s" % (args[0] if args else "", rc, (err or out).strip()[-2000:])
            )
        return rc, out, err
