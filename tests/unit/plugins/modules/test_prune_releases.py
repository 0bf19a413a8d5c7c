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

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import apply_record, default_state, dump_state
from ansible_collections.baton.deploy.plugins.modules import prune_releases


def run_module(capsys, **args):
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            prune_releases.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def host(tmp_path):
    """r1..r6 (r6 newest), state: slot 1 = r1 (the rollback target), slot 2 = r2 live; slots/1 -> r5
    (a deploy of r5 that never got ready); env kept for r1, r2 and a long-gone r0."""
    root, var = tmp_path / 'root', tmp_path / 'var'
    (root / 'slots').mkdir(parents=True)
    (var / 'env').mkdir(parents=True)
    for n in range(1, 7):
        (root / 'releases' / ('r%d' % n)).mkdir(parents=True)
        os.utime(root / 'releases' / ('r%d' % n), (1000 + n, 1000 + n))
    (root / 'releases' / '.r7.building').mkdir()
    os.symlink(str(root / 'releases' / 'r5'), str(root / 'slots' / '1'))
    os.symlink(str(root / 'releases' / 'r2'), str(root / 'slots' / '2'))
    state = apply_record(apply_record(default_state('shop'), 1, 'r1')[0], 2, 'r2')[0]
    (var / 'state.json').write_text(dump_state(state))
    for name in ('r0', 'r1', 'r2'):
        (var / 'env' / (name + '.env')).write_text('A="1"\n')
    return {'root': str(root), 'path': str(var / 'state.json'), 'env_dir': str(var / 'env')}


def listing(host):
    return (sorted(os.listdir(os.path.join(host['root'], 'releases'))), sorted(os.listdir(host['env_dir'])))


def test_keeps_the_newest_and_every_release_a_slot_runs_or_rolls_back_to(capsys, host):
    rc, out = run_module(capsys, app='shop', keep=1, release='r6', **host)
    assert rc == 0 and out['changed'] is True
    assert out['removed'] == ['r3', 'r4'] and out['pinned'] == ['r1', 'r2', 'r5', 'r6']
    assert listing(host) == (['.r7.building', 'r1', 'r2', 'r5', 'r6'], ['r1.env', 'r2.env'])
    rc, out = run_module(capsys, app='shop', keep=1, release='r6', **host)
    assert (rc, out['changed'], out['removed']) == (0, False, [])


def test_check_mode_removes_nothing(capsys, host):
    before = listing(host)
    rc, out = run_module(capsys, app='shop', keep=0, _ansible_check_mode=True, **host)
    assert rc == 0 and out['changed'] is True and out['removed'] == ['r3', 'r4', 'r6']
    assert listing(host) == before


def test_corrupt_state_removes_nothing(capsys, host):
    with open(host['path'], 'w') as handle:
        handle.write('{')
    before = listing(host)
    rc, out = run_module(capsys, app='shop', keep=0, **host)
    assert rc == 1 and 'No release was removed.' in out['msg']
    assert listing(host) == before
