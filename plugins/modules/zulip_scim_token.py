# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation only: the work is done on the controller by the action plugin
# plugins/action/zulip_scim_token.py (as ansible.builtin.debug does it).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zulip_scim_token
short_description: Keep the SCIM bearer tokens of Zulip realms in an ansible-vault file or in HashiCorp Vault / OpenBao
version_added: 0.1.0
description:
  - Returns the SCIM bearer token of each requested realm of a host, from a token store on
    the controller, generating a token only when the store has none for the realm.
  - The store is one YAML file encrypted as a whole with ansible-vault, shared by all hosts
    of the inventory (the default), or a KV version 2 mount of HashiCorp Vault or OpenBao
    (O(store=hashicorp_vault)). Operators read it with C(ansible-vault view FILE) and may change it with
    C(ansible-vault edit FILE).
  - Zulip accepts exactly one bearer token per realm, so rotation is a hard cut-over. The IdP
    must be given the new token; the replaced one is returned in RV(previous_tokens) so a play
    can prove it is now refused (HTTP 401).
  - The file is encrypted with the vault secret the play runs with (C(--vault-password-file),
    C(--ask-vault-pass) or C(--vault-id)). A new file uses the secret Ansible itself would pick
    for encryption (honouring C(DEFAULT_VAULT_ENCRYPT_IDENTITY)); an existing file is
    re-encrypted with the vault id and secret that decrypted it. Without a vault secret, or
    when the file cannot be decrypted or does not have the expected structure, the task fails
    and writes nothing.
  - Runs on the controller. It connects to the host only for O(adopt_from_host), and only when the
    store lacks a token; then it runs M(zulip_ops.zulip.zulip_scim_token_info) there, which reads
    O(settings_path) and O(secrets_path) on the host.
  - The whole result is censored in Ansible's output (as with C(no_log)) at every verbosity,
    because it holds tokens. Use C(register) to pass the tokens on, and keep C(no_log) on every
    task that uses them.
