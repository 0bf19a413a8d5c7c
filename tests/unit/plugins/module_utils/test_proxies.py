# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from ansible_collections.baton.deploy.plugins.module_utils import proxies, proxy_gate, rotation
from ansible_collections.baton.deploy.tests.unit.plugins.fake_host import PORTS, PROXY_URL, FakeHost


class Recorder(FakeHost):
    """Remembers what each request sent, to check the checks go through the proxy as a client's would."""

    def request(self, method, url, headers=None, **kwargs):
        self.sent = (url, headers, kwargs.get('verify'))
        return super(Recorder, self).request(method, url, headers, **kwargs)


@pytest.fixture
def front(tmp_path):
    host = Recorder(tmp_path)
    host.build('v1')
    host.deploy('v1')
    probe = rotation.Probe(session=host, clock=host.clock, sleep=host.clock.sleep, wall_clock=host.clock.wall)
    return host, proxies.proxy('nginx', 'shop', PORTS, PROXY_URL, probe, gate_dir=host.gate_dir, counter=host.count)


ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles')


@pytest.mark.parametrize('name', sorted(name for name, cls in proxies.PROXIES.items() if issubclass(cls, proxies.GateProxy)))
def test_each_proxy_knows_where_the_setup_puts_the_gate(name):
    """The rotate role leaves gate_dir to the module: it must be where roles/proxy/vars/<proxy>.yml puts it."""
    with open(os.path.join(ROLES, 'proxy', 'vars', name + '.yml')) as handle:
        gate = yaml.safe_load(handle)['__baton_proxy_gate_dir'].replace('{{ baton_app }}', 'shop')
    assert gate == '/etc/%s/baton/shop.gate' % name
    assert proxies.proxy(name, 'shop', PORTS, PROXY_URL, rotation.Probe()).location == gate


def test_an_unknown_proxy():
    with pytest.raises(ValueError, match="unknown proxy 'apache', expected one of caddy, nginx, none$"):
        proxies.proxy('apache', 'shop', PORTS, PROXY_URL, rotation.Probe())


def test_the_live_slot_is_asked_through_the_proxy_with_the_sites_name(front):
    host, proxy = front
    assert proxy.live_slot() == (1, 'the proxy answered from it')
    url, headers, verify = host.sent
    assert url == 'https://127.0.0.1/readyz' and headers == {'Host': 'shop.example'} and verify is False


def test_the_live_slot_when_the_proxy_fails_over_to_the_backup(front):
    host, proxy = front
    proxy_gate.set_gate(host.gate_dir, 2)  # slot 2 does not run: the proxy serves its backup, slot 1
    assert proxy.live_slot() == (1, 'the proxy answered from it')


def test_flip_and_verify(front):
    host, proxy = front
    host.build('v2')
    host.units['baton-shop@2.service'] = ('v2', host.clock.now - 10)
    proxy.flip(2)
    assert proxy_gate.read_gate(host.gate_dir) == 2
    result = proxy.verify(2)
    assert result.ready and result.last_headers['x-baton-upstream'] == '127.0.0.1:8002'
    assert not proxy.verify(1).ready


def test_drain_counts_the_old_slots_connections(front):
    host, proxy = front
    host.connections[8001] = [2, 0]
    result = proxy.drain(8001, 5)
    assert result.drained and result.initial_connections == 2


def test_through_a_real_http_server_with_the_sites_name():
    """No fake session: the requests go to 127.0.0.1 and name the site in the Host header, as on a host."""
    seen = []

    class Site(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers['Host'])
            self.send_response(200)
            self.send_header('X-Baton-Upstream', '127.0.0.1:8002')
            self.send_header('Content-Length', '0')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(('127.0.0.1', 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = 'http://shop.example:%d/readyz' % server.server_port
        proxy = proxies.proxy('caddy', 'shop', PORTS, url, rotation.Probe(), gate_dir='/nonexistent/shop.gate')
        assert proxy.live_slot() == (2, 'the proxy answered from it')
        assert proxy.verify(2).ready
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0] == 'shop.example:%d' % server.server_port
