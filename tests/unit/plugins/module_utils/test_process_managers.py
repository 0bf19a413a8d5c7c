# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.process_managers import (
    CRASH_LOOP,
    EXITED,
    PROCESS_MANAGERS,
    RUNNING,
    STARTING,
    STOPPED,
    UNKNOWN,
    ProcessManagerError,
    ProcessStatus,
    ProcessWatch,
    Supervisor,
    Systemd,
    process_manager,
)
from ansible_collections.baton.deploy.tests.unit.plugins.fake_supervisord import BAD_NAME, FakeSupervisord, fault, info


class FakeRunner:
    """Answers each argv from a table of ``(argv prefix tuple) -> [(rc, out, err), ...]``.

    A command's answers are used in turn, the last one repeats; every call is recorded."""

    def __init__(self, answers):
        self.answers = {tuple(key): list(value) for key, value in answers.items()}
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        for prefix, replies in self.answers.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return replies.pop(0) if len(replies) > 1 else replies[0]
        raise AssertionError('unexpected command %r' % (argv,))


def show(**props):
    base = dict(LoadState='loaded', ActiveState='active', SubState='running', Result='success', ExecMainStatus='0',
                ExecMainCode='0', NRestarts='0', MainPID='1234')
    base.update(props)
    return '\n'.join('%s=%s' % item for item in base.items()) + '\n'


# --- systemd ---------------------------------------------------------------------------------

@pytest.mark.parametrize('props, state, exit_status, sig, restarts', [
    # Running (Type=simple is active at once).
    ({}, RUNNING, None, None, 0),
    # Exited with 3; Restart=on-failure waits RestartSec before starting it again.
    (dict(ActiveState='activating', SubState='auto-restart', Result='exit-code', ExecMainCode='1',
          ExecMainStatus='3', MainPID='0'), CRASH_LOOP, 3, None, 0),
    # systemd >= 254 names the wait auto-restart-queued.
    (dict(ActiveState='activating', SubState='auto-restart-queued', Result='exit-code', ExecMainCode='1',
          ExecMainStatus='3', NRestarts='2', MainPID='0'), CRASH_LOOP, 3, None, 2),
    # Restarted too often: systemd gave up.
    (dict(ActiveState='failed', SubState='failed', Result='start-limit-hit', ExecMainCode='1', ExecMainStatus='3',
          NRestarts='5', MainPID='0'), CRASH_LOOP, 3, None, 5),
    # Running again after dying: the counter is reset on every start, so any restart is a crash.
    (dict(NRestarts='1'), CRASH_LOOP, None, None, 1),
    # Failed without a restart policy.
    (dict(ActiveState='failed', SubState='failed', Result='exit-code', ExecMainCode='1', ExecMainStatus='2',
          MainPID='0'), EXITED, 2, None, 0),
    # Killed by SIGKILL (ExecMainCode CLD_KILLED, ExecMainStatus the signal).
    (dict(ActiveState='failed', SubState='failed', Result='signal', ExecMainCode='2', ExecMainStatus='9',
          MainPID='0'), EXITED, None, 'SIGKILL', 0),
    # Dumped core on SIGSEGV.
    (dict(ActiveState='activating', SubState='auto-restart', Result='core-dump', ExecMainCode='3',
          ExecMainStatus='11', MainPID='0'), CRASH_LOOP, None, 'SIGSEGV', 0),
    # Exited 0: Restart=on-failure leaves it down, inactive.
    (dict(ActiveState='inactive', SubState='dead', ExecMainCode='1', ExecMainStatus='0', MainPID='0'),
     EXITED, 0, None, 0),
    # Never started.
    (dict(ActiveState='inactive', SubState='dead', MainPID='0'), STOPPED, None, None, 0),
    # Still starting (e.g. Type=notify, or ExecStartPre running): not a failure.
    (dict(ActiveState='activating', SubState='start', MainPID='0'), STARTING, None, None, 0),
    (dict(LoadState='not-found', ActiveState='inactive', SubState='dead', MainPID='0'), UNKNOWN, None, None, None),
])
def test_systemd_states(props, state, exit_status, sig, restarts):
    runner = FakeRunner({('systemctl', 'show'): [(0, show(**props), '')]})
    status = Systemd(runner).status('baton-shop@2.service')

    assert (status.state, status.exit_status, status.signal, status.restarts) == (state, exit_status, sig, restarts)
    assert status.failed == (state not in (RUNNING, STARTING))
    assert runner.calls == [['systemctl', 'show', '-p', 'LoadState,ActiveState,SubState,Result,ExecMainStatus,'
                             'ExecMainCode,NRestarts,MainPID', 'baton-shop@2.service']]


