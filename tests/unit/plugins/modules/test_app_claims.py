# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import app_claims


def run_module(capsys, check_mode=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            app_claims.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def claim(capsys, base, app, names, ports, proxy='nginx', proxy_port=80, **extra):
    return run_module(capsys, app=app, proxy=proxy, proxy_port=proxy_port, names=names, slot_ports=ports,
                      base_dir=str(base), **extra)


def test_records_then_is_idempotent(capsys, tmp_path):
    rc, out = claim(capsys, tmp_path, 'shop', ['shop.example'], [9101, 9102])
    assert rc == 0 and out['changed'] is True
    path = tmp_path / 'shop' / 'claims.json'
    assert json.loads(path.read_text())['names'] == ['shop.example']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    rc, out = claim(capsys, tmp_path, 'shop', ['shop.example'], [9101, 9102])
    assert rc == 0 and out['changed'] is False


def test_a_second_app_with_its_own_names_and_ports(capsys, tmp_path):
    claim(capsys, tmp_path, 'shop', ['shop.example'], [9101, 9102])
    rc, out = claim(capsys, tmp_path, 'blog', ['blog.example'], [9201, 9202])
    assert rc == 0 and out['changed'] is True
    assert list(out['others']) == ['shop']


def test_conflict_fails_and_writes_nothing(capsys, tmp_path):
    claim(capsys, tmp_path, 'shop', ['shop.example'], [9101, 9102])
    rc, out = claim(capsys, tmp_path, 'blog', ['shop.example'], [9102, 9202])
    assert rc == 1
    assert out['conflicts'] == ['shop already serves shop.example on port 80', 'shop already uses port(s) 9102']
    assert out['msg'].startswith('blog cannot be set up on this host: shop already serves shop.example')
    assert 'Nothing was changed' in out['msg']
    assert not (tmp_path / 'blog').exists()


def test_check_mode_compares_but_does_not_write(capsys, tmp_path):
    rc, out = claim(capsys, tmp_path, 'shop', ['shop.example'], [9101, 9102], check_mode=True)
    assert rc == 0 and out['changed'] is True
    assert not (tmp_path / 'shop').exists()


def test_bad_app_name(capsys, tmp_path):
    rc, out = claim(capsys, tmp_path, '../etc', ['x.example'], [1, 2])
    assert rc == 1 and 'app' in out['msg']
