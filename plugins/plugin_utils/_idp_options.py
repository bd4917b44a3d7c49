# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Checking an IdP backend's connection options and a realm's IdP settings, before any request.

A backend declares its ``OPTIONS`` and ``REALM_SETTINGS`` as argument-spec entries (``type``
str, path, bool or int; ``required``; ``default``; ``no_log``) and, for a secret an operator
may export instead, the environment variables to read (first set wins, the option wins over
them). A message names the option, never a secret's value.
"""

from __future__ import annotations

import re
import typing as t
import urllib.parse

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import realm_label
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError, IdpRealm

_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "path": (str,), "bool": (bool,), "int": (int,)}
# A credential goes into an HTTP header: printable ASCII without spaces (no header injection).
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def _plain(value: t.Any) -> t.Any:
    # Ansible may hand over tagged str subclasses; urllib and json want str.
    return str.__str__(value) if isinstance(value, str) else value


def settle(idp: str, spec: t.Mapping[str, t.Mapping[str, t.Any]], given: t.Mapping[str, t.Any] | None,
           environ: t.Mapping[str, str], fallbacks: t.Mapping[str, tuple[str, ...]] | None = None) -> dict[str, t.Any]:
    """``given`` checked against ``spec``, empty values taken from ``environ`` per ``fallbacks``, defaults filled in."""
    values = {key: _plain(value) for key, value in (given or {}).items() if value not in (None, "")}
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise IdpError("%s: unknown option(s) %s; known: %s" % (idp, ", ".join(unknown), ", ".join(spec)))
    for option, variables in (fallbacks or {}).items():
        found = next((environ[name] for name in variables if environ.get(name)), None)
        if option not in values and found:
            values[option] = found
    for option, entry in spec.items():
        if option not in values:
            if entry.get("required"):
                where = " (or %s)" % " / ".join((fallbacks or {}).get(option, ())) if (fallbacks or {}).get(option) else ""
                raise IdpError("%s: option %s is required%s" % (idp, option, where))
            values[option] = entry.get("default")
            continue
        wanted = _TYPES[entry.get("type", "str")]
        value = values[option]
        if not isinstance(value, wanted) or (wanted == (int,) and isinstance(value, bool)):
            raise IdpError("%s: option %s must be a %s" % (idp, option, entry.get("type", "str")))
        if wanted == (int,) and value < 1:
            raise IdpError("%s: option %s must be a positive number" % (idp, option))
    return values


def credential(idp: str, option: str, value: str) -> str:
    """A secret that goes into a header: one printable word. The message never holds it."""
    if not isinstance(value, str) or not _HEADER_SAFE.fullmatch(value):
        raise IdpError("%s: %s is not a usable credential (one word of printable ASCII expected)" % (idp, option))
    return value


def api_root(idp: str, option: str, url: t.Any) -> str:
    """An https (or loopback http, decided by JsonClient) URL of a server, without credentials, query or fragment."""
    parsed = urllib.parse.urlsplit(url if isinstance(url, str) else "")
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        raise IdpError("%s: %s must be the http(s) URL of the server (https://...)" % (idp, option))
    if parsed.username is not None or parsed.password is not None or parsed.query or parsed.fragment:
        raise IdpError("%s: %s must not hold a user, password, query or fragment" % (idp, option))
    return url.rstrip("/")


def realm_setting(idp: str, realm: IdpRealm, name: str, pattern: str, what: str,
                  known: t.Collection[str] = ()) -> str:
    """A realm's id at the IdP (goes into a URL path), checked against ``pattern``; a setting not in ``known``
    (when given) is refused: a misspelt one would otherwise be ignored."""
    unknown = sorted(str(key) for key in (realm.settings or {}) if known and key not in known)
    if unknown:
        raise IdpError("%s, realm %s: unknown idp_settings %s; known: %s" % (
            idp, realm.subdomain, ", ".join(unknown), ", ".join(known)))
    value = _plain(realm.settings.get(name)) if realm.settings else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise IdpError("%s, realm %s: %s must be %s" % (idp, realm.subdomain, name, what))
    return value


def shown_url(url: t.Any) -> str:
    """A URL the IdP holds, for a message: no user, password, query or fragment (they may hold secrets)."""
    if not isinstance(url, str):
        return "(none)"
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or ""
        if parsed.port:
            host = "%s:%d" % (host, parsed.port)
    except ValueError:
        return "(an unreadable URL)"
    return urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", ""))


def realm_error(idp: str, realm: IdpRealm, step: str, message: str) -> IdpError:
    """An error of one realm's step at ``idp``, named the way every backend names it."""
    return IdpError("%s, realm %s, %s: %s" % (idp, realm_label(realm.subdomain), step, message))


def scim_token(idp: str, realm: IdpRealm, token: t.Any) -> str:
    """The realm's SCIM token, checked as a header-safe word before it goes to the IdP (never shown)."""
    try:
        return credential(idp, "the realm's SCIM token", token)
    except IdpError:
        raise realm_error(idp, realm, "push", "the realm's SCIM token is not one word of printable ASCII") from None