def test_systemd_parse_tolerates_missing_and_odd_values():
    status = Systemd.parse_show('ActiveState=active\nSubState=running\nNRestarts=[not set]\nnoise without equals\n')
    assert (status.state, status.restarts) == (RUNNING, None)
    assert Systemd.parse_show('').state == UNKNOWN


def test_systemd_show_failure_is_unknown():
    runner = FakeRunner({('systemctl', 'show'): [(1, '', 'Failed to connect to bus: No such file or directory\n')]})
    status = Systemd(runner).status('baton-shop@2.service')
    assert status.state == UNKNOWN and status.failed
    assert status.detail == 'Failed to connect to bus: No such file or directory'


def test_systemd_log_tail():
    lines = ['line %d' % n for n in range(20)]
    runner = FakeRunner({('journalctl',): [(0, '\n'.join(lines) + '\n', '')]})
    assert Systemd(runner).log_tail('baton-shop@2.service') == '\n'.join(lines)
    assert runner.calls == [['journalctl', '-u', 'baton-shop@2.service', '-n', '20', '--no-pager', '-o', 'cat']]


def test_systemd_log_tail_failure_is_empty():
    runner = FakeRunner({('journalctl',): [(1, '', 'No journal files were found.\n')]})
    assert Systemd(runner).log_tail('baton-shop@2.service', lines=5) == ''


# --- supervisor ------------------------------------------------------------------------------

MAINTAIL = """\
2026-11-30 21:00:00,100 INFO spawned: 'baton-shop-1' with pid 100
2026-11-30 21:00:01,100 INFO success: baton-shop-1 entered RUNNING state, process has stayed up for > than 1 seconds
2026-11-30 21:05:00,000 INFO spawned: 'baton-shop-2' with pid 200
2026-11-30 21:05:00,200 WARN exited: baton-shop-2 (exit status 1; not expected)
2026-11-30 21:05:01,210 INFO spawned: 'baton-shop-2' with pid 201
2026-11-30 21:05:01,400 WARN exited: baton-shop-2 (exit status 3; not expected)
2026-11-30 21:05:01,500 WARN exited: baton-shop-20 (exit status 9; not expected)
2026-11-30 21:05:01,600 INFO stopped: baton-shop-1 (terminated by SIGTERM)
"""


NO_FILE = (1, '', "tail: cannot open 'x' for reading: No such file or directory\n")


def log_runner(maintail=MAINTAIL, tail=(0, 'booting\nboom\n', ''), files=True):
    """tail on the log files (the same contents, or missing when not ``files``), and supervisorctl for them."""
    return FakeRunner({
        ('tail', '-c', '16000', '/var/log/supervisor/supervisord.log'): [(0, maintail, '') if files else NO_FILE],
        ('tail', '-c', '16000', '/var/log/baton/shop-2.log'): [tail if files else NO_FILE],
        ('supervisorctl', 'maintail'): [(0, maintail, '')],
        ('supervisorctl', 'tail'): [tail],
    })


@pytest.mark.parametrize('answer, state, exit_status, pid', [
    (info('RUNNING', 201, 'pid 201, uptime 0:00:05'), RUNNING, None, 201),
    (info('STARTING', 201), STARTING, None, 201),
    (info('BACKOFF', description='Exited too quickly (process log may have details)'), CRASH_LOOP, 3, None),
    (info('FATAL', description='Exited too quickly (process log may have details)'), CRASH_LOOP, 3, None),
    (info('EXITED', description='Nov 30 09:05 PM'), EXITED, 3, None),
    (info('STOPPED', description='Not started'), STOPPED, 3, None),
    (fault(BAD_NAME, 'BAD_NAME: baton-shop-2'), UNKNOWN, None, None),
])
def test_supervisor_states(answer, state, exit_status, pid):
    runner, rpc = log_runner(), FakeSupervisord(getProcessInfo=answer)
    status = Supervisor(runner, rpc=rpc).status('baton-shop-2')

    assert (status.state, status.exit_status, status.pid) == (state, exit_status, pid)
    assert status.failed == (state not in (RUNNING, STARTING))
    assert rpc.calls == [('getProcessInfo', 'baton-shop-2')]
    # supervisord's log is read only for a process that is down, and with tail: no supervisorctl run.
    assert [call[-1] for call in runner.calls] == (['/var/log/supervisor/supervisord.log']
                                                   if state in (CRASH_LOOP, EXITED, STOPPED) else [])


