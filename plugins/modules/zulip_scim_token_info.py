#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_scim_token_info
short_description: Read the SCIM bearer tokens a Zulip server uses now
version_added: 0.1.0
description:
  - Finds the bearer token each realm's C(SCIM_CONFIG) entry uses on the host, so that a token
    which already works with an IdP can be adopted into the controller's token store instead of
    being replaced.
  - Looks, per realm, at the C(SCIM_CONFIG) that C(settings.py) ends up with (the last assignment
    wins, as in Python), whether inside the block managed by M(zulip_ops.zulip.zulip_scim_config)
    or written by hand; a C(bearer_token) given as a string is taken as it is, one given as
    C(get_secret("NAME")) is read from C([secrets]) of the secrets file. When the file has no entry
    for the realm, the secret this collection names C(scim_bearer_token_<subdomain>) is used if set.
  - The result holds secrets. M(zulip_ops.zulip.zulip_scim_token) calls this module itself when it
    has no token for a realm; if you call it directly, use C(no_log) on the task.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.info_module
  - zulip_ops.zulip._shared.layout
options:
  realms:
    description: Subdomains to look up. V("") is the root-domain realm.
    type: list
    elements: str
    required: true
seealso:
  - module: zulip_ops.zulip.zulip_scim_token
"""

EXAMPLES = r"""
- name: Read the tokens in use (secret values, keep them out of the output)
  zulip_ops.zulip.zulip_scim_token_info:
    realms: [acme, ""]
  register: current
  no_log: true
"""

RETURN = r"""
tokens:
  description: The token in use per realm; realms without one are left out.
  returned: success
  type: dict
  sample: {"acme": "<a token>"}
sources:
  description: Where each token was found.
  returned: success
  type: dict
  sample: {"acme": "/etc/zulip/zulip-secrets.conf [secrets] scim_bearer_token_acme"}
"""

import ast

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import SecretsFile, read_secrets_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import read_zulip_file, token_references
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_subdomains,
    secret_name,
)


def find_tokens(realms: list[str], settings_source: str, settings_path: str,
                secrets: SecretsFile | None, secrets_path: str) -> tuple[dict, dict]:
    refs = token_references(settings_source)
    tokens, sources = {}, {}
    for realm in realms:
        kind, value, line = refs.get(realm, ("secret", secret_name(realm), 0))
        if kind == "literal":
            token, source = value, "%s:%d (a literal bearer_token)" % (settings_path, line)
        else:
            token = secrets.get(value) if secrets is not None else None
            source = "%s [secrets] %s" % (secrets_path, value)
        if token:
            tokens[realm], sources[realm] = token, source
    return tokens, sources


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            realms=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        check_subdomains(params["realms"])
        try:
            source = read_zulip_file(params["settings_path"]).decode("utf-8")  # bounded and typed, see _safe_dir
        except UnicodeError as exc:
            raise ZulipError("cannot read %s: %s" % (params["settings_path"], exc)) from None
        try:
            ast.parse(source)
        except SyntaxError as exc:
            raise ZulipError("%s does not compile (line %s)" % (params["settings_path"], exc.lineno)) from None
        # A missing secrets file means no tokens: there is nothing to adopt.
        secrets = read_secrets_file(params["secrets_path"])
        tokens, sources = find_tokens(params["realms"], source, params["settings_path"], secrets, params["secrets_path"])
    except ZulipError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, tokens=tokens, sources=sources)


if __name__ == "__main__":
    main()
