# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Vault auth method ``kubernetes``: log in with the pod's service account token.

For a controller that runs in a Kubernetes pod (AWX, a CI runner): the token
Kubernetes mounts into every pod is sent to ``auth/<kubernetes_mount>/login``
with the role; the server asks the cluster's TokenReview API whether it is
valid and which service account it belongs to.
"""

from __future__ import annotations

import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_common import (
    VaultAuthMethod,
    VaultLogin,
    auth_error,
    auth_mount,
    check_jwt,
    check_one_credential,
    read_credential_file,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._hashicorp_vault_store import VaultSettings

NAME = "kubernetes"
# Where Kubernetes mounts the service account token into a pod.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def prepare(settings: VaultSettings) -> VaultLogin:
    if not settings.kubernetes_role:
        raise auth_error("auth_method kubernetes needs kubernetes_role (zulip_scim_vault_kubernetes_role), the role of "
                         "the kubernetes auth method to log in as")
    role = check_one_credential(settings.kubernetes_role, "kubernetes_role")
    path = settings.kubernetes_token_file or SERVICE_ACCOUNT_TOKEN
    source = "kubernetes_token_file %s" % path
    jwt = check_jwt(read_credential_file(path, "kubernetes_token_file"), source)
    mount = auth_mount(settings.kubernetes_mount, "kubernetes", "kubernetes_mount")
    return VaultLogin(
        what="Kubernetes login at auth/%s as role %s" % (mount, role),
        refused=("the service account token from %s was not accepted for this role: the cluster's TokenReview refused "
                 "it (expired, or another cluster), or its service account or namespace is not bound to the role, "
                 "or no such role" % source),
        request=lambda client: client.auth.kubernetes.login(role=role, jwt=jwt, mount_point=mount),
    )


METHOD = VaultAuthMethod(name=NAME, options=("kubernetes_role", "kubernetes_token_file"), prepare=prepare)