def test_supervisor_reads_through_supervisorctl_without_the_log_files():
    runner = log_runner(files=False)
    manager = Supervisor(runner, rpc=FakeSupervisord(getProcessInfo=info('FATAL', description='Exited too quickly')))
    assert manager.status('baton-shop-2').exit_status == 3
    assert manager.log_tail('baton-shop-2') == 'booting\nboom'
    expected = [['tail', '-c'], ['supervisorctl', 'maintail'], ['tail', '-c'], ['supervisorctl', 'tail']]
    assert [call[:2] for call in runner.calls] == expected


def test_supervisor_detail_keeps_its_words():
    rpc = FakeSupervisord(getProcessInfo=info('BACKOFF', description='Exited too quickly (process log may have details)'))
    status = Supervisor(log_runner(), rpc=rpc).status('baton-shop-2')
    assert status.detail == 'BACKOFF Exited too quickly (process log may have details)'
    assert status.describe() == ('exited with status 3 (crash loop; '
                                 'BACKOFF Exited too quickly (process log may have details))')


def test_supervisor_that_does_not_answer_is_unknown():
    rpc = FakeSupervisord(getProcessInfo=ProcessManagerError('supervisord does not answer on /run/x.sock ([Errno 2] '
                                                             'No such file or directory): is it running?'))
    status = Supervisor(log_runner(), rpc=rpc).status('baton-shop-2')
    assert status.state == UNKNOWN and status.detail.startswith('supervisord does not answer on /run/x.sock')


@pytest.mark.parametrize('text, expected', [
    (MAINTAIL, (3, None)),  # the last exit of that very program, not of baton-shop-20
    ('2026-11-30 21:05:01,600 INFO stopped: baton-shop-2 (terminated by SIGKILL)\n', (None, 'SIGKILL')),
    ('2026-11-30 21:05:01,600 INFO stopped: baton-shop-2 (exit status 0)\n', (0, None)),
    ("2026-11-30 21:05:00,000 INFO spawned: 'baton-shop-2' with pid 200\n", (None, None)),
    ('', (None, None)),
])
def test_supervisor_last_exit_parsing(text, expected):
    assert Supervisor.parse_last_exit(text, 'baton-shop-2') == expected


def test_supervisor_log_tail_keeps_last_lines():
    lines = ['line %d' % n for n in range(30)]
    runner = log_runner(tail=(0, '\n'.join(lines) + '\n', ''))
    assert Supervisor(runner, rpc=FakeSupervisord()).log_tail('baton-shop-2') == '\n'.join(lines[-20:])
    assert runner.calls == [['tail', '-c', '16000', '/var/log/baton/shop-2.log']]


def test_supervisor_log_tail_drops_the_line_cut_by_the_byte_count():
    out = 'x' * 15990 + '\nlast words\n'  # as long as the bytes asked for: its first line is partial
    runner = log_runner(tail=(0, out, ''))
    assert Supervisor(runner, rpc=FakeSupervisord()).log_tail('baton-shop-2') == 'last words'


@pytest.mark.parametrize('tail', [(0, 'baton-shop-2: ERROR (no such process name)\n', ''), (2, '', 'refused')])
def test_supervisor_log_tail_errors_are_empty(tail):
    assert Supervisor(log_runner(tail=tail, files=False), rpc=FakeSupervisord()).log_tail('baton-shop-2') == ''


