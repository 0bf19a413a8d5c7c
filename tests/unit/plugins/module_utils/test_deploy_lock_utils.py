# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import deploy_lock as dl

T0 = 1793613600.0  # 2026-11-02T10:00:00Z


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def lock_path(tmp_path):
    return str(tmp_path / 'shop' / 'deploy.lock')


def read(path):
    with open(path) as handle:
        return json.load(handle)


def test_default_lock_path():
    assert dl.default_lock_path('shop') == '/var/lib/baton/shop/deploy.lock'


def test_default_owner():
    assert dl.default_owner({'SUDO_USER': 'alice', 'USER': 'root'}, 'web1') == 'alice@web1'
    assert dl.default_owner({'USER': 'bob'}, 'web1') == 'bob@web1'
    assert dl.default_owner({}, 'web1').endswith('@web1')


def test_new_token_is_random_hex():
    first, second = dl.new_token(), dl.new_token()
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_validate_token():
    assert dl.validate_token(None) is None
    assert dl.validate_token('abc123') is None
    assert 'token must be' in dl.validate_token('has space')
    assert 'token must be' in dl.validate_token('')


def test_acquire_fresh(lock_path):
    old_umask = os.umask(0o077)
    try:
        result = dl.acquire(lock_path, 'shop', 'alice@ctl pid 1', clock=Clock())
    finally:
        os.umask(old_umask)
    assert result['acquired'] is True and result['changed'] is True
    assert result['took_over'] is False and result['previous_holder'] is None
    assert result['owner'] == 'alice@ctl pid 1'
    assert result['path'] == lock_path
    assert result['warnings'] == []
    record = read(lock_path)
    assert record['owner'] == 'alice@ctl pid 1'
    assert record['token'] == result['token']
    assert record['time'] == '2026-11-02T10:00:00Z'
    assert record['timestamp'] == T0
    assert record['app'] == 'shop'
    assert stat.S_IMODE(os.stat(lock_path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.dirname(lock_path)).st_mode) == 0o750


def test_acquire_uses_o_excl(lock_path, mocker):
    spy = mocker.spy(dl.os, 'open')
    dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    flags = [call.args[1] for call in spy.call_args_list if call.args[0] == lock_path]
    assert flags and flags[0] & os.O_CREAT and flags[0] & os.O_EXCL


def test_acquire_with_own_token_is_unchanged(lock_path):
    first = dl.acquire(lock_path, 'shop', 'alice', token='tok1', clock=Clock())
    assert first['token'] == 'tok1'
    again = dl.acquire(lock_path, 'shop', 'someone else', token='tok1', clock=Clock(T0 + 10))
    assert again['acquired'] is True and again['changed'] is False and again['took_over'] is False
    assert again['owner'] == 'alice'
    assert read(lock_path)['timestamp'] == T0


def test_acquire_held_fails_at_once_with_clear_message(lock_path):
    dl.acquire(lock_path, 'shop', 'alice@ctl pid 1234', clock=Clock())
    with pytest.raises(dl.LockError) as excinfo:
        dl.acquire(lock_path, 'shop', 'bob@ctl pid 99', clock=Clock(T0 + 125.7))
    assert str(excinfo.value) == (
        'Another deploy of shop holds the lock %s since 2026-11-02T10:00:00Z (125s ago): alice@ctl pid 1234. '
        'Wait for it to finish; if it died, re-run with baton_deploy_force_unlock=true or remove %s.'
        % (lock_path, lock_path))
    assert excinfo.value.holder['owner'] == 'alice@ctl pid 1234'
    assert read(lock_path)['owner'] == 'alice@ctl pid 1234'


def test_acquire_takes_over_stale_lock_with_warning(lock_path):
    old = dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    result = dl.acquire(lock_path, 'shop', 'bob', stale_after=3600, clock=Clock(T0 + 3601))
    assert result['acquired'] and result['took_over'] and result['changed']
    assert result['previous_holder']['owner'] == 'alice'
    assert result['previous_holder']['token'] == old['token']
    assert result['token'] != old['token']
    assert len(result['warnings']) == 1
    assert 'Took over the deploy lock' in result['warnings'][0]
    assert 'older than stale_after=3600s' in result['warnings'][0]
    assert read(lock_path)['owner'] == 'bob'
    assert read(lock_path)['token'] == result['token']


def test_acquire_not_stale_at_exactly_stale_after(lock_path):
    dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    with pytest.raises(dl.LockError):
        dl.acquire(lock_path, 'shop', 'bob', stale_after=3600, clock=Clock(T0 + 3600))


def test_acquire_force_takes_over_fresh_lock(lock_path):
    dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    result = dl.acquire(lock_path, 'shop', 'bob', force=True, clock=Clock(T0 + 1))
    assert result['took_over'] is True
    assert 'because force is set' in result['warnings'][0]
    assert read(lock_path)['owner'] == 'bob'


