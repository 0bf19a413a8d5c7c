# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import socket

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import drain
from ansible_collections.baton.deploy.plugins.module_utils.drain import TcpEntry

# Captured on a little-endian (x86_64) host. 8081 = 0x1F91, 8082 = 0x1F92.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 41231 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 41232 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000   998        0 51001 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C350 0100007F:1F91 01 00000000:00000000 00:00000000 00000000    33        0 51002 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1F91 0100007F:C351 06 00000000:00000000 03:00001526 00000000     0        0 0 3 0000000000000000
   5: 0100007F:1F91 0100007F:C352 01 00000000:00000000 00:00000000 00000000   998        0 51003 1 0000000000000000 20 4 30 10 -1
   6: 0A00000A:1F91 0200000A:D431 01 00000000:00000000 02:000A7C2B 00000000   998        0 51004 2 0000000000000000 20 4 1 10 -1
   7: 0100007F:1F92 0100007F:C353 01 00000000:00000000 00:00000000 00000000   998        0 51005 1 0000000000000000 20 4 30 10 -1
   8: 0100007F:C354 0100007F:1F91 06 00000000:00000000 03:00001526 00000000     0        0 0 3 0000000000000000
"""

PROC_NET_TCP6 = (  # the rows are split in two only to keep the source lines short
    '  sl  local_address                         remote_address                        '
    'st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
    '   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A '
    '00000000:00000000 00:00000000 00000000   998        0 41240 1 0000000000000000 100 0 0 10 0\n'
    '   1: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000100007F:C360 01 '
    '00000000:00000000 00:00000000 00000000   998        0 52001 1 0000000000000000 20 4 30 10 -1\n'
    '   2: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:C361 01 '
    '00000000:00000000 00:00000000 00000000   998        0 52002 1 0000000000000000 20 4 30 10 -1\n'
    '   3: 00000000000000000000000001000000:C362 00000000000000000000000001000000:1F91 01 '
    '00000000:00000000 00:00000000 00000000    33        0 52003 1 0000000000000000 20 4 30 10 -1\n'
    '   4: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:C363 08 '
    '00000000:00000000 00:00000000 00000000   998        0 52004 1 0000000000000000 20 4 30 10 -1\n'
    '   5: B80D0120000000000000000001000000:1F92 B80D0120000000000000000002000000:C364 01 '
    '00000000:00000000 00:00000000 00000000   998        0 52005 1 0000000000000000 20 4 30 10 -1\n'
)


class FakeTime:
    """Monotonic clock whose sleep() advances it exactly; counts come from a list (the last one repeats)."""

    def __init__(self, counts):
        self.now = 100.0
        self.counts = list(counts)
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def counter(self, port):
        assert port == 8081
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]

    def run(self, **kwargs):
        kwargs.setdefault('timeout', 30.0)
        kwargs.setdefault('interval', 0.25)
        return drain.wait_drained(8081, counter=self.counter, clock=self.clock, sleep=self.sleep, **kwargs)


@pytest.mark.parametrize('text, byteorder, expected', [
    ('0100007F:1F91', 'little', ('127.0.0.1', 8081)),
    ('7F000001:0050', 'big', ('127.0.0.1', 80)),
    ('00000000:0000', 'little', ('0.0.0.0', 0)),
    ('0A00000A:1F91', 'little', ('10.0.0.10', 8081)),
    ('00000000000000000000000001000000:1F91', 'little', ('::1', 8081)),
    ('0000000000000000FFFF00000100007F:1F91', 'little', ('127.0.0.1', 8081)),
    ('B80D0120000000000000000001000000:01BB', 'little', ('2001:db8::1', 443)),
    ('20010DB8000000000000000000000001:01BB', 'big', ('2001:db8::1', 443)),
])
def test_decode_address(text, byteorder, expected):
    assert drain.decode_address(text, byteorder) == expected


@pytest.mark.parametrize('text', ['', '1F91', '0100007F1F91', '01007F:1F91', 'ZZZZZZZZ:1F91'])
def test_decode_address_rejects(text):
    with pytest.raises(ValueError):
        drain.decode_address(text, 'little')


def test_parse_proc_net_tcp():
    entries = drain.parse_proc_net_tcp(PROC_NET_TCP, byteorder='little')
    assert len(entries) == 9, 'header skipped, all rows parsed'
    assert entries[0] == TcpEntry('127.0.0.1', 8081, '0.0.0.0', 0, '0A')
    assert entries[0].state_name == 'LISTEN'
    assert entries[2] == TcpEntry('127.0.0.1', 8081, '127.0.0.1', 50000, '01')
    assert entries[2].state_name == 'ESTABLISHED'
    assert entries[4].state_name == 'TIME_WAIT'
    assert entries[6] == TcpEntry('10.0.0.10', 8081, '10.0.0.2', 54321, '01')
    assert 'ESTABLISHED' in repr(entries[2])


def test_parse_proc_net_tcp6_maps_ipv4():
    entries = drain.parse_proc_net_tcp(PROC_NET_TCP6, byteorder='little')
    assert len(entries) == 6
    assert entries[0] == TcpEntry('::', 8081, '::', 0, '0A')
    assert entries[1] == TcpEntry('127.0.0.1', 8081, '127.0.0.1', 50016, '01')
    assert entries[2] == TcpEntry('::1', 8081, '::1', 50017, '01')
    assert entries[4].state_name == 'CLOSE_WAIT'
    assert entries[5] == TcpEntry('2001:db8::1', 8082, '2001:db8::2', 50020, '01')


def test_parse_skips_garbage():
    assert drain.parse_proc_net_tcp('garbage\n\n  x: y z w\n   0: nothex:1F91 00000000:0000 01\n') == []


def test_count_established_in_text_only_counts_local_port_established():
    # tcp: rows 2, 5 and 6 (row 3 and 8 only match the remote port, rows 0 and 4 are LISTEN / TIME_WAIT)
    assert drain.count_established_in_text(PROC_NET_TCP, 8081) == 3
    assert drain.count_established_in_text(PROC_NET_TCP, 8082) == 1
    # tcp6: rows 1 (IPv4-mapped) and 2 (::1); row 3 is the client side, row 4 CLOSE_WAIT
    assert drain.count_established_in_text(PROC_NET_TCP6, 8081) == 2
    assert drain.count_established_in_text(PROC_NET_TCP6, 8082) == 1
    assert drain.count_established_in_text(PROC_NET_TCP, 50000) == 1  # the client side of row 3
    assert drain.count_established_in_text(PROC_NET_TCP, 9999) == 0
    assert drain.count_established_in_text('', 8081) == 0


def test_count_established_reads_files(tmp_path):
    tcp = tmp_path / 'tcp'
    tcp6 = tmp_path / 'tcp6'
    tcp.write_text(PROC_NET_TCP)
    tcp6.write_text(PROC_NET_TCP6)
    assert drain.count_established(8081, [str(tcp), str(tcp6)]) == 5
    # a missing tcp6 (IPv6 disabled) is skipped
    assert drain.count_established(8081, [str(tcp), str(tmp_path / 'missing')]) == 3
    with pytest.raises(drain.ProcNetError, match='none of .* could be read'):
        drain.count_established(8081, [str(tmp_path / 'missing')])


def test_validate_params():
    assert drain.validate_params(8081, 30, 0.1, 0) == []
    errors = drain.validate_params(0, -1, 0, -0.5)
    assert len(errors) == 4
    assert drain.validate_params(65536) == ['port must be between 1 and 65535, got 65536']
    assert drain.validate_params(True) == ['port must be between 1 and 65535, got True']


def test_wait_drained_already_idle():
    fake = FakeTime([0])
    result = fake.run()
    assert result.as_dict() == dict(drained=True, initial_connections=0, max_connections=0, remaining=0,
                                    held=0, elapsed=0.0, attempts=1)
    assert fake.sleeps == []


def test_wait_drained_counts_down():
    fake = FakeTime([3, 4, 2, 0])
    result = fake.run()
    assert result.as_dict() == dict(drained=True, initial_connections=3, max_connections=4, remaining=0,
                                    held=0, elapsed=0.75, attempts=4)
    assert fake.sleeps == [0.25, 0.25, 0.25]


def test_wait_drained_timeout_is_not_drained():
    fake = FakeTime([2])
    result = fake.run(timeout=1.0)
    assert result.as_dict() == dict(drained=False, initial_connections=2, max_connections=2, remaining=2,
                                    held=2, elapsed=1.0, attempts=5)
    assert drain.timeout_warning(8081, 1.0, result) == (
        '2 connections still open to port 8081 after 1 s; stopping anyway (bounded by timeout)')


def test_wait_drained_last_sleep_is_capped_by_deadline():
    fake = FakeTime([1])
    result = fake.run(timeout=0.6)
    assert fake.sleeps == [0.25, 0.25, pytest.approx(0.1)]
    assert result.elapsed == 0.6 and not result.drained


def test_wait_drained_settle_requires_quiet_period():
    fake = FakeTime([1, 0, 1, 0, 0, 0, 0])
    result = fake.run(settle=0.5)
    assert result.as_dict() == dict(drained=True, initial_connections=1, max_connections=1, remaining=0,
                                    held=0, elapsed=1.25, attempts=6)


def test_wait_drained_settle_cut_short_by_timeout():
    fake = FakeTime([1, 0])
    result = fake.run(settle=1.0, timeout=0.5)
    assert not result.drained and result.remaining == 0
    assert 'not yet for the required settle time of 1 s' in drain.timeout_warning(8081, 0.5, result, 1.0)


def test_wait_drained_single_and_zero_timeout():
    busy = FakeTime([1, 0])
    assert busy.run(single=True).as_dict() == dict(drained=False, initial_connections=1, max_connections=1,
                                                   remaining=1, held=1, elapsed=0.0, attempts=1)
    idle = FakeTime([0])
    assert idle.run(single=True, settle=5.0).drained is True
    zero = FakeTime([1, 0])
    result = zero.run(timeout=0)
    assert result.attempts == 1 and not result.drained and zero.sleeps == []


def test_wait_drained_held_counts_the_connections_open_from_the_first_count_to_the_last():
    # Three long connections stay; health checks of the old slot come and go, and one is open at the
    # last count: 4 remain, 3 were held through the whole drain.
    long = {('127.0.0.1', 41150), ('127.0.0.1', 41160), ('127.0.0.1', 41170)}
    checks = [set(), {('127.0.0.1', 50001)}, set(), {('127.0.0.1', 50002)}, {('127.0.0.1', 50003)}]
    fake = FakeTime([frozenset(long | extra) for extra in checks])
    result = fake.run(timeout=1.0)
    assert not result.drained
    assert (result.initial_connections, result.max_connections, result.remaining, result.held) == (3, 4, 4, 3)


def test_wait_drained_held_is_zero_when_the_first_connections_ended():
    fake = FakeTime([{('127.0.0.1', 41150)}, {('127.0.0.1', 50001)}])
    result = fake.run(timeout=0.5)
    assert (result.remaining, result.held) == (1, 0)


def test_established_peers_in_text_names_each_connection():
    assert drain.established_peers_in_text(PROC_NET_TCP, 9999) == set()
    # Rows 2, 5 and 6: ESTABLISHED with local port 8081 (not the listener, the TIME_WAIT row 4, nor
    # row 3, which is the client side of row 2).
    assert drain.established_peers_in_text(PROC_NET_TCP, 8081, byteorder='little') == {
        ('127.0.0.1', 0xC350), ('127.0.0.1', 0xC352), ('10.0.0.2', 0xD431)}


def test_established_peers_reads_files(tmp_path):
    tcp = tmp_path / 'tcp'
    tcp.write_text(PROC_NET_TCP)
    assert len(drain.established_peers(8081, [str(tcp), str(tmp_path / 'missing')])) == 3
    with pytest.raises(drain.ProcNetError, match='none of .* could be read'):
        drain.established_peers(8081, [str(tmp_path / 'missing')])


def test_timeout_warning_singular():
    result = drain.DrainResult(remaining=1)
    assert drain.timeout_warning(8082, 30.0, result).startswith('1 connection still open to port 8082 after 30 s')


@pytest.mark.skipif(not os.path.exists('/proc/net/tcp'), reason='needs Linux /proc/net/tcp')
def test_real_socket_pair_on_loopback():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client = conn = None
    try:
        server.bind(('127.0.0.1', 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert drain.count_established(port) == 0

        client = socket.create_connection(('127.0.0.1', port), timeout=2)
        conn, dummy = server.accept()
        client_port = client.getsockname()[1]
        assert drain.count_established(port) == 1
        assert drain.established_peers(port) == {('127.0.0.1', client_port)}

        with open('/proc/net/tcp') as handle:
            entries = drain.parse_proc_net_tcp(handle.read())
        assert TcpEntry('127.0.0.1', port, '127.0.0.1', client_port, '01') in entries
        assert TcpEntry('127.0.0.1', client_port, '127.0.0.1', port, '01') in entries

        busy = drain.wait_drained(port, timeout=0.05, interval=0.01)
        assert not busy.drained and busy.remaining == 1 and busy.initial_connections == 1

        client.close()
        conn.close()
        client = conn = None
        result = drain.wait_drained(port, timeout=2, interval=0.01)
        assert result.drained and result.remaining == 0
        assert result.elapsed < 2
    finally:
        for sock in (client, conn, server):
            if sock is not None:
                sock.close()


def test_padded_lines_as_in_real_proc_file():
    # The kernel pads /proc/net/tcp lines with trailing spaces to a fixed width.
    padded = '\n'.join(line.ljust(150) for line in PROC_NET_TCP.splitlines()) + '\n'
    assert drain.count_established_in_text(padded, 8081) == 3
    assert len(drain.parse_proc_net_tcp(padded, byteorder='little')) == 9
