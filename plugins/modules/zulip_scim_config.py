#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zulip_scim_config
short_description: Manage SCIM_CONFIG in Zulip's settings.py and the SCIM bearer tokens in zulip-secrets.conf
version_added: 0.1.0
description:
  - Owns one marked block of C(/etc/zulip/settings.py) that holds C(SCIM_CONFIG) for every
    managed realm of the host, and the realms' bearer tokens in the C([secrets]) section of
    C(/etc/zulip/zulip-secrets.conf).
  - The block reads each token with C(get_secret("scim_bearer_token_<subdomain>")) (the root-domain
    realm uses C(scim_bearer_token__root)), so C(settings.py) never contains a token.
  - Everything outside the block, and every other line of the secrets file, is kept byte for byte
    (comments, line ends, encoding). A new block is appended at the end of C(settings.py); an
    existing one is replaced where it is. When no realm is left, the block stays as
    C(SCIM_CONFIG = {}), because before 11.0 a server without any C(SCIM_CONFIG) answers every SCIM
    request with HTTP 500 instead of 401.
  - Fails, before anything is written, when C(SCIM_CONFIG) is set outside the block (unless
    O(takeover=true)), when the block markers are broken, when C(settings.py) does not compile, or when a realm uses a key that
    the server's Zulip version does not know.
  - Files are replaced atomically with their owner and mode kept. The secrets file is written
    first, then C(settings.py); if writing C(settings.py) fails, the secrets file is put back as it was.
  - Does not restart Zulip. C(SCIM_CONFIG) changes take effect after
    C(/home/zulip/deployments/current/scripts/restart-server).
  - With O(keep_previous=true) the files as they were before are kept beside them until the new ones
    are proven, so that M(zulip_ops.zulip.zulip_server) can put them back when the restart or the
    check after it fails. A kept copy left by an interrupted run means Zulip may never have loaded
    the files; the task then reports a change (RV(unproven)) even if the files are as wanted, so
    that the restart and the check happen again.
  - Concurrent runs. The read-modify-write of both files (and of the kept copies) holds an exclusive
    C(flock) on the directory of C(settings.py); a second run against the same host waits for it (at most
    O(lock_timeout) seconds, then fails naming the process that holds it, having changed nothing). The lock
    ends with its process, so a killed run leaves no stale lock. Temporary files that a killed run left
    next to the files are removed under that lock. Check mode takes no lock and removes nothing.
  - Before it reads or writes the files (under that lock), it looks at Zulip's deployment lock, and waits while
    a Zulip upgrade runs (see O(deploy_lock_timeout)).
  - On Zulip 5.x each realm also needs a SCIM client row (C(manage.py add_scim_client)) whose name is
    O(realms[].client_name); this module does not create it.
  - On a docker-zulip container (found by root-owned files of its image, C(/sbin/entrypoint.sh) and
    C(/root/zulip/README.custom_zulip_files.md)) the module fails before it reads or changes anything else, saying
    why, unless the edits would outlive a restart of the container - C(MANUAL_CONFIGURATION) set in the environment
    the container started with, O(settings_path) and O(secrets_path) on its C(/data) volume
    (C(LINK_SETTINGS_TO_DATA)), and no C(SECRETS_scim_bearer_token_*) variable or C(zulip__scim_bearer_token_*)
    Docker secret. Otherwise docker-zulip's entrypoint writes C(settings.py) afresh at every start. The collection's
    C(docs/docker-zulip.md) says how to get the same result through docker-zulip's own variables.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.changing_module
  - zulip_ops.zulip._shared.deploy_lock
  - zulip_ops.zulip._shared.realms
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.version
  - zulip_ops.zulip._shared.api
  - zulip_ops.zulip._shared.unchanged_check
attributes:
  diff_mode:
    details:
      - Shows C(settings.py) before and after in full (it never contains a token).
      - Shows the secrets file only as the managed C(scim_bearer_token_*) keys, each value replaced by
        C(<redacted>) and marked when it changes; no token and no other secret of that file is shown.
