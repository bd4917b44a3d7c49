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

    # The check of an unchanged host (option check_unchanged of zulip_info and zulip_scim_config).
    UNCHANGED_CHECK = r"""
options:
  rejected_tokens:
    description:
      - With O(check_unchanged=true), tokens that must get HTTP 401, by subdomain; a value is one token or a
        list of tokens (as O(zulip_ops.zulip.zulip_scim_check#module:rejected_tokens)).
    type: dict
    default: {}
"""
