# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import deploy_lock, deploy_state, proxy_gate, rotation
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import Systemd
from ansible_collections.baton.deploy.tests.unit.plugins.fake_host import PORTS, FakeHost


@pytest.fixture
def live_v1(host):
    """v1 live on slot 1, as after a first deploy."""
    host.deploy('v1', env={'GREETING': 'one'})
    host.calls.clear()
    return host


def steps(result_or_events):
    events = result_or_events['events'] if isinstance(result_or_events, dict) else result_or_events
    return [(event['step'], event['ok']) for event in events]


def state(host):
    with open(host.state_path) as handle:
        return json.load(handle)


def fail(rotation_or_host, release=None, phase='all', **kwargs):
    """Run a rotation that must fail; returns (message, events)."""
    engine = rotation_or_host.rotation(release, **kwargs) if isinstance(rotation_or_host, FakeHost) else rotation_or_host
    with pytest.raises(rotation.RotationError) as excinfo:
        engine.run(phase)
    return str(excinfo.value), engine.events


# --- deploys that work --------------------------------------------------------------------------------

def test_first_deploy_goes_to_slot_1_and_records_it(host):
    result = host.deploy('v1', env={'GREETING': 'one'})
    assert result['changed'] is True
    assert steps(result) == [(name, True) for name in ('point', 'start', 'ready', 'flip', 'verify', 'record')]
    assert result['plan']['deployed'] is False and result['plan']['next_slot'] == 1
    assert state(host)['active_slot'] == 1 and state(host)['slots']['1']['release'] == 'v1'
    assert result['state'] == state(host)
    assert proxy_gate.read_gate(host.gate_dir) == 1
    assert host.running() == ['baton-shop@1.service'] and host.slot_release(1) == 'v1'
    with open(os.path.join(host.root, 'app', 'slots', '1.env')) as handle:
        assert handle.read().endswith('GREETING="one"\nPORT=8001\nBATON_SLOT=1\nBATON_RELEASE=v1\n')
    assert not os.path.exists(os.path.join(host.root, 'state', 'rotation.json'))
    assert result['summary'] == ('shop: release v1 active on slot 1 (port 8001); ready after 1.4 s (8 checks), served '
                                 'through the proxy 0.0 s later; drained 0 in-flight connection(s) of slot - in 0 s; '
                                 'rotation took 1.5 s.')


def test_repeat_deploy_rotates_drains_and_stops_the_old_slot(live_v1):
    host = live_v1
    host.connections[PORTS[1]] = [2, 1, 0]
    result = host.deploy('v2', env={'GREETING': 'two'})
    assert steps(result) == [(name, True) for name in rotation.STEPS if name != 'watch']
    assert host.calls == [('start', 'baton-shop@2.service'), ('stop', 'baton-shop@1.service')]
    assert host.running() == ['baton-shop@2.service'] and proxy_gate.read_gate(host.gate_dir) == 2
    recorded = state(host)
    assert recorded['active_slot'] == 2 and recorded['history'][-1]['previous_release'] == 'v1'
    drain = [event for event in result['events'] if event['step'] == 'drain'][0]
    assert drain['detail'].startswith('drained 2 in-flight connection(s) of slot 1')
    assert result['plan']['live_source'] == 'the proxy answered from it'
    verify = [event for event in result['events'] if event['step'] == 'verify'][0]
    assert verify['detail'] == ('served through the proxy: slot 2, for https://shop.example/readyz (first answer from '
                                'it 0.000 s after the flip)')
    # the live slot's environment is kept for a rollback to v1
    assert os.path.exists(os.path.join(host.root, 'state', 'env', 'v1.env'))


def test_every_event_says_when_it_started_and_how_long_it_took(live_v1):
    events = live_v1.deploy('v2')['events']
    ready = [event for event in events if event['step'] == 'ready'][0]
    assert ready['seconds'] >= live_v1.warmup  # the fake clock only moves by the poll's pauses
    assert all(set(event) == {'step', 'started', 'seconds', 'ok', 'detail'} for event in events)
    assert [event['started'] for event in events] == sorted(event['started'] for event in events)


