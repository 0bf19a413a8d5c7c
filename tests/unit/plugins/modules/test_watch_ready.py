# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils.readiness import WatchResult
from ansible_collections.baton.deploy.plugins.modules import watch_ready

from ansible_collections.baton.deploy.tests.unit.plugins.modules.test_wait_ready import StatusServer


@pytest.fixture
def server():
    srv = StatusServer()
    try:
        yield srv
    finally:
        srv.stop()


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc_info:
            watch_ready.main()
    return exc_info.value.code, json.loads(capsys.readouterr().out)


def test_stays_healthy(server, capsys):
    code, out = run_module({'url': server.url, 'duration': 0.2, 'interval': 0.05}, capsys)
    assert code == 0 and out['healthy'] is True and out['changed'] is False
    assert out['attempts'] >= 3 and out['failed_after'] is None


def test_turns_unhealthy(server, capsys):
    server.statuses = [200, 200, 503]
    code, out = run_module({'url': server.url, 'duration': 30, 'interval': 0.01, 'failures': 2}, capsys)
    assert code == 1 and out['healthy'] is False
    assert out['attempts'] == 4
    assert out['msg'].startswith('%s failed 2 checks in a row ' % server.url)
    assert out['msg'].endswith('into the 30s watch, last result: status 503.')


def test_invalid_params(server, capsys):
    code, out = run_module({'url': 'ftp://x', 'duration': 1}, capsys)
    assert code == 1 and out['msg'].startswith('Invalid parameters: url must be an absolute http://')


def test_documentation_matches_results():
    doc = yaml.safe_load(watch_ready.DOCUMENTATION)
    yaml.safe_load(watch_ready.EXAMPLES)
    assert set(doc['options']) == {'url', 'duration', 'failures', 'interval', 'status_codes', 'request_timeout',
                                   'headers', 'validate_certs'}
    assert set(yaml.safe_load(watch_ready.RETURN)) == set(WatchResult.__slots__)
