# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HAProxy runtime API (the ``stats socket``) used by the ``baton.deploy.haproxy_server`` module.

One command per connection, the way HAProxy's non-interactive mode works: connect to the unix
socket, send ``<command>\\n``, read until HAProxy closes the connection. Success of a ``set``
command is an empty answer; anything else is HAProxy's error text (``No such server.``).

A server's *administrative* state comes from ``show servers state <backend>`` (``srv_admin_state``
is a bit field: forced/inherited/... maintenance bits and forced/inherited drain bits), its
*operational* state from ``srv_op_state`` (0 stopped, 1 starting, 2 running, 3 stopping), and its
current sessions (requests being served, in HTTP mode) from the ``scur`` column of ``show stat``.
"""

from __future__ import annotations

import socket
import time

DEFAULT_SOCKET = '/run/haproxy/admin.sock'
STATES = ('ready', 'drain', 'maint')

# srv_admin_state bits (HAProxy src/server.h, SRV_ADMF_*)
ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, hostname maintenance
ADMF_DRAIN = 0x08 | 0x10  # forced, inherited drain
OP_STATES = {0: 'stopped', 1: 'starting', 2: 'running', 3: 'stopping'}


class HAProxyError(Exception):
    """The runtime API could not be reached or refused a command."""


def send_command(path, command, timeout=5.0):
    """Send one command to the runtime API socket at ``path`` and return HAProxy's answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise HAProxyError('Cannot connect to the HAProxy runtime API socket %s: %s (is HAProxy running, with '
                               '"stats socket %s level admin" in its global section?)'
                               % (path, exc.strerror or exc, path))
        chunks = []
        try:
            sock.sendall(command.encode('utf-8') + b'\n')
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except OSError as exc:
            raise HAProxyError('HAProxy runtime API socket %s: %r failed: %s' % (path, command, exc.strerror or exc))
        return b''.join(chunks).decode('utf-8', 'replace')
    finally:
        sock.close()


def admin_state(bits):
    """``srv_admin_state`` bit field -> 'maint', 'drain' or 'ready' (maintenance wins over drain)."""
    if bits & ADMF_MAINT:
        return 'maint'
    if bits & ADMF_DRAIN:
        return 'drain'
    return 'ready'


def parse_servers_state(text):
    """Parse ``show servers state`` into ``{(backend, server): {column: value}}``.

    The first line is the format version, the second the ``# column ...`` header; columns are
    matched by name so that columns added by later HAProxy versions do not matter.
    """
    header = None
    servers = {}
    for line in text.splitlines():
        if line.startswith('#'):
            header = line[1:].split()
            continue
        fields = line.split()
        if header is None or len(fields) < len(header) - 1 or 'srv_name' not in header:
            continue
        row = dict(zip(header, fields))
        servers[(row['be_name'], row['srv_name'])] = row
    return servers


def parse_stat(text):
    """Parse ``show stat`` CSV into ``{(pxname, svname): {column: value}}``."""
    header = None
    rows = {}
    for line in text.splitlines():
        if line.startswith('# '):
            header = line[2:].split(',')
            continue
        if header is None or not line.strip():
            continue
        row = dict(zip(header, line.split(',')))
        rows[(row.get('pxname'), row.get('svname'))] = row
    return rows


class ServerStatus:
    """What the runtime API says about one server."""

    __slots__ = ('admin', 'operational', 'sessions', 'check')

    def __init__(self, admin, operational, sessions, check):
        self.admin = admin
        self.operational = operational
        self.sessions = sessions
        self.check = check

    @property
    def up(self):
        return self.operational == 'running'

    def __repr__(self):
        return 'ServerStatus(%s)' % ', '.join('%s=%r' % (n, getattr(self, n)) for n in self.__slots__)


class RuntimeAPI:
    """The few runtime API commands Baton needs; ``send(command)`` defaults to the unix socket."""

    def __init__(self, path=DEFAULT_SOCKET, timeout=5.0, send=None):
        self.path = path
        self._send = send or (lambda command: send_command(path, command, timeout))

    def status(self, backend, server):
        answer = self._send('show servers state %s' % backend)
        servers = parse_servers_state(answer)
        if (backend, server) not in servers:
            if not servers and answer.strip():
                raise HAProxyError('HAProxy has no backend %r (it answered: %s)' % (backend, answer.strip()))
            raise HAProxyError('HAProxy backend %r has no server %r (servers: %s)' % (
                backend, server, ', '.join(sorted(s for _b, s in servers)) or 'none'))
        row = servers[(backend, server)]
        stat = parse_stat(self._send('show stat')).get((backend, server), {})
        try:
            sessions = int(stat.get('scur') or 0)
        except ValueError:
            sessions = 0
        return ServerStatus(
            admin=admin_state(int(row['srv_admin_state'])),
            operational=OP_STATES.get(int(row['srv_op_state']), row['srv_op_state']),
            sessions=sessions,
            check=stat.get('check_status') or '',
        )

    def set_state(self, backend, server, state):
        if state not in STATES:
            raise ValueError('state must be one of %s, got %r' % (', '.join(STATES), state))
        answer = self._send('set server %s/%s state %s' % (backend, server, state)).strip()
        if answer:
            raise HAProxyError('HAProxy refused "set server %s/%s state %s": %s' % (backend, server, state, answer))


def set_server_state(api, backend, server, state, wait=True, timeout=30.0, interval=0.2, check_mode=False,
                     clock=time.monotonic, sleep=time.sleep):
    """Put ``backend/server`` in ``state`` and, with ``wait``, wait for its effect (bounded by ``timeout``).

    - ``drain`` / ``maint``: wait until the server's current sessions reach 0. Returns
      ``drained=False`` at the timeout (the caller decides whether that is an error).
    - ``ready``: wait until the server is operationally UP (its health check passes). Returns
      ``up=False`` at the timeout.

    Returns a dict: changed, previous_state, state, operational, initial_sessions, sessions,
    drained (drain/maint) or up (ready), elapsed, attempts. In check mode nothing is sent and
    nothing is waited for.
    """
    start = clock()
    before = api.status(backend, server)
    changed = before.admin != state
    result = {'changed': changed, 'previous_state': before.admin, 'state': state,
              'operational': before.operational, 'initial_sessions': before.sessions,
              'sessions': before.sessions, 'check': before.check, 'attempts': 1}
    if check_mode:
        result['state'] = state if changed else before.admin
        result['elapsed'] = 0.0
        return result
    if changed:
        api.set_state(backend, server, state)

    def done(status):
        return status.up if state == 'ready' else status.sessions == 0

    status = api.status(backend, server)
    result['attempts'] += 1
    deadline = start + timeout
    while wait and not done(status) and clock() < deadline:
        sleep(max(min(interval, deadline - clock()), 0.0))
        status = api.status(backend, server)
        result['attempts'] += 1
    result.update(state=status.admin, operational=status.operational, sessions=status.sessions, check=status.check,
                  elapsed=round(max(clock() - start, 0.0), 3))
    if state == 'ready':
        result['up'] = status.up
    else:
        result['drained'] = status.sessions == 0
    return result