def test_the_same_release_again_changes_nothing(live_v1):
    result = live_v1.deploy('v1')
    assert result['changed'] is False and result['events'] == [] and live_v1.calls == []
    assert result['plan']['noop'] is True and 'already live on slot 1' in result['plan']['summary']


def test_force_rotates_the_same_release(live_v1):
    result = live_v1.deploy('v1', force=True)
    assert result['changed'] is True and state(live_v1)['active_slot'] == 2


def test_watch_window_that_stays_healthy(live_v1):
    result = live_v1.deploy('v2', watch_seconds=2)
    assert ('watch', True) in steps(result)


def test_caddy_uses_the_same_gate(live_v1):
    result = live_v1.deploy('v2', proxy='caddy')
    assert result['changed'] and proxy_gate.read_gate(live_v1.gate_dir) == 2


# --- which slot is live ---------------------------------------------------------------------------------

def test_the_proxy_has_the_last_word_on_the_live_slot(live_v1):
    """Killed after the flip: the gate names slot 2 (serving v2), the state file still slot 1."""
    host = live_v1
    host.deploy('v2')
    with open(host.state_path) as handle:
        stale = json.load(handle)
    stale['active_slot'], stale['next_slot'] = 1, 2
    deploy_state.atomic_write(host.state_path, stale)
    plan = host.rotation('v3').plan()
    assert plan.old_slot == 2 and plan.next_slot == 1


def test_the_gate_names_the_live_slot_when_the_proxy_does_not_answer(live_v1):
    live_v1.proxy_down = True
    plan = live_v1.rotation('v2').plan()
    assert plan.old_slot == 1 and plan.live_source.startswith('the gate names it (the proxy did not say: connection')


def test_the_state_file_names_it_when_there_is_no_gate(live_v1):
    live_v1.proxy_down = True
    os.unlink(os.path.join(live_v1.gate_dir, 'slot1'))
    os.rmdir(live_v1.gate_dir)
    plan = live_v1.rotation('v2').plan()
    assert plan.old_slot == 1 and plan.live_source == 'the state file records'


# --- failures before the flip: the old slot keeps serving ---------------------------------------------------

def test_a_release_that_never_gets_ready_is_stopped_and_the_old_slot_serves_on(live_v1):
    host = live_v1
    host.build('v2', 'never')
    message, events = fail(host, 'v2', ready_timeout=10)
    assert message.startswith('Release v2 on slot 2 did not become ready: http://127.0.0.1:8002/readyz was not '
                              'ready after 10 s (')
    assert 'last result: status 503). It was stopped; the proxy and slot 1 (release v1) are untouched' in message
    assert 'The last lines of the log of baton-shop@2.service:\nbaton-shop@2.service line 11\n' in message
    assert message.endswith('line 30')
    assert steps(events) == [('point', True), ('start', True), ('ready', False), ('stop-next', True)]
    assert host.running() == ['baton-shop@1.service'] and proxy_gate.read_gate(host.gate_dir) == 1
    assert state(host)['active_slot'] == 1
    assert not os.path.exists(host.rotation('v2').settings.journal_path)


def test_a_release_that_crashes_at_start_fails_at_once_with_its_exit_status_and_log(live_v1):
    host = live_v1
    host.build('v2', 'crash')
    start = host.clock.now
    message, events = fail(host, 'v2', ready_timeout=120)
    assert 'did not become ready: the process of baton-shop@2.service exited with status 3 (crash loop' in message
    assert 'The last lines of the log of baton-shop@2.service:' in message
    # stopped on the first poll after the exit, not at the readiness deadline
    assert host.clock.now - start < host.warmup + 1
    assert steps(events)[-2:] == [('ready', False), ('stop-next', True)]
    assert proxy_gate.read_gate(host.gate_dir) == 1


def test_a_start_that_fails(live_v1):
    live_v1.fail.add(('start', 'baton-shop@2.service'))
    message, events = fail(live_v1, 'v2')
    assert 'did not become ready: start: Job for baton-shop@2.service failed. It was stopped' in message
    assert steps(events) == [('point', True), ('start', False), ('stop-next', True)]


def test_a_first_deploy_that_never_gets_ready_says_nothing_served_before(host):
    host.build('v1', 'never')
    message, _events = fail(host, 'v1', ready_timeout=5)
    assert 'no release served before, so the app is still not serving' in message


