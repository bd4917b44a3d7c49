# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What several modules of the collection document alike, written once.

DOCUMENTATION (every module) has the author and the attribute descriptions;
the other variants add an attribute set or shared options. The argument
specs of those options are built by ``module_utils/_argspec.py``.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
author:
  - zulip_ops.zulip maintainers, reached as README.md "Reporting a problem" says (!UNKNOWN)
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
  action_group:
    description: Use C(group/zulip_ops.zulip.zulip) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - zulip_ops.zulip.zulip
"""

    # A module that only reads (use with DOCUMENTATION).
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This action does not modify state; it does the same in check mode.
  diff_mode:
    support: N/A
    details: This action does not modify state.
  idempotent:
    support: full
    details: This action does not modify state.
"""

    # An action that runs on the controller only (with ansible.builtin.action_common_attributes).
    CONTROLLER_ACTION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    # Which token store, and how to reach it (module_utils/_token_store_spec.py): zulip_scim_token, zulip_scim_info.
    TOKEN_STORE = r"""
options:
  path:
    description:
      - The token file, for O(store=vault_file).
      - Defaults to C(.zulip_scim_tokens.vault.yml) in the host's C(inventory_dir), or in
        C(playbook_dir) when the host has no inventory directory. The name starts with a dot
        because Ansible skips such files when it reads a directory as an inventory.
      - A relative path is taken from C(playbook_dir). A symlink is followed; its target is
        replaced on write.
      - The directory must exist. The file is created on the first write (mode C(0600)).
    type: path
  store:
    description:
      - Where the tokens live.
      - C(vault_file) is the ansible-vault encrypted file O(path).
      - C(hashicorp_vault) is a KV version 2 secrets engine of HashiCorp Vault or OpenBao, configured
        with O(hashicorp), one secret per host and realm, C(<mount>/<path>/<host>/<realm>) (the
        root-domain realm is C(_root)), holding the same entry as the file. Every write is a new KV
        version and uses check-and-set, so two jobs cannot both mint a token for one realm; the one
        that loses fails and overwrites nothing. Needs the Python package C(hvac) on the controller
        (not on the hosts).
      - A store that cannot be reached, refuses the credentials or holds a malformed entry fails the
        task before anything is written; the role runs this task before it changes the host.
    type: str
    choices: [vault_file, hashicorp_vault]
    default: vault_file
  hashicorp:
    description:
      - The HashiCorp Vault / OpenBao server, for O(store=hashicorp_vault). Ignored otherwise.
      - An empty O(hashicorp.url), O(hashicorp.namespace) or O(hashicorp.ca_cert) is taken from the controller's
        C(BAO_ADDR), C(BAO_NAMESPACE) or C(BAO_CACERT), else C(VAULT_ADDR), C(VAULT_NAMESPACE) or C(VAULT_CACERT);
        C(BAO_*) wins when both are set, as in the bao CLI (the vault CLI reads only C(VAULT_*)). An AWX
        credential can set them.
      - How the controller logs in is O(hashicorp.auth_method). Its settings are checked, and its credential file
        read, before any request; a login the server refuses fails the task before anything is read or written.
        No credential (token, secret ID, JWT) is ever shown in a result, message or log.
    type: dict
    default: {}
    suboptions:
      url:
        description:
          - The server, for example C(https://vault.example.com:8200). Default C(BAO_ADDR), else C(VAULT_ADDR).
          - A V(http://) URL to another machine than the controller (anything but a literal C(127.0.0.0/8) or
            C(::1) address or C(localhost)) is refused before any request, unless O(hashicorp.allow_insecure_http=true).
        type: str
      auth_method:
        description:
          - C(token) uses a token as it is, from O(hashicorp.token), O(hashicorp.token_file), the environment or
            C(~/.vault-token).
          - C(approle) logs in with O(hashicorp.role_id) and O(hashicorp.secret_id).
          - C(jwt) logs in at C(auth/<jwt_mount>/login) as O(hashicorp.jwt_role) with a JWT from O(hashicorp.jwt),
            O(hashicorp.jwt_env) or O(hashicorp.jwt_file) (a GitLab CI ID token, any OIDC issuer's).
          - C(kubernetes) logs in at C(auth/<kubernetes_mount>/login) as O(hashicorp.kubernetes_role) with the pod's
            service account token (AWX on Kubernetes).
          - An option of another method than the one chosen (O(hashicorp.jwt_role) with C(token), say) is refused.
        type: str
        choices: [token, approle, jwt, kubernetes]
        default: token
      token:
        description:
          - The Vault token, for O(hashicorp.auth_method=token). Not logged.
          - When empty, the token is read from O(hashicorp.token_file); else it is C(BAO_TOKEN), else C(VAULT_TOKEN)
            (as the bao CLI); else the file C(~/.vault-token) (C($HOME) of the controller) that C(bao login) and
            C(vault login) write.
        type: str
      token_file:
        description:
          - A file that holds the Vault token and nothing else (surrounding whitespace is ignored). It wins over
            C(BAO_TOKEN) and C(VAULT_TOKEN); setting it and O(hashicorp.token) is refused.
          - It must be a regular file; a missing or unreadable one fails before any request, naming the file.
        type: path
      role_id:
        description: The AppRole role ID, for O(hashicorp.auth_method=approle).
        type: str
      secret_id:
        description: The AppRole secret ID, for O(hashicorp.auth_method=approle). Not logged.
        type: str
      approle_mount:
        description: Where the AppRole auth method is mounted.
        type: str
        default: approle
      jwt_role:
        description: The role of the C(jwt) auth method to log in as, for O(hashicorp.auth_method=jwt).
        type: str
      jwt:
        description:
          - The JWT, for O(hashicorp.auth_method=jwt). Not logged.
          - Give exactly one of O(hashicorp.jwt), O(hashicorp.jwt_env) and O(hashicorp.jwt_file).
        type: str
      jwt_env:
        description:
          - The name of an environment variable of the controller that holds the JWT, for example the one a GitLab CI
            job's C(id_tokens) entry defines; the JWT then never passes through Ansible variables.
        type: str
      jwt_file:
        description: A file that holds the JWT and nothing else.
        type: path
      jwt_mount:
        description: Where the C(jwt) auth method is mounted.
        type: str
        default: jwt
      kubernetes_role:
        description: The role of the C(kubernetes) auth method to log in as, for O(hashicorp.auth_method=kubernetes).
        type: str
      kubernetes_token_file:
        description:
          - The service account token to log in with. When empty, the one Kubernetes mounts into every pod,
            C(/var/run/secrets/kubernetes.io/serviceaccount/token).
        type: path
      kubernetes_mount:
        description: Where the C(kubernetes) auth method is mounted.
        type: str
        default: kubernetes
      namespace:
        description: The namespace (Vault Enterprise, OpenBao). Default C(BAO_NAMESPACE), else C(VAULT_NAMESPACE).
        type: str
      ca_cert:
        description: A CA bundle to verify the server's certificate with. Default C(BAO_CACERT), else C(VAULT_CACERT), else the system's CAs.
        type: path
      validate_certs:
        description: Verify the server's TLS certificate. Turn off only for a test server.
        type: bool
        default: true
      allow_insecure_http:
        description:
          - Allow a V(http://) O(hashicorp.url) that names another machine than the controller, which sends the
            Vault token and the SCIM tokens unencrypted. Only for a network that is trusted end to end.
        type: bool
        default: false
      mount:
        description: The KV version 2 mount. A KV version 1 mount is refused.
        type: str
        default: secret
      path:
        description: The folder inside the mount, under which a host's tokens are at C(<path>/<host>/<realm>).
        type: str
        default: zulip_scim
      timeout:
        description: Seconds to wait for each request.
        type: int
        default: 30
"""

    # A module that changes the host, with check and diff mode (use with DOCUMENTATION).
    CHANGING_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
