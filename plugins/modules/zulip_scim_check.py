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
  - Changes nothing.
author: zulip_ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Sends the same read-only requests in check mode.
  diff_mode:
    support: N/A
    details: This module changes nothing.
  platform:
    platforms: posix
options:
  realms:
    description: Subdomains whose stored token must be accepted. V("") is the root-domain realm.
    type: list
    elements: str
    default: []
  rejected_tokens:
    description: Tokens that each realm must refuse with HTTP 401.
    type: list
    elements: dict
    default: []
    suboptions:
      realm:
        description: Subdomain of the realm.
        type: str
        required: true
      token:
        description: The token that must be refused.
        type: str
        required: true
  secrets_path:
    description: Zulip's secrets file.
    type: path
    default: /etc/zulip/zulip-secrets.conf
  settings_path:
    description: Zulip's C(settings.py), read for C(EXTERNAL_HOST) when O(external_host) is not given.
    type: path
    default: /etc/zulip/settings.py
  external_host:
    description: The server's C(EXTERNAL_HOST); read from O(settings_path) when omitted.
    type: str
  api_url:
    description: Where the Zulip host reaches its own web front end; the realm goes in the C(Host) header.
    type: str
    default: https://127.0.0.1
  validate_certs:
    description:
      - Whether to validate the TLS certificate of O(api_url).
      - Off by default because the request stays on the host and the certificate names
        C(EXTERNAL_HOST), not C(127.0.0.1).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 10
  attempts:
    description: How often to ask while the server answers 502, 503 or 504 or not at all (it may be restarting).
    type: int
    default: 10
  delay:
    description: Seconds between attempts.
    type: float
    default: 2
seealso:
  - module: zulip_ops.zulip.zulip_scim_config
"""

EXAMPLES = r"""
- name: Prove the stored tokens work and anonymous requests are refused
  zulip_ops.zulip.zulip_scim_check:
    realms: [acme, ""]

- name: Prove a rotated-out token no longer works
  zulip_ops.zulip.zulip_scim_check:
    realms: [acme]
    rejected_tokens:
      - realm: acme
        token: "{{ old_token }}"
"""

RETURN = r"""
realms:
  description: The HTTP status each request got, per realm.
  returned: always
  type: dict
  sample: {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401, "rejected_tokens": [401]}}
"""

import secrets

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_subdomains,
    realm_label,
    secret_name,
)


class Checker:
    def __init__(self, params: dict, external_host: str):
        self.params = params
        self.external_host = external_host
        self.failures: list[str] = []

    def ask(self, subdomain: str, token: str | None) -> scim_http.ProbeResult:
        return scim_http.probe_until_settled(
            self.params["api_url"],
            scim_http.realm_host(subdomain, self.external_host),
            token,
            self.params["validate_certs"],
            self.params["timeout"],
            self.params["attempts"],
            self.params["delay"],
        )

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


def read_external_host(params: dict) -> str:
    try:
        host = scim_http.external_host_of(params["settings_path"], params["external_host"])
    except OSError as exc:
        raise ZulipError(str(exc)) from None
    if not host:
        raise ZulipError("EXTERNAL_HOST is not a plain string in %s: set external_host" % params["settings_path"])
    return host


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            realms=dict(type="list", elements="str", default=[]),
            rejected_tokens=dict(
                type="list",
                elements="dict",
                default=[],
                no_log=False,  # a list of realms and tokens: each token is no_log itself, the realms are not secret
                options=dict(
                    realm=dict(type="str", required=True),
                    token=dict(type="str", required=True, no_log=True),
                ),
            ),
            secrets_path=dict(type="path", default="/etc/zulip/zulip-secrets.conf"),
            settings_path=dict(type="path", default="/etc/zulip/settings.py"),
            external_host=dict(type="str"),
            api_url=dict(type="str", default="https://127.0.0.1"),
            validate_certs=dict(type="bool", default=False),
            timeout=dict(type="int", default=10),
            attempts=dict(type="int", default=10),
            delay=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    results: dict = {}
    try:
        subdomains = list(params["realms"]) + [r["realm"] for r in params["rejected_tokens"]]
        check_subdomains(subdomains)
        checker = Checker(params, read_external_host(params))
        for subdomain in params["realms"]:
            try:
                token = scim_http.read_secret(params["secrets_path"], secret_name(subdomain))
            except OSError as exc:
                raise ZulipError(str(exc)) from None
            results[subdomain] = checker.check_realm(subdomain, token)
        for rejected in params["rejected_tokens"]:
            entry = results.setdefault(rejected["realm"], {})
            entry.setdefault("rejected_tokens", []).append(checker.check_rejected(rejected["realm"], rejected["token"]))
    except ZulipError as exc:
        module.fail_json(msg=str(exc), realms=results)
    if checker.failures:
        module.fail_json(msg="SCIM check failed: " + "; ".join(checker.failures), realms=results)
    module.exit_json(changed=False, realms=results)


if __name__ == "__main__":
    main()