def test_a_release_that_was_never_built(live_v1):
    message, events = fail(live_v1, 'v9')
    assert message.startswith('Release v9 is not on this host (%s/app/releases/v9). Nothing was changed.'
                              % live_v1.root)
    assert events == [] and live_v1.calls == []


def test_an_environment_that_cannot_be_written_changes_nothing(live_v1):
    message, events = fail(live_v1, 'v2', env={'BAD NAME': 'x'})
    assert message.startswith('Release v2 could not be put on slot 2: the name "BAD NAME" is not a valid')
    assert steps(events) == [('point', False)] and live_v1.slot_release(2) is None
    assert not os.path.exists(live_v1.rotation('v2').settings.journal_path)


# --- failures after the flip: back to the old slot -------------------------------------------------------------

def test_verify_through_the_proxy_fails_then_flip_back(live_v1):
    host = live_v1
    host.proxy_stuck = 1
    message, events = fail(host, 'v2')
    assert message.startswith('Release v2 on slot 2 was ready, but after the flip the proxy did not route to it: '
                              'https://shop.example/readyz (')
    assert ('header X-Baton-Upstream value \'127.0.0.1:8001\' did not match' in message)
    assert ('The proxy was flipped back to slot 1 (release v1), which kept running, and slot 2 was stopped; the '
            'state file still records slot 1 as active.') in message
    assert steps(events)[-3:] == [('verify', False), ('flip-back', True), ('stop-next', True)]
    assert proxy_gate.read_gate(host.gate_dir) == 1 and host.running() == ['baton-shop@1.service']


def test_watch_fails_then_flip_back(live_v1):
    host = live_v1
    host.build('v2', 'sickens')
    message, events = fail(host, 'v2', watch_seconds=10)
    assert 'after the flip it failed 2 checks in a row' in message and 'last result: status 500' in message
    assert 'flipped back to slot 1 (release v1)' in message
    # What to do, then the slot's log: its last lines end the message.
    assert ('Fix the release and deploy again. The last lines of the log of baton-shop@2.service:\n'
            'baton-shop@2.service line 11\n') in message and message.endswith('baton-shop@2.service line 30')
    assert steps(events)[-3:] == [('watch', False), ('flip-back', True), ('stop-next', True)]
    assert proxy_gate.read_gate(host.gate_dir) == 1 and state(host)['active_slot'] == 1


def test_a_first_deploy_that_fails_after_the_flip_has_nothing_to_go_back_to(host):
    host.build('v1', 'sickens')
    message, events = fail(host, 'v1', watch_seconds=10)
    assert 'There was no previous slot to go back to: slot 1 was stopped, so the app is down' in message
    assert 'flip-back' not in [event['step'] for event in events]


def test_a_flip_back_that_fails_is_reported_and_the_journal_kept(live_v1):
    host = live_v1
    host.proxy_stuck = 1
    host.fail.add(('stop', 'baton-shop@2.service'))
    message, _events = fail(host, 'v2')
    assert 'Undoing it failed: stop-next: ' in message
    assert os.path.exists(host.rotation('v2').settings.journal_path)


# --- after the switch -------------------------------------------------------------------------------------------

def test_the_drain_bound_is_reached_and_the_rest_end_with_the_old_slot(live_v1):
    host = live_v1
    host.connections[PORTS[1]] = [3]  # never drains
    result = host.deploy('v2', drain_timeout=5)
    drain = [event for event in result['events'] if event['step'] == 'drain'][0]
    assert drain['ok'] is True and drain['seconds'] >= 5
    assert result['summary'].endswith('drained 3 in-flight connection(s) of slot 1 in 5.0 s, 3 long connection(s) still '
                                      'open at the drain bound (5 s) ended with the old slot; rotation took 6.5 s.')
    assert drain['detail'].endswith('3 long connection(s) still open at the drain bound (5 s) end with the old slot')
    assert host.running() == ['baton-shop@2.service']


