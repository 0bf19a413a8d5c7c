# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import grp
import json
import os

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import slot_env

GROUP = grp.getgrgid(os.getgid()).gr_name


def run_module(capsys, **args):
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            slot_env.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / 'root' / 'slots').mkdir(parents=True)
    return {'root': str(tmp_path / 'root'), 'env_dir': str(tmp_path / 'var' / 'env')}


def point(capsys, dirs, slot, release, env=None, keep_slot=None, **extra):
    args = dict(app='shop', slot=slot, release=release, port=8000 + slot, group=GROUP, **dirs, **extra)
    if env is not None:
        args['env'] = env
    if keep_slot is not None:
        args['keep_slot'] = keep_slot
    return run_module(capsys, **args)


def slot_file(dirs, slot):
    with open(os.path.join(dirs['root'], 'slots', '%d.env' % slot)) as handle:
        return handle.read()


def test_writes_the_slot_file_0640_and_never_returns_values(capsys, dirs):
    rc, out = point(capsys, dirs, 1, 'r1', env={'SECRET': 'hunter2'})
    assert rc == 0 and out['changed'] is True and out['source'] == 'given' and out['kept_release'] is None
    assert 'hunter2' not in json.dumps(out)
    path = os.path.join(dirs['root'], 'slots', '1.env')
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert 'SECRET="hunter2"\nPORT=8001\nBATON_SLOT=1\nBATON_RELEASE=r1\n' in slot_file(dirs, 1)
    rc, out = point(capsys, dirs, 1, 'r1', env={'SECRET': 'hunter2'})
    assert (rc, out['changed']) == (0, False)


def test_rollback_restores_the_last_good_environment(capsys, dirs):
    """r1..r3 with their own env, r4 never ready (rewrites slot 2's file), rollback to r2: r2's env."""
    assert point(capsys, dirs, 1, 'r1', env={'APP_RELEASE': 'r1'})[0] == 0
    assert point(capsys, dirs, 2, 'r2', env={'APP_RELEASE': 'r2'}, keep_slot=1)[1]['kept_release'] == 'r1'
    assert point(capsys, dirs, 1, 'r3', env={'APP_RELEASE': 'r3'}, keep_slot=2)[1]['kept_release'] == 'r2'
    assert point(capsys, dirs, 2, 'r4', env={'APP_RELEASE': 'r4'}, keep_slot=1)[1]['kept_release'] == 'r3'
    # The rollback: slot 2 back to r2 (the state file's release of slot 2), slot 1 (r3) live.
    rc, out = point(capsys, dirs, 2, 'r2', keep_slot=1, restore=True)
    assert rc == 0 and out['source'] == 'stored'
    assert 'APP_RELEASE="r2"\nPORT=8002\nBATON_SLOT=2\nBATON_RELEASE=r2\n' in slot_file(dirs, 2)
    kept = os.path.join(dirs['env_dir'], 'r2.env')
    assert os.stat(kept).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(dirs['env_dir'])) == ['r1.env', 'r2.env', 'r3.env']


def test_restore_falls_back_to_the_slot_file_of_an_earlier_version(capsys, dirs):
    with open(os.path.join(dirs['root'], 'slots', '1.env'), 'w') as handle:
        handle.write('# {{ ansible_managed }}\nA="1"\nPORT=8001\nBATON_SLOT=1\nBATON_RELEASE=r1\n')
    rc, out = point(capsys, dirs, 1, 'r1', restore=True)
    assert rc == 0 and out['source'] == 'slot'
    assert 'A="1"\nPORT=8001' in slot_file(dirs, 1)


def test_restore_with_nothing_kept_fails_and_changes_nothing(capsys, dirs):
    point(capsys, dirs, 1, 'r4', env={'A': 'r4'})
    before = slot_file(dirs, 1)
    rc, out = point(capsys, dirs, 1, 'r2', restore=True)
    assert rc == 1 and 'No environment is kept on this host for release r2' in out['msg']
    assert 'Slot 1 was not changed.' in out['msg']
    assert slot_file(dirs, 1) == before


def test_check_mode_writes_nothing(capsys, dirs):
    rc, out = point(capsys, dirs, 1, 'r1', env={'A': '1'}, _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True
    assert os.listdir(os.path.join(dirs['root'], 'slots')) == []


@pytest.mark.parametrize('env,message', [
    ({'A': 'x\ny'}, 'the value of A contains a newline'),
    ({'BAD NAME': 'x'}, 'is not a valid environment variable name'),
])
def test_bad_environment_is_refused_without_showing_it(capsys, dirs, env, message):
    rc, out = point(capsys, dirs, 1, 'r1', env=env)
    assert rc == 1 and message in out['msg'] and 'x\ny' not in json.dumps(out)
    assert os.listdir(os.path.join(dirs['root'], 'slots')) == []


def test_env_and_restore_exclude_each_other(capsys, dirs):
    rc, out = point(capsys, dirs, 1, 'r1', env={'A': '1'}, restore=True)
    assert rc == 1 and 'env and restore=true exclude each other' in out['msg']
    rc, out = point(capsys, dirs, 1, 'r1', env={'A': '1'}, restore=False)  # as point.yml passes them
    assert rc == 0 and out['source'] == 'given'
