# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.proxy_gate import (
    GateError,
    plan,
    read_gate,
    set_gate,
)


def test_no_gate_yet(tmp_path):
    assert read_gate(str(tmp_path / 'shop.gate')) is None
    assert plan(str(tmp_path / 'shop.gate'), 1) == (True, None, True)


def test_slot1_creates_the_file_slot2_removes_it(tmp_path):
    gate = str(tmp_path / 'shop.gate')
    assert set_gate(gate, 1) == {'changed': True, 'slot': 1, 'previous': None}
    assert os.path.isfile(os.path.join(gate, 'slot1')) and read_gate(gate) == 1
    assert stat.S_IMODE(os.stat(gate).st_mode) == 0o755
    assert set_gate(gate, 2) == {'changed': True, 'slot': 2, 'previous': 1}
    assert os.listdir(gate) == [] and read_gate(gate) == 2
    assert set_gate(gate, 1) == {'changed': True, 'slot': 1, 'previous': 2}
    assert read_gate(gate) == 1


def test_same_slot_again_changes_nothing(tmp_path):
    gate = str(tmp_path / 'shop.gate')
    set_gate(gate, 2)
    before = os.stat(gate).st_mtime_ns
    assert set_gate(gate, 2) == {'changed': False, 'slot': 2, 'previous': 2}
    assert os.stat(gate).st_mtime_ns == before


def test_initial_creates_a_missing_gate_only(tmp_path):
    gate = str(tmp_path / 'shop.gate')
    assert set_gate(gate, 2, initial=True) == {'changed': True, 'slot': 2, 'previous': None}
    assert read_gate(gate) == 2
    # An existing gate is the rotation's: the setup never moves it.
    assert set_gate(gate, 1, initial=True) == {'changed': False, 'slot': 2, 'previous': 2}
    assert read_gate(gate) == 2


def test_check_mode_predicts_and_touches_nothing(tmp_path):
    gate = str(tmp_path / 'shop.gate')
    assert set_gate(gate, 1, check_mode=True) == {'changed': True, 'slot': 1, 'previous': None}
    assert not os.path.exists(gate)
    set_gate(gate, 1)
    assert set_gate(gate, 2, check_mode=True) == {'changed': True, 'slot': 2, 'previous': 1}
    assert read_gate(gate) == 1


@pytest.mark.parametrize('slot', [0, 3, '1', None])
def test_refuses_other_slots(tmp_path, slot):
    with pytest.raises(GateError, match='slot must be 1 or 2'):
        set_gate(str(tmp_path / 'shop.gate'), slot)


def test_reports_what_failed(tmp_path):
    (tmp_path / 'etc').write_text('a file where the proxy directory should be')
    with pytest.raises(GateError, match='could not set the gate .*etc/shop.gate to slot 1'):
        set_gate(str(tmp_path / 'etc' / 'shop.gate'), 1)