def test_only_connections_open_since_the_flip_count_as_long_connections(live_v1):
    # Three WebSockets stay open; the proxy's health check of the old slot is open at the last count.
    host = live_v1
    long = {('127.0.0.1', 41150), ('127.0.0.1', 41160), ('127.0.0.1', 41170)}
    host.connections[PORTS[1]] = [long, long | {('127.0.0.1', 50001)}]
    result = host.deploy('v2', drain_timeout=5)
    drain = [event for event in result['events'] if event['step'] == 'drain'][0]
    assert drain['detail'].endswith('3 long connection(s) still open at the drain bound (5 s) end with the old slot')
    assert '3 long connection(s) still open at the drain bound (5 s) ended with the old slot' in result['summary']


def test_a_drain_that_cannot_count_fails_and_keeps_the_old_slot(live_v1):
    def broken(port):
        raise OSError('no /proc/net/tcp')
    engine = live_v1.rotation('v2')
    engine.proxy.counter = broken
    message, events = fail(engine)
    assert 'the old slot 1 could not be drained: no /proc/net/tcp. Slot 1 still runs' in message
    assert steps(events)[-1] == ('drain', False) and state(live_v1)['active_slot'] == 1


def test_stopping_the_old_slot_fails(live_v1):
    live_v1.fail.add(('stop', 'baton-shop@1.service'))
    message, events = fail(live_v1, 'v2')
    assert message == ('Release v2 serves on slot 2, but stopping the old slot 1 (baton-shop@1.service) failed: Job '
                       'for baton-shop@1.service timed out. The state file still records slot 1 as active. Stop '
                       'baton-shop@1.service by hand, or run the deploy again (it converges).')
    assert steps(events)[-1] == ('stop', False) and state(live_v1)['active_slot'] == 1


def test_the_state_file_cannot_be_written(live_v1, monkeypatch):
    real_write = deploy_state.atomic_write

    def write(path, data, **kwargs):
        if path == live_v1.state_path:
            raise OSError(28, 'No space left on device')
        return real_write(path, data, **kwargs)
    monkeypatch.setattr(deploy_state, 'atomic_write', write)
    message, events = fail(live_v1, 'v2')
    assert message.startswith('Release v2 serves on slot 2 and the old slot was stopped, but the state file ')
    assert 'No space left on device' in message and 'it finds the proxy on slot 2 and converges' in message
    assert steps(events)[-1] == ('record', False)


def test_a_corrupt_state_file_is_reported_before_anything_changes(live_v1):
    with open(live_v1.state_path, 'w') as handle:
        handle.write('{')
    message, events = fail(live_v1, 'v2')
    assert 'is unreadable or corrupt' in message and events == [] and live_v1.calls == []


# --- check mode --------------------------------------------------------------------------------------------------

def test_check_mode_plans_and_changes_nothing(live_v1):
    host = live_v1
    before = state(host)
    result = host.rotation('v2', check_mode=True).run()
    assert result['changed'] is True and result['events'] == [] and host.calls == []
    assert result['plan']['summary'] == ('shop: deploy of release v2 to slot 2; slot 1 (release v1) is live, as '
                                         'the proxy answered from it.')
    assert result['diff'] == dict(before='slot 1 -> 127.0.0.1:8001 (release v1)\n',
                                  after='slot 2 -> 127.0.0.1:8002 (release v2)\n',
                                  before_header=host.gate_dir, after_header=host.gate_dir)
    assert state(host) == before and host.slot_release(2) is None and proxy_gate.read_gate(host.gate_dir) == 1


def test_check_mode_on_a_host_with_no_deploy_yet(tmp_path):
    host = FakeHost(tmp_path)
    result = host.rotation('v1', check_mode=True).run()
    assert result['plan']['summary'] == (
        'shop: deploy of release v1 to slot 1; nothing is deployed on this host yet (no state file), so this is the '
        'first deploy. Release v1 is not built on this host yet (the build creates it).')
    assert result['diff']['before'] == '' and not os.path.exists(host.state_path)
    assert not os.path.exists(host.gate_dir)


def test_first_deploy_goes_to_slot_1_although_the_setup_made_the_gate(tmp_path):
    """The setup creates the gate naming slot 1 before any slot runs: that is no live slot to rotate away from."""
    host = FakeHost(tmp_path)
    host.build('v1')
    proxy_gate.set_gate(host.gate_dir, 1, initial=True)
    result = host.deploy('v1')
    assert result['plan']['next_slot'] == 1 and result['plan']['old_slot'] is None
    assert steps(result) == [(name, True) for name in ('point', 'start', 'ready', 'flip', 'verify', 'record')]
    assert state(host)['active_slot'] == 1 and host.running() == ['baton-shop@1.service']


