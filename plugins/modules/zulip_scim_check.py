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
  - Changes nothing, except with O(forget_previous=true); then, once every check passed, it deletes the
    previous configuration that M(zulip_ops.zulip.zulip_scim_config) kept for a roll-back.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.info_module
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.api
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
  - module: zulip_ops.zulip.zulip_info
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
  description: The HTTP status each request got, per realm.
  returned: always
  type: dict
  sample: {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401, "rejected_tokens": [401]}}
forgot_previous:
  description: Whether a kept previous configuration was deleted (O(forget_previous=true), every check passed).
  returned: success
  type: bool
  sample: true
"""

import secrets

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import API_OPTIONS, argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import read_secret
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import external_host_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_subdomains,
    realm_label,
    secret_name,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import api_url_of

ARGUMENT_SPEC = argument_spec(
    API_OPTIONS,
    realms=dict(type="list", elements="str", default=[]),
    # Realm to token(s): the values are secrets, the realms are not but go with them.
    rejected_tokens=dict(type="dict", default={}, no_log=True),
    attempts=dict(type="int", default=10),
    delay=dict(type="float", default=2.0),
    after_restart=dict(type="bool", default=False),
    forget_previous=dict(type="bool", default=False),
)


class Checker:
    def __init__(self, params: dict, api_url: str, external_host: str):
        self.params = params
        self.api_url = api_url
        self.external_host = external_host
        self.failures: list[str] = []

    def ask(self, subdomain: str, token: str | None) -> scim_http.ProbeResult:
        result = scim_http.probe_until_settled(
            self.api_url,
            scim_http.realm_host(subdomain, self.external_host),
            token,
            self.params["validate_certs"],
            self.params["timeout"],
            self.params["attempts"],
            self.params["delay"],
            self.params["after_restart"],
        )
        if result.status is None:
            # Nothing listens there: every further request would fail the same way.
            raise ZulipError(scim_http.no_front_end_message(self.api_url, result.error))
        return result

    def expect(self, subdomain: str, what: str, result: scim_http.ProbeResult, status: int) -> int | None:
        if result.status != status:
            self.failures.append("realm %s: %s got %s, expected HTTP %d" % (realm_label(subdomain), what, result.describe(), status))
        return result.status

    def check_realm(self, subdomain: str, token: str | None) -> dict:
        if not token:
            self.failures.append("realm %s: no %s in %s" % (realm_label(subdomain), secret_name(subdomain), self.params["secrets_path"]))
            return {}
        return {
            "with_token": self.expect(subdomain, "the stored token", self.ask(subdomain, token), 200),
            "without_token": self.expect(subdomain, "a request without a token", self.ask(subdomain, None), 401),
            "with_wrong_token": self.expect(subdomain, "a random wrong token", self.ask(subdomain, secrets.token_urlsafe(32)), 401),
        }

    def check_rejected(self, subdomain: str, token: str) -> int | None:
        return self.expect(subdomain, "a token that must no longer work", self.ask(subdomain, token), 401)


def rejected_pairs(rejected: dict) -> list[tuple[str, str]]:
    """(subdomain, token) for every token of O(rejected_tokens), in the order given."""
    pairs = []
    for subdomain, tokens in rejected.items():
        for token in tokens if isinstance(tokens, list) else [tokens]:
            if not isinstance(token, str) or not token:
                raise ZulipError("rejected_tokens[%s]: expected a token or a list of tokens" % realm_label(subdomain))
            pairs.append((subdomain, token))
    return pairs


def read_external_host(params: dict) -> str:
    host = external_host_of(params["settings_path"], params["external_host"])
    if not host:
        raise ZulipError("EXTERNAL_HOST is not a plain string in %s: set external_host" % params["settings_path"])
    return host


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    results: dict = {}
    try:
        rejected = rejected_pairs(params["rejected_tokens"])
        check_subdomains(list(params["realms"]) + [subdomain for subdomain, dummy in rejected])
        api_url = api_url_of(params["api_url"], params["zulip_conf_path"])
        checker = Checker(params, api_url, read_external_host(params))
        for subdomain in params["realms"]:
            token = read_secret(params["secrets_path"], secret_name(subdomain))
            results[subdomain] = checker.check_realm(subdomain, token)
        for subdomain, token in rejected:
            entry = results.setdefault(subdomain, {})
            entry.setdefault("rejected_tokens", []).append(checker.check_rejected(subdomain, token))
    except ZulipError as exc:
        module.fail_json(msg=str(exc), realms=results)
    if checker.failures:
        module.fail_json(msg="SCIM check failed: " + "; ".join(checker.failures), realms=results)
    forgot = False
    if params["forget_previous"] and not module.check_mode:
        try:
            forgot = previous.forget(previous.configuration_paths(params))
        except ZulipError as exc:
            module.fail_json(msg=str(exc), realms=results)
    module.exit_json(changed=forgot, forgot_previous=forgot, realms=results)


if __name__ == "__main__":
    main()
