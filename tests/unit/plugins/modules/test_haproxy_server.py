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

from ansible_collections.baton.deploy.plugins.modules import haproxy_server
from ansible_collections.baton.deploy.tests.unit.plugins.fake_haproxy import FakeHAProxy


@pytest.fixture
def fake():
    f = FakeHAProxy({('shop', 'web1'): {'admin': 'ready', 'op': 2, 'scur': 0},
                     ('shop', 'web2'): {'admin': 'ready', 'op': 2, 'scur': 0}})
    yield f
    f.close()


def run_module(capsys, **args):
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            haproxy_server.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def warning_messages(out):
    return [w['event']['msg'] if isinstance(w, dict) else w for w in out.get('warnings', [])]


def test_drain_then_ready(capsys, fake):
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web2', state='drain')
    assert rc == 0 and out['changed'] is True and out['drained'] is True
    assert fake.servers[('shop', 'web2')]['admin'] == 'drain'
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web2', state='drain')
    assert rc == 0 and out['changed'] is False  # idempotent
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web2', state='ready')
    assert rc == 0 and out['changed'] is True and out['up'] is True and out['previous_state'] == 'drain'


def test_drain_timeout_warns_or_fails(capsys, fake):
    fake.servers[('shop', 'web1')]['scur'] = 1
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web1', state='drain', timeout=0.1,
                         interval=0.02)
    assert rc == 0 and out['drained'] is False
    assert warning_messages(out) == [
        'HAProxy server shop/web1 still has 1 session(s) after 0.1 s in state drain; going on (bounded by timeout)']
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web1', state='drain', timeout=0.1,
                         interval=0.02, fail_on_timeout=True)
    assert rc == 1 and out['failed'] is True and 'still has 1 session(s)' in out['msg']


def test_ready_but_down_fails(capsys, fake):
    fake.servers[('shop', 'web1')].update(admin='drain', op=0)
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web1', state='ready', timeout=0.1,
                         interval=0.02)
    assert rc == 1 and out['failed'] is True and out['changed'] is True
    assert out['msg'].startswith('HAProxy server shop/web1 is ready but not up after 0.1 s')
    assert 'It receives no traffic' in out['msg']


def test_check_mode(capsys, fake):
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web1', state='maint', _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and out['state'] == 'maint'
    assert fake.servers[('shop', 'web1')]['admin'] == 'ready'


def test_unknown_server_fails_clearly(capsys, fake):
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web9', state='drain')
    assert rc == 1 and "has no server 'web9'" in out['msg']


def test_invalid_interval(capsys, fake):
    rc, out = run_module(capsys, socket=fake.path, backend='shop', server='web1', state='drain', interval=0)
    assert rc == 1 and 'interval must be > 0' in out['msg']