def test_check_mode_of_a_noop(live_v1):
    result = live_v1.rotation('v1', check_mode=True).run()
    assert result['changed'] is False and result['diff']['before'] == result['diff']['after']


# --- rollback -------------------------------------------------------------------------------------------------------

def test_rollback_rotates_to_the_previous_release_with_its_environment(live_v1):
    host = live_v1
    host.deploy('v2', env={'GREETING': 'two'})
    result = host.deploy(None, action='rollback', restore_env=True)
    assert result['plan']['release'] == 'v1' and state(host)['active_slot'] == 1
    assert state(host)['history'][-1]['action'] == 'rollback'
    with open(os.path.join(host.root, 'app', 'slots', '1.env')) as handle:
        assert 'GREETING="one"' in handle.read()


def test_rollback_with_no_previous_release(live_v1):
    message, events = fail(live_v1, None, action='rollback')
    assert message == ('shop has no previous release on this host (state: active slot 1, other slot empty). '
                       'Nothing was changed.')
    assert events == []


def test_rollback_on_a_host_never_deployed(host):
    message, _events = fail(host, None, action='rollback', check_mode=True)
    assert message.startswith('shop has no previous release on this host (state: active slot None')


# --- the split around a before-flip hook -------------------------------------------------------------------------

def test_prepare_stops_once_ready_and_finish_goes_on_from_there(live_v1):
    host = live_v1
    prepared = host.deploy('v2', phase='prepare')
    assert steps(prepared) == [('point', True), ('start', True), ('ready', True)]
    assert proxy_gate.read_gate(host.gate_dir) == 1 and state(host)['active_slot'] == 1
    status = host.rotation('v2', check_mode=True).run()['interrupted']
    assert status.startswith('Release v2 was started on slot 2 and found ready') and 'still serves slot 1' in status
    finished = host.deploy('v2', phase='finish')
    assert [name for name, _ok in steps(finished)] == ['ready', 'flip', 'verify', 'drain', 'stop', 'record']
    assert state(host)['active_slot'] == 2 and not os.path.exists(host.rotation('v2').settings.journal_path)


def test_finish_without_prepare_changes_nothing(live_v1):
    message, events = fail(live_v1, 'v2', phase='finish')
    assert message.startswith('There is no prepared rotation of release v2 to slot 2 to finish on this host '
                              '(journal: none). Nothing was changed.')
    assert events == [] and live_v1.calls == []


def test_finish_when_the_slot_died_during_the_hook(live_v1):
    host = live_v1
    host.deploy('v2', phase='prepare')
    host.units.pop('baton-shop@2.service')
    message, _events = fail(host, 'v2', phase='finish')
    assert ('was ready before the before-flip hook, but not after it: the process of baton-shop@2.service is '
            'stopped (inactive/dead). It was stopped; the proxy and slot 1 (release v1) are untouched') in message
    assert not os.path.exists(host.rotation('v2').settings.journal_path)
    assert proxy_gate.read_gate(host.gate_dir) == 1


def test_an_unknown_phase():
    engine = rotation.Rotation.__new__(rotation.Rotation)
    with pytest.raises(ValueError):
        engine.run('later')


# --- interrupted, then run again -----------------------------------------------------------------------------------

class Killed(BaseException):
    """SIGKILL: nothing after it runs, no undo, no cleanup."""


@pytest.mark.parametrize('step', rotation.STEPS)
def test_killed_at_any_step_is_reported_and_a_rerun_converges(live_v1, monkeypatch, step):
    host = live_v1
    real_step = rotation.Journal.step

    def step_then_kill(journal, name):
        real_step(journal, name)
        if name == step:
            raise Killed()
    monkeypatch.setattr(rotation.Journal, 'step', step_then_kill)
    with pytest.raises(Killed):
        host.deploy('v2', watch_seconds=1)
    monkeypatch.undo()

    status = host.rotation('v2', check_mode=True).run()['interrupted']
    assert 'A deploy of release v2 to slot 2 (from slot 1)' in status
    assert 'was interrupted during the step %s' % step in status

    result = host.deploy('v2', watch_seconds=1)
    assert 'interrupted during the step %s' % step in result['interrupted']
    active = state(host)['active_slot']
    assert state(host)['slots'][str(active)]['release'] == 'v2'
    assert proxy_gate.read_gate(host.gate_dir) == active
    assert host.running() == ['baton-shop@%d.service' % active]
    assert not os.path.exists(host.rotation('v2').settings.journal_path)
    assert host.deploy('v2')['changed'] is False