options:
  tokens:
    description:
      - The bearer token of each realm, by subdomain, as the identity provider sends it; stored in the
        secrets file. Every realm of O(realms) with O(realms[].state=present) needs one; others are ignored.
      - Printable ASCII without whitespace or quotes; anything else fails before any change.
      - A token shorter than 16 characters is written (it may be one an IdP already uses) with a warning
        that it should be replaced.
      - Keep them in Ansible Vault. They appear in no output, diff or error message of this module.
    type: dict
    default: {}
  exclusive:
    description:
      - If V(true), realms in the block that are not in O(realms) are removed, with their tokens.
    type: bool
    default: false
  backup:
    description:
      - Make a time-stamped copy of C(settings.py) next to it before changing it, with the owner and mode of
        C(settings.py), named C(settings.py.<PID>.<date@time>~) (when that name is taken, 8 random characters
        come before the C(~)). The copy is always a new file (never written through a name that is already
        there, such as a planted link) and holds the content that was read for the change.
      - The secrets file is never backed up, so no second file of tokens is left behind.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run that holds the lock on the directory of C(settings.py)
        before failing with a message that names it.
    type: int
    default: 120
  takeover:
    description:
      - Take over a C(SCIM_CONFIG) written by hand outside the block, the way Zulip's docs say (a dict
        literal with the token inline, or C(get_secret("any_name"))). Every hand-written assignment to
        C(SCIM_CONFIG) goes (the last one is what the server runs, as in Python), the realms it leaves in
        force move into the block, and their tokens into the secrets file as
        C(scim_bearer_token_<subdomain>). A secret of another name is renamed (the old name is removed
        unless C(settings.py) still uses it elsewhere).
      - Each realm in force must be in O(realms) (V(present) takes it over, V(absent) drops it), its token
        must be the one given in O(tokens) (the same token, so the IdP keeps working), and the hand-written
        C(scim_client_name), C(name_formatted_included), C(create_guests_without_streams) and
        C(custom_profile_field_map) must agree with O(realms). Keys the server's version does not read are
        dropped with a warning. A token given by any other Python (C(os.environ), a function call) is
        refused. Any of these refuses the whole run before anything is written.
      - With O(backup=true) the backup of C(settings.py) holds no token. Each inline token in force is
        replaced by the C(get_secret(...)) that now reads the same value (so the backup still works as a
        C(settings.py)), one that a later assignment overrode by a placeholder. The copy kept by
        O(keep_previous) is made the same way.
      - Without it, a hand-written C(SCIM_CONFIG) fails the task, naming the lines, the realms and this
        option (role variable C(zulip_scim_takeover)).
    type: bool
    default: false
  keep_previous:
    description:
      - Before changing the files, keep them as they are beside them
        (C(.settings.py.zulip-scim-previous), C(.zulip-secrets.conf.zulip-scim-previous), same owner and
        mode, byte for byte), unless an older unproven copy is kept already (the oldest is what Zulip ran).
      - M(zulip_ops.zulip.zulip_server) puts them back when the restart fails
        (O(zulip_ops.zulip.zulip_server#module:on_failure=roll_back)) or a later check fails
        (O(zulip_ops.zulip.zulip_server#module:state=rolled_back)); M(zulip_ops.zulip.zulip_scim_check)
        deletes them once the new configuration is proven.
      - The copy of the secrets file exists only between the write and that proof.
    type: bool
    default: false
  check_unchanged:
    description:
      - When the run has nothing to change (and no earlier run is left unproven, see O(keep_previous)), prove
        right away, still holding the lock, what M(zulip_ops.zulip.zulip_scim_check) would prove after a
        change. Each realm of O(realms) with O(realms[].state=present) must get HTTP 200 with its token from the
        secrets file, HTTP 401 without a token and with a random one, and every token of O(rejected_tokens)
        HTTP 401. The requests go to O(api_url), with the realm's host name under O(external_host).
      - A run with nothing to change then needs no separate check task (RV(checked)), one remote module
        run per host fewer. When something changes, nothing is checked here, since Zulip only loads the
        new files at its next restart; check after it with M(zulip_ops.zulip.zulip_scim_check).
      - Not in check mode, which sends no request.
    type: bool
    default: false
notes:
  - The module only reads C(settings.py) as text and with Python's C(ast); it never runs it.
  - The C(zulip) user owns C(/etc/zulip), so nothing there is reached through a path that could lead elsewhere.
    C(settings.py) and the secrets file must be regular files with one link and at most 4 MiB; a symbolic
    link, FIFO, device or directory at their names is refused, naming it, before anything is changed. A link
    on the way to their directory is followed only when root made it in a directory only root may write.
    Every file is written as a new file in that directory and renamed into place, never through a name that
    is already there, and only when the file is still the one that was read.
  - A missing secrets file is created with mode C(0640), owner C(zulip:zulip) (when that user exists).
  - O(version) (or C(version.py) under O(deploy_path)) is only read when a realm sets a key that needs a
    minimum version.
seealso:
  - name: Zulip SCIM documentation
    description: How SCIM provisioning is set up on a Zulip server.
    link: https://zulip.readthedocs.io/en/latest/production/scim.html
  - name: SCIM in the Zulip help center
    description: Setting up identity providers (Okta, Microsoft Entra ID, ...) for Zulip's SCIM endpoint.
    link: https://zulip.com/help/scim
"""

EXAMPLES = r"""
- name: Provision two realms from Okta
  zulip_ops.zulip.zulip_scim_config:
    realms:
      - subdomain: acme
      - subdomain: globex
        client_name: azure
        name_formatted_included: true
        create_guests_without_streams: true
    tokens:
      acme: "{{ vault_scim_token_acme }}"
      globex: "{{ vault_scim_token_globex }}"
  register: scim
  notify: Restart Zulip

- name: Root-domain realm (subdomain "") with a custom profile field map (Zulip 12.0+)
  zulip_ops.zulip.zulip_scim_config:
    tokens:
      "": "{{ vault_scim_token_root }}"
    realms:
      - subdomain: ""
        custom_profile_field_map:
          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": department

- name: Stop SCIM for one realm (its entry and its token go)
  zulip_ops.zulip.zulip_scim_config:
    realms:
      - subdomain: globex
        state: absent

- name: Exactly these realms, nothing else; keep a copy of settings.py
  zulip_ops.zulip.zulip_scim_config:
    realms: "{{ zulip_scim_realms }}"
    tokens: "{{ vault_scim_tokens }}"
    exclusive: true
    backup: true
"""

RETURN = r"""
changed:
  description: Whether either file changed (or would change, in check mode).
  returned: always
  type: bool
  sample: true
settings_changed:
  description: Whether C(settings.py) changed (or would change).
  returned: always
  type: bool
  sample: true
secrets_changed:
  description: Whether the secrets file changed (or would change).
  returned: always
  type: bool
  sample: false
realms_changed:
  description:
    - Subdomains whose entry or token was added, changed or removed, sorted. V("") is the root-domain realm.
  returned: always
  type: list
  elements: str
  sample: [acme]
tokens_replaced:
  description:
    - Subdomains whose secrets file held a different token, now replaced by the given one. An IdP
      still using the old token gets HTTP 401 from the next restart on.
  returned: always
  type: list
  elements: str
  sample: [acme]
realms_present:
  description: Subdomains in the block after the run, sorted.
  returned: always
  type: list
  elements: str
  sample: ["", acme, globex]
unproven:
  description:
    - With O(keep_previous=true), whether a kept previous configuration shows that an earlier run changed
      the files and was not proven afterwards (interrupted, or its restart or check failed). The task then
      reports a change so that the restart and the check run again.
  returned: always
  type: bool
  sample: false
checked:
  description:
    - Whether O(check_unchanged=true) proved the unchanged configuration (see RV(checks)). V(false) when
      something changed or would change, in check mode, and without that option.
  returned: always
  type: bool
  sample: true
checks:
  description:
    - With RV(checked=true), the HTTP status each request got, per realm, as
      RV(zulip_ops.zulip.zulip_scim_check#module:realms) of M(zulip_ops.zulip.zulip_scim_check).
  returned: when RV(checked=true)
  type: dict
  sample: {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401}}
takeover:
  description:
    - What O(takeover=true) took over from a hand-written C(SCIM_CONFIG) - the realms moved into the block,
      the realms dropped (V(absent)), the lines of the assignments, and the secrets renamed. Never a token.
  returned: when a hand-written C(SCIM_CONFIG) was taken over (or would be, in check mode)
  type: dict
  sample: {"realms": ["acme"], "dropped": [], "lines": [42], "renamed_secrets": {},
           "message": "Took over the hand-written SCIM_CONFIG of /etc/zulip/settings.py (line 42): acme moved ..."}
backup_file:
  description: The copy of C(settings.py) made before changing it (without any token, see O(takeover)).
  returned: when O(backup=true) and C(settings.py) changed
  type: str
  sample: /etc/zulip/settings.py.4242.2026-11-28@15:05:00~
diff:
  description:
    - Two before/after pairs, C(settings.py) in full, then the managed keys of the secrets file with
      their values redacted.
  returned: when diff mode is on
  type: list
  elements: dict
  sample:
    - before_header: /etc/zulip/settings.py
      after_header: /etc/zulip/settings.py
      before: "..."
      after: "..."
    - before_header: /etc/zulip/zulip-secrets.conf (managed keys, values redacted)
      after_header: /etc/zulip/zulip-secrets.conf (managed keys, values redacted)
      before: "[secrets]\n"
      after: "[secrets]\nscim_bearer_token_acme = <redacted>  # new value\n"
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _docker_zulip as docker_zulip
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_check as scim_check
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _tls as tls
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import API_OPTIONS, argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._config_plan import Plan, make_plan, weak_token_warnings
from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import DEFAULT_TIMEOUT, locked_settings
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import redacted_view
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZULIP_USER, ZulipError

NEW_SECRETS_MODE = 0o640

ARGUMENT_SPEC = argument_spec(
    ("realms", "version", "rejected_tokens", "deploy_lock_timeout", *API_OPTIONS),
    tokens=dict(type="dict", default={}, no_log=True),
    exclusive=dict(type="bool", default=False),
    backup=dict(type="bool", default=False),
    keep_previous=dict(type="bool", default=False),
    lock_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    takeover=dict(type="bool", default=False),
    check_unchanged=dict(type="bool", default=False),
)


# -- applying ------------------------------------------------------------------------


def plan_writes(plan: Plan) -> list[files.Write]:
    """Secrets first: settings.py must never name a secret that is not there yet."""
    writes = []
    if plan.secrets_changed:
        owner = files.owner_ids(ZULIP_USER) or (None, None)
        writes.append(files.Write(plan.secrets_before, plan.secrets_after,
                                  mode=NEW_SECRETS_MODE, uid=owner[0], gid=owner[1]))
    if plan.settings_changed:
        writes.append(files.Write(plan.settings_before, plan.settings_after))
    return writes


def diff_of(plan: Plan, params: dict) -> list[dict]:
    secrets_header = "%s (managed keys, values redacted)" % params["secrets_path"]
    secrets_before, secrets_after = redacted_view(plan.secret_values_before, plan.secret_values_after)
    return [
        # The scrubbed "before": a hand-written inline token must not show in the diff either.
        dict(before_header=params["settings_path"], after_header=params["settings_path"],
             before=plan.settings.text(plan.settings_safe_before), after=plan.settings.text(plan.settings_after)),
        dict(before_header=secrets_header, after_header=secrets_header,
             before=secrets_before, after=secrets_after),
    ]


def remove_stale_temps(params: dict) -> None:
    """Temporary files of a writer killed before its rename (the secrets file's holds every secret)."""
    for path in (params["settings_path"], params["secrets_path"]):
        files.remove_stale_temps(path)
        for kept_path in previous._kept_paths(path):  # pylint: disable=protected-access
            files.remove_stale_temps(kept_path)


def honour_deploy_lock(module: AnsibleModule) -> None:
    deploy_lock.honour(module, module.params["deploy_path"], module.params["deploy_lock_timeout"],
                       "nothing was read or written")


def run(module: AnsibleModule) -> dict:
    """Plan and write, holding the host's lock so that no other run writes between the read and the write."""
    if module.check_mode:
        # Check mode writes nothing, so it takes no lock: it never makes a real run wait.
        honour_deploy_lock(module)
        return run_locked(module)
    with locked_settings(module.params["settings_path"], module.params["lock_timeout"]):
        # Under the run's own lock, right before the files are read for the change: not during a Zulip upgrade.
        honour_deploy_lock(module)
        remove_stale_temps(module.params)
        return run_locked(module)


def run_locked(module: AnsibleModule) -> dict:
    params = module.params
    plan = make_plan(params)
    for warning in weak_token_warnings(plan.wanted):
        module.warn(warning)
    paths = previous.configuration_paths(params)
    unproven = bool(params["keep_previous"] and previous.kept(paths))
    if unproven:
        module.warn("an earlier run changed %s and was not proven afterwards (interrupted, or its restart or "
                    "check failed): Zulip is restarted and checked again" % " and ".join(paths))
    result = dict(
        changed=plan.settings_changed or plan.secrets_changed or unproven,
        unproven=unproven,
        settings_changed=plan.settings_changed,
        secrets_changed=plan.secrets_changed,
        realms_changed=plan.realms_changed,
        realms_present=plan.realms_present,
        tokens_replaced=plan.tokens_replaced,
        checked=False,
    )
    if plan.settings.hand is not None:
        result["takeover"] = plan.takeover.summary(module.check_mode)
    for warning in plan.takeover.warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = diff_of(plan, params)
    if module.check_mode:
        return result
    if not (plan.settings_changed or plan.secrets_changed):
        if params["check_unchanged"] and not unproven:
            # What Zulip runs now is what these files say: prove it here, not in another module run.
            result.update(checked=True, checks=scim_check.prove(params, plan.present_wanted(), params["rejected_tokens"]))
        return result
    if params["backup"] and plan.settings_changed:
        # Before any write, so a failed backup leaves both files as they were.
        result["backup_file"] = backup_settings(plan)
    writes = plan_writes(plan)
    if params["keep_previous"]:
        previous.keep([_safe_snapshot(plan, write.snapshot) for write in writes])
    files.write_all(writes)
    return result


def _safe_snapshot(plan: Plan, snapshot: files.Snapshot) -> files.Snapshot:
    """The file as it was, but with a taken-over inline token moved (see Plan.settings_safe_before)."""
    content = plan.settings_safe_before if snapshot is plan.settings_before else plan.secrets_safe_before
    if snapshot.exists or content is None:
        return files.Snapshot(snapshot.path, content, snapshot.mode, snapshot.uid, snapshot.gid)
    # No secrets file before, but the moved tokens need one: as plan_writes would make it.
    owner = files.owner_ids(ZULIP_USER) or (None, None)
    return files.Snapshot(snapshot.path, content, NEW_SECRETS_MODE, owner[0], owner[1])


def backup_settings(plan: Plan) -> str:
    """A time-stamped copy of settings.py as it was, owner and mode kept, never holding a token.

    Ansible's naming, but not its backup_local: that copies through a path, so a link the zulip user
    plants at the (predictable) name would make root write and chown any file. The copy is created
    as a new file in the directory's descriptor (O_CREAT|O_EXCL|O_NOFOLLOW, another name when that
    one is taken), from the bytes read for the change (with a takeover: without its inline tokens).
    """
    path = plan.settings.path
    before = plan.settings_before
    try:
        return files.create_exclusive(path, plan.settings_safe_before, before.mode, before.uid, before.gid,
                                      files.backup_names(os.path.basename(path)))
    except files.FileWriteError as exc:
        raise ZulipError("cannot back up %s: %s" % (path, exc)) from None


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        # Before the lock, the stale temporary files and the plan: a refused api_url changes nothing.
        tls.check_api_options(module.params)
        # Also when called without zulip_scim_preflight: a docker-zulip container would undo every edit.
        docker_zulip.check_host(module.params["settings_path"], module.params["secrets_path"])
        result = run(module)
    except scim_check.CheckFailed as exc:
        # The files are as wanted, so what is served differs from them: say so, and that nothing restarted.
        module.fail_json(msg="%s. Nothing was to change in %s or %s: the running Zulip does not serve what they say "
                             "(edited without a restart since?); nothing was restarted"
                             % (exc, module.params["settings_path"], module.params["secrets_path"]),
                         checks=exc.realms)
    except ZulipError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
