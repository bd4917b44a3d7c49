# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which ``TokenStore`` a task uses: the choice, its options, and where their defaults come from.

The actions take ``store`` (``vault_file`` or ``hashicorp_vault``) and, for
the second, one ``hashicorp`` dict. An option left empty falls back to the
environment variables the bao CLI reads, ``BAO_ADDR``, ``BAO_NAMESPACE``,
``BAO_CACERT``, and else the vault CLI's ``VAULT_ADDR``, ``VAULT_NAMESPACE``,
``VAULT_CACERT`` (``BAO_*`` wins when both are set, as in the bao CLI), so an
AWX credential or a CI runner that exports them needs no variables at all.
The token's own sources (``BAO_TOKEN``, ``VAULT_TOKEN``, ``~/.vault-token``)
are the token auth method's (``_vault_auth_token.py``). Importing this module
never imports hvac.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import DEFAULT_TIMEOUT as LOCK_TIMEOUT
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import HASHICORP_OPTIONS, HASHICORP_VAULT, VAULT_FILE
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import HashiCorpVaultStore, VaultSettings
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import TokenStore, TokenStoreError
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_file_store import VaultFileStore

# Option -> the environment variables used, first set wins, when the option is empty.
ENVIRONMENT_FALLBACKS = {
    "url": ("BAO_ADDR", "VAULT_ADDR"),
    "namespace": ("BAO_NAMESPACE", "VAULT_NAMESPACE"),
    "ca_cert": ("BAO_CACERT", "VAULT_CACERT"),
}


def _plain(value: t.Any) -> t.Any:
    # Ansible may hand over tagged str subclasses; hvac and requests want str.
    return str.__str__(value) if isinstance(value, str) else value


def vault_settings(options: t.Mapping[str, t.Any] | None, environ: t.Mapping[str, str]) -> VaultSettings:
    """The server settings from the ``hashicorp`` option, empty values taken from ``environ``."""
    given = {key: _plain(value) for key, value in (options or {}).items() if value not in (None, "")}
    for option, variables in ENVIRONMENT_FALLBACKS.items():
        found = next((environ[name] for name in variables if environ.get(name)), None)
        if option not in given and found:
            given[option] = found
    unknown = sorted(set(given) - set(HASHICORP_OPTIONS))
    if unknown:
        raise TokenStoreError("hashicorp: unknown option(s) %s" % ", ".join(unknown))
    if "timeout" in given and (not isinstance(given["timeout"], int) or given["timeout"] < 1):
        raise TokenStoreError("hashicorp.timeout must be a positive number of seconds")
    return VaultSettings(url=given.pop("url", ""), environ=dict(environ), **given)


def hashicorp_store(options: t.Mapping[str, t.Any] | None, environ: t.Mapping[str, str]) -> HashiCorpVaultStore:
    return HashiCorpVaultStore(vault_settings(options, environ))


# -- the front door: which store a task opens, and where the ansible-vault file is ------------------

DEFAULT_FILENAME = ".zulip_scim_tokens.vault.yml"


def text(value: t.Any) -> str | None:
    """A plain ``str`` (Ansible may hand over tagged str subclasses), or None."""
    if value is None:
        return None
    return str.__str__(value) if isinstance(value, str) else str(value)


def default_path(task_vars: t.Mapping[str, t.Any]) -> str:
    """``<inventory_dir>/.zulip_scim_tokens.vault.yml``, else next to the playbook."""
    for var in ("inventory_dir", "playbook_dir"):
        base = text(task_vars.get(var))
        if base:
            return os.path.join(base, DEFAULT_FILENAME)
    raise TokenStoreError("cannot choose a token file: neither inventory_dir nor playbook_dir is set; set path")


def resolve_path(path: str | None, task_vars: t.Mapping[str, t.Any]) -> str:
    """The token file; a relative ``path`` is taken from the playbook's directory, not the cwd."""
    if not path:
        return default_path(task_vars)
    path = text(path) or ""
    if not os.path.isabs(path):
        base = text(task_vars.get("playbook_dir")) or os.getcwd()
        path = os.path.join(base, path)
    return os.path.normpath(path)


def vault_secrets(loader: t.Any) -> list:
    """The vault secrets the play runs with (--vault-password-file, --ask-vault-pass, --vault-id)."""
    vault = getattr(loader, "_vault", None)
    found = list(getattr(vault, "secrets", None) or [])
    if found:
        return found
    # ansible-core >= 2.19 also keeps them in a process-wide context.
    try:
        from ansible.parsing.vault import VaultSecretsContext
    except ImportError:  # pragma: no cover - ansible-core < 2.19
        return []
    context = VaultSecretsContext.current(optional=True)
    return list(getattr(context, "secrets", None) or [])


def _open_vault_file(args: t.Mapping[str, t.Any], task_vars: t.Mapping[str, t.Any], loader: t.Any) -> TokenStore:
    from ansible import constants as C  # pylint: disable=import-outside-toplevel

    return VaultFileStore(resolve_path(args.get("path"), task_vars), vault_secrets(loader),
                          C.DEFAULT_VAULT_ENCRYPT_IDENTITY, args.get("lock_timeout", LOCK_TIMEOUT))


def _open_hashicorp_vault(args: t.Mapping[str, t.Any], task_vars: t.Mapping[str, t.Any], loader: t.Any) -> TokenStore:
    # The controller's environment: BAO_ADDR / VAULT_ADDR, ... as an AWX credential sets them.
    return hashicorp_store(args.get("hashicorp"), os.environ)


# The one table of token stores: a new store is a file and a row here.
OPENERS: dict[str, t.Callable[[t.Mapping[str, t.Any], t.Mapping[str, t.Any], t.Any], TokenStore]] = {
    VAULT_FILE: _open_vault_file,
    HASHICORP_VAULT: _open_hashicorp_vault,
}


def open_store(args: t.Mapping[str, t.Any], task_vars: t.Mapping[str, t.Any], loader: t.Any) -> TokenStore:
    """The front door both token actions use: the store ``args`` choose (``store``), opened with its options
    (``path`` for the ansible-vault file, ``hashicorp`` for KV v2)."""
    return OPENERS[args.get("store") or VAULT_FILE](args, task_vars, loader)
