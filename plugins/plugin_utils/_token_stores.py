# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which ``TokenStore`` a task uses: the choice, its options, and where their defaults come from.

The actions take ``store`` (``vault_file`` or ``hashicorp_vault``) and, for
the second, one ``hashicorp`` dict. An option left empty falls back to the
environment variable the vault/bao CLI reads (``VAULT_ADDR``, ``VAULT_TOKEN``,
``VAULT_NAMESPACE``, ``VAULT_CACERT``), so an AWX credential or a CI runner
that exports them needs no variables at all. Importing this module never
imports hvac.
"""

from __future__ import annotations

import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import (
    AUTH_METHODS,
    DEFAULT_MOUNT,
    DEFAULT_PATH,
    HashiCorpVaultStore,
    VaultSettings,
)
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import TokenStoreError

VAULT_FILE = "vault_file"
HASHICORP_VAULT = "hashicorp_vault"
STORES = (VAULT_FILE, HASHICORP_VAULT)

# Option -> the environment variable used when the option is empty.
ENVIRONMENT_FALLBACKS = {
    "url": "VAULT_ADDR",
    "token": "VAULT_TOKEN",
    "namespace": "VAULT_NAMESPACE",
    "ca_cert": "VAULT_CACERT",
}

HASHICORP_OPTIONS: dict[str, dict[str, t.Any]] = {
    "url": {"type": "str"},
    "auth_method": {"type": "str", "choices": list(AUTH_METHODS), "default": "token"},
    "token": {"type": "str", "no_log": True},
    "role_id": {"type": "str", "no_log": False},
    "secret_id": {"type": "str", "no_log": True},
    "approle_mount": {"type": "str", "default": "approle"},
    "namespace": {"type": "str"},
    "ca_cert": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "allow_insecure_http": {"type": "bool", "default": False},
    "mount": {"type": "str", "default": DEFAULT_MOUNT},
    "path": {"type": "str", "default": DEFAULT_PATH},
    "timeout": {"type": "int", "default": 30},
}

# The argument spec entries every action that opens a store shares.
STORE_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "store": {"type": "str", "choices": list(STORES), "default": VAULT_FILE},
    "hashicorp": {"type": "dict", "default": {}, "options": HASHICORP_OPTIONS},
}


def _plain(value: t.Any) -> t.Any:
    # Ansible may hand over tagged str subclasses; hvac and requests want str.
    return str.__str__(value) if isinstance(value, str) else value


def vault_settings(options: t.Mapping[str, t.Any] | None, environ: t.Mapping[str, str]) -> VaultSettings:
    """The server settings from the ``hashicorp`` option, empty values taken from ``environ``."""
    given = {key: _plain(value) for key, value in (options or {}).items() if value not in (None, "")}
    for option, variable in ENVIRONMENT_FALLBACKS.items():
        if option not in given and environ.get(variable):
            given[option] = environ[variable]
    unknown = sorted(set(given) - set(HASHICORP_OPTIONS))
    if unknown:
        raise TokenStoreError("hashicorp: unknown option(s) %s" % ", ".join(unknown))
    if "timeout" in given and (not isinstance(given["timeout"], int) or given["timeout"] < 1):
        raise TokenStoreError("hashicorp.timeout must be a positive number of seconds")
    return VaultSettings(url=given.pop("url", ""), **given)


def hashicorp_store(options: t.Mapping[str, t.Any] | None, environ: t.Mapping[str, str]) -> HashiCorpVaultStore:
    return HashiCorpVaultStore(vault_settings(options, environ))
