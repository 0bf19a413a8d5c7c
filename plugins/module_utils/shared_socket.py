# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which process holds a TCP connection, for the mode without a proxy (``baton_proxy: none``).

In that mode systemd holds the app's one listening socket (``baton-<app>.socket``) and passes it to both
slots. The kernel hands each new connection to whichever slot calls ``accept()`` first, so the only way
to know that a slot accepts is to see a connection it accepted: a connection's server side is a socket
(an inode in ``/proc/net/tcp``) that appears in the file descriptors of the process that accepted it.

:class:`Connections` answers the two questions the rotation asks (:class:`proxies.SharedSocket`): does
the next slot accept (:meth:`Connections.probe`: open one connection, see who accepted it, ask the
readiness path on it) and how many connections does a slot hold (:meth:`Connections.count`). The
parsing is pure and unit tested; the reads are injected.
"""

from __future__ import annotations

import os
import socket
import time

from ansible_collections.baton.deploy.plugins.module_utils.drain import DEFAULT_PROC_PATHS, ESTABLISHED, read_proc_net

PROBE_TIMEOUT = 2.0
# How long an accepted connection may take to show an inode (it has none while it waits in the queue).
ACCEPT_WAIT = 1.0
ACCEPT_POLL = 0.005


def tcp_rows(text):
    """``(local_port, remote_port, state, inode)`` of each row of /proc/net/tcp{,6} text."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or not fields[0].endswith(':') or not fields[0][:-1].isdigit():
            continue
        try:
            local_port = int(fields[1].rpartition(':')[2], 16)
            remote_port = int(fields[2].rpartition(':')[2], 16)
            inode = int(fields[9])
        except ValueError:
            continue
        rows.append((local_port, remote_port, fields[3].upper(), inode))
    return rows


def socket_inodes(pids, proc='/proc'):
    """The inodes of the sockets the processes ``pids`` hold (a process that ended is skipped)."""
    inodes = set()
    for pid in pids:
        fd_dir = os.path.join(proc, str(pid), 'fd')
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith('socket:[') and target.endswith(']'):
                inodes.add(int(target[8:-1]))
    return inodes


def status_of(first_line):
    """The status code of an HTTP status line (``HTTP/1.1 200 OK`` -> 200), else None."""
    parts = first_line.split(None, 2)
    if len(parts) >= 2 and parts[0].startswith(b'HTTP/') and parts[1].isdigit():
        return int(parts[1])
    return None


class Connections:
    """The host's view of who accepted which connection on a port.

    ``pids(unit)`` lists the processes of a slot's unit (``process_managers.Systemd.pids``);
    ``read_tcp()`` returns the texts of /proc/net/tcp and tcp6; ``inodes(pids)`` the socket inodes they hold.
    """

    def __init__(self, pids, read_tcp=None, inodes=socket_inodes, clock=time.monotonic, sleep=time.sleep):
        self.pids = pids
        self.read_tcp = read_tcp or (lambda: read_proc_net(DEFAULT_PROC_PATHS))
        self.inodes = inodes
        self.clock = clock
        self.sleep = sleep

    def _rows(self):
        rows = []
        for text in self.read_tcp():
            rows.extend(tcp_rows(text))
        return rows

    def count(self, port, unit):
        """Established connections on ``port`` (its server side) that the processes of ``unit`` hold."""
        held = self.inodes(self.pids(unit))
        return sum(1 for local, _remote, state, inode in self._rows()
                   if local == port and state == ESTABLISHED and inode in held)

    def accepted_by(self, port, client_port):
        """The inode of the server side of the connection from ``client_port`` to ``port``, once accepted."""
        deadline = self.clock() + ACCEPT_WAIT
        while True:
            for local, remote, state, inode in self._rows():
                if local == port and remote == client_port and state == ESTABLISHED and inode:
                    return inode
            if self.clock() >= deadline:
                return None
            self.sleep(ACCEPT_POLL)

    def probe(self, port, path, unit, host='127.0.0.1'):
        """Open one connection to ``port``: ``(accepted by unit?, HTTP status of path, what happened)``."""
        try:
            conn = socket.create_connection((host, port), timeout=PROBE_TIMEOUT)
        except OSError as exc:
            return False, None, 'connection to %s:%d failed: %s' % (host, port, exc)
        try:
            inode = self.accepted_by(port, conn.getsockname()[1])
            mine = inode is not None and inode in self.inodes(self.pids(unit))
            request = 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' % path
            conn.sendall(request.encode('ascii'))
            status = status_of(conn.makefile('rb').readline(256))
        except OSError as exc:
            return False, None, 'connection to %s:%d: %s' % (host, port, exc)
        finally:
            conn.close()
        if inode is None:
            who = 'not accepted within %g s' % ACCEPT_WAIT
        else:
            who = 'accepted by %s' % (unit if mine else 'another process')
        return mine, status, '%s, answered %s' % (who, status)