"""

    # The realm items of zulip_scim_config and zulip_scim_client (and of the scim role).
    REALMS = r"""
options:
  realms:
    description:
      - The realms, one item each, in the shape of the scim role's C(zulip_scim_realms).
    type: list
    elements: dict
    required: true
    suboptions:
      subdomain:
        description: The realm's subdomain (its C(string_id)); an empty string is the root-domain realm.
        type: str
        required: true
      client_name:
        description:
          - The C(scim_client_name) of the realm's C(SCIM_CONFIG) entry. On Zulip 5.x it is also the name
            of the realm's SCIM client row; from 6.0 on it is only a label in the logs.
        type: str
        default: okta
      name_formatted_included:
        description:
          - Whether the identity provider sends C(name.formatted), which Zulip then reads as the user's full name.
          - When not set, what the realm's O(realms[].idp) sends; V(true) for C(entra_id) and C(authentik),
            V(false) for C(okta) and C(other).
        type: bool
      create_guests_without_streams:
        description:
          - Set C(create_guests_without_streams) for the realm. Needs Zulip 9.0 or later.
          - Not written when omitted.
        type: bool
      custom_profile_field_map:
        description:
          - Map of SCIM attribute to custom profile field name. Needs Zulip 12.0 or later.
          - Not written when omitted.
        type: dict
      state:
        description: V(present) configures SCIM for the realm; V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      idp:
        description:
          - The identity provider that provisions the realm. It says what the connection sheet (filter
            P(zulip_ops.zulip.scim_connection_sheet#filter)) tells its administrator, and the default of
            O(realms[].name_formatted_included).
          - When not set, a O(realms[].client_name) that names one (C(okta), C(entra), C(azure), C(aad),
            C(authentik)) says which; otherwise V(other).
        type: str
        choices: [okta, entra_id, authentik, other]
      idp_settings:
        description:
          - The realm's ids at its identity provider, for M(zulip_ops.zulip.zulip_scim_idp), which gives the IdP
            the realm's token over its API. Nothing on the host reads them. Not secrets.
          - C(entra_id) C(service_principal_id) (and C(job_id) when it has several jobs, C(other_secret_keys));
            C(authentik) C(provider_id); C(okta) C(app_id). The IdP guides in C(docs/) say more.
          - Not set, the realm is connected by hand, from the connection sheet.
        type: dict
"""

    # Every module of the collection takes these (module_utils/_argspec.py LAYOUT).
    LAYOUT = r"""
options:
  deploy_path:
    description: The Zulip deployment (its C(version.py), C(manage.py) and C(scripts/)), normally the C(current) symlink.
    type: path
    default: /home/zulip/deployments/current
  settings_path:
    description: Zulip's C(settings.py).
    type: path
    default: /etc/zulip/settings.py
  secrets_path:
    description: Zulip's secrets file, read the way Zulip's C(get_secret) reads it.
    type: path
    default: /etc/zulip/zulip-secrets.conf
  zulip_conf_path:
    description: Zulip's C(zulip.conf), read for the address of the host's own front end.
    type: path
    default: /etc/zulip/zulip.conf
notes:
  - Every module of the collection takes O(deploy_path), O(settings_path), O(secrets_path) and
    O(zulip_conf_path), and reads only those it needs, so that C(module_defaults) for
    C(group/zulip_ops.zulip.zulip) can say once where Zulip lives on a host.
"""

    VERSION = r"""
options:
  version:
    description:
      - The server's Zulip version (for example V(9.3) or V(12.0-dev+git)), instead of reading it
        from C(version.py) under O(deploy_path).
    type: str
"""

    USER = r"""
options:
  user:
    description: The user Zulip's tools run as (they refuse root).
    type: str
    default: zulip
"""

    # A module that runs manage.py (use with USER).
    MANAGE = r"""
options:
  manage_timeout:
    description:
      - Seconds a C(manage.py) call may take (a Django start costs 7 to 9 s on a real server); a call that
        takes longer is stopped and the module fails before it changes anything. V(0) waits for ever.
    type: int
    default: 300
"""

    # A module that changes the host or restarts Zulip (module_utils/_deploy_lock.py).
    DEPLOY_LOCK = r"""
options:
  deploy_lock_timeout:
    description:
      - Seconds to wait while Zulip's deployment lock exists, the directory C(lock) that C(upgrade-zulip) makes
        beside O(deploy_path) (C(/home/zulip/deployments/lock)) and removes when the upgrade ends. It is looked
        at before anything is changed; when it is still there after this long, the module fails, naming it,
        having changed nothing. V(0) looks once.
      - The module only looks; it never makes or removes that directory, so a killed run leaves no lock behind.
        Anything but a directory at that name (a link, a file) fails at once and is not followed.
      - In check mode it looks once, without waiting, and warns.
    type: int
    default: 300
"""

    API = r"""
options:
  external_host:
    description:
      - The server's C(EXTERNAL_HOST), which names each realm in the C(Host) header. Read from
        O(settings_path) when omitted (its last top-level C(EXTERNAL_HOST = "...") assignment; the file is parsed,
        never run).
      - Given or read, it must be a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional
        C(:PORT); anything else is refused before any request.
    type: str
  api_url:
    description:
      - Where the Zulip host reaches its own web front end.
      - When omitted or empty it is derived from O(zulip_conf_path), the way Zulip's puppet
        configures nginx, V(http://127.0.0.1:<port>) when C([application_server] http_only) is
        true (behind a reverse proxy; port C(nginx_listen_port), default 80), otherwise
        V(https://127.0.0.1) (with C(:<port>) when C(nginx_listen_port) is not 443). Without that
        file or section it is V(https://127.0.0.1). A value given here always wins.
      - A V(http://) URL to another machine than this one (anything but a literal C(127.0.0.0/8) or
        C(::1) address or C(localhost)) is refused before anything is read or changed, unless
        O(allow_insecure_http=true), because the SCIM tokens would cross the network in clear text.
    type: str
  validate_certs:
    description:
      - Whether to validate the TLS certificate of O(api_url).
      - The certificate is checked against the realm's host name (C(<subdomain>.EXTERNAL_HOST), sent as
        SNI and as the C(Host) header), not against the host of O(api_url), so V(true) works against
        the default V(https://127.0.0.1) with the certificate the server has for its users.
      - When not set, on when O(api_url) names another machine than this one or O(ca_path) is set, and
        off on the loopback interface (a literal C(127.0.0.0/8) or C(::1) address or C(localhost), and
        the URL derived from O(zulip_conf_path)), where the request does not leave the host.
    type: bool
  ca_path:
    description:
      - A PEM CA bundle on the Zulip host to validate the certificate with, for a certificate of a
        private CA. When not set, the system's CA store.
      - A path that is not a readable file is refused before anything is changed.
    type: path
  allow_insecure_http:
    description:
      - Allow a V(http://) O(api_url) that names another machine than this one (for a network that is
        trusted end to end). Not needed for loopback addresses.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 10
"""

    # The check of an unchanged host (option check_unchanged of zulip_scim_preflight and zulip_scim_config).
    UNCHANGED_CHECK = r"""
options:
  rejected_tokens:
    description:
      - With O(check_unchanged=true), tokens that must get HTTP 401, by subdomain; a value is one token or a
        list of tokens (as O(zulip_ops.zulip.zulip_scim_check#module:rejected_tokens)).
    type: dict
    default: {}
"""