def test_killed_after_the_record_then_rerun_is_a_noop_that_clears_the_journal(live_v1):
    host = live_v1
    host.deploy('v2')
    journal = rotation.Journal(host.rotation('v2').settings.journal_path)
    journal.begin(host.rotation('v2').plan())
    journal.step('record')
    result = host.deploy('v2')
    assert result['changed'] is False and 'during the step record' in result['interrupted']
    assert not os.path.exists(journal.path)


def test_an_unreadable_journal_is_reported(live_v1):
    path = live_v1.rotation('v2').settings.journal_path
    with open(path, 'w') as handle:
        handle.write('{not json')
    status = live_v1.rotation('v2', check_mode=True).run()['interrupted']
    assert 'interrupted during the step unknown' in status


# --- with the real systemd class, its commands answered by the fake host ---------------------------------------

class Systemctl:
    """A runner that answers systemctl and journalctl as systemd would for the fake host's units."""

    def __init__(self, host):
        self.host = host

    def __call__(self, argv):
        unit = argv[-1]
        if argv[:2] == ['systemctl', 'restart']:
            self.host.start(unit)
        elif argv[:3] == ['systemctl', 'disable', '--now']:
            self.host.stop(unit)
        elif argv[:2] == ['systemctl', 'show']:
            state = self.host.status(unit).state
            props = {'running': 'ActiveState=active\nSubState=running\nResult=success\nNRestarts=0',
                     'stopped': 'ActiveState=inactive\nSubState=dead\nResult=success\nNRestarts=0',
                     'crash-loop': 'ActiveState=activating\nSubState=auto-restart\nResult=exit-code\n'
                                   'ExecMainCode=1\nExecMainStatus=3\nNRestarts=2'}[state]
            return 0, 'LoadState=loaded\n' + props + '\n', ''
        elif argv[0] == 'journalctl':
            return 0, self.host.log_tail(unit, int(argv[argv.index('-n') + 1])) + '\n', ''
        return 0, '', ''


def test_the_engine_with_systemd(live_v1):
    host = live_v1
    host.build('v2', 'crash')
    engine = host.rotation('v2')
    engine.processes = Systemd(Systemctl(host))
    with pytest.raises(rotation.RotationError) as excinfo:
        engine.run()
    assert ('did not become ready: the process of baton-shop@2.service exited with status 3 (crash loop, 2 '
            'restarts; activating/auto-restart, result exit-code). It was stopped') in str(excinfo.value)
    assert host.running() == ['baton-shop@1.service']
    engine = host.rotation('v3')
    engine.processes = Systemd(Systemctl(host))
    assert engine.run()['changed'] and host.running() == ['baton-shop@2.service']


# --- the end of a rotation: prune and unlock in the same run (run_to_the_end) ----------------------------------

def take_lock(host):
    path = host.rotation('x').settings.lock_path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return deploy_lock.acquire(path, 'shop', 'tester@laptop')['token'], path


def releases_on(host):
    return sorted(os.listdir(os.path.join(host.root, 'app', 'releases')))


@pytest.fixture
def four_releases(live_v1):
    """v1 live on slot 1; v0, v1, v2, v3 built, v0 the oldest (mtime), so keep=2 leaves the pinned and the newest."""
    host = live_v1
    for age, name in enumerate(('v0', 'v1', 'v2', 'v3')):
        if name != 'v1':
            host.build(name)
        os.utime(os.path.join(host.root, 'app', 'releases', name), (1000 + age, 1000 + age))
    env_dir = host.rotation('x').settings.env_dir
    os.makedirs(env_dir, exist_ok=True)
    with open(os.path.join(env_dir, 'v0.env'), 'w') as handle:
        handle.write('A="1"\n')
    return host


