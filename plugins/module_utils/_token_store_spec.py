# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The options that choose a token store and say how to reach it, as argument specs.

Here rather than in ``plugin_utils/_token_stores.py`` (which opens the stores) because a
module file declares them too: ``zulip_scim_info`` runs on the host, and its action plugin
reads the store on the controller with these options, which never reach the host. The
documentation is the ``token_store`` doc fragment of ``doc_fragments/_shared.py``.
"""

from __future__ import annotations

import typing as t

VAULT_FILE = "vault_file"
HASHICORP_VAULT = "hashicorp_vault"
STORES = (VAULT_FILE, HASHICORP_VAULT)

# The names of plugin_utils/_vault_auth.py's table, in its order (a unit test holds them together).
VAULT_AUTH_METHODS = ("token", "approle", "jwt", "kubernetes")
DEFAULT_MOUNT = "secret"
DEFAULT_PATH = "zulip_scim"

HASHICORP_OPTIONS: dict[str, dict[str, t.Any]] = {
    "url": {"type": "str"},
    "auth_method": {"type": "str", "choices": list(VAULT_AUTH_METHODS), "default": "token"},
    "token": {"type": "str", "no_log": True},
    "token_file": {"type": "path", "no_log": False},
    "role_id": {"type": "str", "no_log": False},
    "secret_id": {"type": "str", "no_log": True},
    "approle_mount": {"type": "str", "default": "approle"},
    "jwt_role": {"type": "str"},
    "jwt": {"type": "str", "no_log": True},
    "jwt_env": {"type": "str"},
    "jwt_file": {"type": "path"},
    "jwt_mount": {"type": "str", "default": "jwt"},
    "kubernetes_role": {"type": "str"},
    # Empty: the pod's service account token (_vault_auth_kubernetes.SERVICE_ACCOUNT_TOKEN).
    "kubernetes_token_file": {"type": "path", "no_log": False},
    "kubernetes_mount": {"type": "str", "default": "kubernetes"},
    "namespace": {"type": "str"},
    "ca_cert": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "allow_insecure_http": {"type": "bool", "default": False},
    "mount": {"type": "str", "default": DEFAULT_MOUNT},
    "path": {"type": "str", "default": DEFAULT_PATH},
    "timeout": {"type": "int", "default": 30},
}

# The argument spec entries every task that opens a store shares (path: the ansible-vault file).
STORE_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "path": {"type": "path"},
    "store": {"type": "str", "choices": list(STORES), "default": VAULT_FILE},
    "hashicorp": {"type": "dict", "default": {}, "options": HASHICORP_OPTIONS},
}
