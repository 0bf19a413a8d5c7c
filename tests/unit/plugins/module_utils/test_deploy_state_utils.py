# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import datetime
import json
import os
import stat

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import deploy_state as ds

NOW = datetime.datetime(2026, 11, 2, 10, 0, 0, tzinfo=datetime.timezone.utc)
PORTS = {1: 8081, 2: 8082}


def test_other_slot():
    assert ds.other_slot(1) == 2
    assert ds.other_slot(2) == 1
    for bad in (0, 3, None, True, '1'):
        with pytest.raises(ValueError):
            ds.other_slot(bad)


@pytest.mark.parametrize('app', ['shop', 'a', 'my-app_2', 'a' * 32])
def test_valid_app_names(app):
    assert ds.validate_app_name(app) is None


@pytest.mark.parametrize('app', ['', 'Shop', '1app', '-app', 'a' * 33, 'my app', 'app/..', None])
def test_invalid_app_names(app):
    assert 'app must start with a lowercase letter' in ds.validate_app_name(app)


def test_default_path():
    assert ds.default_path('shop') == '/var/lib/baton/shop/state.json'


def test_default_state_with_and_without_ports():
    state = ds.default_state('shop', PORTS)
    assert state == {
        'version': 1,
        'app': 'shop',
        'active_slot': None,
        'next_slot': 1,
        'slots': {'1': {'release': None, 'port': 8081}, '2': {'release': None, 'port': 8082}},
        'history': [],
    }
    assert ds.default_state('shop')['slots'] == {'1': {'release': None, 'port': None},
                                                 '2': {'release': None, 'port': None}}
    assert ds.validate_state(state, app='shop') == []


def test_normalize_ports_accepts_string_keys_and_values():
    assert ds.normalize_ports({'1': '8081', '2': 8082}) == PORTS
    assert ds.normalize_ports(None) is None


@pytest.mark.parametrize('ports, message', [
    ({1: 8081}, 'both slots'),
    ({1: 8081, 3: 8083}, 'keys must be the slots'),
    ({1: 8081, 2: 8081}, 'must differ'),
    ({1: 0, 2: 8082}, 'between 1 and 65535'),
    ({1: 'http', 2: 8082}, 'between 1 and 65535'),
    ([8081, 8082], 'must be a mapping'),
])
def test_normalize_ports_rejects(ports, message):
    with pytest.raises(ValueError, match=message):
        ds.normalize_ports(ports)


def test_utc_now_iso():
    assert ds.utc_now_iso(NOW) == '2026-11-02T10:00:00Z'
    assert ds.utc_now_iso(datetime.datetime(2026, 11, 2, 10, 0, 0)) == '2026-11-02T10:00:00Z'
    cet = datetime.timezone(datetime.timedelta(hours=1))
    assert ds.utc_now_iso(datetime.datetime(2026, 11, 2, 11, 0, 0, tzinfo=cet)) == '2026-11-02T10:00:00Z'
    assert ds.utc_now_iso().endswith('Z')


def test_apply_record_first_deploy():
    state = ds.default_state('shop', PORTS)
    before = copy.deepcopy(state)
    new, changed = ds.apply_record(state, 1, 'r1', now=NOW)
    assert changed is True
    assert state == before, 'apply_record must not modify its input'
    assert new['active_slot'] == 1
    assert new['next_slot'] == 2
    assert new['slots'] == {'1': {'release': 'r1', 'port': 8081}, '2': {'release': None, 'port': 8082}}
    assert new['history'] == [{
        'time': '2026-11-02T10:00:00Z', 'action': 'deploy', 'release': 'r1', 'slot': 1,
        'previous_release': None, 'previous_slot': None,
    }]
    assert ds.validate_state(new, app='shop') == []


def test_apply_record_second_deploy_and_rollback():
    state, dummy = ds.apply_record(ds.default_state('shop', PORTS), 1, 'r1', now=NOW)
    state, changed = ds.apply_record(state, 2, 'r2', now=NOW)
    assert changed
    assert (state['active_slot'], state['next_slot']) == (2, 1)
    assert state['slots']['1']['release'] == 'r1'
    assert state['slots']['2']['release'] == 'r2'
    assert state['history'][-1] == {
        'time': '2026-11-02T10:00:00Z', 'action': 'deploy', 'release': 'r2', 'slot': 2,
        'previous_release': 'r1', 'previous_slot': 1,
    }
    state, changed = ds.apply_record(state, 1, 'r1', action='rollback', now='2026-11-02T10:05:00Z')
    assert changed
    assert (state['active_slot'], state['next_slot']) == (1, 2)
    assert state['history'][-1] == {
        'time': '2026-11-02T10:05:00Z', 'action': 'rollback', 'release': 'r1', 'slot': 1,
        'previous_release': 'r2', 'previous_slot': 2,
    }
    assert len(state['history']) == 3


def test_apply_record_is_idempotent():
    state, dummy = ds.apply_record(ds.default_state('shop', PORTS), 1, 'r1', now=NOW)
    again, changed = ds.apply_record(state, 1, 'r1', now=NOW + datetime.timedelta(hours=1))
    assert changed is False
    assert again == state
    assert len(again['history']) == 1


def test_apply_record_same_release_other_slot_is_a_change():
    state, dummy = ds.apply_record(ds.default_state('shop', PORTS), 1, 'r1', now=NOW)
    new, changed = ds.apply_record(state, 2, 'r1', action='flip-back', now=NOW)
    assert changed
    assert new['active_slot'] == 2
    assert new['history'][-1]['action'] == 'flip-back'