def test_the_run_that_ends_a_rotation_prunes_and_releases_the_lock(four_releases):
    host = four_releases
    token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v3'), keep_releases=1, lock_token=token)
    assert error is None and result['changed'] is True
    assert [name for name, _ok in steps(result)][-3:] == ['record', 'prune', 'unlock']
    assert result['pruned'] == dict(changed=True, removed=['v0', 'v2'], pinned=['v1', 'v3'], stale_envs=['v0.env'])
    env_dir = host.rotation('x').settings.env_dir
    assert releases_on(host) == ['v1', 'v3'] and not os.path.exists(os.path.join(env_dir, 'v0.env'))
    assert result['unlocked'] == token and not os.path.exists(lock)
    assert state(host)['active_slot'] == 2 and state(host)['slots']['2']['release'] == 'v3'


def test_a_failed_rotation_releases_the_lock_and_prunes_nothing(four_releases):
    host = four_releases
    host.build('v4', 'never')
    token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v4', ready_timeout=5), keep_releases=1, lock_token=token)
    assert error.startswith('Release v4 on slot 2 did not become ready') and 'The deploy lock' not in error
    assert 'pruned' not in result and result['unlocked'] == token and not os.path.exists(lock)
    assert steps(result)[-1] == ('unlock', True)
    assert releases_on(host) == ['v0', 'v1', 'v2', 'v3', 'v4'] and state(host)['active_slot'] == 1


def test_a_lock_another_deploy_took_over_is_left_and_said(four_releases):
    host = four_releases
    _token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v3'), lock_token='someone-else')
    assert error.startswith('The deploy lock was not released: Not releasing the deploy lock %s of shop: it is held '
                            'with a different token' % lock)
    assert 'unlocked' not in result and os.path.exists(lock) and steps(result)[-1] == ('unlock', False)
    assert state(host)['slots']['2']['release'] == 'v3'  # the rotation itself went through


def test_a_prune_that_fails_says_the_release_is_live(four_releases, monkeypatch):
    host = four_releases
    token, lock = take_lock(host)

    def refuse(path, *_args, **_kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(rotation.releases.shutil, 'rmtree', refuse)
    result, error = rotation.run_to_the_end(host.rotation('v3'), keep_releases=1, lock_token=token)
    assert error.startswith('Release v3 is live on slot 2 and recorded, but the old releases under %s could not be '
                            "removed: [Errno 13] Permission denied: '%s/v0'. Fix the cause; the next deploy removes "
                            'them.' % ((os.path.join(host.root, 'app', 'releases'),) * 2))
    assert steps(result)[-2:] == [('prune', False), ('unlock', True)] and not os.path.exists(lock)


def test_the_prepare_phase_keeps_the_lock_and_the_releases(four_releases):
    host = four_releases
    token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v3'), 'prepare', keep_releases=1, lock_token=token)
    assert error is None and 'unlocked' not in result and 'pruned' not in result and os.path.exists(lock)
    assert releases_on(host) == ['v0', 'v1', 'v2', 'v3']
    result, error = rotation.run_to_the_end(host.rotation('v3'), 'finish', keep_releases=1, lock_token=token)
    assert error is None and result['unlocked'] == token and result['pruned']['removed'] == ['v0', 'v2']


def test_check_mode_says_what_it_would_prune_and_keeps_the_lock(four_releases):
    host = four_releases
    token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v3', check_mode=True), keep_releases=1, lock_token=token)
    assert error is None and result['pruned']['removed'] == ['v0', 'v2'] and 'unlocked' not in result
    assert releases_on(host) == ['v0', 'v1', 'v2', 'v3'] and os.path.exists(lock)
    assert steps(result) == [('prune', True)] and result['events'][0]['detail'] == 'would remove v0, v2'


def test_a_release_already_live_still_prunes_and_unlocks(four_releases):
    host = four_releases
    token, lock = take_lock(host)
    result, error = rotation.run_to_the_end(host.rotation('v1'), keep_releases=0, lock_token=token)
    assert error is None and result['plan']['noop'] is True and result['changed'] is True
    assert result['pruned']['removed'] == ['v0', 'v2', 'v3'] and releases_on(host) == ['v1']
    assert result['unlocked'] == token and not os.path.exists(lock)
