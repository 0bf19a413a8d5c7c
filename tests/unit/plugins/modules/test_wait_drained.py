# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils import drain
from ansible_collections.baton.deploy.plugins.modules import wait_drained

HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
LISTEN = '   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 41231 1 0 100 0 0 10 0\n'
ESTABLISHED = '   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000   998        0 51001 1 0 20 4 30 10 -1\n'
CLIENT_SIDE = '   2: 0100007F:C350 0100007F:1F91 01 00000000:00000000 00:00000000 00000000    33        0 51002 1 0 20 4 30 10 -1\n'


def run_module(capsys, **args):
    # Warnings are collected in a process-wide registry; isolate each run so results do not leak between tests.
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            wait_drained.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def warning_messages(out):
    """Warning texts from a module result (ansible-core 2.19 returns them as WarningSummary dicts)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in out.get('warnings', [])]


@pytest.fixture
def proc(tmp_path):
    tcp = tmp_path / 'tcp'
    tcp.write_text(HEADER + LISTEN + CLIENT_SIDE)
    return tcp


def test_idle_port_is_drained(capsys, proc, tmp_path):
    rc, out = run_module(capsys, port=8081, proc_paths=[str(proc), str(tmp_path / 'tcp6-missing')])
    assert rc == 0
    assert out['changed'] is False and out['drained'] is True
    assert (out['initial_connections'], out['max_connections'], out['remaining'], out['attempts']) == (0, 0, 0, 1)
    assert 'warnings' not in out


def test_busy_port_times_out_with_warning(capsys, proc):
    proc.write_text(HEADER + LISTEN + ESTABLISHED + CLIENT_SIDE)
    rc, out = run_module(capsys, port=8081, timeout=0.1, interval=0.02, proc_paths=[str(proc)])
    assert rc == 0 and out['changed'] is False
    assert out['drained'] is False and out['remaining'] == 1 and out['initial_connections'] == 1
    assert out['attempts'] >= 2
    assert 0.1 <= out['elapsed'] < 1
    assert warning_messages(out) == [
        '1 connection still open to port 8081 after 0.1 s; stopping anyway (bounded by timeout)']


def test_fail_on_timeout(capsys, proc):
    proc.write_text(HEADER + LISTEN + ESTABLISHED)
    rc, out = run_module(capsys, port=8081, timeout=0.05, interval=0.01, fail_on_timeout=True,
                         proc_paths=[str(proc)])
    assert rc == 1 and out['failed'] is True and out['changed'] is False
    assert out['msg'].startswith('1 connection still open to port 8081 after 0.05 s')
    assert 'fail_on_timeout' in out['msg']
    assert out['drained'] is False and out['remaining'] == 1


def test_drains_while_waiting(capsys, proc, mocker):
    peers = iter([{('127.0.0.1', 50000), ('127.0.0.1', 50001)}, {('127.0.0.1', 50001)}, set()])
    mocker.patch.object(drain, 'established_peers', side_effect=lambda port, paths: next(peers))
    rc, out = run_module(capsys, port=8081, interval=0.01, proc_paths=[str(proc)])
    assert rc == 0 and out['drained'] is True
    assert (out['initial_connections'], out['max_connections'], out['remaining'], out['held'], out['attempts']) == (
        2, 2, 0, 0, 3)


def test_check_mode_counts_once(capsys, proc, mocker):
    proc.write_text(HEADER + LISTEN + ESTABLISHED)
    sleep = mocker.patch.object(drain.time, 'sleep')
    rc, out = run_module(capsys, port=8081, timeout=30, proc_paths=[str(proc)], _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is False
    assert out['drained'] is False and out['attempts'] == 1 and out['remaining'] == 1
    assert 'warnings' not in out
    sleep.assert_not_called()


def test_unreadable_proc_fails(capsys, tmp_path):
    rc, out = run_module(capsys, port=8081, proc_paths=[str(tmp_path / 'nope')])
    assert rc == 1 and 'Cannot count TCP connections' in out['msg']


@pytest.mark.parametrize('args, message', [
    (dict(port=0), 'port must be between 1 and 65535'),
    (dict(port=70000), 'port must be between 1 and 65535'),
    (dict(port=8081, interval=0), 'interval must be > 0'),
    (dict(port=8081, timeout=-1), 'timeout must be >= 0'),
    (dict(port=8081, settle=-1), 'settle must be >= 0'),
    (dict(port=8081, proc_paths=[]), 'proc_paths must not be empty'),
])
def test_invalid_params(capsys, args, message):
    rc, out = run_module(capsys, **args)
    assert rc == 1 and message in out['msg']
