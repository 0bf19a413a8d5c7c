# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""supervisord's XML-RPC socket as process_managers.Supervisor calls it (``rpc.call(method, *args)``)."""

from __future__ import annotations

import xmlrpc.client

# supervisord's xmlrpc.Faults used here.
BAD_NAME, SPAWN_ERROR, NOT_RUNNING = 10, 50, 70


def fault(code, text):
    return xmlrpc.client.Fault(code, text)


def info(statename, pid=0, description='', group='baton-shop-2'):
    return dict(name=group, group=group, statename=statename, pid=pid, description=description, exitstatus=0,
                spawnerr='')


class FakeSupervisord:
    """Answers each method from ``answers`` (method -> a value or a list of values used in turn, the last one
    repeated; a Fault or another exception is raised); every call is recorded as ``(method, *args)``."""

    DEFAULTS = {'reloadConfig': [[[], [], []]]}

    def __init__(self, **answers):
        self.answers = {method: list(value) if isinstance(value, list) and method != 'reloadConfig' else [value]
                        for method, value in answers.items()}
        self.calls = []

    def call(self, method, *args):
        self.calls.append((method,) + args)
        replies = self.answers.get(method) or [self.DEFAULTS.get(method, True)]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply
