# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark-only callback: where a playbook's wall time goes, task by task.

ansible.posix.profile_tasks is not part of ansible-core; this is the same idea, written as JSON
for tests/bench/bench.py. A task's time runs from its start to the next task's start, so it
includes the strategy's own overhead. Enable with ANSIBLE_CALLBACK_PLUGINS=<this directory>,
ANSIBLE_CALLBACKS_ENABLED=bench_timer and BATON_BENCH_TIMING=<output file>.
"""
from __future__ import annotations

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: Per-task wall time as JSON (benchmark only)
description:
  - Writes the start offset, duration, action and file position of every task, and the rotation's
    steps with their durations (the events of baton.deploy.rotate), to the file named by the
    BATON_BENCH_TIMING environment variable.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loaded = time.time()
        self.tasks = []
        self.remote_runs = 0
        # The rotation's own steps on the host (baton.deploy.rotate returns them as events).
        self.steps = []

    def _close_current(self):
        if self.tasks and self.tasks[-1]["seconds"] is None:
            self.tasks[-1]["seconds"] = round(time.time() - self.loaded - self.tasks[-1]["start"], 4)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_current()
        path = task.get_path() or ""
        self.tasks.append({"name": task.get_name(), "action": task.action, "start": round(time.time() - self.loaded, 4),
                           "path": path, "seconds": None})

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _count(self, result, *_args, **_kwargs):
        # A result that is not skipped means the module ran (on the target, unless it is an action
        # that runs on the controller only): one more round trip over SSH.
        self.remote_runs += result._task.action not in CONTROLLER_ONLY
        events = result._result.get("events") if isinstance(result._result, dict) else None
        if isinstance(events, list):
            self.steps += [{"step": e["step"], "started": e.get("started"), "seconds": e["seconds"]} for e in events
                           if isinstance(e, dict) and "step" in e and "seconds" in e]

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_unreachable = _count

    def v2_playbook_on_stats(self, stats):
        self._close_current()
        with open(os.environ["BATON_BENCH_TIMING"], "w", encoding="utf-8") as out:
            json.dump({"loaded": self.loaded, "ended": time.time(), "remote_runs": self.remote_runs,
                       "tasks": self.tasks, "steps": self.steps}, out)


CONTROLLER_ONLY = frozenset(
    f"{prefix}{name}" for prefix in ("", "ansible.builtin.")
    for name in ("set_fact", "debug", "assert", "fail", "meta", "include_tasks", "include_role",
                 "import_tasks", "import_role", "include_vars", "validate_argument_spec"))
