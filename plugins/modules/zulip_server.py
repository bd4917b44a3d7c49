#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_server
short_description: Restart a Zulip server the documented way, and go back when that fails
version_added: 0.1.0
description:
  - Runs Zulip's own C(scripts/restart-server) of the deployment as the O(user) user, which is
    how Zulip applies changes to C(/etc/zulip/settings.py). From 6.0 on the script runs
    C(manage.py check) first and restarts nothing when the settings do not load.
  - Always calls the script through O(deploy_path) (normally the C(current) symlink), because the
    script repoints C(current) at the directory it was started from.
  - A restart drops users' connections and takes about 20 seconds; use it from a handler so it
    happens once per run and only when something changed.
  - M(zulip_ops.zulip.zulip_scim_config) with O(zulip_ops.zulip.zulip_scim_config#module:keep_previous=true)
    keeps the files as they were before it changed them. With O(on_failure=roll_back), a failed restart
    puts those back byte for byte, restarts Zulip on them and fails, naming the cause.
    O(state=rolled_back) does the same after a later step failed (the SCIM check, for example).
  - Holds the lock that M(zulip_ops.zulip.zulip_scim_config) takes (an exclusive C(flock) on the directory
    of O(settings_path)) while it restarts, rolls back or forgets the kept files, so that two runs against
    the same host neither restart Zulip at the same time (their C(supervisorctl) calls stop each other's
    programs) nor change the files under each other. It waits at most O(lock_timeout) seconds, then fails
    naming the holder, having run nothing. Without that directory there is nothing to keep apart.
  - Right before each run of C(restart-server) (the roll-back's too) it looks at Zulip's deployment lock
    (see O(deploy_lock_timeout)), so that Zulip is not restarted while a Zulip upgrade runs. When the lock outlasts
    the wait, O(state=restarted) fails without restarting, and a roll-back puts the previous files back but
    leaves the restart to the upgrade.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.deploy_lock
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.user
attributes:
  check_mode:
    support: full
    details: Reports a restart or a roll-back without doing it.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: V(restarted) restarts every time; V(rolled_back) changes nothing when no previous configuration is kept.
options:
  state:
    description:
      - V(restarted) runs C(restart-server) every time the task runs.
      - V(rolled_back) puts back the previous configuration kept by M(zulip_ops.zulip.zulip_scim_config)
        and restarts Zulip on it; with nothing kept it does nothing.
    type: str
    choices: [restarted, rolled_back]
    default: restarted
  on_failure:
    description:
      - What a failed restart (O(state=restarted)) does before the task fails.
      - V(roll_back) puts back the kept previous configuration (if any) and restarts Zulip on it, so
        that it serves what it served before; the message says what was done.
      - V(fail) only fails.
    type: str
    choices: [fail, roll_back]
    default: fail
  forget_previous:
    description:
      - After a successful restart, delete the previous configuration kept by
        M(zulip_ops.zulip.zulip_scim_config), because nothing will check the new one afterwards.
      - Leave it V(false) when M(zulip_ops.zulip.zulip_scim_check) with
        O(zulip_ops.zulip.zulip_scim_check#module:forget_previous=true) follows.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another run that holds the lock on the directory of O(settings_path).
    type: int
    default: 120
  options:
    description: Extra options for C(restart-server), for example V(--less-graceful) or V(--skip-client-reloads) (9.0+).
    type: list
    elements: str
    default: []
seealso:
  - module: zulip_ops.zulip.zulip_scim_config
  - module: zulip_ops.zulip.zulip_scim_check
"""

EXAMPLES = r"""
# In a role's handlers/main.yml
- name: Restart Zulip, back to the previous configuration if that fails
  zulip_ops.zulip.zulip_server:
    state: restarted
    on_failure: roll_back

# After a failed check, in a rescue section
- name: Put the previous configuration back and restart Zulip on it
  zulip_ops.zulip.zulip_server:
    state: rolled_back
"""

RETURN = r"""
stdout_lines:
  description: What C(restart-server) printed (the first restart's output after a roll-back).
  returned: when it ran
  type: list
  elements: str
seconds:
  description: How long the restart took.
  returned: when it ran
  type: float
  sample: 17.4
rolled_back:
  description: Whether the previous configuration was put back and Zulip restarted on it.
  returned: always
  type: bool
  sample: false
msg:
  description: What was done, in words; after a failure, the cause and what the roll-back did.
  returned: always
  type: str
"""

import contextlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _restart
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._files import FileWriteError
from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import DEFAULT_TIMEOUT, has_settings_directory, locked_settings
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import read_secrets_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError


# Values of zulip-secrets.conf shorter than this are not hidden: a short one ("1", "true") would mask
# ordinary words everywhere in the output; the secrets Zulip and this collection generate are far longer.
MIN_HIDDEN_SECRET = 12


def hide_host_secrets(module: AnsibleModule) -> None:
    """Mask the host's secrets in anything this module returns.

    restart-server is the zulip user's program, and what it prints is returned: it must not be a way
    to put the host's tokens into the controller's output and logs.
    """
    try:
        secrets = read_secrets_file(module.params["secrets_path"])
    except ZulipError:
        return  # nothing readable to hide; the restart itself says what is wrong
    for value in secrets.values() if secrets is not None else []:
        if len(value) >= MIN_HIDDEN_SECRET:
            module.no_log_values.add(value)


def warn_deploy_lock(module: AnsibleModule) -> None:
    """Check mode: what a real run would meet at Zulip's deployment lock, as a warning (no wait)."""
    warning = deploy_lock.report(module.params["deploy_path"], module.params["deploy_lock_timeout"])
    if warning:
        module.warn(warning)


def restarted(module: AnsibleModule) -> None:
    params = module.params
    if module.check_mode:
        warn_deploy_lock(module)
        module.exit_json(changed=True, rolled_back=False, msg="would run %s" % _restart.script_path(params["deploy_path"]))
    result = _restart.restart(module, params["deploy_path"], params["user"], params["options"], params["deploy_lock_timeout"])
    hide_host_secrets(module)
    if not result.ok:
        rolled_back, words = False, ""
        if params["on_failure"] == "roll_back":
            rolled_back, words = _restart.roll_back(module, params)
        module.fail_json(msg=" ".join(part for part in (result.failure(), words) if part), rc=result.rc,
                         stdout_lines=result.lines, seconds=result.seconds, rolled_back=rolled_back)
    if params["forget_previous"]:
        previous.forget(previous.configuration_paths(params))
    module.exit_json(changed=True, rc=result.rc, stdout_lines=result.lines, seconds=result.seconds,
                     rolled_back=False, msg="restarted in %.1f s" % result.seconds)


def rolled_back(module: AnsibleModule) -> None:
    paths = previous.configuration_paths(module.params)
    if not previous.kept(paths):
        module.exit_json(changed=False, rolled_back=False, msg="no previous configuration is kept: nothing to put back")
    if module.check_mode:
        warn_deploy_lock(module)
        module.exit_json(changed=True, rolled_back=False, msg="would put back the previous %s and restart" % " and ".join(paths))
    ok, words = _restart.roll_back(module, module.params)
    hide_host_secrets(module)
    if not ok:
        module.fail_json(msg=words, rolled_back=False)
    module.exit_json(changed=True, rolled_back=True, msg=words)


def host_lock(module: AnsibleModule) -> contextlib.AbstractContextManager:
    """The lock zulip_scim_config takes; none where there is no settings directory (nothing to guard)."""
    if module.check_mode or not has_settings_directory(module.params["settings_path"]):
        return contextlib.nullcontext()
    return locked_settings(module.params["settings_path"], module.params["lock_timeout"])


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            ("user", "deploy_lock_timeout"),
            state=dict(type="str", choices=["restarted", "rolled_back"], default="restarted"),
            on_failure=dict(type="str", choices=["fail", "roll_back"], default="fail"),
            forget_previous=dict(type="bool", default=False),
            options=dict(type="list", elements="str", default=[]),
            lock_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        ),
        supports_check_mode=True,
    )
    script = _restart.script_path(module.params["deploy_path"])
    # A stat only (nothing is opened or changed as root): the script itself runs as the zulip user.
    if not os.path.isfile(script):
        module.fail_json(msg="no Zulip restart script at %s" % script)
    try:
        with host_lock(module):
            if module.params["state"] == "rolled_back":
                rolled_back(module)
            restarted(module)
    except FileWriteError as exc:
        module.fail_json(msg=str(exc), rolled_back=False)
    except ZulipError as exc:  # a lock: another run holds the host's, or a Zulip upgrade runs (nothing restarted)
        module.fail_json(msg=str(exc), rolled_back=False)


if __name__ == "__main__":
    main()
