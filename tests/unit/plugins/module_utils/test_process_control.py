# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Starting and stopping slots with process_managers (what the rotation engine asks of them)."""

from __future__ import annotations

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.process_managers import (
    ProcessManagerError,
    Supervisor,
    Systemd,
)
from ansible_collections.baton.deploy.tests.unit.plugins.fake_supervisord import (
    BAD_NAME,
    NOT_RUNNING,
    SPAWN_ERROR,
    FakeSupervisord,
    fault,
)

PROGRAM = 'baton-shop-2'


class Runner:
    """Answers each command with the first (rc, out, err) whose key is a prefix of it; records every command."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.commands = []

    def __call__(self, argv):
        self.commands.append(' '.join(argv))
        for prefix, answer in self.answers.items():
            if ' '.join(argv).startswith(prefix):
                return answer
        return 0, '', ''


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / (PROGRAM + '.conf')
    path.write_text('; managed\n[program:%s]\ncommand=/usr/local/bin/app\nautostart=false\nautorestart=unexpected\n'
                    % PROGRAM)
    return path


def test_systemd_start_enables_and_restarts():
    runner = Runner()
    Systemd(runner).start('baton-shop@2.service')
    assert runner.commands == ['systemctl enable baton-shop@2.service', 'systemctl restart baton-shop@2.service']


def test_systemd_stop_disables_and_stops():
    runner = Runner()
    Systemd(runner).stop('baton-shop@1.service')
    assert runner.commands == ['systemctl disable --now baton-shop@1.service']


def test_systemd_start_that_fails_says_what_systemctl_said():
    error = 'Job for baton-shop@2.service failed because the control process exited with error code.\n'
    runner = Runner({'systemctl restart': (1, '', error)})
    with pytest.raises(ProcessManagerError) as excinfo:
        Systemd(runner).start('baton-shop@2.service')
    assert str(excinfo.value) == ('`systemctl restart baton-shop@2.service` failed (exit status 1): Job for '
                                  'baton-shop@2.service failed because the control process exited with error code.')


def test_supervisor_start_restarts_then_marks_autostart(conf):
    rpc = FakeSupervisord(stopProcess=fault(NOT_RUNNING, 'NOT_RUNNING: %s' % PROGRAM))
    Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).start(PROGRAM)
    # supervisorctl reread, update (nothing changed), stop (not running), start without waiting for startsecs.
    assert rpc.calls == [('reloadConfig',), ('stopProcess', PROGRAM, True), ('startProcess', PROGRAM, False)]
    assert 'autostart=true\n' in conf.read_text() and conf.read_text().startswith('; managed\n')


@pytest.mark.parametrize('change, calls', [
    ([[PROGRAM], [], []], [('addProcessGroup', PROGRAM)]),
    ([[], [PROGRAM, 'baton-blog-1'], []], [('stopProcessGroup', PROGRAM, True), ('removeProcessGroup', PROGRAM),
                                           ('addProcessGroup', PROGRAM)]),
    ([[], ['baton-blog-1'], []], []),  # another app's program is left as it is
])
def test_supervisor_start_loads_the_programs_settings_first(conf, change, calls):
    rpc = FakeSupervisord(reloadConfig=[change])
    Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).start(PROGRAM)
    assert rpc.calls == [('reloadConfig',)] + calls + [('stopProcess', PROGRAM, True), ('startProcess', PROGRAM, False)]


def test_supervisor_start_leaves_an_exit_at_start_to_the_status(conf):
    rpc = FakeSupervisord(startProcess=fault(SPAWN_ERROR, 'SPAWN_ERROR: %s' % PROGRAM))
    Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).start(PROGRAM)
    assert rpc.calls[-1] == ('startProcess', PROGRAM, False) and 'autostart=true' in conf.read_text()


def test_supervisor_start_that_fails(conf):
    rpc = FakeSupervisord(startProcess=fault(BAD_NAME, 'BAD_NAME: %s' % PROGRAM))
    with pytest.raises(ProcessManagerError) as excinfo:
        Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).start(PROGRAM)
    assert str(excinfo.value) == ('supervisord has no program baton-shop-2 (its settings are %s): set the host up '
                                  'first (playbooks/deploy.yml)' % conf)
    assert 'autostart=false' in conf.read_text()
    rpc = FakeSupervisord(stopProcess=fault(91, 'STILL_RUNNING'))
    with pytest.raises(ProcessManagerError, match=r'supervisord refused to stop baton-shop-2 \(stopProcess, fault 91: '
                                                  r'STILL_RUNNING\)'):
        Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).start(PROGRAM)


def test_supervisor_stop_unmarks_autostart_then_stops(conf):
    conf.write_text(conf.read_text().replace('autostart=false', 'autostart=true'))
    rpc = FakeSupervisord(reloadConfig=[[[], [PROGRAM], []]])
    runner = Runner()
    Supervisor(runner, conf_dir=str(conf.parent), rpc=rpc).stop(PROGRAM)
    assert 'autostart=false\n' in conf.read_text()
    # The changed settings are loaded (which stops the program), then the stop of an unchanged program.
    assert rpc.calls == [('reloadConfig',), ('stopProcessGroup', PROGRAM, True), ('removeProcessGroup', PROGRAM),
                         ('addProcessGroup', PROGRAM), ('stopProcess', PROGRAM, True)]
    assert runner.commands == []  # no supervisorctl run


def test_supervisor_stop_of_a_stopped_program(conf):
    rpc = FakeSupervisord(stopProcess=fault(NOT_RUNNING, 'NOT_RUNNING: %s' % PROGRAM))
    Supervisor(Runner(), conf_dir=str(conf.parent), rpc=rpc).stop(PROGRAM)
    assert rpc.calls[-1] == ('stopProcess', PROGRAM, True)


def test_supervisor_without_the_programs_settings(tmp_path):
    with pytest.raises(ProcessManagerError, match='cannot read the settings of baton-shop-2 .* set the host up first'):
        Supervisor(Runner(), conf_dir=str(tmp_path), rpc=FakeSupervisord()).stop(PROGRAM)
