# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by the action plugin
# plugins/action/zulip_scim_idp.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zulip_scim_idp
short_description: Give a realm's identity provider its SCIM base URL and bearer token over the IdP's API
version_added: 0.1.0
description:
  - The identity provider side of a realm's token, for the realms whose item has C(idp_settings) and whose
    IdP has an API the collection drives (Microsoft Entra ID, authentik, Okta where the app's connection takes
    a token). Every other realm is connected by hand, from the connection sheet.
  - One step per call, in the order of a two-sided rotation; the scim role runs them around Zulip's own
    change. V(check) reads each IdP and changes nothing (wrong credentials or ids fail here, before anything
    changes); V(before) makes each IdP stop sending while Zulip changes its token (Entra ID pauses the
    provisioning job); V(push) gives each IdP the new token and base URL, has the IdP prove them (Entra ID
    C(validateCredentials)) and lets it send again (Entra ID starts the job, which also lifts a quarantine);
    V(restore) puts each IdP back as it was, with the token in force before.
  - The base URL is C(https://<realm host>/scim/v2) with the realm host built from O(external_host), the
    inventory's C(EXTERNAL_HOST); never from the Zulip host's C(settings.py), which the zulip user can edit.
  - Runs on the controller only, where the IdP credentials are; the Zulip host is not contacted.
options:
  operation:
    description: The step; see above.
    type: str
    choices: [check, before, push, restore]
    required: true
  realms:
    description:
      - The host's realm items (as the scim role's C(zulip_scim_realms), see
        M(zulip_ops.zulip.zulip_scim_config) O(zulip_ops.zulip.zulip_scim_config#module:realms)); those with
        C(idp_settings) are automated.
    type: list
    elements: dict
    required: true
  connections:
    description:
      - Per IdP (C(entra_id), C(authentik), C(okta)), its API's address and credentials. Secrets.
      - The options of each are in its guide, C(docs/idp-entra-id.md), C(docs/idp-authentik.md) and
        C(docs/idp-okta.md).
    type: dict
    default: {}
  external_host:
    description: The inventory's C(EXTERNAL_HOST) (C(zulip_scim_external_host)); required when a realm is automated.
    type: str
  host_external_host:
    description: C(EXTERNAL_HOST) as the host's C(settings.py) says it; when given and different, nothing is done.
    type: str
  states:
    description: What V(check) returned (RV(states)), for the later steps.
    type: dict
    default: {}
  tokens:
    description: Realm to token; the new tokens for V(push), the tokens in force before for V(restore). Secrets.
    type: dict
    default: {}
  only:
    description: Only these realms (subdomains). Default every automated realm.
    type: list
    elements: str
  resumed:
    description:
      - Realms whose rotation an earlier run began and did not finish, as
        RV(zulip_ops.zulip.zulip_scim_token#module:resumed) lists them. What that run did to the IdP is finished by
        this one; a Microsoft Entra ID job it paused is started again.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - zulip_ops.zulip._shared.controller_action
attributes:
  check_mode:
    support: full
    details: V(check) reads the IdPs as in a real run; the other steps report what they would do and call nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: zulip_ops.zulip.zulip_scim_token
author:
  - zulip_ops.zulip maintainers, reached as README.md "Reporting a problem" says (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the realms' IdPs before anything changes
  zulip_ops.zulip.zulip_scim_idp:
    operation: check
    realms:
      - subdomain: acme
        idp: authentik
        idp_settings: {provider_id: 3}
    connections:
      authentik:
        url: https://authentik.example.com
        api_token: "{{ vault_authentik_api_token }}"
    external_host: zulip.example.com
  register: idp

- name: Give them the new tokens
  zulip_ops.zulip.zulip_scim_idp:
    operation: push
    realms:
      - subdomain: acme
        idp: authentik
        idp_settings: {provider_id: 3}
    connections:
      authentik:
        url: https://authentik.example.com
        api_token: "{{ vault_authentik_api_token }}"
    external_host: zulip.example.com
    states: "{{ idp.states }}"
    tokens: "{{ tokens.tokens }}"
"""

RETURN = r"""
states:
  description: Per automated realm, what V(check) found; hand it to the later steps. No secret.
  returned: operation is check, before or push
  type: dict
  sample: {"acme": {"automated": true, "summary": "provider 3 at https://acme.zulip.example.com/scim/v2", "facts": {}}}
automated:
  description: The realms whose IdP takes the token over its API.
  returned: operation is check
  type: list
  elements: str
manual:
  description: The realms with C(idp_settings) whose IdP connection cannot take a token over the API (Okta apps
    whose connection is not token-based); connect them by hand.
  returned: operation is check
  type: list
  elements: str
pushed:
  description: The realms whose IdP got (in check mode, would get) the new token.
  returned: operation is push
  type: list
  elements: str
attempted:
  description: The realms whose IdP was given the new token (in a failed push too, up to the one that failed); a
    V(restore) gives these the token in force before.
  returned: operation is push
  type: list
  elements: str
restored:
  description: The realms whose IdP was put back.
  returned: operation is restore
  type: list
  elements: str
"""
