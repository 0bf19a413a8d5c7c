# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection draining used by the ``baton.deploy.wait_drained`` module.

After the proxy has been switched to the new slot, the old slot may still be
serving requests that started before the switch. The proxy opens one upstream
connection per request, so the old slot is drained once no ESTABLISHED TCP
connection has the old slot's port as its *local* port.

Connections are read from ``/proc/net/tcp`` and ``/proc/net/tcp6``. A row looks like::

    sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
     0: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000   998        0 4242 ...

Addresses are hex ``IP:PORT``; the port is big-endian hex, the IP is the raw
in-kernel bytes printed as native-endian 32-bit words. State ``01`` is ESTABLISHED.
Only the port and state are needed to count; :func:`decode_address` turns the IP
into text for debugging (IPv4-mapped IPv6 addresses such as ``::ffff:127.0.0.1``
are shown as plain IPv4).
"""

from __future__ import annotations

import ipaddress
import struct
import sys
import time

DEFAULT_PROC_PATHS = ('/proc/net/tcp', '/proc/net/tcp6')
DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.1
DEFAULT_SETTLE = 0.0

TCP_STATES = {
    '01': 'ESTABLISHED',
    '02': 'SYN_SENT',
    '03': 'SYN_RECV',
    '04': 'FIN_WAIT1',
    '05': 'FIN_WAIT2',
    '06': 'TIME_WAIT',
    '07': 'CLOSE',
    '08': 'CLOSE_WAIT',
    '09': 'LAST_ACK',
    '0A': 'LISTEN',
    '0B': 'CLOSING',
    '0C': 'NEW_SYN_RECV',
}
ESTABLISHED = '01'


class ProcNetError(Exception):
    """None of the /proc/net files could be read."""


class TcpEntry:
    """One row of /proc/net/tcp or /proc/net/tcp6."""

    __slots__ = ('local_ip', 'local_port', 'remote_ip', 'remote_port', 'state')

    def __init__(self, local_ip, local_port, remote_ip, remote_port, state):
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.state = state

    @property
    def state_name(self):
        return TCP_STATES.get(self.state, self.state)

    def __eq__(self, other):
        return isinstance(other, TcpEntry) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self):
        return 'TcpEntry(%s:%d -> %s:%d %s)' % (
            self.local_ip, self.local_port, self.remote_ip, self.remote_port, self.state_name)


def decode_address(text, byteorder=sys.byteorder):
    """Decode ``HEXIP:HEXPORT`` from /proc/net/tcp{,6} into ``(ip_string, port)``.

    ``byteorder`` is the byte order of the host that produced the text (the kernel prints each
    32-bit word of the address in native order). IPv4-mapped IPv6 addresses are returned as IPv4.
    """
    hex_ip, sep, hex_port = text.rpartition(':')
    if not sep or len(hex_ip) not in (8, 32):
        raise ValueError('not a /proc/net/tcp address: %r' % (text,))
    port = int(hex_port, 16)
    fmt = '<I' if byteorder == 'little' else '>I'
    raw = b''.join(struct.pack(fmt, int(hex_ip[i:i + 8], 16)) for i in range(0, len(hex_ip), 8))
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)), port
    address = ipaddress.IPv6Address(raw)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped), port
    return str(address), port


def parse_proc_net_tcp(text, byteorder=sys.byteorder):
    """Parse the text of /proc/net/tcp or /proc/net/tcp6 into a list of :class:`TcpEntry`.

    The header line and lines that do not look like connection rows are skipped.
    """
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(':') or not fields[0][:-1].isdigit():
            continue
        try:
            local_ip, local_port = decode_address(fields[1], byteorder)
            remote_ip, remote_port = decode_address(fields[2], byteorder)
        except ValueError:
            continue
        entries.append(TcpEntry(local_ip, local_port, remote_ip, remote_port, fields[3].upper()))
    return entries


def count_established_in_text(text, port):
    """Count ESTABLISHED rows in /proc/net/tcp{,6} text whose *local* port is ``port``.

    Only the port and state columns are looked at, so this does not depend on byte order.
    """
    count = 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(':') or not fields[0][:-1].isdigit():
            continue
        if fields[3].upper() != ESTABLISHED:
            continue
        hex_ip, sep, hex_port = fields[1].rpartition(':')
        if not sep:
            continue
        try:
            if int(hex_port, 16) == port:
                count += 1
        except ValueError:
            continue
    return count


def read_proc_net(proc_paths=DEFAULT_PROC_PATHS):
    """The texts of the readable ``proc_paths``. Missing files are skipped (``/proc/net/tcp6`` does not
    exist when IPv6 is disabled); raises :class:`ProcNetError` if none of them can be read."""
    texts = []
    problems = []
    for path in proc_paths:
        try:
            with open(path, 'r') as handle:
                texts.append(handle.read())
        except OSError as exc:
            problems.append('%s: %s' % (path, exc.strerror or exc))
    if not texts:
        raise ProcNetError('Cannot count TCP connections: none of %s could be read (%s)'
                           % (', '.join(proc_paths), '; '.join(problems) or 'no files given'))
    return texts


def count_established(port, proc_paths=DEFAULT_PROC_PATHS):
    """Count ESTABLISHED TCP connections whose local port is ``port``, over all ``proc_paths``
    (read by :func:`read_proc_net`)."""
    return sum(count_established_in_text(text, port) for text in read_proc_net(proc_paths))


def established_peers_in_text(text, port, byteorder=sys.byteorder):
    """The ``(remote_ip, remote_port)`` of each ESTABLISHED row whose *local* port is ``port``.

    Unlike a count, this tells one connection from another: a connection open for the whole drain
    (a WebSocket, a stream) from short ones that came and went (a proxy's health check).
    """
    return set((entry.remote_ip, entry.remote_port) for entry in parse_proc_net_tcp(text, byteorder)
               if entry.local_port == port and entry.state == ESTABLISHED)


def established_peers(port, proc_paths=DEFAULT_PROC_PATHS):
    """:func:`established_peers_in_text` over all ``proc_paths`` (read by :func:`read_proc_net`)."""
    peers = set()
    for text in read_proc_net(proc_paths):
        peers |= established_peers_in_text(text, port)
    return peers


class DrainResult:
    """Outcome of :func:`wait_drained`."""

    __slots__ = ('drained', 'initial_connections', 'max_connections', 'remaining', 'held', 'elapsed', 'attempts')

    def __init__(self, drained=False, initial_connections=0, max_connections=0, remaining=0, held=0, elapsed=0.0,
                 attempts=0):
        self.drained = drained
        self.initial_connections = initial_connections
        self.max_connections = max_connections
        self.remaining = remaining
        # Of the connections open at the first count, how many were still open at the last one: the
        # long connections (WebSockets, streams) the drain bound ends. ``remaining`` also counts
        # connections that opened since (a proxy's health check of the old slot, for instance).
        # A counter that returns only a number cannot tell them apart: then held == remaining.
        self.held = held
        self.elapsed = elapsed
        self.attempts = attempts

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self):
        return 'DrainResult(%s)' % ', '.join('%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


def validate_params(port, timeout=DEFAULT_TIMEOUT, interval=DEFAULT_INTERVAL, settle=DEFAULT_SETTLE):
    """Return a list of problems with the parameters (empty when valid)."""
    errors = []
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append('port must be between 1 and 65535, got %r' % (port,))
    if not _is_number(timeout) or timeout < 0:
        errors.append('timeout must be >= 0 seconds, got %r' % (timeout,))
    if not _is_number(interval) or not 0 < interval <= float('inf'):
        errors.append('interval must be > 0 seconds, got %r' % (interval,))
    if not _is_number(settle) or settle < 0:
        errors.append('settle must be >= 0 seconds, got %r' % (settle,))
    return errors


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def wait_drained(port, timeout=DEFAULT_TIMEOUT, interval=DEFAULT_INTERVAL, settle=DEFAULT_SETTLE,
                 proc_paths=DEFAULT_PROC_PATHS, single=False, counter=None, clock=time.monotonic,
                 sleep=time.sleep):
    """Poll until no ESTABLISHED connection to local ``port`` has been seen for ``settle`` seconds.

    Gives up after ``timeout`` seconds (the result then has ``drained=False``). With ``single``,
    counts once and returns at once (``drained`` is then simply whether the count is 0).
    ``counter(port)`` returns the connections' peers (a set, default :func:`established_peers` over
    ``proc_paths``) or just their number; ``clock`` and ``sleep`` can be replaced for tests.
    """
    if counter is None:
        def counter(p):
            return established_peers(p, proc_paths)

    def look():
        value = counter(port)
        if isinstance(value, (set, frozenset)):
            return len(value), frozenset(value)
        return value, None

    start = clock()
    deadline = start + timeout
    count, first = look()
    last = first
    now = clock()
    result = DrainResult(initial_connections=count, max_connections=count, remaining=count, attempts=1)
    zero_since = now if count == 0 else None

    while not single:
        if zero_since is not None and now - zero_since >= settle:
            break
        if now >= deadline:
            break
        wait = min(interval, deadline - now)
        if zero_since is not None:
            wait = min(wait, zero_since + settle - now)
        sleep(max(wait, 0.0))
        count, last = look()
        now = clock()
        result.attempts += 1
        result.remaining = count
        result.max_connections = max(result.max_connections, count)
        if count != 0:
            zero_since = None
        elif zero_since is None:
            zero_since = now

    result.held = len(first & last) if first is not None and last is not None else result.remaining
    result.drained = zero_since is not None and (single or now - zero_since >= settle)
    result.elapsed = round(max(now - start, 0.0), 3)
    return result


def timeout_warning(port, timeout, result, settle=DEFAULT_SETTLE):
    """Message used when the port did not drain in time."""
    if result.remaining == 0:
        return ('No connections open to port %d after %g s, but not yet for the required settle time of %g s; '
                'stopping anyway (bounded by timeout)' % (port, timeout, settle))
    return ('%d connection%s still open to port %d after %g s; stopping anyway (bounded by timeout)'
            % (result.remaining, '' if result.remaining == 1 else 's', port, timeout))
