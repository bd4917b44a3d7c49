# -*- coding: utf-8 -*-
# Benchmark and test helper, not part of the collection.
"""Counts every module Ansible executes, per host, into the file $ZULIP_BENCH_COUNT_FILE.

Every module run on a host (``ping``, ``command``, ``blockinfile``, the collection's
modules, those an action plugin runs on the host) goes through
``ActionBase._execute_module``. The callback wraps it when it is loaded, in the
controller's main process, before the workers fork, so each worker inherits the
wrapper and appends one line per execution: ``<host>\\t<remote|local>\\t<module>``.
Action plugins that run only on the controller (set_fact, assert, debug, the token
store) never reach it, so they are not counted, which is the point.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: count_modules
type: aggregate
short_description: count module executions per host (benchmark helper)
description: Appends one line per module execution to the file named by $ZULIP_BENCH_COUNT_FILE.
requirements: [enabled in ANSIBLE_CALLBACKS_ENABLED]
"""

_original = ActionBase._execute_module


def _counted(self, module_name=None, module_args=None, tmp=None, task_vars=None, *args, **kwargs):
    target = os.environ.get("ZULIP_BENCH_COUNT_FILE")
    if target:
        host = (task_vars or {}).get("inventory_hostname", "?")
        where = "local" if getattr(self._connection, "transport", "") == "local" else "remote"
        name = module_name or self._task.action
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, ("%s\t%s\t%s\n" % (host, where, name)).encode())
        finally:
            os.close(fd)
    return _original(self, module_name, module_args, tmp, task_vars, *args, **kwargs)


ActionBase._execute_module = _counted


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "count_modules"
    CALLBACK_NEEDS_ENABLED = True