def test_supervisor_maintail_failure_leaves_exit_status_unknown():
    runner = FakeRunner({
        ('tail',): [NO_FILE],
        ('supervisorctl', 'maintail'): [(2, '', 'unix:///var/run/supervisor.sock refused connection')],
    })
    status = Supervisor(runner, rpc=FakeSupervisord(getProcessInfo=info('FATAL', description='Exited too quickly'))
                        ).status('baton-shop-2')
    assert (status.state, status.exit_status, status.signal) == (CRASH_LOOP, None, None)
    assert status.describe() == 'exited (crash loop; FATAL Exited too quickly)'


# --- registry, names, watch -----------------------------------------------------------------

def test_registry_and_unit_names_match_roles_instances():
    assert PROCESS_MANAGERS == {'systemd': Systemd, 'supervisor': Supervisor}
    assert Systemd.unit_name('shop', 2) == 'baton-shop@2.service'
    assert Supervisor.unit_name('shop', 2) == 'baton-shop-2'
    runner = FakeRunner({})
    assert isinstance(process_manager('systemd', runner), Systemd)
    assert process_manager('supervisor', runner).runner is runner
    with pytest.raises(ValueError, match="unknown process manager 'runit'"):
        process_manager('runit', runner)


def test_describe():
    assert ProcessStatus(CRASH_LOOP, 3, restarts=1, detail='active/running').describe() == \
        'exited with status 3 (crash loop, 1 restart; active/running)'
    assert ProcessStatus(EXITED, signal='SIGKILL').describe() == 'was killed by SIGKILL'
    assert ProcessStatus(STOPPED).describe() == 'is stopped'
    assert ProcessStatus(UNKNOWN).describe() == 'is not known to the process manager'
    assert ProcessStatus(STARTING).describe() == 'is starting'


def test_watch_says_nothing_while_running_or_starting():
    starting = show(ActiveState='activating', SubState='start')
    runner = FakeRunner({('systemctl', 'show'): [(0, starting, ''), (0, show(), '')]})
    watch = ProcessWatch(Systemd(runner), 'baton-shop@2.service')
    assert watch() is None
    assert watch() is None
    assert all(call[0] == 'systemctl' for call in runner.calls)  # no log read while it is alive


def test_watch_reports_exit_status_and_log_tail():
    runner = FakeRunner({
        ('systemctl', 'show'): [(0, show(ActiveState='activating', SubState='auto-restart', Result='exit-code',
                                         ExecMainCode='1', ExecMainStatus='3', MainPID='0'), '')],
        ('journalctl',): [(0, 'demo_app: exiting at start with status 3 (EXIT_AT_START)\n', '')],
    })
    failure = ProcessWatch(Systemd(runner), 'baton-shop@2.service', log_lines=5)()

    assert failure == {
        'unit': 'baton-shop@2.service', 'state': CRASH_LOOP, 'exit_status': 3, 'signal': None, 'restarts': 0,
        'detail': 'activating/auto-restart, result exit-code',
        'reason': 'the process of baton-shop@2.service exited with status 3 '
                  '(crash loop; activating/auto-restart, result exit-code)',
        'log_tail': 'demo_app: exiting at start with status 3 (EXIT_AT_START)', 'pid': None,
    }
    assert runner.calls[-1][:5] == ['journalctl', '-u', 'baton-shop@2.service', '-n', '5']


def test_watch_flags_a_supervisor_program_that_died_after_startsecs_and_starts_again():
    # Up for more than startsecs, then it exits: EXITED for an instant, then STARTING (autorestart).
    rpc = FakeSupervisord(getProcessInfo=[info('STARTING', 200), info('RUNNING', 200, 'pid 200, uptime 0:00:01'),
                                          info('RUNNING', 200, 'pid 200, uptime 0:00:02'), info('STARTING', 207)])
    runner = FakeRunner({
        ('tail', '-c', '16000', '/var/log/supervisor/supervisord.log'): [(
            0, '2026-11-30 21:05:03,000 WARN exited: baton-shop-2 (exit status 4; not expected)\n', '')],
        ('tail', '-c', '16000', '/var/log/baton/shop-2.log'): [(0, 'warming up\ndying while warming up\n', '')],
    })
    watch = ProcessWatch(Supervisor(runner, rpc=rpc), 'baton-shop-2')
    assert [watch(), watch(), watch()] == [None, None, None]
    failure = watch()
    assert (failure['state'], failure['exit_status'], failure['pid']) == (CRASH_LOOP, 4, 207)
    assert failure['reason'] == 'the process of baton-shop-2 exited with status 4 (crash loop; STARTING, was pid 200)'
    assert failure['log_tail'] == 'warming up\ndying while warming up'


