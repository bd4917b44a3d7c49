# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The argument specs of the options that several modules share, written once.

Their documentation is the doc fragment ``zulip_ops.zulip._shared``; the
defaults here are the constants of ``_zulip`` and ``_zulip_conf``, so a path
is spelled in one place.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import IDPS, name_formatted_included_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._deploy_lock import DEFAULT_TIMEOUT as DEPLOY_LOCK_TIMEOUT
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    DEFAULT_DEPLOY_PATH,
    MANAGE_TIMEOUT,
    SECRETS_PATH,
    SETTINGS_PATH,
    ZULIP_USER,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import ZULIP_CONF_PATH

_SHARED: dict[str, dict[str, t.Any]] = {
    "deploy_path": {"type": "path", "default": DEFAULT_DEPLOY_PATH},
    "settings_path": {"type": "path", "default": SETTINGS_PATH},
    "secrets_path": {"type": "path", "default": SECRETS_PATH},
    "user": {"type": "str", "default": ZULIP_USER},
    "manage_timeout": {"type": "int", "default": MANAGE_TIMEOUT},
    # How long a module that changes the host waits while Zulip's deployment lock exists (doc fragment DEPLOY_LOCK).
    "deploy_lock_timeout": {"type": "int", "default": DEPLOY_LOCK_TIMEOUT},
    "version": {"type": "str"},
    # The front-end options: how the Zulip host reaches its own SCIM API.
    "external_host": {"type": "str"},
    "api_url": {"type": "str"},
    "zulip_conf_path": {"type": "path", "default": ZULIP_CONF_PATH},
    # None: automatic, _tls.should_validate (off on loopback, on for another machine or with ca_path).
    "validate_certs": {"type": "bool"},
    "ca_path": {"type": "path"},
    "allow_insecure_http": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 10},
    # Realm to token(s) that must get HTTP 401 (zulip_scim_check, and the check of an unchanged host
    # in zulip_scim_preflight and zulip_scim_config): the values are secrets.
    "rejected_tokens": {"type": "dict", "default": {}, "no_log": True},
}

# One realm item, as zulip_scim_config and zulip_scim_client take it (doc fragment REALMS).
REALM_ITEM: dict[str, dict[str, t.Any]] = {
    "subdomain": {"type": "str", "required": True},
    "client_name": {"type": "str", "default": "okta"},
    # None: what the realm's IdP sends (_idps.name_formatted_included_of).
    "name_formatted_included": {"type": "bool"},
    "create_guests_without_streams": {"type": "bool"},
    "custom_profile_field_map": {"type": "dict"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    # The connection sheet, the name_formatted_included default, and which IdP API (controller only).
    "idp": {"type": "str", "choices": list(IDPS)},
    # The realm's ids at its IdP, for the IdP's API (action zulip_scim_idp); nothing on the host reads them.
    "idp_settings": {"type": "dict"},
}
_SHARED["realms"] = {"type": "list", "elements": "dict", "required": True, "options": REALM_ITEM}


def with_realm_defaults(item: dict) -> dict:
    """A realm item with the defaults zulip_scim_config's realm items get; name_formatted_included: its IdP's."""
    full = dict({key: spec.get("default") for key, spec in REALM_ITEM.items()}, **item)
    if full.get("name_formatted_included") is None:
        full["name_formatted_included"] = name_formatted_included_of(full)
    return full


# Where Zulip lives on the host. Every module of the action group takes all of them (each reads
# what it needs), so that module_defaults for group/zulip_ops.zulip.zulip can set them once.
LAYOUT = ("deploy_path", "settings_path", "secrets_path", "zulip_conf_path")
# How the Zulip host reaches its own SCIM API (zulip_scim_preflight, zulip_scim_check).
API_OPTIONS = ("external_host", "api_url", "validate_certs", "ca_path", "allow_insecure_http", "timeout")


def shared_options(*names: str) -> dict[str, dict[str, t.Any]]:
    """Fresh copies of the named shared options (AnsibleModule may change what it is given)."""
    unknown = [name for name in names if name not in _SHARED]
    if unknown:
        raise KeyError("no shared option %s" % ", ".join(unknown))
    return {name: copy.deepcopy(_SHARED[name]) for name in names}


def argument_spec(shared: t.Iterable[str] = (), **own: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """A module's argument spec: the LAYOUT options, the other shared options it names, its own."""
    spec = shared_options(*LAYOUT, *shared)
    clash = sorted(set(spec) & set(own))
    if clash:
        raise KeyError("options defined twice: %s" % ", ".join(clash))
    spec.update(own)
    return spec
