# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import time

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import deploy_lock


def run_module(capsys, **args):
    # Warnings are collected in a process-wide registry; isolate each run so results do not leak between tests.
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            deploy_lock.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def warning_messages(out):
    """Warning texts from a module result (ansible-core 2.19 returns them as WarningSummary dicts)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in out.get('warnings', [])]


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'baton' / 'shop' / 'deploy.lock')


def backdate(path, seconds):
    with open(path) as handle:
        record = json.load(handle)
    record['timestamp'] -= seconds
    record['time'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record['timestamp']))
    with open(path, 'w') as handle:
        json.dump(record, handle)
    return record


def test_acquire_and_release(capsys, path):
    rc, out = run_module(capsys, app='shop', path=path, owner='alice@ctl pid 1')
    assert rc == 0
    assert out['changed'] is True and out['acquired'] is True and out['took_over'] is False
    assert out['owner'] == 'alice@ctl pid 1', 'owner must not be replaced by the file owner'
    assert out['previous_holder'] is None and out['path'] == path
    assert 'mode' not in out and 'state' not in out
    token = out['token']
    with open(path) as handle:
        assert json.load(handle)['token'] == token

    rc, again = run_module(capsys, app='shop', path=path, owner='alice@ctl pid 1', token=token)
    assert rc == 0 and again['changed'] is False and again['acquired'] is True

    rc, out = run_module(capsys, app='shop', path=path, state='absent', token=token)
    assert rc == 0 and out['changed'] is True and out['released'] is True
    assert out['owner'] == 'alice@ctl pid 1'
    assert not os.path.exists(path)

    rc, out = run_module(capsys, app='shop', path=path, state='absent', token=token)
    assert rc == 0 and out['changed'] is False and out['released'] is False


def test_held_lock_fails_at_once(capsys, path):
    run_module(capsys, app='shop', path=path, owner='alice@ctl pid 1234')
    backdate(path, 42)
    started = time.monotonic()
    rc, out = run_module(capsys, app='shop', path=path, owner='bob@ctl pid 5')
    assert time.monotonic() - started < 1
    assert rc == 1 and out['failed'] is True
    assert out['msg'].startswith('Another deploy of shop holds the lock %s since ' % path)
    assert '(42s ago): alice@ctl pid 1234. Wait for it to finish; if it died, re-run with ' \
           'baton_deploy_force_unlock=true or remove %s.' % path in out['msg']
    assert out['holder']['owner'] == 'alice@ctl pid 1234'
    assert out['acquired'] is False


def test_stale_lock_taken_over_with_warning(capsys, path):
    run_module(capsys, app='shop', path=path, owner='alice')
    old = backdate(path, 7200)
    rc, out = run_module(capsys, app='shop', path=path, owner='bob')
    assert rc == 0 and out['took_over'] is True and out['acquired'] is True and out['changed'] is True
    assert out['previous_holder']['owner'] == 'alice'
    assert out['previous_holder']['token'] == old['token']
    assert any('Took over the deploy lock' in warning and 'stale_after=3600s' in warning
               for warning in warning_messages(out))


def test_force_takes_over(capsys, path):
    run_module(capsys, app='shop', path=path, owner='alice')
    rc, out = run_module(capsys, app='shop', path=path, owner='bob', force=True)
    assert rc == 0 and out['took_over'] is True
    assert any('because force is set' in warning for warning in warning_messages(out))
    # alice's deploy cannot release bob's lock any more
    rc, out2 = run_module(capsys, app='shop', path=path, state='absent', token='alices-old-token')
    assert rc == 1 and 'Not releasing the deploy lock' in out2['msg'] and 'bob' in out2['msg']
    assert os.path.exists(path)


def test_check_mode_writes_nothing(capsys, path):
    rc, out = run_module(capsys, app='shop', path=path, owner='alice', _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and out['acquired'] is True and out['token']
    assert not os.path.exists(os.path.dirname(path))

    rc, out = run_module(capsys, app='shop', path=path, owner='alice')
    token = out['token']
    rc, out = run_module(capsys, app='shop', path=path, state='absent', token=token, _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and out['released'] is True
    assert os.path.exists(path)
    rc, out = run_module(capsys, app='shop', path=path, owner='bob', _ansible_check_mode=True)
    assert rc == 1 and 'Another deploy of shop holds the lock' in out['msg']


def test_default_owner_and_path(capsys, mocker, monkeypatch):
    monkeypatch.setenv('SUDO_USER', 'carol')
    acquire = mocker.patch.object(deploy_lock, 'acquire', return_value=dict(
        token='t', owner='x', acquired=True, took_over=False, previous_holder=None,
        path='/var/lib/baton/shop/deploy.lock', changed=True, warnings=[]))
    rc, out = run_module(capsys, app='shop')
    assert rc == 0
    args, kwargs = acquire.call_args
    assert args[0] == '/var/lib/baton/shop/deploy.lock'
    assert args[2].startswith('carol@')
    assert kwargs['stale_after'] == 3600 and kwargs['force'] is False


@pytest.mark.parametrize('args, message', [
    (dict(app='../etc'), 'app must start with a lowercase letter'),
    (dict(app='shop', state='absent'), 'needs the token'),
    (dict(app='shop', token='has space'), 'token must be'),
    (dict(app='shop', stale_after=-1), 'stale_after must be >= 0'),
])
def test_invalid_params(capsys, path, args, message):
    rc, out = run_module(capsys, path=path, **args)
    assert rc == 1 and message in out['msg']
    assert not os.path.exists(path)


def test_force_release(capsys, path):
    run_module(capsys, app='shop', path=path, owner='alice')
    rc, out = run_module(capsys, app='shop', path=path, state='absent', force=True)
    assert rc == 0 and out['released'] is True and out['changed'] is True
    assert not os.path.exists(path)


def test_read_returns_files_beside_the_lock_in_the_same_run(capsys, path):
    os.makedirs(os.path.dirname(path))
    with open(os.path.join(os.path.dirname(path), 'setup.id'), 'w') as handle:
        handle.write('abc123\n')
    rc, out = run_module(capsys, app='shop', path=path, owner='alice', read=['setup.id', 'missing.id'])
    assert rc == 0 and out['acquired'] is True
    assert out['files'] == {'setup.id': 'abc123\n', 'missing.id': None}


def test_read_of_an_unreadable_or_huge_file_is_missing_with_a_warning(capsys, path):
    directory = os.path.dirname(path)
    os.makedirs(os.path.join(directory, 'setup.id'))  # a directory: cannot be read as a file
    with open(os.path.join(directory, 'big.id'), 'w') as handle:
        handle.write('x' * 70000)
    rc, out = run_module(capsys, app='shop', path=path, owner='alice', read=['setup.id', 'big.id'])
    assert rc == 0 and out['acquired'] is True  # the lock is held: the caller releases it as usual
    assert out['files'] == {'setup.id': None, 'big.id': None}
    messages = warning_messages(out)
    assert any('Could not read' in m and 'setup.id' in m for m in messages), messages
    assert any('big.id is over 65536 bytes' in m for m in messages), messages


@pytest.mark.parametrize('name', ['../state.json', '', '..', 'a/b'])
def test_read_takes_plain_file_names_only(capsys, path, name):
    rc, out = run_module(capsys, app='shop', path=path, owner='alice', read=[name])
    assert rc == 1 and 'read takes file names' in out['msg']
    assert not os.path.exists(path)  # refused before the lock is taken