options:
  host:
    description:
      - The host whose tokens to return; the key under C(zulip_scim_tokens) in the file.
      - Defaults to C(inventory_hostname).
    type: str
  realms:
    description:
      - The realms (subdomains) whose tokens to return; C("") is the root-domain realm.
      - A valid subdomain is C("") or 1 to 63 lower-case letters, digits and hyphens that neither
        start nor end with a hyphen (C(^[a-z0-9]$) or C(^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$)). Any
        other value fails the task before anything is read or written.
      - A realm without an active token gets the host's token from O(adopt) if there is one,
        otherwise a new token.
      - A realm whose stored token is retired gets a NEW token (a retired token is never made
        active again); the retired token moves to its history.
    type: list
    elements: str
    required: true
  rotate:
    description:
      - Realms whose token to replace with a new one. The old token moves to the front of the
        realm's C(previous) history with a C(replaced) time and is returned in
        RV(previous_tokens).
      - Every realm listed must also be in O(realms). A realm whose token this run generated is
        not rotated again; a token adopted in this run is rotated (it was live on the host).
    type: list
    elements: str
    default: []
  retire:
    description:
      - Realms whose SCIM is disabled on the host. Their active entry gets C(state=retired) and a
        C(retired) time; the token is kept in the file for the record. Realms with no entry, or
        retired already, are left alone.
      - A realm cannot be in both O(realms) and O(retire).
    type: list
    elements: str
    default: []
  adopt:
    description:
      - The tokens found on the host, by realm, for example read from
        C(/etc/zulip/zulip-secrets.conf). Not logged.
      - When the store has no active token for a requested realm, the host's token is stored
        and returned instead of a new one, so an IdP that works keeps working. A token the store
        already holds for the host (retired, replaced, or another realm's) is never adopted; a new
        one is generated instead and the realm is listed in RV(conflicts).
      - When both exist and differ, the store's token wins and the realm is listed in
        RV(conflicts) (with a warning that names the realm, never a token).
      - Entries for realms not in O(realms), and empty values, are ignored. A value with
        whitespace, quotes, control or non-ASCII characters cannot be written safely and fails the
        task before anything is written (without showing the value).
      - A value shorter than 16 characters is adopted all the same (the IdP that uses it keeps
        working), with a warning that names the host, the realm and the command that rotates it.
    type: dict
    default: {}
  token_bytes:
    description:
      - Bytes of randomness in a new token, generated with Python's C(secrets.token_urlsafe)
        (a token of 32 bytes is 43 characters long).
      - At least 32 (256 bits), at most 1024 (the token travels in an HTTP header).
    type: int
    default: 32
  history:
    description:
      - How many replaced tokens each realm keeps in its C(previous) list (newest first), so that a token an
        old IdP configuration still sends is recognised and never adopted or made again.
      - Applies to the realms whose token this run replaces; a run that changes nothing does not rewrite the store.
    type: int
    default: 5
  max_age_days:
    description:
      - Tokens older than this many days (from their C(created) time) are overdue, see O(max_age_action).
      - V(0) turns the age policy off.
    type: int
    default: 0
  max_age_action:
    description:
      - What an overdue token does. V(warn) warns, naming host, realm and age. V(fail) fails before anything
        is written, saying how to rotate. V(rotate) rotates just the overdue realms, but only with
        O(rotate_overdue=true) (the role sets it in a run with the tag C(rotate_scim_token)); otherwise it warns.
    type: str
    choices: [warn, fail, rotate]
    default: warn
  rotate_overdue:
    description: With O(max_age_action=rotate), rotate the realms whose token is older than O(max_age_days).
    type: bool
    default: false
  audit:
    description:
      - Only report, for every realm the store holds for the host, its state, when its token was made, its age
        in days and how many replaced tokens it keeps (RV(audit)); never a token. Reads the store and nothing
        else, no connection to the host, nothing written, O(realms) may be empty.
    type: bool
    default: false
  adopt_from_host:
    description:
      - When the store has no active token for some of O(realms), read the tokens the host uses now
        for them (with M(zulip_ops.zulip.zulip_scim_token_info), one module run on the host) and adopt
        them, as if they had been given in O(adopt). An IdP that works keeps working.
      - Costs nothing when the store has every token.
    type: bool
    default: false
  operation:
    description:
      - The end of a change's transaction across the store and the host, for a token stored with
        O(until_proven=true).
      - V(ensure) is the request of O(realms), O(rotate), O(retire) and the rest.
      - V(confirm) after the host was proven to serve O(proven) (realm to token, for example after
        M(zulip_ops.zulip.zulip_scim_check)); each of those tokens still pending is in force from now on.
      - V(settle) after the host went back (M(zulip_ops.zulip.zulip_server) with O(zulip_ops.zulip.zulip_server#module:state=rolled_back),
        or a failed restart) reads the host's tokens of the realms of O(realms) with a pending token (one module
        run on the host) and puts the store back for each whose host serves what it served before. The pending
        token goes to the history marked C(rolled_back) (never in force), the token it replaced is current again;
        a realm that had no token in force (a first enable) gets none again (state C(retired), marked
        C(rolled_back)), and the next run that enables it makes a new one. A realm whose host has the pending
        token keeps it pending.
      - V(confirm) and V(settle) change nothing else and never make a token.
    type: str
    choices: [ensure, settle, confirm]
    default: ensure
  until_proven:
    description:
      - Store each token made by this task (generated or rotated) as pending (C(pending) time in the entry) until
        O(operation=confirm). Use it when a later task proves the token on the host, and put the store back with
        O(operation=settle) when the host goes back instead. The scim role does.
      - A pending token is not rotated again before it is settled or confirmed.
    type: bool
    default: false
  settle_from_host:
    description:
      - With O(operation=ensure), first settle (as O(operation=settle) does) the realms of O(realms) whose token is
        pending, from the tokens the host has now, so that a run killed between the host's roll-back and the store's
        is finished by the next one. Costs nothing (no module run on the host) when no token is pending.
    type: bool
    default: false
  proven:
    description: With O(operation=confirm), the tokens the host was proven to serve, by realm subdomain.
    type: dict
    default: {}
  lock_timeout:
    description:
      - O(store=vault_file) only. Seconds to wait for another run (another C(ansible-playbook) on the same
        checkout) that holds the lock on the token file's directory. Then the task fails, naming the
        process that holds it; the file is not read, no token is generated and nothing is written.
    type: int
    default: 120
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.token_store
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.controller_action
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - Decides what would happen and returns the tokens, including fresh ones for realms that
        have none (those are not saved and differ on the next run). Nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Once every realm has a token, a second run changes nothing; a run with O(rotate) rotates every time.
  platform:
    details:
      - Runs on the controller, which needs C(fcntl.flock) (Linux, macOS, BSD).
notes:
  - "File format (the plaintext inside the vault):"
  - 'C(zulip_scim_tokens: {HOST: {REALM: ENTRY}}); the root-domain realm is the quoted key C("").'
  - "ENTRY has C(token), C(created) (UTC, C(2026-11-28T16:40:00Z)), C(state) (C(active) or C(retired)),
    C(retired) (when retired), C(pending) (while the token is not proven on the host, see O(until_proven)),
    C(rolled_back) (a retired token that was never in force: its first enable went back) and C(previous), a
    list newest first of C({token, created, replaced}) (plus C(retired) when the token was retired before it
    was replaced, and C(rolled_back) when it was never in force: the change that made it went back)."
  - Unknown keys, duplicate keys, bad realm names and wrong types are reported with their location
    in the file (never with a token) and fail the task. A comment you add with C(ansible-vault edit)
    is lost at the next write; hosts and realms are written sorted.
  - Concurrency. Forks run this task for many hosts at once against the same file. Each
    read-modify-write holds an exclusive C(flock) on the file's directory (the file itself is
    replaced on every write, so it cannot carry the lock), and the file is replaced atomically
    (temporary file in the same directory, C(fsync), rename). No update is lost; readers never see
    half a file. The directory must be on a filesystem where C(flock) works across processes.
    A second C(ansible-playbook) run waits for the lock at most O(lock_timeout) seconds. The lock
    ends with the process holding it (also when it is killed), and a temporary file left by a run
    killed in mid-write is removed under the lock by the next one.
  - When nothing changes the file is not rewritten (vault encryption is salted, so a rewrite would
    change every byte).
  - If the inventory is a directory (C(-i inventory/)), Ansible reads every file in it as an inventory
    source except those whose names start with a dot, which is why the default name has one. Keep a
    file of another name out of the inventory directory, or make Ansible skip it with
    C(inventory_ignore_patterns) in C(ansible.cfg).
  - The tokens live on the controller only. The module never writes them to the host; a following
    task does (M(zulip_ops.zulip.zulip_scim_config), whose tokens are a C(no_log) argument).