@pytest.mark.parametrize('second', [
    show(MainPID='1301', NRestarts='[not set]'),  # restarted between two polls (no counter on old systemd)
    show(ActiveState='activating', SubState='start', MainPID='0', NRestarts='[not set]'),
])
def test_watch_flags_a_systemd_unit_running_as_another_process(second):
    runner = FakeRunner({
        ('systemctl', 'show'): [(0, show(MainPID='1300', NRestarts='[not set]'), ''), (0, second, '')],
        ('journalctl', '-u', 'baton-shop@2.service', '-n', '200'): [(0, (
            'baton-shop@2.service: Main process exited, code=killed, status=9/KILL\n'
            'baton-shop@2.service: Main process exited, code=dumped, status=11/SEGV\n'), '')],
        ('journalctl', '-u', 'baton-shop@2.service', '-n', '20'): [(0, 'boom\n', '')],
    })
    watch = ProcessWatch(Systemd(runner), 'baton-shop@2.service')
    assert watch() is None
    failure = watch()
    assert (failure['state'], failure['exit_status'], failure['signal']) == (CRASH_LOOP, None, 'SIGSEGV')
    assert 'was pid 1300' in failure['detail'] and failure['log_tail'] == 'boom'


@pytest.mark.parametrize('text, expected', [
    ('u.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED\n', (3, None)),
    ('u.service: Main process exited, code=exited, status=1/FAILURE\n'
     'u.service: Main process exited, code=exited, status=2/INVALIDARGUMENT\n', (2, None)),
    ('u.service: Main process exited, code=killed, status=15/TERM\n', (None, 'SIGTERM')),
    ('u.service: Main process exited, code=killed, status=9\n', (None, 'SIGKILL')),
    ('other.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED\n', (None, None)),
    ('', (None, None)),
])
def test_systemd_last_exit_parsing(text, expected):
    assert Systemd.parse_last_exit(text, 'u.service') == expected


def test_watch_does_not_flag_the_same_process_or_its_first_start():
    starting = show(ActiveState='activating', SubState='start', MainPID='0')
    running = show(MainPID='77')
    runner = FakeRunner({('systemctl', 'show'): [(0, starting, ''), (0, running, ''), (0, running, '')]})
    watch = ProcessWatch(Systemd(runner), 'baton-shop@2.service')
    assert [watch(), watch(), watch()] == [None, None, None]


def test_watch_reads_the_exit_status_of_a_systemd_unit_already_running_again():
    # Caught between two crashes: running again (status reset), but NRestarts says it died 4 times.
    runner = FakeRunner({
        ('systemctl', 'show'): [(0, show(MainPID='1400', NRestarts='4'), '')],
        ('journalctl', '-u', 'u.service', '-n', '200'): [(0, 'u.service: Main process exited, code=exited, '
                                                             'status=3/NOTIMPLEMENTED\n', '')],
        ('journalctl', '-u', 'u.service', '-n', '20'): [(0, 'demo_app: exiting at start\n', '')],
    })
    failure = ProcessWatch(Systemd(runner), 'u.service')()
    assert (failure['state'], failure['exit_status'], failure['restarts']) == (CRASH_LOOP, 3, 4)
    assert failure['reason'] == 'the process of u.service exited with status 3 (crash loop, 4 restarts; active/running)'


def test_watch_leaves_a_stopped_unit_without_exit_status():
    runner = FakeRunner({('systemctl', 'show'): [(0, show(ActiveState='inactive', SubState='dead', MainPID='0'), '')],
                         ('journalctl',): [(0, '', '')]})
    failure = ProcessWatch(Systemd(runner), 'u.service')()
    assert (failure['state'], failure['exit_status']) == (STOPPED, None)
    assert [call[0] for call in runner.calls] == ['systemctl', 'journalctl']  # the log tail only
