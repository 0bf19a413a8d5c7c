# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import proxy_gate


def run_module(capsys, check_mode=False, diff=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            proxy_gate.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def test_flip_and_flip_back(capsys, tmp_path):
    gate = str(tmp_path / 'shop.gate')
    rc, out = run_module(capsys, path=gate, slot=1, diff=True)
    assert rc == 0 and out['changed'] is True and out['slot'] == 1 and out['previous'] is None
    assert out['diff']['after'] == 'slot 1\n' and out['diff']['before'] == ''
    assert os.path.exists(os.path.join(gate, 'slot1'))
    rc, out = run_module(capsys, path=gate, slot=2)
    assert rc == 0 and out['changed'] is True and out['previous'] == 1
    assert not os.path.exists(os.path.join(gate, 'slot1'))
    rc, out = run_module(capsys, path=gate, slot=2)
    assert rc == 0 and out['changed'] is False


def test_check_mode(capsys, tmp_path):
    gate = str(tmp_path / 'shop.gate')
    rc, out = run_module(capsys, check_mode=True, path=gate, slot=2)
    assert rc == 0 and out['changed'] is True and not os.path.exists(gate)


def test_initial_keeps_the_rotations_gate(capsys, tmp_path):
    gate = str(tmp_path / 'shop.gate')
    run_module(capsys, path=gate, slot=1)
    rc, out = run_module(capsys, path=gate, slot=2, initial=True)
    assert rc == 0 and out['changed'] is False and out['slot'] == 1


def test_slot_must_be_1_or_2(capsys, tmp_path):
    rc, out = run_module(capsys, path=str(tmp_path / 'shop.gate'), slot=3)
    assert rc == 1 and 'value of slot must be one of: 1, 2' in out['msg']


def test_failure_says_traffic_is_unchanged(capsys, tmp_path):
    (tmp_path / 'etc').write_text('not a directory')
    rc, out = run_module(capsys, path=str(tmp_path / 'etc' / 'shop.gate'), slot=1)
    assert rc == 1 and out['msg'].startswith('could not set the gate')
    assert out['msg'].endswith('The proxy still routes to the slot it did before.')
