# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The IdP backends by name: the identity providers whose API can take a realm's token.

An IdP of module_utils/_idps.py without a row here is "manual": the run prints its connection
sheet and a person enters the token. A new backend is a file ``_idp_api_<name>.py`` with a
``connect`` (a ``BackendFactory``) and a line here.
"""

from __future__ import annotations

import importlib
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpBackend, IdpError

# IdP name -> the module that holds its backend; imported only when used (each may need its own library).
BACKEND_MODULES: dict[str, str] = {
    "entra_id": "_idp_api_entra_id",
    "authentik": "_idp_api_authentik",
    "okta": "_idp_api_okta",
}

_PACKAGE = "ansible_collections.zulip_ops.zulip.plugins.plugin_utils"


def automated(idp: str) -> bool:
    return idp in BACKEND_MODULES


def connect(idp: str, options: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> IdpBackend:
    """The backend of ``idp``, connected with ``options`` (no request is made yet)."""
    if idp not in BACKEND_MODULES:
        raise IdpError("%s: no API backend; its realms are connected by hand (the connection sheet)" % idp)
    module = importlib.import_module("%s.%s" % (_PACKAGE, BACKEND_MODULES[idp]))
    return module.connect(options, environ)
