# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by the action plugin
# plugins/action/zulip_scim_token_copy.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zulip_scim_token_copy
short_description: Copy the SCIM tokens of a host between the ansible-vault file and HashiCorp Vault / OpenBao
version_added: 0.1.0
description:
  - Copies a host's token entries (active token, state, times and history) from one token store of
    M(zulip_ops.zulip.zulip_scim_token) into the other, so a switch of O(zulip_ops.zulip.zulip_scim_token#module:store)
    keeps every token. No token is generated, the Zulip host is not touched, and nothing restarts.
  - An entry the target has already and that is the same is left alone; one that differs stops the
    task before anything is written (decide by hand which token the IdP uses).
  - The source is never changed. Delete it yourself once the next run with the new store has
    shown no change.
  - Runs on the controller only. The tokens are never returned.
options:
  to:
    description:
      - The store to copy into; the source is the other one.
      - C(hashicorp_vault) copies from the ansible-vault file O(path) into KV v2, C(vault_file) back.
    type: str
    choices: [vault_file, hashicorp_vault]
    required: true
  host:
    description: The host whose tokens to copy. Defaults to C(inventory_hostname).
    type: str
  realms:
    description:
      - The realms to copy; each must be in the source. Default every realm the source holds for the host.
    type: list
    elements: str
  path:
    description:
      - The ansible-vault token file, as O(zulip_ops.zulip.zulip_scim_token#module:path) (same default).
      - Writing it needs the play's vault secret, as for M(zulip_ops.zulip.zulip_scim_token).
    type: path
  hashicorp:
    description:
      - The HashiCorp Vault / OpenBao server, as O(zulip_ops.zulip.zulip_scim_token#module:hashicorp)
        (same suboptions and auth methods, same C(BAO_*) and C(VAULT_*) defaults, same C(~/.vault-token)).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - zulip_ops.zulip._shared.controller_action
attributes:
  check_mode:
    support: full
    details: Reports what would be copied; writes nothing.
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
- name: Move the tokens of the vault file into OpenBao (VAULT_ADDR and VAULT_TOKEN from the environment)
  zulip_ops.zulip.zulip_scim_token_copy:
    to: hashicorp_vault
    hashicorp:
      mount: secret
      path: zulip_scim

- name: And back
  zulip_ops.zulip.zulip_scim_token_copy:
    to: vault_file
    path: "{{ inventory_dir }}/.zulip_scim_tokens.vault.yml"
"""

RETURN = r"""
copied:
  description: Realms whose entry was copied (in check mode, would be).
  returned: success
  type: list
  elements: str
  sample: ["acme", ""]
unchanged:
  description: Realms the target already held with the same entry.
  returned: success
  type: list
  elements: str
  sample: []
source:
  description: The store copied from.
  returned: success
  type: str
  sample: /srv/ansible/inventory/.zulip_scim_tokens.vault.yml
target:
  description: The store copied into.
  returned: success
  type: str
  sample: https://vault.example.com:8200 secret/zulip_scim
host:
  description: The host whose tokens were copied.
  returned: success
  type: str
  sample: zulip1.example.com
"""
