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
    runner = Runner({'supervisorctl stop': (0, '%s: ERROR (not running)\n' % PROGRAM, '')})
    Supervisor(runner, conf_dir=str(conf.parent)).start(PROGRAM)
    assert runner.commands == ['supervisorctl reread', 'supervisorctl update %s' % PROGRAM,
                               'supervisorctl stop %s' % PROGRAM, 'supervisorctl start %s' % PROGRAM]
    assert 'autostart=true\n' in conf.read_text() and conf.read_text().startswith('; managed\n')


def test_supervisor_start_leaves_an_exit_at_start_to_the_status(conf):
    runner = Runner({'supervisorctl start': (7, '%s: ERROR (spawn error)\n' % PROGRAM, '')})
    Supervisor(runner, conf_dir=str(conf.parent)).start(PROGRAM)
    assert runner.commands[-1] == 'supervisorctl start %s' % PROGRAM


def test_supervisor_start_that_fails(conf):
    runner = Runner({'supervisorctl update': (2, 'ERROR: no such group: %s\n' % PROGRAM, '')})
    with pytest.raises(ProcessManagerError, match='supervisorctl update baton-shop-2` failed .exit status 2.: ERROR: '
                                                  'no such group'):
        Supervisor(runner, conf_dir=str(conf.parent)).start(PROGRAM)
    assert 'autostart=false' in conf.read_text()


def test_supervisor_stop_unmarks_autostart_then_stops(conf):
    conf.write_text(conf.read_text().replace('autostart=false', 'autostart=true'))
    runner = Runner()
    Supervisor(runner, conf_dir=str(conf.parent)).stop(PROGRAM)
    assert 'autostart=false\n' in conf.read_text()
    assert runner.commands == ['supervisorctl reread', 'supervisorctl update %s' % PROGRAM,
                               'supervisorctl stop %s' % PROGRAM]


def test_supervisor_stop_of_a_stopped_program(conf):
    runner = Runner({'supervisorctl stop': (1, '%s: ERROR (not running)\n' % PROGRAM, '')})
    Supervisor(runner, conf_dir=str(conf.parent)).stop(PROGRAM)


def test_supervisor_without_the_programs_settings(tmp_path):
    with pytest.raises(ProcessManagerError, match='cannot read the settings of baton-shop-2 .* set the host up first'):
        Supervisor(Runner(), conf_dir=str(tmp_path)).stop(PROGRAM)