seealso:
  - name: Zulip SCIM documentation
    description: How Zulip reads SCIM_CONFIG and its bearer token.
    link: https://zulip.readthedocs.io/en/latest/production/scim.html
  - name: Ansible Vault
    description: Encrypting content with Ansible Vault.
    link: https://docs.ansible.com/ansible/latest/vault_guide/index.html
"""

EXAMPLES = r"""
- name: SCIM tokens of the acme and root-domain realms
  zulip_ops.zulip.zulip_scim_token:
    realms: [acme, ""]
  register: scim

# zulip_scim_config writes them into zulip-secrets.conf (0640 zulip:zulip) and SCIM_CONFIG into
# settings.py; the tokens are a no_log argument, never shown.
- name: Configure both realms with these tokens
  zulip_ops.zulip.zulip_scim_config:
    realms:
      - subdomain: acme
      - subdomain: ""
    tokens: "{{ scim.tokens }}"
  become: true

- name: Rotate acme, keep the root domain, retire old-team
  zulip_ops.zulip.zulip_scim_token:
    realms: [acme, ""]
    rotate: [acme]
    retire: [old-team]
    path: "{{ inventory_dir }}/../secrets/zulip_scim_tokens.vault.yml"
  register: scim

- name: The same tokens kept in OpenBao (VAULT_ADDR and VAULT_TOKEN from the environment)
  zulip_ops.zulip.zulip_scim_token:
    realms: [acme, ""]
    store: hashicorp_vault
    hashicorp:
      mount: secret
      path: zulip_scim
  register: scim

# A GitLab CI job: its id_tokens entry ZULIP_SCIM_VAULT_JWT (aud: zulip-scim) is the JWT, BAO_ADDR the server.
- name: The same tokens in OpenBao, logged in with the CI job's JWT as role zulip-scim of the jwt auth method
  zulip_ops.zulip.zulip_scim_token:
    realms: [acme, ""]
    store: hashicorp_vault
    hashicorp:
      auth_method: jwt
      jwt_role: zulip-scim
      jwt_env: ZULIP_SCIM_VAULT_JWT
  register: scim

