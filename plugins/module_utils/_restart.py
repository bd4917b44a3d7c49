# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Restarting Zulip, and going back to the configuration it ran before.

``restart-server`` of the deployment, run as the ``zulip`` user, is how Zulip
applies settings. When it fails after new files were written (6.0+ runs
``manage.py check`` first; supervisor may refuse; a program may not come
back), or the SCIM check fails after it, :func:`roll_back` puts back the
files that ``zulip_scim_config`` kept (see ``_previous``) and restarts Zulip
on them, so the server runs what it ran before the run, and says so.

Every restart looks at Zulip's deployment lock right before it runs the
script (``_deploy_lock``): while ``upgrade-zulip`` runs, nothing is restarted.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _deploy_lock as deploy_lock
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, as_user

# How much of restart-server's output a failure message quotes.
QUOTED_LINES = 20
# Control characters (terminal escapes among them) in the zulip user's output: shown as "?", so what it
# prints cannot move the cursor or recolour the operator's terminal around the collection's own words.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Restart:
    """One run of restart-server: rc, what it printed (stdout then stderr), seconds."""

    def __init__(self, rc: int, lines: list[str], seconds: float):
        self.rc = rc
        self.lines = [_CONTROL_CHARACTERS.sub("?", line) for line in lines]
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def failure(self) -> str:
        return "restart-server failed (rc=%d): %s" % (self.rc, "\n".join(self.lines[-QUOTED_LINES:]))


def script_path(deploy_path: str) -> str:
    return os.path.join(deploy_path, "scripts", "restart-server")


def restart_command(deploy_path: str, user: str, options: list[str]) -> list[str]:
    # Through deploy_path (the `current` symlink): the script repoints `current` at its own directory.
    return as_user([script_path(deploy_path)] + list(options), user)


def restart(module, deploy_path: str, user: str, options: list[str],
            deploy_lock_timeout: float = deploy_lock.DEFAULT_TIMEOUT) -> Restart:
    """Run restart-server; DeployLocked (nothing run) while Zulip's deployment lock outlasts the wait."""
    # The last look before the restart: an upgrade that began after the run planned is not restarted under.
    deploy_lock.wait_until_free(deploy_path, deploy_lock_timeout, "restart-server was not run")
    started = time.monotonic()
    finished = programs.run(restart_command(deploy_path, user, options), timeout=programs.RESTART_DEADLINE,
                            environ_update={"LC_ALL": "C.UTF-8"})
    lines = finished.out.splitlines() + finished.err.splitlines()
    if finished.timed_out:
        lines.append("(stopped: restart-server was still running after %d s)" % programs.RESTART_DEADLINE)
    return Restart(finished.rc, lines, round(time.monotonic() - started, 2))


def roll_back(module, params: dict) -> tuple[bool, str]:
    """Put back the kept configuration and restart Zulip on it.

    Returns (serving again, what happened, in words for the operator).
    """
    paths = previous.configuration_paths(params)
    if not previous.kept(paths):
        return False, "No previous configuration was kept on the host, so nothing was put back."
    errors = previous.restore(paths)
    names = " and ".join(paths)
    if errors:
        return False, ("Putting back the previous %s FAILED: %s. Fix the files by hand, then run "
                       "restart-server." % (names, "; ".join(errors)))
    try:
        again = restart(module, params["deploy_path"], params["user"], params["options"], params["deploy_lock_timeout"])
    except ZulipError as exc:
        # An upgrade is running: it restarts Zulip itself, on the files just put back.
        return False, ("The previous %s were put back, but Zulip was not restarted on them: %s Zulip's upgrade "
                       "restarts it on these files when it ends; otherwise run restart-server then." % (names, exc))
    if not again.ok:
        return False, ("The previous %s were put back, but Zulip did not restart on them either: %s. "
                       "Zulip may not be serving: see /var/log/zulip/errors.log and supervisorctl status."
                       % (names, again.failure()))
    return True, ("The previous %s were put back byte for byte and Zulip was restarted on them (%.1f s): "
                  "it serves the configuration it had before this run." % (names, again.seconds))
