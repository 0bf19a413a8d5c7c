# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mode without a proxy (baton_proxy: none): who accepted a connection, and the rotation on a shared socket."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import proxies, rotation, shared_socket
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import Systemd
from ansible_collections.baton.deploy.tests.unit.plugins.module_utils.test_process_managers import FakeRunner
from ansible_collections.baton.deploy.tests.unit.plugins.module_utils.test_rotation import state, steps

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000   998        0 5002 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
   3: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 0 20 4 30 10 -1
"""


def test_tcp_rows_carry_ports_state_and_inode():
    rows = [(8080, 0, '0A', 5001), (8080, 50000, '01', 5002), (8080, 50001, '01', 0), (50000, 8080, '01', 5003)]
    assert shared_socket.tcp_rows(TCP) == rows


def test_count_is_the_connections_the_units_processes_hold():
    conns = shared_socket.Connections(lambda unit: [42] if unit == 'u1' else [], read_tcp=lambda: [TCP],
                                      inodes=lambda pids: {5002, 5001} if pids == [42] else set())
    assert conns.count(8080, 'u1') == 1   # the listening socket is not a connection
    assert conns.count(8080, 'u2') == 0


def test_a_connection_still_in_the_queue_has_no_inode_until_accepted():
    clock = [0.0]
    conns = shared_socket.Connections(lambda unit: [], read_tcp=lambda: [TCP], clock=lambda: clock[0],
                                      sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    assert conns.accepted_by(8080, 50000) == 5002
    assert conns.accepted_by(8080, 50001) is None and clock[0] >= shared_socket.ACCEPT_WAIT


def test_status_line():
    assert shared_socket.status_of(b'HTTP/1.1 503 Service Unavailable\r\n') == 503
    assert shared_socket.status_of(b'garbage\r\n') is None and shared_socket.status_of(b'') is None


@pytest.fixture
def server():
    """A real listening socket on loopback, served by a thread of this process."""
    listener = socket.create_server(('127.0.0.1', 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except socket.timeout:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_probe_sees_which_process_accepted_on_a_real_socket(server):
    """/proc is read for real: the connection this process accepted is found among its own file descriptors."""
    mine = shared_socket.Connections(lambda unit: [os.getpid()])
    accepted, status, detail = mine.probe(server, '/readyz', 'baton-shop@2.service')
    assert (accepted, status) == (True, 200) and detail == 'accepted by baton-shop@2.service, answered 200'
    other = shared_socket.Connections(lambda unit: [])
    assert other.probe(server, '/readyz', 'baton-shop@2.service') == (
        False, 200, 'accepted by another process, answered 200')


def test_probe_of_a_port_nobody_listens_on():
    probe = shared_socket.Connections(lambda unit: [])
    with socket.create_server(('127.0.0.1', 0)) as taken:
        port = taken.getsockname()[1]
    accepted, status, detail = probe.probe(port, '/readyz', 'u')
    assert (accepted, status) == (False, None) and 'failed' in detail


def test_systemd_pids_come_from_the_units_control_group(tmp_path):
    group = tmp_path / 'v2' / 'system.slice' / 'baton-shop@2.service'
    group.mkdir(parents=True)
    (group / 'cgroup.procs').write_text('101\n102\n')
    runner = FakeRunner({('systemctl', 'show', '-p', 'ControlGroup,MainPID'): [
        (0, 'ControlGroup=/system.slice/baton-shop@2.service\nMainPID=101\n', '')]})
    roots = (str(tmp_path / 'absent'), str(tmp_path / 'v2'))
    assert Systemd(runner).pids('baton-shop@2.service', cgroup_roots=roots) == [101, 102]


def test_systemd_pids_fall_back_to_the_main_process_then_to_none(tmp_path):
    runner = FakeRunner({('systemctl', 'show', '-p', 'ControlGroup,MainPID'): [
        (0, 'ControlGroup=/system.slice/baton-shop@2.service\nMainPID=101\n', '')]})
    assert Systemd(runner).pids('baton-shop@2.service', cgroup_roots=(str(tmp_path),)) == [101]
    stopped = FakeRunner({('systemctl', 'show', '-p', 'ControlGroup,MainPID'): [(0, 'ControlGroup=\nMainPID=0\n', '')]})
    assert Systemd(stopped).pids('baton-shop@1.service', cgroup_roots=(str(tmp_path),)) == []


# --- the rotation on a shared socket ----------------------------------------------------------------------

def deploy(host, release, **kwargs):
    return host.deploy(release, proxy='none', **kwargs)


def test_a_deploy_starts_the_next_slot_checks_it_accepts_then_stops_the_old_one(host):
    deploy(host, 'v1')
    host.socket.held['baton-shop@1.service'] = 3
    host.calls.clear()
    result = deploy(host, 'v2')
    assert steps(result) == [(name, True) for name in ('point', 'start', 'ready', 'flip', 'verify', 'drain', 'stop',
                                                       'record')]
    assert result['plan']['live_source'] == 'only its process runs (it accepts on baton-shop.socket)'
    events = {event['step']: event['detail'] for event in result['events']}
    assert events['flip'] == 'slot 2 accepts on baton-shop.socket by itself once ready: nothing to flip'
    # The kernel gave the first connection to the old slot, the next one to the new slot.
    assert events['verify'].startswith('accepting on the shared socket: slot 2, for http://127.0.0.1:8080/readyz')
    assert host.socket.probes[-1] == (8080, '/readyz', 'baton-shop@2.service') and len(host.socket.probes) >= 2
    # The old slot drains as it stops: it is stopped in the drain step, with its connections counted first.
    assert events['drain'].startswith('drained 3 in-flight connection(s) of slot 1')
    assert host.calls == [('start', 'baton-shop@2.service'), ('stop', 'baton-shop@1.service'),
                          ('stop', 'baton-shop@1.service')]
    assert host.running() == ['baton-shop@2.service'] and state(host)['active_slot'] == 2
    assert 'accepting on the shared socket' in result['summary']
    assert not os.path.exists(host.gate_dir)  # no proxy, no gate


def test_a_release_that_never_accepts_on_the_socket_is_stopped_and_the_old_slot_serves_on(host):
    deploy(host, 'v1')
    host.build('v2', 'deaf')
    engine = host.rotation('v2', proxy='none')
    engine.proxy.verify_timeout = 1
    with pytest.raises(rotation.RotationError) as failure:
        engine.run()
    message = str(failure.value)
    assert message.startswith('Release v2 on slot 2 was ready, but after the flip it did not accept on the shared '
                              'socket: http://127.0.0.1:8080/readyz (')
    assert 'last result: accepted by another process, answered 200' in message
    assert host.running() == ['baton-shop@1.service'] and state(host)['active_slot'] == 1


def test_a_release_that_never_gets_ready_never_reaches_the_socket(host):
    deploy(host, 'v1')
    host.build('v2', 'never')
    with pytest.raises(rotation.RotationError, match='did not become ready'):
        host.rotation('v2', proxy='none', ready_timeout=5).run()
    assert host.running() == ['baton-shop@1.service'] and len(host.socket.probes) == 1  # the first deploy's


def test_the_running_slot_has_the_last_word_after_an_interrupted_rotation(host):
    """Killed after the old slot stopped, before the record: only slot 2 runs, the state file says slot 1."""
    deploy(host, 'v1')
    deploy(host, 'v2')
    os.unlink(host.state_path)
    deploy(host, 'v1')
    host.units.pop('baton-shop@2.service')
    host.units['baton-shop@2.service'] = ('v1', host.clock.now)
    host.units.pop('baton-shop@1.service')  # the state file still records slot 1
    result = deploy(host, 'v1')
    assert result['plan']['noop'] is False and result['plan']['next_slot'] == 1
    assert result['plan']['live_source'] == 'only its process runs (it accepts on baton-shop.socket)'


def test_both_slots_running_fall_back_to_the_state_file(host):
    deploy(host, 'v1')
    host.units['baton-shop@2.service'] = ('v1', host.clock.now)
    front = host.rotation('v2', proxy='none').proxy
    assert front.live_slot() == (None, None)
    assert deploy(host, 'v2')['plan']['live_source'] == 'the state file records'


def test_rollback_on_a_shared_socket(host):
    deploy(host, 'v1')
    deploy(host, 'v2')
    result = host.deploy(None, action='rollback', proxy='none')
    assert result['plan']['release'] == 'v1' and state(host)['active_slot'] == 1
    assert host.running() == ['baton-shop@1.service']


def test_the_proxy_none_is_registered_and_needs_the_process_manager():
    assert proxies.PROXIES['none'] is proxies.SharedSocket
    front = proxies.proxy('none', 'shop', {1: 8001, 2: 8002}, 'http://127.0.0.1:9090/ready?deep=1', rotation.Probe(),
                          processes=Systemd(FakeRunner({})))
    assert (front.port, front.path, front.location) == (9090, '/ready?deep=1', 'baton-shop.socket')


def test_a_release_that_sickens_in_the_watch_window_is_stopped_and_the_old_slot_accepts_alone(host):
    deploy(host, 'v1')
    host.build('v2', 'sickens')
    with pytest.raises(rotation.RotationError) as failure:
        host.rotation('v2', proxy='none', watch_seconds=10).run()
    message = str(failure.value)
    assert 'after the flip it failed 2 checks in a row' in message
    assert ("Only the shared socket's old slot accepts again: slot 1 (release v1), which kept running, and slot 2 "
            "was stopped") in message
    assert host.running() == ['baton-shop@1.service'] and state(host)['active_slot'] == 1