- name: Adopt the tokens already on the host where the store has none
  zulip_ops.zulip.zulip_scim_token:
    realms: "{{ zulip_scim_realms | map(attribute='subdomain') | list }}"
    adopt: "{{ zulip_host_scim_tokens }}"
    token_bytes: 48
  register: scim
"""

RETURN = r"""
resumed:
  description: The requested realms whose token was pending when the task began (a run that did not finish left it).
  returned: success
  type: list
  elements: str
read_token:
  description: The one command that shows a realm's token of the host, as the store says it (no token in it).
  returned: success, and with O(audit=true)
  type: str
  sample: 'ansible-vault view /inv/.zulip_scim_tokens.vault.yml   (then zulip_scim_tokens > web1 > <realm> > token)'
tokens:
  description: The active token of every requested realm (secret).
  returned: success
  type: dict
  sample: {"acme": "<43 characters>", "": "<43 characters>"}
previous_tokens:
  description: For every realm rotated in this run, the token it replaced (secret), to prove the
    server now answers 401 to it.
  returned: success
  type: dict
  sample: {"acme": "<43 characters>"}
retired_tokens:
  description: For every realm in O(retire) that the store knows, its retired token (secret), to
    prove the server now answers 401 to it.
  returned: success
  type: dict
  sample: {"beta": "<43 characters>"}
generated:
  description: Realms that got a new token because the store had no active one (including
    re-activated retired realms).
  returned: success
  type: list
  elements: str
  sample: [""]
rotated:
  description: Realms whose token was replaced in this run.
  returned: success
  type: list
  elements: str
  sample: ["acme"]
adopted:
  description: Realms whose token was taken from O(adopt).
  returned: success
  type: list
  elements: str
  sample: []
retired:
  description: Realms marked retired in this run.
  returned: success
  type: list
  elements: str
  sample: ["old-team"]
conflicts:
  description:
    - Realms whose token in O(adopt) differs from the stored active token, or could not be adopted;
      the token returned (the store's) wins and the host must be updated.
    - A host token replaced by this run's rotation is not a conflict.
  returned: success
  type: list
  elements: str
  sample: []
ages:
  description: Whole days since each realm of O(realms) got its token (after this run), by subdomain.
  returned: success, unless O(audit=true)
  type: dict
  sample: {"acme": 12, "": 400}
overdue:
  description: Realms whose token is older than O(max_age_days), with their ages, as found before this run.
  returned: success, unless O(audit=true)
  type: dict
  sample: {"": 400}
audit:
  description: With O(audit=true), one item per realm the store holds for the host; no tokens.
  returned: when O(audit=true)
  type: list
  elements: dict
  sample: [{"realm": "acme", "state": "active", "created": "2026-11-20T10:00:00Z", "age_days": 12, "replaced_tokens": 2}]
path:
  description: The token file, absolute; for O(store=hashicorp_vault), the server, mount and folder.
  returned: success
  type: str
  sample: /srv/ansible/inventory/zulip_scim_tokens.vault.yml
host:
  description: The host the tokens belong to.
  returned: success
  type: str
  sample: zulip1.example.com
changed:
  description: Whether the token file was written (in check mode, whether it would be).
  returned: always
  type: bool
pending:
  description: Realms of O(realms) whose token is pending after this task (see O(until_proven)).
  returned: success, unless O(audit=true) or O(operation=confirm)
  type: list
  elements: str
  sample: ["acme"]
rolled_back:
  description: Realms whose pending token was put back (settled) by this task; the host serves the token it had before.
  returned: success, unless O(audit=true) or O(operation=confirm)
  type: list
  elements: str
  sample: []
confirmed:
  description: With O(operation=confirm), the realms whose pending token is in force now.
  returned: when O(operation=confirm)
  type: list
  elements: str
  sample: ["acme"]
msg:
  description: With O(operation=settle) or O(operation=confirm), what was done, in words; never a token.
  returned: when O(operation) is not V(ensure)
  type: str
store_changed:
  description:
    - The same as RV(changed), for a task whose C(changed_when) overrides that; the scim role's look-up in check
      mode reports no change (it writes nothing) and reads from this whether the run would change a token.
  returned: success, unless O(audit=true)
  type: bool
  sample: false
"""
