# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import deploy_state


def run_module(capsys, **args):
    # Warnings are collected in a process-wide registry; isolate each run so results do not leak between tests.
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            deploy_state.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'baton' / 'shop' / 'state.json')


def record(capsys, path, slot, release, **extra):
    return run_module(capsys, app='shop', path=path, state='record', active_slot=slot, release=release, **extra)


def test_read_missing_returns_default(capsys, path):
    rc, out = run_module(capsys, app='shop', path=path, ports={1: 8081, 2: 8082})
    assert rc == 0
    assert out['changed'] is False
    assert out['exists'] is False
    assert out['path'] == path
    assert out['state'] == {
        'version': 1, 'app': 'shop', 'active_slot': None, 'next_slot': 1,
        'slots': {'1': {'release': None, 'port': 8081}, '2': {'release': None, 'port': 8082}},
        'history': [],
    }
    assert 'previous_state' not in out
    assert not os.path.exists(os.path.dirname(path))


def test_default_path_is_used(capsys, mocker):
    load = mocker.patch.object(deploy_state, 'load', return_value=(None, False))
    rc, out = run_module(capsys, app='shop')
    assert rc == 0
    assert out['path'] == '/var/lib/baton/shop/state.json'
    load.assert_called_once_with('/var/lib/baton/shop/state.json', app='shop')


def test_record_writes_then_is_idempotent(capsys, path):
    rc, out = record(capsys, path, 1, 'r1', ports={'1': 8081, '2': 8082})
    assert rc == 0 and out['changed'] is True and out['exists'] is False
    assert out['previous_state']['active_slot'] is None
    assert 'mode' not in out and 'uid' not in out, 'no file attributes mixed into the result'
    assert out['state']['active_slot'] == 1 and out['state']['next_slot'] == 2
    assert out['state']['slots']['1'] == {'release': 'r1', 'port': 8081}
    with open(path) as handle:
        assert json.load(handle) == out['state']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o750
    mtime = os.stat(path).st_mtime_ns

    rc, again = record(capsys, path, 1, 'r1')
    assert rc == 0 and again['changed'] is False and again['exists'] is True
    assert again['state'] == out['state']
    assert len(again['state']['history']) == 1
    assert os.stat(path).st_mtime_ns == mtime

    rc, read = run_module(capsys, app='shop', path=path)
    assert read['exists'] is True and read['state'] == out['state'] and read['changed'] is False


def test_record_second_deploy_and_history(capsys, path):
    record(capsys, path, 1, 'r1', ports={1: 8081, 2: 8082})
    rc, out = record(capsys, path, 2, 'r2')
    assert out['changed'] is True
    assert out['previous_state']['active_slot'] == 1
    assert out['state']['slots'] == {'1': {'release': 'r1', 'port': 8081}, '2': {'release': 'r2', 'port': 8082}}
    entry = out['state']['history'][-1]
    assert (entry['action'], entry['release'], entry['slot'], entry['previous_release'], entry['previous_slot']) == \
        ('deploy', 'r2', 2, 'r1', 1)
    assert entry['time'].endswith('Z')
    rc, out = record(capsys, path, 1, 'r1', action='rollback', history_size=2)
    assert [e['action'] for e in out['state']['history']] == ['deploy', 'rollback']


def test_record_check_mode_and_diff(capsys, path):
    record(capsys, path, 1, 'r1')
    with open(path) as handle:
        before = handle.read()
    rc, out = record(capsys, path, 2, 'r2', _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and out['changed'] is True
    assert out['state']['active_slot'] == 2
    with open(path) as handle:
        assert handle.read() == before
    assert out['diff']['before'] == before
    assert json.loads(out['diff']['after']) == out['state']
    assert out['diff']['before_header'] == path


def test_record_check_mode_missing_file_writes_nothing(capsys, path):
    rc, out = record(capsys, path, 1, 'r1', _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and out['changed'] is True and out['exists'] is False
    assert out['diff']['before'] == ''
    assert not os.path.exists(os.path.dirname(path))


def test_corrupt_file_fails_clearly(capsys, path):
    os.makedirs(os.path.dirname(path))
    with open(path, 'w') as handle:
        handle.write('{"version": 1, "app": "sh')
    for state in ('read', 'record'):
        rc, out = run_module(capsys, app='shop', path=path, state=state, active_slot=1, release='r1')
        assert rc == 1 and out['failed'] is True
        assert path in out['msg']
        assert 'not valid JSON' in out['msg']
        assert 'remove it and redeploy' in out['msg']
        assert 'running slots are untouched' in out['msg']
    with open(path) as handle:
        assert handle.read() == '{"version": 1, "app": "sh'


@pytest.mark.parametrize('args, message', [
    (dict(app='Shop'), 'app must start with a lowercase letter'),
    (dict(app='shop', state='record', active_slot=1), 'state is record but all of the following are missing: release'),
    (dict(app='shop', state='record', active_slot=3, release='r'), 'active_slot'),
    (dict(app='shop', state='record', active_slot=1, release='  '), 'release must not be empty'),
    (dict(app='shop', ports={1: 8081, 2: 8081}), 'must differ'),
    (dict(app='shop', history_size=-1), 'history_size must be >= 0'),
])
def test_invalid_params(capsys, tmp_path, args, message):
    rc, out = run_module(capsys, path=str(tmp_path / 'state.json'), **args)
    assert rc == 1
    assert message in out['msg']


def test_write_error_fails(capsys, path, mocker):
    mocker.patch.object(deploy_state, 'atomic_write', side_effect=OSError(28, 'No space left on device'))
    rc, out = record(capsys, path, 1, 'r1')
    assert rc == 1
    assert 'Could not write the deploy state file %s' % path in out['msg']
