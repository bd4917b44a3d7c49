#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: zulip_server
short_description: Restart a Zulip server the documented way
version_added: 0.1.0
description:
  - Runs Zulip's own C(scripts/restart-server) of the deployment as the O(user) user, which is
    how Zulip applies changes to C(/etc/zulip/settings.py). From 6.0 on the script runs
    C(manage.py check) first and restarts nothing when the settings do not load.
  - Always calls the script through O(deploy_path) (normally the C(current) symlink), because the
    script repoints C(current) at the directory it was started from.
  - A restart drops users' connections and takes about 20 seconds; use it from a handler so it
    happens once per run and only when something changed.
  - Holds the lock that M(zulip_ops.zulip.zulip_scim_config) takes (an exclusive C(flock) on the directory
    of O(settings_path)) while the script runs, so that two runs against the same host neither restart at
    the same time (their C(supervisorctl) calls would stop each other's programs) nor change the files
    while Zulip reads them. It waits at most O(lock_timeout) seconds, then fails naming the holder.
extends_documentation_fragment:
  - zulip_ops.zulip._shared
  - zulip_ops.zulip._shared.layout
  - zulip_ops.zulip._shared.user
attributes:
  check_mode:
    support: full
    details: Reports a restart without running it.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: V(restarted) restarts every time.
options:
  state:
    description: V(restarted) runs C(restart-server) every time the task runs.
    type: str
    choices: [restarted]
    default: restarted
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
"""

EXAMPLES = r"""
# In a role's handlers/main.yml
- name: Restart Zulip
  zulip_ops.zulip.zulip_server:
    state: restarted
"""

RETURN = r"""
stdout_lines:
  description: What C(restart-server) printed.
  returned: when it ran
  type: list
  elements: str
seconds:
  description: How long the restart took.
  returned: when it ran
  type: float
  sample: 17.4
"""

import contextlib
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import argument_spec
from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import DEFAULT_TIMEOUT, locked_directory
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, as_user


def restart_command(deploy_path: str, user: str, options: list[str]) -> list[str]:
    return as_user([os.path.join(deploy_path, "scripts", "restart-server")] + options, user)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            ("user",),
            state=dict(type="str", choices=["restarted"], default="restarted"),
            options=dict(type="list", elements="str", default=[]),
            lock_timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        ),
        supports_check_mode=True,
    )
    script = os.path.join(module.params["deploy_path"], "scripts", "restart-server")
    if not os.path.isfile(script):
        module.fail_json(msg="no Zulip restart script at %s" % script)
    if module.check_mode:
        module.exit_json(changed=True, msg="would run %s" % script)
    argv = restart_command(module.params["deploy_path"], module.params["user"], module.params["options"])
    started = time.monotonic()
    lock_dir = os.path.dirname(os.path.realpath(module.params["settings_path"])) or "."
    # No settings directory: no zulip_scim_config can run here either, so there is nothing to keep apart.
    guard = (locked_directory(lock_dir, module.params["lock_timeout"], "the Zulip settings and secrets")
             if os.path.isdir(lock_dir) else contextlib.nullcontext())
    try:
        with guard:
            rc, out, err = module.run_command(argv, cwd="/", environ_update={"LC_ALL": "C.UTF-8"})
    except ZulipError as exc:
        module.fail_json(msg=str(exc))
    seconds = round(time.monotonic() - started, 2)
    output = out.splitlines() + err.splitlines()
    if rc != 0:
        module.fail_json(msg="restart-server failed (rc=%d): %s" % (rc, "\n".join(output[-20:])), rc=rc, stdout_lines=output, seconds=seconds)
    module.exit_json(changed=True, rc=rc, stdout_lines=output, seconds=seconds)


if __name__ == "__main__":
    main()
