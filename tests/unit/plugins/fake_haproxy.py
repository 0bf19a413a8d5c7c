# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for HAProxy's runtime API on a real unix socket, answering like HAProxy 2.6 does."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading

SERVERS_HEADER = ('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
                  'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state '
                  'srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl '
                  'srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n')
STAT_HEADER = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_status,\n'
ADMIN_BITS = {'ready': 0, 'drain': 8, 'maint': 1}


class FakeHAProxy:
    """servers: {(backend, server): {'admin': 'ready', 'op': 2, 'scur': 0}}; ``on_show`` runs on every read."""

    def __init__(self, servers, on_show=None):
        self.servers = servers
        self.on_show = on_show
        self.commands = []
        self._dir = tempfile.mkdtemp(prefix='fakehap-', dir='/tmp')
        self.path = os.path.join(self._dir, 'admin.sock')
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            with conn:
                data = b''
                while not data.endswith(b'\n'):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(self.answer(data.decode().strip()).encode())

    def answer(self, command):
        self.commands.append(command)
        words = command.split()
        if words[:3] == ['show', 'servers', 'state']:
            if self.on_show:
                self.on_show(self)
            rows = [(b, s, v) for (b, s), v in sorted(self.servers.items()) if b == words[3]]
            if not rows:
                return "Can't find backend.\n\n"
            return SERVERS_HEADER + ''.join(
                '3 %s %d %s 10.0.0.%d %d %d 1 1 5 15 3 4 6 0 0 0 - 80 - 0 0 - - 0\n'
                % (b, i + 1, s, i + 1, v['op'], ADMIN_BITS[v['admin']]) for i, (b, s, v) in enumerate(rows)) + '\n'
        if words[:2] == ['show', 'stat']:
            return STAT_HEADER + ''.join(
                '%s,%s,0,0,%d,3,,10,%s,L7OK,\n' % (b, s, v['scur'], 'UP' if v['op'] == 2 else 'DOWN')
                for (b, s), v in sorted(self.servers.items())) + '\n'
        if len(words) == 5 and words[:2] == ['set', 'server'] and words[3] == 'state':
            backend, _sep, server = words[2].partition('/')
            if not any(b == backend for b, _s in self.servers):
                return 'No such backend.\n\n'
            if (backend, server) not in self.servers:
                return 'No such server.\n\n'
            self.servers[(backend, server)]['admin'] = words[4]
            return '\n'
        return 'Unknown command.\n\n'

    def close(self):
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
