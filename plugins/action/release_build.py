# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of baton.deploy.release_build: with ``src`` (a tarball on the controller), upload it to
the host's temporary directory and run the module with ``archive`` pointing at the upload, so that
staging and unpacking take one module run (one transfer, no ``unarchive`` with its listing and diff).
Without ``src``, or in check mode (nothing is staged then), the module runs as it is."""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    # TRANSFERS_FILES stays False: it would make a temporary directory on the host for every run, also for
    # the runs that upload nothing (finished, abandoned, a git source); run() makes one only for src.

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        src = args.pop('src', None)
        if src is not None:  # checked in check mode too
            if args.get('archive'):
                raise AnsibleActionFail('src and archive are mutually exclusive: src is a tarball on the controller, '
                                        'archive one already on the host')
            source = self._find_needle('files', src)
            if not os.path.isfile(source):
                raise AnsibleActionFail('src %s is not a file on the controller (a tarball is expected)' % source)
        tmpdir = None
        try:
            if src is not None and not self._task.check_mode:  # check mode stages nothing to unpack into
                tmpdir = self._make_tmp_path()
                remote = self._connection._shell.join_path(tmpdir, 'source.tar')
                self._transfer_file(source, remote)
                self._fixup_perms2((tmpdir, remote))
                args['archive'] = remote
            result.update(self._execute_module(module_name='baton.deploy.release_build', module_args=args,
                                               task_vars=task_vars))
        finally:
            if tmpdir is not None:
                self._remove_tmp_path(tmpdir)
        return result