def test_acquire_check_mode_writes_nothing(lock_path):
    result = dl.acquire(lock_path, 'shop', 'alice', check_mode=True, clock=Clock())
    assert result['acquired'] and result['changed'] and result['token']
    assert not os.path.exists(os.path.dirname(lock_path))

    dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    before = read(lock_path)
    result = dl.acquire(lock_path, 'shop', 'bob', check_mode=True, clock=Clock(T0 + 7200))
    assert result['took_over'] and result['changed']
    assert result['warnings'][0].startswith('Would take over')
    assert read(lock_path) == before
    with pytest.raises(dl.LockError, match='Another deploy of shop holds the lock'):
        dl.acquire(lock_path, 'shop', 'bob', check_mode=True, clock=Clock(T0 + 5))


def test_corrupt_lock_file_uses_mtime(lock_path):
    os.makedirs(os.path.dirname(lock_path))
    with open(lock_path, 'w'):
        pass
    os.utime(lock_path, (T0, T0))
    holder = dl.read_holder(lock_path)
    assert holder['token'] is None and holder['corrupt'] is True
    assert holder['timestamp'] == T0
    assert 'unreadable' in holder['owner']
    with pytest.raises(dl.LockError, match=r'since 2026-11-02T10:00:00Z \(10s ago\): unknown'):
        dl.acquire(lock_path, 'shop', 'bob', clock=Clock(T0 + 10))
    result = dl.acquire(lock_path, 'shop', 'bob', stale_after=5, clock=Clock(T0 + 10))
    assert result['took_over']


def test_read_holder_time_fallbacks(lock_path):
    os.makedirs(os.path.dirname(lock_path))
    with open(lock_path, 'w') as handle:
        json.dump({'owner': 'old baton', 'time': '2026-11-02T10:00:00Z', 'token': 'x'}, handle)
    assert dl.read_holder(lock_path)['timestamp'] == T0
    with open(lock_path, 'w') as handle:
        json.dump({'timestamp': T0}, handle)
    holder = dl.read_holder(lock_path)
    assert holder['time'] == '2026-11-02T10:00:00Z'
    assert holder['owner'] == 'unknown owner' and holder['token'] is None
    assert dl.read_holder(lock_path + '.missing') is None


def test_lock_age_never_negative():
    assert dl.lock_age({'timestamp': T0 + 50}, T0) == 0.0
    assert dl.lock_age({'timestamp': T0}, T0 + 3.5) == 3.5


def test_release_with_token(lock_path):
    acquired = dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    result = dl.release(lock_path, 'shop', token=acquired['token'])
    assert result['released'] and result['changed']
    assert result['owner'] == 'alice'
    assert result['previous_holder']['token'] == acquired['token']
    assert not os.path.exists(lock_path)
    again = dl.release(lock_path, 'shop', token=acquired['token'])
    assert again['released'] is False and again['changed'] is False and again['owner'] is None


def test_release_missing_directory_is_ok(tmp_path):
    result = dl.release(str(tmp_path / 'nothing' / 'deploy.lock'), 'shop', token='abc')
    assert result['changed'] is False


def test_release_refuses_other_token(lock_path):
    dl.acquire(lock_path, 'shop', 'bob took over', clock=Clock())
    with pytest.raises(dl.LockError) as excinfo:
        dl.release(lock_path, 'shop', token='not-mine')
    message = str(excinfo.value)
    assert 'Not releasing the deploy lock %s of shop' % lock_path in message
    assert 'different token' in message
    assert 'bob took over' in message
    assert os.path.exists(lock_path)
    with pytest.raises(dl.LockError, match='no token was given'):
        dl.release(lock_path, 'shop')


def test_release_force_and_check_mode(lock_path):
    dl.acquire(lock_path, 'shop', 'bob', clock=Clock())
    result = dl.release(lock_path, 'shop', force=True, check_mode=True)
    assert result['released'] and result['changed']
    assert result['warnings'][0].startswith('Would remove')
    assert os.path.exists(lock_path)
    result = dl.release(lock_path, 'shop', token='other', force=True)
    assert result['released'] and result['warnings'][0].startswith('Removed')
    assert not os.path.exists(lock_path)


def test_release_check_mode_with_token(lock_path):
    acquired = dl.acquire(lock_path, 'shop', 'alice', clock=Clock())
    result = dl.release(lock_path, 'shop', token=acquired['token'], check_mode=True)
    assert result['changed'] and result['released'] and result['warnings'] == []
    assert os.path.exists(lock_path)


def test_concurrent_takeover_of_stale_lock_has_one_winner(lock_path):
    import threading

    dl.acquire(lock_path, 'shop', 'dead deploy', clock=Clock())
    clock = Clock(T0 + 100)
    outcomes = []
    barrier = threading.Barrier(8)

    def contender(number):
        barrier.wait()
        try:
            outcomes.append(('won', dl.acquire(lock_path, 'shop', 'deploy %d' % number, stale_after=50,
                                               clock=clock)['token']))
        except dl.LockError as exc:
            outcomes.append(('lost', str(exc)))

    threads = [threading.Thread(target=contender, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    winners = [value for kind, value in outcomes if kind == 'won']
    assert len(outcomes) == 8
    assert len(winners) == 1
    assert read(lock_path)['token'] == winners[0]
