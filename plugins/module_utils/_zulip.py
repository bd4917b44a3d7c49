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

import os
import re
import time

DEFAULT_DEPLOY_PATH = "/home/zulip/deployments/current"
SETTINGS_PATH = "/etc/zulip/settings.py"
SECRETS_PATH = "/etc/zulip/zulip-secrets.conf"
ZULIP_USER = "zulip"

# Subdomains as Zulip accepts them (lower-case letters, digits, hyphens); ""
# is the root-domain realm.
_SUBDOMAIN_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?$")
_VERSION_RE = re.compile(r"""^ZULIP_VERSION\s*=\s*["']([^"']+)["']""", re.MULTILINE)
_VERSION_NUMBERS_RE = re.compile(r"^(\d+)\.(\d+)")

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


def is_valid_subdomain(subdomain: str) -> bool:
    return isinstance(subdomain, str) and bool(_SUBDOMAIN_RE.fullmatch(subdomain))


def check_subdomains(subdomains) -> None:
    """Fails, naming every offender, unless each is a valid subdomain."""
    invalid = [s for s in subdomains if not is_valid_subdomain(s)]
    if invalid:
        raise ZulipError("not valid Zulip subdomains: %s" % ", ".join(repr(s) for s in invalid))


def as_user(argv: list[str], user: str = ZULIP_USER) -> list[str]:
    """``argv`` run as ``user``: Zulip's tools refuse root, and root may switch without a password."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"] + list(argv)
    return list(argv)


def secret_name(subdomain: str) -> str:
    """Name of the ``[secrets]`` entry that holds the realm's bearer token."""
    if not is_valid_subdomain(subdomain):
        raise ZulipError("%r is not a valid Zulip subdomain" % (subdomain,))
    return SECRET_PREFIX + (subdomain or ROOT_SECRET_SUFFIX)


def realm_label(subdomain: str) -> str:
    """How a realm is named in messages: the root domain has no subdomain."""
    return subdomain if subdomain else '"" (root domain)'


def parse_version(version: str) -> tuple[int, int]:
    """``"12.0-dev+git"`` -> ``(12, 0)``."""
    match = _VERSION_NUMBERS_RE.match(version or "")
    if not match:
        raise ZulipError("cannot read a Zulip version from %r" % (version,))
    return int(match.group(1)), int(match.group(2))


def read_version(deploy_path: str) -> str:
    """The ``ZULIP_VERSION`` string of a deployment, read as text."""
    path = os.path.join(deploy_path, "version.py")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ZulipError(
            "no Zulip deployment at %s: cannot read %s (%s)" % (deploy_path, path, exc.strerror)
        ) from None
    match = _VERSION_RE.search(text)
    if not match:
        raise ZulipError("%s has no ZULIP_VERSION line" % path)
    return match.group(1)


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

    def run(self, args: list[str], check: bool = True) -> tuple[int, str, str]:
        argv = self.command(args)
        started = time.monotonic()
        rc, out, err = self.module.run_command(argv, cwd="/", environ_update={"LC_ALL": "C.UTF-8"})
        self.calls.append({"args": list(args), "rc": rc, "seconds": round(time.monotonic() - started, 2)})
        if self.timeout > 0 and rc in TIMED_OUT_RCS:
            raise ZulipError(
                "manage.py %s did not finish within %d s (manage_timeout) and was stopped; nothing was changed "
                "by it. Is Zulip's database up (systemctl status postgresql)?" % (args[0] if args else "", self.timeout)
            )
        if check and rc != 0:
            raise ZulipError(
                "manage.py %s failed (rc=%d): %s" % (args[0] if args else "", rc, (err or out).strip()[-2000:])
            )
        return rc, out, err
