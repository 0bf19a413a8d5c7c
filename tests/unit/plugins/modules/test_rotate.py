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
from ansible.module_utils.common.parameters import PASS_VARS
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils import deploy_lock, rotation
from ansible_collections.baton.deploy.plugins.modules import rotate
from ansible_collections.baton.deploy.tests.unit.plugins.fake_host import PORTS, PROXY_URL, FakeHost


# ansible-core 2.20+ returns a module's invocation only when the controller asks (INJECT_INVOCATION);
# 2.19 always returns it and rejects the option.
INJECT_INVOCATION = {'_ansible_inject_invocation': True} if 'inject_invocation' in PASS_VARS else {}


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The module wired to a fake host: its process manager, HTTP answers and clock."""
    host = FakeHost(tmp_path)
    host.build('v1')
    host.build('v2', 'crash')
    managers = []

    def process_manager(name, runner):
        managers.append(name)
        assert callable(runner)
        return host

    monkeypatch.setattr(rotate, 'process_manager', process_manager)
    monkeypatch.setattr(rotate, 'Probe', lambda: rotation.Probe(session=host, clock=host.clock,
                                                                sleep=host.clock.sleep, wall_clock=host.clock.wall))
    host.managers = managers
    return host


def run_module(capsys, host, check_mode=False, diff=False, **args):
    params = dict(app='shop', root=os.path.join(host.root, 'app'), ports=PORTS, process_manager='systemd',
                  proxy='nginx', probe_url=PROXY_URL, gate_dir=host.gate_dir, state_path=host.state_path,
                  group='root', env={'SECRET': 'hunter2'})
    params.update(args)
    if check_mode:
        params['_ansible_check_mode'] = True
    if diff:
        params['_ansible_diff'] = True
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(params):
        with pytest.raises(SystemExit) as excinfo:
            rotate.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def test_deploy_returns_events_state_and_diff(capsys, host):
    rc, out = run_module(capsys, host, release='v1', diff=True)
    assert rc == 0 and out['changed'] is True and host.managers == ['systemd']
    assert [event['step'] for event in out['events']] == ['point', 'start', 'ready', 'flip', 'verify', 'record']
    assert out['state']['active_slot'] == 1 and out['interrupted'] is None
    assert out['summary'].startswith('shop: release v1 active on slot 1 (port 8001); ready after 1.4 s')
    assert out['diff']['after'] == 'slot 1 -> 127.0.0.1:8001 (release v1)\n'
    assert 'hunter2' not in json.dumps(out)


def test_check_mode_on_a_host_with_no_deploy_yet(capsys, host):
    rc, out = run_module(capsys, host, release='v1', check_mode=True)
    assert rc == 0 and out['changed'] is True and out['events'] == [] and 'diff' not in out
    assert 'nothing is deployed on this host yet' in out['plan']['summary']
    assert not os.path.exists(host.state_path) and host.calls == []


def test_a_failure_returns_the_message_and_the_events(capsys, host):
    run_module(capsys, host, release='v1')
    rc, out = run_module(capsys, host, release='v2')
    assert rc == 1 and out['changed'] is True
    assert out['msg'].startswith('Release v2 on slot 2 did not become ready: the process of baton-shop@2.service '
                                 'exited with status 3')
    assert [event['step'] for event in out['events']][-2:] == ['ready', 'stop-next']


def test_rollback_with_nothing_to_roll_back_to(capsys, host):
    rc, out = run_module(capsys, host, action='rollback')
    assert rc == 1 and out['changed'] is False and out['events'] == []
    assert out['msg'] == ('shop has no previous release on this host (state: active slot None, other slot empty). '
                          'Nothing was changed.')


def test_deploy_needs_a_release(capsys, host):
    rc, out = run_module(capsys, host)
    assert rc == 1 and 'action is deploy but all of the following are missing: release' in out['msg']


def test_an_unknown_group(capsys, host):
    rc, out = run_module(capsys, host, release='v1', group='no-such-group-here')
    assert rc == 1 and out['msg'] == "There is no group 'no-such-group-here' on the host. Nothing was changed."


def test_ports_that_are_not_two_ports(capsys, host):
    rc, out = run_module(capsys, host, release='v1', ports={1: 8001, 2: 8001})
    assert rc == 1 and out['msg'] == ('Invalid parameters: ports of slot 1 and slot 2 must differ, both are 8001. '
                                      'Nothing was changed.')


def test_an_invalid_app_name(capsys, host):
    rc, out = run_module(capsys, host, release='v1', app='Shop!')
    assert rc == 1 and out['msg'].startswith('app must start with a lowercase letter')


def test_status_reports_an_interrupted_rotation(capsys, host, monkeypatch):
    run_module(capsys, host, release='v1')
    host.build('v3')
    monkeypatch.setattr(rotation.Journal, 'step', _wrap(rotation.Journal.step, 'drain'))
    with pytest.raises(KeyboardInterrupt):
        run_module(capsys, host, release='v3')
    monkeypatch.undo()
    rc, out = run_module(capsys, host, action='status')
    assert rc == 0 and out['changed'] is False and out['live_slot'] == 2 and out['deployed'] is True
    assert out['state']['active_slot'] == 1
    assert 'A deploy of release v3 to slot 2 (from slot 1)' in out['interrupted']
    assert 'interrupted during the step drain (after point, start, ready, flip, verify)' in out['interrupted']
    assert host.calls[-1] == ('start', 'baton-shop@2.service')  # status started or stopped nothing


def _wrap(step, kill_at):
    def step_then_kill(journal, name):
        step(journal, name)
        if name == kill_at:
            raise KeyboardInterrupt()
    return step_then_kill


def test_short_env_values_are_not_masked_in_the_result_but_never_returned(capsys, host):
    """Ansible masks every occurrence of a no_log value: "1" would turn v1 into v******** in the state, the
    summary and the events. The values stay out of the result (the invocation shows the names only)."""
    rc, out = run_module(capsys, host, release='v1', env={'WARMUP_SECONDS': '1', 'SECRET': 'hunter2'},
                         **INJECT_INVOCATION)
    assert rc == 0, out
    assert out['state']['slots']['1']['release'] == 'v1' and '********' not in json.dumps(out)
    assert out['summary'].startswith('shop: release v1 active on slot 1 (port 8001)')
    assert out['invocation']['module_args']['env'] == {'WARMUP_SECONDS': rotate.NOT_RETURNED,
                                                       'SECRET': rotate.NOT_RETURNED}
    assert 'hunter2' not in json.dumps(out)
    with open(os.path.join(host.root, 'app', 'slots', '1.env')) as env_file:
        assert 'SECRET="hunter2"\nWARMUP_SECONDS="1"\n' in env_file.read()  # the slot got the values


def test_the_run_that_ends_the_rotation_prunes_and_releases_the_lock(capsys, host):
    lock = os.path.join(os.path.dirname(host.state_path), 'deploy.lock')
    os.makedirs(os.path.dirname(lock))
    token = deploy_lock.acquire(lock, 'shop', 'tester@laptop')['token']
    rc, out = run_module(capsys, host, release='v2', keep_releases=0, lock_token=token)  # v2 crashes at start
    assert rc == 1 and out['msg'].startswith('Release v2 on slot 1 did not become ready: the process of baton-shop@1')
    assert out['unlocked'] == token and not os.path.exists(lock) and 'pruned' not in out
    assert [event['step'] for event in out['events']] == ['point', 'start', 'ready', 'stop-next', 'unlock']
    token = deploy_lock.acquire(lock, 'shop', 'tester@laptop')['token']
    rc, out = run_module(capsys, host, release='v1', keep_releases=0, lock_token=token)
    assert rc == 0 and out['unlocked'] == token and not os.path.exists(lock)
    assert out['pruned']['removed'] == ['v2'] and sorted(os.listdir(os.path.join(host.root, 'app', 'releases'))) == ['v1']


@pytest.mark.parametrize('args, message', [
    (dict(keep_releases=-1), 'keep_releases must be >= 0, got -1. Nothing was changed.'),
    (dict(lock_token='two words'), "token must be 1 to 256 printable characters without spaces, got 'two words'. "
                                   "Nothing was changed."),
])
def test_bad_end_options_change_nothing(capsys, host, args, message):
    rc, out = run_module(capsys, host, release='v1', **args)
    assert (rc, out['msg']) == (1, message) and not os.path.exists(host.state_path)
