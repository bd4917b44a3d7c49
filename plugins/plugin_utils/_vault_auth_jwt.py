# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Vault auth method ``jwt``: log in with a signed JWT as a role of the ``jwt`` auth method.

The JWT comes from exactly one of: the option ``jwt`` itself, the environment
variable named by ``jwt_env`` (a GitLab CI job's ``id_tokens`` entry, so the
JWT never passes through Ansible variables), or the file ``jwt_file``. The
login is ``POST auth/<jwt_mount>/login`` with the role and the JWT; the
server checks the signature (JWKS, OIDC discovery or ``jwt_validation_pubkeys``)
and the role's bound audiences and claims.
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

NAME = "jwt"
JWT_SOURCES = ("jwt", "jwt_env", "jwt_file")


def _jwt_and_source(settings: VaultSettings) -> tuple[str, str]:
    given = [option for option in JWT_SOURCES if getattr(settings, option)]
    if len(given) != 1:
        raise auth_error(
            "auth_method jwt needs exactly one of jwt, jwt_env (the name of an environment variable that holds it) "
            "or jwt_file (zulip_scim_vault_jwt, zulip_scim_vault_jwt_env, zulip_scim_vault_jwt_file); %s"
            % ("none is set" if not given else "%s are set" % " and ".join(given)))
    if settings.jwt:
        return settings.jwt, "jwt (zulip_scim_vault_jwt)"
    if settings.jwt_env:
        source = "the environment variable %s (jwt_env)" % settings.jwt_env
        value = settings.environ.get(settings.jwt_env)
        if not value:
            raise auth_error("%s is not set or empty on the controller" % source)
        return value, source
    return read_credential_file(settings.jwt_file or "", "jwt_file"), "jwt_file %s" % settings.jwt_file


def prepare(settings: VaultSettings) -> VaultLogin:
    if not settings.jwt_role:
        raise auth_error("auth_method jwt needs jwt_role (zulip_scim_vault_jwt_role), the role of the jwt auth method to log in as")
    role = check_one_credential(settings.jwt_role, "jwt_role")
    value, source = _jwt_and_source(settings)
    jwt = check_jwt(value, source)
    mount = auth_mount(settings.jwt_mount, "jwt", "jwt_mount")
    return VaultLogin(
        what="JWT login at auth/%s as role %s" % (mount, role),
        refused=("the JWT from %s was not accepted for this role: a signature the auth method cannot verify, an "
                 "expired JWT, or an issuer, audience (bound_audiences), subject or claims (bound_claims) the role "
                 "does not allow, or no such role" % source),
        request=lambda client: client.auth.jwt.jwt_login(role=role, jwt=jwt, path=mount),
    )


METHOD = VaultAuthMethod(name=NAME, options=("jwt_role", "jwt", "jwt_env", "jwt_file"), prepare=prepare)
