# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""process_managers.Supervisor against a real supervisord (the version Debian 12 and 13 ship, from PyPI),
on its XML-RPC unix socket in a temporary directory: the calls, their arguments and the faults the fakes
of test_process_control.py stand for. Runs as any user; each test takes a few seconds (startsecs=1)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.process_managers import (
    CRASH_LOOP,
    RUNNING,
    STOPPED,
    UNKNOWN,
    ProcessManagerError,
    Supervisor,
    SupervisordRPC,
)

pytest.importorskip('supervisor', reason='supervisor is in requirements-test.txt (scripts/bootstrap.sh installs it)')

PROGRAM = 'baton-shop-2'
SLEEPER = '%s -c "import time; time.sleep(600)"' % sys.executable

SUPERVISORD_CONF = """\
[unix_http_server]
file={dir}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{dir}/supervisor.sock ; as Debian's, with a comment

[include]
files = {dir}/conf.d/*.conf
"""

PROGRAM_CONF = """\
; managed
[program:{name}]
command={command}
autostart=false
autorestart=unexpected
exitcodes=0
startsecs=1
startretries=1
stopsignal=TERM
stopwaitsecs=5
redirect_stderr=true
stdout_logfile={dir}/{name}.log
"""


class Commands:
    """The runner Supervisor's log reads use (tail), for real."""

    def __call__(self, argv):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def supervisord(tmp_path):
    (tmp_path / 'conf.d').mkdir()
    write_program(tmp_path, SLEEPER)
    conf = tmp_path / 'supervisord.conf'
    conf.write_text(SUPERVISORD_CONF.format(dir=tmp_path))
    daemon = subprocess.Popen([sys.executable, '-m', 'supervisor.supervisord', '-c', str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (tmp_path / 'supervisor.sock').exists():
        assert daemon.poll() is None, daemon.stderr.read()
        assert time.monotonic() < deadline, 'supervisord did not open its socket within 20 s'
        time.sleep(0.05)
    manager = Supervisor(Commands(), conf_dir=str(tmp_path / 'conf.d'), rpc=SupervisordRPC(config=str(conf)))
    manager.MAIN_LOG = str(tmp_path / 'supervisord.log')
    try:
        yield manager
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)


def write_program(directory, command):
    (directory / 'conf.d' / (PROGRAM + '.conf')).write_text(
        PROGRAM_CONF.format(name=PROGRAM, command=command, dir=directory))


def wait_for(manager, states, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        status = manager.status(PROGRAM)
        if status.state in states or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as handle:
        return handle.read().rstrip(b'\0').split(b'\0')


def test_the_socket_comes_from_supervisorctls_serverurl(supervisord, tmp_path):
    assert supervisord.rpc.socket_path == str(tmp_path / 'supervisor.sock')
    assert SupervisordRPC(config=str(tmp_path / 'missing.conf')).socket_path == '/var/run/supervisor.sock'


def test_start_runs_the_program_and_stop_stops_it(supervisord, tmp_path):
    assert supervisord.status(PROGRAM).state == STOPPED
    supervisord.start(PROGRAM)
    status = wait_for(supervisord, (RUNNING,))
    assert status.state == RUNNING and status.pid and cmdline(status.pid)[-1] == b'import time; time.sleep(600)'
    assert 'autostart=true' in (tmp_path / 'conf.d' / (PROGRAM + '.conf')).read_text()
    supervisord.start(PROGRAM)  # fresh: stopped, then started again
    again = wait_for(supervisord, (RUNNING,))
    assert again.state == RUNNING and again.pid != status.pid
    supervisord.stop(PROGRAM)
    assert supervisord.status(PROGRAM).state == STOPPED  # the stop waits for the end
    assert 'autostart=false' in (tmp_path / 'conf.d' / (PROGRAM + '.conf')).read_text()
    supervisord.stop(PROGRAM)  # a stopped program: nothing to do


def test_changed_settings_are_loaded_before_the_start(supervisord, tmp_path):
    supervisord.start(PROGRAM)
    first = wait_for(supervisord, (RUNNING,))
    write_program(tmp_path, '%s -c "import time; time.sleep(601)"' % sys.executable)
    supervisord.start(PROGRAM)
    second = wait_for(supervisord, (RUNNING,))
    assert second.pid != first.pid and cmdline(second.pid)[-1] == b'import time; time.sleep(601)'
    supervisord.stop(PROGRAM)


def test_a_program_that_exits_at_start_shows_its_exit_status(supervisord, tmp_path):
    write_program(tmp_path, '%s -c "raise SystemExit(3)"' % sys.executable)
    supervisord.start(PROGRAM)  # does not wait for startsecs: the status tells
    status = wait_for(supervisord, (CRASH_LOOP,))
    assert (status.state, status.exit_status) == (CRASH_LOOP, 3), status
    assert status.detail.startswith(('BACKOFF', 'FATAL'))


def test_an_unknown_program_and_a_socket_that_does_not_answer(supervisord, tmp_path):
    assert supervisord.status('baton-nothing-1').state == UNKNOWN
    # Its settings exist, but not as a program supervisord knows by that name.
    (tmp_path / 'conf.d' / 'baton-nothing-1.conf').write_text('; managed\n[program:baton-other-1]\ncommand=/bin/true\n'
                                                              'autostart=false\n')
    with pytest.raises(ProcessManagerError, match='supervisord has no program baton-nothing-1'):
        supervisord.start('baton-nothing-1')
    lost = Supervisor(Commands(), conf_dir=str(tmp_path / 'conf.d'),
                      rpc=SupervisordRPC(socket_path=str(tmp_path / 'nothing.sock')))
    with pytest.raises(ProcessManagerError, match=r'supervisord does not answer on .*nothing.sock .*is it running'):
        lost.start(PROGRAM)
    assert lost.status(PROGRAM).state == UNKNOWN
