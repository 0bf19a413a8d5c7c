# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import haproxy
from ansible_collections.baton.deploy.tests.unit.plugins.fake_haproxy import FakeHAProxy

# Captured from HAProxy 2.6.12 (Debian bookworm).
SERVERS_STATE = (
    '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
    'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state '
    'bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr '
    'srv_agent_addr srv_agent_port\n'
    '3 demo 1 web1 127.0.0.1 0 8 1 1 0 8 2 0 6 0 0 0 - 9001 - 0 0 - - 0\n'
    '3 demo 2 web2 127.0.0.1 2 0 1 1 0 8 2 0 6 0 0 0 - 9002 - 0 0 - - 0\n\n')


@pytest.fixture
def fake():
    servers = {('demo', 'web1'): {'admin': 'ready', 'op': 2, 'scur': 0},
               ('demo', 'web2'): {'admin': 'ready', 'op': 2, 'scur': 0}}
    f = FakeHAProxy(servers)
    yield f
    f.close()


@pytest.mark.parametrize('bits,state', [(0, 'ready'), (8, 'drain'), (16, 'drain'), (1, 'maint'), (9, 'maint'),
                                        (4, 'maint'), (32, 'maint')])
def test_admin_state(bits, state):
    assert haproxy.admin_state(bits) == state


def test_parse_servers_state_from_haproxy_2_6():
    servers = haproxy.parse_servers_state(SERVERS_STATE)
    assert sorted(servers) == [('demo', 'web1'), ('demo', 'web2')]
    assert servers[('demo', 'web1')]['srv_admin_state'] == '8'
    assert servers[('demo', 'web2')]['srv_op_state'] == '2'
    assert haproxy.parse_servers_state("Can't find backend.\n\n") == {}


def test_parse_stat_by_column_name():
    rows = haproxy.parse_stat('# pxname,svname,qcur,qmax,scur,status\nfe,FRONTEND,,,3,OPEN\ndemo,web1,0,0,2,UP\n\n')
    assert rows[('demo', 'web1')]['scur'] == '2' and rows[('fe', 'FRONTEND')]['status'] == 'OPEN'


def test_status_over_a_real_socket(fake):
    fake.servers[('demo', 'web2')].update(admin='drain', scur=4)
    status = haproxy.RuntimeAPI(fake.path).status('demo', 'web2')
    assert (status.admin, status.operational, status.sessions, status.check, status.up) == \
        ('drain', 'running', 4, 'L7OK', True)


def test_unknown_backend_and_server(fake):
    api = haproxy.RuntimeAPI(fake.path)
    with pytest.raises(haproxy.HAProxyError, match="no backend 'shop'.*Can't find backend"):
        api.status('shop', 'web1')
    with pytest.raises(haproxy.HAProxyError, match="has no server 'web9' \\(servers: web1, web2\\)"):
        api.status('demo', 'web9')
    with pytest.raises(haproxy.HAProxyError, match='refused "set server demo/web9 state drain": No such server.'):
        api.set_state('demo', 'web9', 'drain')
    with pytest.raises(ValueError):
        api.set_state('demo', 'web1', 'up')


def test_missing_socket_says_what_to_configure(tmp_path):
    with pytest.raises(haproxy.HAProxyError, match='Cannot connect.*level admin'):
        haproxy.send_command(str(tmp_path / 'nope.sock'), 'show info')


def test_drain_waits_for_sessions_to_finish(fake):
    def finish_one(f):
        s = f.servers[('demo', 'web1')]
        s['scur'] = max(s['scur'] - 1, 0)
    fake.servers[('demo', 'web1')]['scur'] = 3
    fake.on_show = finish_one
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'drain', timeout=5, interval=0.01)
    assert r['changed'] and r['previous_state'] == 'ready' and r['state'] == 'drain'
    assert r['drained'] is True and r['sessions'] == 0 and r['initial_sessions'] == 2
    assert 'set server demo/web1 state drain' in fake.commands
    assert fake.servers[('demo', 'web2')]['admin'] == 'ready'


def test_drain_gives_up_at_the_timeout(fake):
    fake.servers[('demo', 'web1')]['scur'] = 2
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'drain', timeout=0.2, interval=0.05)
    assert r['drained'] is False and r['sessions'] == 2 and 0.2 <= r['elapsed'] < 2


def test_ready_waits_until_up(fake):
    fake.servers[('demo', 'web1')].update(admin='drain', op=0)
    reads = []

    def comes_up(f):
        reads.append(1)
        if len(reads) >= 3:
            f.servers[('demo', 'web1')]['op'] = 2
    fake.on_show = comes_up
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'ready', timeout=5, interval=0.01)
    assert r['changed'] and r['previous_state'] == 'drain' and r['state'] == 'ready'
    assert r['up'] is True and r['operational'] == 'running' and r['attempts'] >= 3


def test_ready_not_up_in_time(fake):
    fake.servers[('demo', 'web1')].update(admin='drain', op=0)
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'ready', timeout=0.1, interval=0.02)
    assert r['up'] is False and r['operational'] == 'stopped' and r['state'] == 'ready'


def test_same_state_is_not_a_change(fake):
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'ready')
    assert r['changed'] is False and r['up'] is True
    assert not any(c.startswith('set ') for c in fake.commands)


def test_check_mode_sends_nothing(fake):
    fake.servers[('demo', 'web1')]['scur'] = 5
    r = haproxy.set_server_state(haproxy.RuntimeAPI(fake.path), 'demo', 'web1', 'drain', check_mode=True)
    assert r['changed'] is True and r['state'] == 'drain' and r['previous_state'] == 'ready'
    assert fake.servers[('demo', 'web1')]['admin'] == 'ready'
    assert not any(c.startswith('set ') for c in fake.commands)
