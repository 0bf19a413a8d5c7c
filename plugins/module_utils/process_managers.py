# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The process managers that run a slot (systemd, supervisor), behind one small interface.

Each class takes a ``runner``: a callable that runs an argv list and returns ``(rc, stdout, stderr)``
(``AnsibleModule.run_command`` does), so the parsing is unit tested with fake runners. A class names
the slot's unit as ``roles/instances`` does (:meth:`unit_name`), reads its state (:meth:`status`) and
the end of its log (:meth:`log_tail`). :data:`PROCESS_MANAGERS` maps ``baton_process_manager`` to the
class. The rotation engine (:mod:`rotation`) also starts and stops slots with them (:meth:`start`,
:meth:`stop`). :class:`ProcessWatch` turns one of them into the check that ``readiness.wait_ready`` runs on
every poll, so a slot whose process exits stops the wait at once.
"""

from __future__ import annotations

import configparser
import http.client
import os
import re
import signal
import socket
import xmlrpc.client

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import atomic_write

RUNNING = 'running'
STARTING = 'starting'
EXITED = 'exited'
CRASH_LOOP = 'crash-loop'
STOPPED = 'stopped'
UNKNOWN = 'unknown'
# What the wait for readiness stops on: the slot's process is gone, or keeps dying and coming back.
FAILED_STATES = (EXITED, CRASH_LOOP, STOPPED, UNKNOWN)

DEFAULT_LOG_LINES = 20
# Where the control groups of systemd's units are: cgroup v2 (the unified hierarchy), else the
# hybrid layout's unified or name=systemd hierarchy (e.g. in some containers).
CGROUP_ROOTS = ('/sys/fs/cgroup', '/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd')


class ProcessManagerError(Exception):
    """A start or a stop that the process manager refused or failed."""


class ProcessStatus:
    """What the process manager says about a slot's process.

    Attributes:
        state: one of ``running``, ``starting`` (not up yet, not failed), ``exited`` (ended and stays
            down), ``crash-loop`` (it ended and the manager restarts it, or gave up restarting it),
            ``stopped`` (not started, or stopped on purpose) and ``unknown`` (no such unit).
        exit_status: exit code of the last exit, or None (still running, or not known).
        signal: name of the signal that ended it (``SIGKILL``), or None.
        restarts: automatic restarts since the last start (systemd's NRestarts), or None when the
            manager does not say.
        detail: the manager's own words (``failed/exit-code``, ``BACKOFF Exited too quickly ...``).
        pid: the main process's id while it runs, else None.
    """

    __slots__ = ('state', 'exit_status', 'signal', 'restarts', 'detail', 'pid')

    def __init__(self, state, exit_status=None, signal=None, restarts=None, detail='', pid=None):
        self.state = state
        self.exit_status = exit_status
        self.signal = signal
        self.restarts = restarts
        self.detail = detail
        self.pid = pid

    @property
    def failed(self):
        return self.state in FAILED_STATES

    def describe(self):
        """One phrase: ``exited with status 3 (crash loop, 2 restarts; failed/exit-code)``."""
        if self.state in (RUNNING, STARTING):
            text = 'is %s' % self.state
        elif self.state == STOPPED:
            text = 'is stopped'
        elif self.state == UNKNOWN:
            text = 'is not known to the process manager'
        elif self.signal is not None:
            text = 'was killed by %s' % self.signal
        elif self.exit_status is not None:
            text = 'exited with status %d' % self.exit_status
        else:
            text = 'exited'
        notes = []
        if self.state == CRASH_LOOP:
            notes.append('crash loop' + ('' if not self.restarts else ', %d restart%s'
                                         % (self.restarts, '' if self.restarts == 1 else 's')))
        if self.detail:
            notes.append(self.detail)
        return text + (' (%s)' % '; '.join(notes) if notes else '')

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self):
        return 'ProcessStatus(%s)' % ', '.join('%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'signal %d' % number


def _last_lines(text, lines):
    kept = text.rstrip('\n').splitlines()[-lines:] if lines > 0 else []
    return '\n'.join(kept)


class ProcessManager:
    """Interface of a process manager; ``runner(argv) -> (rc, stdout, stderr)``."""

    name = None

    def __init__(self, runner):
        self.runner = runner

    @classmethod
    def unit_name(cls, app, slot):
        """The unit (or program) that runs slot ``slot`` of ``app``, as roles/instances names it."""
        raise NotImplementedError

    def status(self, unit):
        """A :class:`ProcessStatus` for ``unit``."""
        raise NotImplementedError

    def log_tail(self, unit, lines=DEFAULT_LOG_LINES):
        """The last ``lines`` lines the unit's process logged, as one string ('' when none)."""
        raise NotImplementedError

    def last_exit(self, unit):
        """``(exit_status, signal)`` of the unit's last exit, or ``(None, None)`` when not known."""
        raise NotImplementedError

    def start(self, unit):
        """(Re)start ``unit`` fresh with the release its slot points at, and at boot from now on.

        Raises :class:`ProcessManagerError`. A process that exits at once is left to :meth:`status`.
        """
        raise NotImplementedError

    def stop(self, unit):
        """Stop ``unit`` (SIGTERM: the app finishes its requests), and not at boot. Raises :class:`ProcessManagerError`."""
        raise NotImplementedError

    def _run(self, argv):
        rc, out, err = self.runner(argv)
        return rc, out or '', err or ''

    def _check(self, argv, tolerate=None):
        """Run ``argv``; raise unless it exits 0 (or prints what the ``tolerate`` regex says is fine) with no ERROR."""
        rc, out, err = self._run(argv)
        rest = re.sub(tolerate, '', out) if tolerate else out
        if 'ERROR' in rest or (rc != 0 and rest == out):
            raise ProcessManagerError('`%s` failed (exit status %d): %s'
                                      % (' '.join(argv), rc, ' '.join((out + ' ' + err).split()) or 'no output'))


class Systemd(ProcessManager):
    """A slot is the template instance ``baton-<app>@<slot>.service`` (Restart=on-failure)."""

    name = 'systemd'
    PROPERTIES = ('LoadState', 'ActiveState', 'SubState', 'Result', 'ExecMainStatus', 'ExecMainCode', 'NRestarts', 'MainPID')
    # ExecMainCode is the waitid() si_code of the main process's end.
    _CLD_EXITED = 1
    _CLD_KILLED = 2
    _CLD_DUMPED = 3

    @classmethod
    def unit_name(cls, app, slot):
        return 'baton-%s@%s.service' % (app, slot)

    def status(self, unit):
        rc, out, err = self._run(['systemctl', 'show', '-p', ','.join(self.PROPERTIES), unit])
        if rc != 0:
            return ProcessStatus(UNKNOWN, detail=(err or out).strip() or 'systemctl show exited %d' % rc)
        return self.parse_show(out)

    @staticmethod
    def show_props(text):
        """The ``Name=value`` lines of ``systemctl show -p ...`` output, as a dict (values stripped)."""
        props = {}
        for line in text.splitlines():
            key, sep, value = line.partition('=')
            if sep:
                props[key.strip()] = value.strip()
        return props

    @classmethod
    def parse_show(cls, text):
        """A :class:`ProcessStatus` from ``systemctl show -p ...`` output (``Name=value`` lines)."""
        props = cls.show_props(text)
        active, sub = props.get('ActiveState', ''), props.get('SubState', '')
        result = props.get('Result', '')
        restarts = _int_or_none(props.get('NRestarts'))
        code = _int_or_none(props.get('ExecMainCode'))
        main_status = _int_or_none(props.get('ExecMainStatus'))
        exit_status = sig = None
        if code == cls._CLD_EXITED:
            exit_status = main_status
        elif code in (cls._CLD_KILLED, cls._CLD_DUMPED) and main_status:
            sig = _signal_name(main_status)
        detail = '/'.join(part for part in (active, sub) if part)
        if result and result != 'success':
            detail += ', result %s' % result

        if props.get('LoadState') == 'not-found' or not active:
            return ProcessStatus(UNKNOWN, detail=detail or 'no state')
        if sub.startswith('auto-restart') or result == 'start-limit-hit':
            # Exited, and systemd restarts it (auto-restart) or gave up (start-limit-hit): a crash loop.
            return ProcessStatus(CRASH_LOOP, exit_status, sig, restarts, detail)
        if active in ('active', 'reloading'):
            if restarts:
                # Running again, but only after it died: the restart counter is reset on every start.
                return ProcessStatus(CRASH_LOOP, exit_status, sig, restarts, detail)
            return ProcessStatus(RUNNING, restarts=restarts, detail=detail, pid=_int_or_none(props.get('MainPID')) or None)
        if active == 'activating':
            return ProcessStatus(STARTING, restarts=restarts, detail=detail)
        if active == 'failed' or code in (cls._CLD_EXITED, cls._CLD_KILLED, cls._CLD_DUMPED):
            state = CRASH_LOOP if restarts else EXITED
            return ProcessStatus(state, exit_status, sig, restarts, detail)
        # inactive or deactivating without ever having run a main process: stopped, not crashed.
        return ProcessStatus(STOPPED, restarts=restarts, detail=detail)

    def last_exit(self, unit):
        # The main process's status is reset when a new one starts: only the journal keeps it.
        rc, out, err = self._run(['journalctl', '-u', unit, '-n', '200', '--no-pager', '-o', 'cat'])
        return self.parse_last_exit(out, unit) if rc == 0 else (None, None)

    @staticmethod
    def parse_last_exit(text, unit):
        """From systemd's ``<unit>: Main process exited, code=exited, status=3/NOTIMPLEMENTED`` lines."""
        found = None
        for found in re.finditer(r'%s: Main process exited, code=(\w+), status=(\d+)(?:/(\w+))?' % re.escape(unit),
                                 text):
            pass
        if found is None:
            return None, None
        if found.group(1) == 'exited':
            return int(found.group(2)), None
        return None, found.group(3) and 'SIG' + found.group(3) or _signal_name(int(found.group(2)))

    def log_tail(self, unit, lines=DEFAULT_LOG_LINES):
        rc, out, err = self._run(['journalctl', '-u', unit, '-n', str(lines), '--no-pager', '-o', 'cat'])
        if rc != 0:
            return ''
        return _last_lines(out, lines)

    def start(self, unit):
        self._check(['systemctl', 'enable', unit])
        self._check(['systemctl', 'restart', unit])

    def pids(self, unit, cgroup_roots=CGROUP_ROOTS):
        """The processes of ``unit``: its control group's (a server and its workers), else its main process.

        The control group is read where cgroup v2 puts it, else where a hybrid (v1) layout does; [] when the
        unit runs nothing.
        """
        rc, out, err = self._run(['systemctl', 'show', '-p', 'ControlGroup,MainPID', unit])
        props = self.show_props(out) if rc == 0 else {}
        group = props.get('ControlGroup', '').lstrip('/')
        for root in cgroup_roots if group else ():
            try:
                with open(os.path.join(root, group, 'cgroup.procs')) as handle:
                    return [int(line) for line in handle.read().split()]
            except (OSError, ValueError):
                continue
        main = _int_or_none(props.get('MainPID'))
        return [main] if main else []

    def stop(self, unit):
        self._check(['systemctl', 'disable', '--now', unit])


class SupervisordRPC:
    """supervisord's XML-RPC interface, on the unix socket ``supervisorctl`` uses (its ``serverurl``).

    One call costs a round trip on the socket, where every ``supervisorctl`` run costs a Python start (up
    to 0.7 s on a loaded host). ``call('startProcess', name, False)`` calls ``supervisor.startProcess``;
    a fault is raised as ``xmlrpc.client.Fault`` (its ``faultCode`` is one of supervisord's
    ``xmlrpc.Faults``), and a socket that does not answer as :class:`ProcessManagerError`.
    """

    CONFIG = '/etc/supervisor/supervisord.conf'
    DEFAULT_SOCKET = '/var/run/supervisor.sock'

    def __init__(self, socket_path=None, config=CONFIG):
        self.socket_path = socket_path or self.socket_from_config(config) or self.DEFAULT_SOCKET

    @staticmethod
    def socket_from_config(path):
        """The socket of ``[supervisorctl] serverurl = unix://<path>`` in supervisord's settings, or None."""
        parser = configparser.RawConfigParser(inline_comment_prefixes=(';', '#'), strict=False)
        try:
            parser.read(path)
            url = parser.get('supervisorctl', 'serverurl')
        except (configparser.Error, OSError):
            return None
        return url[len('unix://'):] if url.startswith('unix://') else None

    def call(self, method, *args):
        server = xmlrpc.client.ServerProxy('http://localhost', transport=_UnixSocketTransport(self.socket_path))
        try:
            return getattr(server.supervisor, method)(*args)
        except xmlrpc.client.Fault:
            raise
        except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
            raise ProcessManagerError('supervisord does not answer on %s (%s): is it running? '
                                      '(systemctl status supervisor)' % (self.socket_path, exc))


class _UnixSocketConnection(http.client.HTTPConnection):
    def __init__(self, socket_path):
        super(_UnixSocketConnection, self).__init__('localhost')
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixSocketTransport(xmlrpc.client.Transport):
    def __init__(self, socket_path):
        xmlrpc.client.Transport.__init__(self)
        self.socket_path = socket_path

    def make_connection(self, host):
        return _UnixSocketConnection(self.socket_path)


class Supervisor(ProcessManager):
    """A slot is the program ``baton-<app>-<slot>`` (autorestart=unexpected, startretries=3).

    supervisord is asked over its XML-RPC socket (:class:`SupervisordRPC`): the program's state, and the
    start and stop (``supervisorctl reread``, ``update``, ``stop`` and ``start`` are each a call there).
    The exit status of a program that ended comes from supervisord's own log (``exited: <program> (exit
    status 3; not expected)``), which also names a signal. The slot's output (stdout and stderr,
    redirected) is in the log file roles/instances gives it. Both are read with ``tail`` where
    roles/instances and Debian put them, else with ``supervisorctl maintail`` / ``supervisorctl tail``.
    """

    name = 'supervisor'
    FAILED = {'EXITED': EXITED, 'STOPPED': STOPPED, 'STOPPING': STOPPED, 'UNKNOWN': UNKNOWN,
              'BACKOFF': CRASH_LOOP, 'FATAL': CRASH_LOOP}
    # supervisord's xmlrpc.Faults that a start or a stop expects.
    BAD_NAME = 10
    SPAWN_ERROR = 50
    NOT_RUNNING = 70
    # Bytes of a log read to find the last lines: enough for 20 long lines.
    TAIL_BYTES = 16000
    MAIN_LOG = '/var/log/supervisor/supervisord.log'
    # roles/instances: stdout_logfile=<__baton_supervisor_log_dir>/<app>-<slot>.log
    PROGRAM_LOG = '/var/log/baton/%s.log'
    _EXIT_RE = r'(?:exited|stopped): %s \((?:exit status (?P<status>\d+)|terminated by (?P<signal>[A-Z0-9]+))'
    # Where roles/instances writes each program's settings (<conf dir>/<program>.conf).
    CONF_DIR = '/etc/supervisor/conf.d'

    def __init__(self, runner, conf_dir=CONF_DIR, rpc=None):
        super(Supervisor, self).__init__(runner)
        self.conf_dir = conf_dir
        self.rpc = rpc or SupervisordRPC()

    @classmethod
    def unit_name(cls, app, slot):
        return 'baton-%s-%s' % (app, slot)

    def status(self, unit):
        try:
            info = self.rpc.call('getProcessInfo', unit)
        except xmlrpc.client.Fault as fault:
            return ProcessStatus(UNKNOWN, detail=fault.faultString)
        except ProcessManagerError as exc:
            return ProcessStatus(UNKNOWN, detail=str(exc))
        state_name, description = info.get('statename', ''), (info.get('description') or '').strip()
        pid = info.get('pid') or None
        if state_name == 'RUNNING':
            return ProcessStatus(RUNNING, detail=state_name, pid=pid)
        if state_name == 'STARTING':
            return ProcessStatus(STARTING, detail=state_name, pid=pid)
        state = self.FAILED.get(state_name, UNKNOWN)
        exit_status, sig = self.last_exit(unit)
        return ProcessStatus(state, exit_status, sig, None, ' '.join(part for part in (state_name, description) if part))

    def last_exit(self, unit):
        """``(exit_status, signal)`` of the program's last end in supervisord's log, or ``(None, None)``."""
        out = self._tail_bytes(['tail', '-c', str(self.TAIL_BYTES), self.MAIN_LOG],
                               ['supervisorctl', 'maintail', '-%d' % self.TAIL_BYTES])
        return self.parse_last_exit(out, unit) if out is not None else (None, None)

    @classmethod
    def parse_last_exit(cls, text, unit):
        pattern = re.compile(cls._EXIT_RE % re.escape(unit))
        found = None
        for found in pattern.finditer(text):
            pass
        if found is None:
            return None, None
        if found.group('status') is not None:
            return int(found.group('status')), None
        return None, found.group('signal')

    def log_tail(self, unit, lines=DEFAULT_LOG_LINES):
        program_log = self.PROGRAM_LOG % (unit[len('baton-'):] if unit.startswith('baton-') else unit)
        out = self._tail_bytes(['tail', '-c', str(self.TAIL_BYTES), program_log],
                               ['supervisorctl', 'tail', '-%d' % self.TAIL_BYTES, unit, 'stdout'])
        if out is None or out.startswith('%s: ERROR' % unit):
            return ''
        return _last_lines(out, lines)

    def start(self, unit):
        # Load the program's current settings (adds it the first time), stop it (a no-op when stopped),
        # start it: the slot always starts fresh with the release it points at. The start does not wait
        # for startsecs: the wait for readiness asks status() on every poll, and a process that exits at
        # start shows there with its exit status.
        self._update(unit)
        self._call('stop', 'stopProcess', unit, True, tolerate=self.NOT_RUNNING)
        self._call('start', 'startProcess', unit, False, tolerate=self.SPAWN_ERROR)
        # In the file only (supervisord reads it at boot): loading it now could start the slot twice.
        self._set_autostart(unit, True)

    def stop(self, unit):
        # Loading the changed settings stops the program (SIGTERM, then supervisord waits while the app
        # drains, up to stopwaitsecs) and keeps it stopped; `stop` covers unchanged settings.
        self._set_autostart(unit, False)
        self._update(unit)
        self._call('stop', 'stopProcess', unit, True, tolerate=self.NOT_RUNNING)

    def _update(self, unit):
        """``supervisorctl reread`` and ``update <unit>``: supervisord takes the program's settings as they are
        in its file now (a changed program is stopped and added again, a new one added)."""
        added, changed, removed = self._call('reread', 'reloadConfig')[0]
        if unit in removed or unit in changed:
            self._call('update', 'stopProcessGroup', unit, True)
            self._call('update', 'removeProcessGroup', unit)
        if unit in added or unit in changed:
            self._call('update', 'addProcessGroup', unit)

    def _call(self, action, method, *args, tolerate=None):
        """``rpc.call(method, *args)``; a fault other than ``tolerate`` is raised as ProcessManagerError."""
        try:
            return self.rpc.call(method, *args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == tolerate:
                return None
            if fault.faultCode == self.BAD_NAME and args:
                settings = os.path.join(self.conf_dir, args[0] + '.conf')
                raise ProcessManagerError('supervisord has no program %s (its settings are %s): set the host up '
                                          'first (playbooks/deploy.yml)' % (args[0], settings))
            raise ProcessManagerError('supervisord refused to %s %s (%s, fault %d: %s)'
                                      % (action, args[0] if args else 'its programs', method, fault.faultCode,
                                         fault.faultString))

    def _set_autostart(self, unit, autostart):
        """autostart= in the program's settings follows whether the slot should run, so a reboot starts the live one."""
        path = os.path.join(self.conf_dir, unit + '.conf')
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError as exc:
            raise ProcessManagerError('cannot read the settings of %s (%s): set the host up first (playbooks/deploy.yml)'
                                      % (unit, exc.strerror or exc))
        changed = re.sub(r'(?m)^autostart=.*$', 'autostart=%s' % ('true' if autostart else 'false'), text)
        if changed != text:
            atomic_write(path, changed, mode=0o644)

    def _tail_bytes(self, argv, fallback):
        """The last TAIL_BYTES of a log, whole lines only: with ``argv``, else ``fallback``; None if neither."""
        for command in (argv, fallback):
            rc, out, err = self._run(command)
            if rc == 0:
                if len(out.encode('utf-8', 'replace')) >= self.TAIL_BYTES:
                    out = out.partition('\n')[2]  # the first line was cut by the byte count
                return out
        return None


PROCESS_MANAGERS = {cls.name: cls for cls in (Systemd, Supervisor)}


def process_manager(name, runner):
    """The process manager called ``name`` (a key of :data:`PROCESS_MANAGERS`), using ``runner``."""
    try:
        return PROCESS_MANAGERS[name](runner)
    except KeyError:
        raise ValueError('unknown process manager %r, expected one of %s'
                         % (name, ', '.join(sorted(PROCESS_MANAGERS))))


class ProcessWatch:
    """The check ``readiness.wait_ready`` runs on every poll: is the slot's process still alive?

    Calling it returns None while the process runs or starts, else a dict: ``unit``, ``state``,
    ``exit_status``, ``signal``, ``restarts``, ``detail``, ``pid``, ``reason`` (one sentence) and
    ``log_tail`` (its last ``log_lines`` lines).

    Besides the states that are failures on their own, a process seen running that then runs
    under another pid, or is starting again, was restarted by its manager: a crash loop. That is
    how a crash shows up under supervisor once the process had outlived ``startsecs``
    (EXITED only for an instant, then STARTING), and under systemd between two polls.
    """

    def __init__(self, manager, unit, log_lines=DEFAULT_LOG_LINES):
        self.manager = manager
        self.unit = unit
        self.log_lines = log_lines
        self.seen_pid = None

    def __call__(self):
        status = self.manager.status(self.unit)
        if not status.failed:
            if self.seen_pid is None or status.pid == self.seen_pid:
                self.seen_pid = status.pid
                return None
            # Seen running, now starting again or running as another process: it was restarted.
            status = ProcessStatus(CRASH_LOOP, restarts=status.restarts,
                                   detail='%s, was pid %d' % (status.detail, self.seen_pid), pid=status.pid)
        if status.state in (CRASH_LOOP, EXITED) and status.exit_status is None and status.signal is None:
            # Restarted already (running or starting again): the manager's log still says how it ended.
            status.exit_status, status.signal = self.manager.last_exit(self.unit)
        failure = status.as_dict()
        failure['unit'] = self.unit
        failure['reason'] = 'the process of %s %s' % (self.unit, status.describe())
        failure['log_tail'] = self.manager.log_tail(self.unit, self.log_lines)
        return failure


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
