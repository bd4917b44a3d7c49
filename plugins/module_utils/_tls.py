# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Where a token may be sent, and whether the certificate there is checked.

Two URLs carry tokens: the Zulip host's own front end (option ``api_url``,
SCIM bearer tokens in the ``Authorization`` header) and the HashiCorp Vault /
OpenBao server of the token store (the Vault token and every SCIM token). On
the loopback interface neither plain HTTP nor an unchecked certificate exposes
anything to the network, so there the old defaults stay. Anywhere else the
certificate is checked unless the operator turns that off, and plain HTTP is
refused unless the operator allows it, both by name.

Loopback is a literal ``127.0.0.0/8`` or ``::1`` address or the name
``localhost`` (which the root-owned ``/etc/hosts`` resolves); any other name,
and any other spelling of an address (``127.1``, ``::ffff:127.0.0.1``), counts
as another machine. Nothing here connects anywhere; the controller-side token
store uses it too.
"""

from __future__ import annotations

import ipaddress
import os

from urllib.parse import urlsplit

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

LOCALHOST = "localhost"
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")
# The modules' options as an operator of the scim role knows them.
ALLOW_HTTP_OPTION = "allow_insecure_http (zulip_scim_api_allow_insecure_http in the scim role)"
CA_PATH_OPTION = "ca_path (zulip_scim_api_ca_path in the scim role)"


def url_host(url: str) -> str:
    """The host of ``url`` without brackets or port ("" when there is none or the URL is malformed)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_loopback_host(host: str) -> bool:
    if host.lower() == LOCALHOST:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # Not address.is_loopback: from Python 3.13 on it also holds for ::ffff:127.0.0.1.
    return address in _LOOPBACK_V4 if address.version == 4 else address == _LOOPBACK_V6


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(url_host(url))


def server_name(host_header: str) -> str:
    """The name a certificate must carry for a ``Host`` header value: without the port, and without
    the brackets of an IPv6 address."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    name, sep, port = host_header.rpartition(":")
    return name if sep and port.isdigit() else host_header


def cleartext_problem(url: str, allow_option: str) -> str | None:
    """Why ``url`` may not carry a token (plain HTTP to another machine), naming ``allow_option``; else None."""
    if not url.lower().startswith("http://") or is_loopback_url(url):
        return None
    return ("%s is plain HTTP to another machine than this one: the tokens would cross the network unencrypted and "
            "unauthenticated. Use https://, or set %s to true if the network between them is trusted"
            % (url, allow_option))


def should_validate(validate_certs: bool | None, url: str | None, ca_path: str | None = None) -> bool:
    """``validate_certs``, or when it is None (automatic): on for another machine or with a CA given,
    off on loopback (no URL means the derived one, always on loopback)."""
    if validate_certs is not None:
        return validate_certs
    return bool(ca_path) or not (url is None or url == "" or is_loopback_url(url))


def ca_path_problem(ca_path: str | None, option: str) -> str | None:
    """Why ``ca_path`` cannot be a CA bundle (it must be a readable file); None when unset or usable."""
    if not ca_path:
        return None
    if not os.path.isfile(ca_path):
        return "%s %s: no such file (expected a PEM CA bundle)" % (option, ca_path)
    if not os.access(ca_path, os.R_OK):
        return "%s %s: not readable" % (option, ca_path)
    return None


def check_api_options(params: dict) -> None:
    """Refuse a front end URL that would send tokens in clear text, or a CA bundle that is not there, and
    settle ``validate_certs`` (None: automatic) to a bool in ``params``.

    The modules call it first thing, before any lock, read or write on the host.
    """
    url = params.get("api_url") or None
    problems = []
    cleartext = None if params.get("allow_insecure_http") else cleartext_problem(url or "", ALLOW_HTTP_OPTION)
    if cleartext:
        problems.append("api_url " + cleartext)
    bad_ca = ca_path_problem(params.get("ca_path"), CA_PATH_OPTION)
    if bad_ca:
        problems.append(bad_ca)
    if problems:
        raise ZulipError("%s; nothing was changed" % "; ".join(problems))
    params["validate_certs"] = should_validate(params.get("validate_certs"), url, params.get("ca_path"))