def test_apply_record_updates_ports_without_history():
    state, dummy = ds.apply_record(ds.default_state('shop', PORTS), 1, 'r1', now=NOW)
    new, changed = ds.apply_record(state, 1, 'r1', ports={'1': 9001, '2': 9002}, now=NOW)
    assert changed
    assert new['slots']['1']['port'] == 9001 and new['slots']['2']['port'] == 9002
    assert new['history'] == state['history']


def test_apply_record_caps_history_newest_last():
    state = ds.default_state('shop', PORTS)
    for number in range(1, 8):
        state, dummy = ds.apply_record(state, 1 + number % 2, 'r%d' % number, history_size=5, now=NOW)
    assert [entry['release'] for entry in state['history']] == ['r3', 'r4', 'r5', 'r6', 'r7']
    state, dummy = ds.apply_record(state, 1, 'r8', history_size=0, now=NOW)
    assert state['history'] == []


@pytest.mark.parametrize('kwargs, message', [
    (dict(active_slot=3, release='r'), 'active_slot'),
    (dict(active_slot=1, release=''), 'release'),
    (dict(active_slot=1, release='r', action='upgrade'), 'action'),
    (dict(active_slot=1, release='r', history_size=-1), 'history_size'),
])
def test_apply_record_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ds.apply_record(ds.default_state('shop'), **kwargs)


def test_validate_state_reports_problems():
    state = ds.default_state('shop', PORTS)
    assert ds.validate_state(state, app='other') == ["it belongs to app 'shop', not 'other'"]
    bad = dict(state, version=2, active_slot=3, next_slot=None, history={})
    bad['slots'] = {'1': {'release': 5, 'port': 70000}}
    errors = ds.validate_state(bad)
    text = ' | '.join(errors)
    assert 'newer baton.deploy' in text
    assert '"active_slot" must be 1, 2 or null' in text
    assert '"next_slot" must be 1 or 2' in text
    assert '"slots"."1"."release"' in text
    assert '"slots"."1"."port"' in text
    assert '"slots"."2" must be an object' in text
    assert '"history" must be a list' in text
    assert ds.validate_state([]) == ['the top level is a list, not a JSON object']


def test_load_missing(tmp_path):
    assert ds.load(str(tmp_path / 'nope' / 'state.json')) == (None, False)


def test_load_roundtrip(tmp_path):
    path = str(tmp_path / 'state.json')
    state, dummy = ds.apply_record(ds.default_state('shop', PORTS), 2, 'r1', now=NOW)
    ds.atomic_write(path, state)
    assert ds.load(path, app='shop') == (state, True)


@pytest.mark.parametrize('content, reason', [
    (b'', 'it is empty'),
    (b'{"version": 1, "app": ', 'it is not valid JSON'),
    (b'\xff\xfe', 'not UTF-8'),
    (b'[1, 2]', 'the top level is a list'),
    (b'{"version": 1}', '"app" must be a string'),
])
def test_load_corrupt_file_names_file_and_fix(tmp_path, content, reason):
    path = tmp_path / 'state.json'
    path.write_bytes(content)
    with pytest.raises(ds.StateFileError) as excinfo:
        ds.load(str(path))
    message = str(excinfo.value)
    assert str(path) in message
    assert reason in message
    assert 'Inspect it' in message
    assert 'remove it and redeploy' in message
    assert 'The running slots are untouched' in message


def test_load_wrong_app(tmp_path):
    path = str(tmp_path / 'state.json')
    ds.atomic_write(path, ds.default_state('shop'))
    with pytest.raises(ds.StateFileError, match="belongs to app 'shop', not 'blog'"):
        ds.load(path, app='blog')


def test_atomic_write_creates_dir_and_modes(tmp_path):
    directory = tmp_path / 'baton' / 'shop'
    path = directory / 'state.json'
    old_umask = os.umask(0o077)
    try:
        ds.atomic_write(str(path), {'a': 1})
    finally:
        os.umask(old_umask)
    assert json.loads(path.read_text()) == {'a': 1}
    assert path.read_text().endswith('\n')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    assert os.listdir(str(directory)) == ['state.json'], 'no temporary files left behind'


def test_atomic_write_replaces_and_keeps_existing_dir_mode(tmp_path):
    tmp_path.chmod(0o755)
    path = tmp_path / 'state.json'
    path.write_text('old')
    path.chmod(0o600)
    ds.atomic_write(str(path), 'new text')
    assert path.read_text() == 'new text'
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    ds.atomic_write(str(path), b'bytes')
    assert path.read_bytes() == b'bytes'


def test_atomic_write_uses_replace_and_fsync(tmp_path, mocker):
    replace = mocker.spy(ds.os, 'replace')
    fsync = mocker.spy(ds.os, 'fsync')
    path = str(tmp_path / 'state.json')
    ds.atomic_write(path, {'a': 1})
    assert replace.call_count == 1
    tmp_name, target = replace.call_args[0]
    assert os.path.dirname(tmp_name) == str(tmp_path)
    assert target == path
    assert fsync.call_count == 2  # the file and the directory


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path, mocker):
    path = tmp_path / 'state.json'
    path.write_text('old')
    mocker.patch.object(ds.os, 'replace', side_effect=OSError(28, 'No space left on device'))
    with pytest.raises(OSError):
        ds.atomic_write(str(path), {'a': 1})
    assert path.read_text() == 'old'
    assert os.listdir(str(tmp_path)) == ['state.json']
