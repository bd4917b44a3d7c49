#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_scim_check
short_description: Prove that a Zulip server accepts its SCIM bearer tokens
version_added: 0.1.0
description:
  - For each realm, sends C(GET /scim/v2/Users?count=1) to the server from the Zulip host itself, with the realm's bearer token,
    without a token, and with a freshly made random token. It fails unless the first gets HTTP 200 and the others HTTP 401.
  - The token is read on the host from C(zulip-secrets.conf), by the name the realm's
    C(SCIM_CONFIG) entry uses, so it does not travel for this check.
  - Tokens that must no longer work (after a rotation, or for a disabled realm) can be given in
    O(rejected_tokens); each must get HTTP 401.
  - When nothing answers at O(api_url) it fails at once, naming the URL, unless O(after_restart) says
    the server may still be starting.
  - It only sends requests, except with O(forget_previous=true); then, once every check passed, it deletes the
    previous configuration that M(zulip_ops.zulip.zulip_scim_config) kept for a roll-back, and reports
    C(changed) when there was one to delete. It is not read-only then.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.api
attributes:
  check_mode:
    support: full
    details:
      - The same requests are sent. With O(forget_previous=true) nothing is deleted; C(changed) and
        RV(forgot_previous) say whether a kept previous configuration would be.
  diff_mode:
    support: none
    details: Deleting the kept previous configuration shows no diff.
  idempotent:
    support: full
    details: Without O(forget_previous=true) it changes nothing; with it, a second run finds nothing to delete.
options:
  realms:
    description: Subdomains whose stored token must be accepted. V("") is the root-domain realm.
    type: list
    elements: str
    default: []
  rejected_tokens:
    description:
      - Tokens that must get HTTP 401, by subdomain; a value is one token or a list of tokens.
      - For example the RV(zulip_ops.zulip.zulip_scim_token#module:previous_tokens) and
        RV(zulip_ops.zulip.zulip_scim_token#module:retired_tokens) of M(zulip_ops.zulip.zulip_scim_token).
    type: dict
    default: {}
  attempts:
    description:
      - How often to ask while the server answers 502, 503 or 504 (it is restarting behind nginx), and,
        with O(after_restart=true), while nothing answers yet.
    type: int
    default: 10
  delay:
    description: Seconds between attempts.
    type: float
    default: 2
  after_restart:
    description:
      - The server was restarted just before, so wait (O(attempts), O(delay)) while nothing answers yet.
      - Otherwise a connection that nothing answers fails at once.
    type: bool
    default: false
  forget_previous:
    description:
      - When every check passed, delete the previous configuration kept by
        M(zulip_ops.zulip.zulip_scim_config) (O(zulip_ops.zulip.zulip_scim_config#module:keep_previous=true)),
        the new one is proven, and the copy of the secrets file must not outlive that.
      - When a check fails the copy stays, for M(zulip_ops.zulip.zulip_server) with
        O(zulip_ops.zulip.zulip_server#module:state=rolled_back).
    type: bool
    default: false
seealso:
  - module: zulip_ops.zulip.zulip_scim_config
  - module: zulip_ops.zulip.zulip_scim_preflight
"""

EXAMPLES = r"""
- name: Prove the stored tokens work and anonymous requests are refused
  zulip_ops.zulip.zulip_scim_check:
    realms: [acme, ""]

- name: Prove a rotated-out token no longer works
  zulip_ops.zulip.zulip_scim_check:
    realms: [acme]
    rejected_tokens:
      acme: "{{ old_token }}"
"""

RETURN = r"""
realms:
  description:
    - The HTTP status each request got, per realm.
    - When the check fails, or stops because nothing answers any more, the realms asked until then.
  returned: always
  type: dict
  sample: {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401, "rejected_tokens": [401]}}
forgot_previous:
  description:
    - Whether a kept previous configuration was deleted (O(forget_previous=true), every check passed); in check
      mode, whether it would be. The same as C(changed).
  returned: success
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_check as scim_check
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _tls as tls
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import API_OPTIONS, argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

ARGUMENT_SPEC = argument_spec(
    API_OPTIONS + ("rejected_tokens",),
    realms=dict(type="list", elements="str", default=[]),
    attempts=dict(type="int", default=scim_check.DEFAULT_ATTEMPTS),
    delay=dict(type="float", default=scim_check.DEFAULT_DELAY),
    after_restart=dict(type="bool", default=False),
    forget_previous=dict(type="bool", default=False),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        tls.check_api_options(params)
        results = scim_check.prove(params, params["realms"], params["rejected_tokens"],
                                   params["attempts"], params["delay"], params["after_restart"])
    except scim_check.ProveError as exc:
        module.fail_json(msg=str(exc), realms=exc.realms)
    except ZulipError as exc:
        module.fail_json(msg=str(exc), realms={})
    forgot = False
    if params["forget_previous"]:
        paths = previous.configuration_paths(params)
        try:
            # changed only when a kept copy was (in check mode: would be) deleted.
            forgot = bool(previous.kept(paths)) if module.check_mode else previous.forget(paths)
        except ZulipError as exc:
            module.fail_json(msg=str(exc), realms=results)
    module.exit_json(changed=forgot, forgot_previous=forgot, realms=results)


if __name__ == "__main__":
    main()
