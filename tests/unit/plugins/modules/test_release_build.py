# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils import release_build as rb
from ansible_collections.baton.deploy.plugins.modules import release_build

ME = rb.Account('shop', os.getuid(), os.getgid(), '/home/shop')


def run_module(capsys, **args):
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            release_build.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def root(tmp_path, mocker):
    # The app user is whoever runs the tests; ownership changes to root are recorded, not made.
    mocker.patch.object(rb.Account, 'lookup', return_value=ME)
    owners = {}
    mocker.patch.object(rb.FileSystem, 'lchown', side_effect=lambda path, uid, gid: owners.__setitem__(path, (uid, gid)))
    mocker.patch.object(os, 'chown', side_effect=lambda path, uid, gid, **kw: owners.__setitem__(path, (uid, gid)))
    os.makedirs(str(tmp_path / 'releases'))
    return str(tmp_path)


def test_staged_then_finished_puts_the_release_in_place(capsys, root, mocker):
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 0 and out['changed'] is True and out['built'] is False
    assert out['staging'] == os.path.join(root, 'releases', '.v2.building') and os.path.isdir(out['staging'])
    with open(os.path.join(out['staging'], 'app.py'), 'w') as handle:
        handle.write('print(1)\n')
    run = mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(0, 'ok\n', ''))
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='finished', build_command='make')
    assert rc == 0 and out['changed'] is True and out['stdout'] == 'ok\n' and out['files'] == 2
    argv = run.call_args[0][0]
    assert argv[:3] == ['runuser', '-u', 'shop'] and argv[-1] == 'make'
    assert run.call_args[1]['cwd'] == os.path.join(root, 'releases', '.v2.building')
    assert os.path.isfile(os.path.join(root, 'releases', 'v2', rb.MARKER))
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 0 and out['changed'] is False and out['built'] is True


def test_a_failed_build_says_which_step_and_that_nothing_live_was_touched(capsys, root, mocker):
    run_module(capsys, root=root, release='v2', user='shop')
    mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(1, '', 'boom'))
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='finished', build_command='make')
    assert rc == 1 and out['step'] == 'Run the build command'
    assert out['msg'] == ("Building release v2 failed at 'Run the build command': exit status 1: boom. Nothing live "
                          "was touched (the running slot and the proxy are unchanged) and the partial build was "
                          "removed. Fix the source or build command and deploy again.")
    assert not os.path.exists(os.path.join(root, 'releases', '.v2.building'))


def test_a_release_directory_that_is_not_a_build_is_refused_before_any_change(capsys, root):
    os.makedirs(os.path.join(root, 'releases', 'v2'))
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 1 and 'is not a complete build' in out['msg'] and out['msg'].endswith('Nothing was changed on the host.')


def test_check_mode_reports_a_build_and_changes_nothing(capsys, root):
    rc, out = run_module(capsys, root=root, release='v2', user='shop', _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and not os.path.exists(out['staging'])


def test_abandoned_removes_the_staging_directory(capsys, root):
    run_module(capsys, root=root, release='v2', user='shop')
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='abandoned')
    assert rc == 0 and out['changed'] is True and not os.path.exists(out['staging'])


@pytest.mark.parametrize('release', ['', '.hidden', '../v1', 'a/b'])
def test_a_release_that_is_not_a_directory_name_is_refused(capsys, root, release):
    rc, out = run_module(capsys, root=root, release=release, user='shop')
    assert rc == 1 and 'plain directory name' in out['msg']
