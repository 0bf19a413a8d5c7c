# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib.machinery
import importlib.util
import os

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import slot_env as se

BATON_EXEC = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles', 'instances', 'files', 'baton-exec')


def baton_exec():
    loader = importlib.machinery.SourceFileLoader('baton_exec', BATON_EXEC)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader('baton_exec', loader))
    loader.exec_module(module)
    return module


def test_render_slot_file():
    text = se.render({'B': 'two words', 'A': 'x "q" $HOME \\ é', 'N': 5, 'T': True}, slot=2, port=8002, release='v3')
    lines = [line for line in text.splitlines() if not line.startswith('#')]
    assert lines == ['A="x \\"q\\" $HOME \\\\ é"', 'B="two words"', 'N="5"', 'T="True"',
                     'PORT=8002', 'BATON_SLOT=2', 'BATON_RELEASE=v3']


def test_render_then_parse_round_trips_and_reads_as_baton_exec_reads(tmp_path):
    env = {'SECRET': 's3cr3t $HOME "quoted"', 'URL': 'postgres://u:p@h/db?x=1&y=%s', 'UNICODE': 'café'}
    text = se.render(env, slot=1, port=8001, release='v1')
    parsed = se.parse(text)
    assert parsed == dict(env, PORT='8001', BATON_SLOT='1', BATON_RELEASE='v1')
    path = tmp_path / '1.env'
    path.write_text(text, encoding='utf-8')
    assert baton_exec().read_env(str(path)) == parsed
    assert se.split(parsed) == (env, 'v1')


@pytest.mark.parametrize('env,problem', [
    ({'A B': 'x'}, 'the name "A B" is not a valid environment variable name'),
    ({'1X': 'x'}, 'the name "1X" is not a valid'),
    ({'A\nPORT': 'x'}, 'is not a valid environment variable name'),
    ({'X': 'a\nb'}, 'the value of X contains a newline or another control character'),
    ({'X': 'a\tb'}, 'the value of X contains'),
    ({'X': 'a\rb'}, 'the value of X contains'),
    ({'X': 'a\x1bb'}, 'the value of X contains'),
    ({'X': 'a\x85b'}, 'the value of X contains'),
    ({'X': {'nested': 1}}, 'the value of X is a dict, not a string'),
])
def test_bad_environments_are_refused_naming_keys_only(env, problem):
    problems = se.env_problems(env)
    assert len(problems) == 1 and problem in problems[0]
    with pytest.raises(ValueError) as excinfo:
        se.render(env, slot=1, port=8001, release='v1')
    assert 'a\nb' not in str(excinfo.value) and 'nested' not in str(excinfo.value)


def test_kept_env_drops_what_baton_sets():
    live = se.render({'APP_RELEASE': 'r2'}, slot=2, port=8002, release='r2')
    release, text = se.kept_env(live)
    assert release == 'r2'
    assert se.parse(text) == {'APP_RELEASE': 'r2'}
    assert se.kept_env('PORT=8002\n') == (None, None)
    assert se.kept_env('BATON_RELEASE=../../etc/passwd\n') == (None, None)


def test_choose_env_given_wins():
    assert se.choose_env('r2', given={'A': '1'}, stored='A="stored"\n') == ({'A': '1'}, 'given')


def test_choose_env_restores_the_kept_environment_over_the_slot_file():
    # A deploy of r4 that never got ready rewrote the slot's file: the kept file of r2 is used.
    slot_file = se.render({'APP_RELEASE': 'r4'}, slot=1, port=8001, release='r4')
    stored = se.render({'APP_RELEASE': 'r2'}, release='r2')
    assert se.choose_env('r2', stored=stored, slot_file=slot_file) == ({'APP_RELEASE': 'r2'}, 'stored')


def test_choose_env_falls_back_to_the_slot_file_written_for_the_release():
    slot_file = se.render({'APP_RELEASE': 'r2'}, slot=1, port=8001, release='r2')
    assert se.choose_env('r2', slot_file=slot_file) == ({'APP_RELEASE': 'r2'}, 'slot')


@pytest.mark.parametrize('slot_file', [None, se.render({'A': '1'}, slot=1, port=8001, release='r4')])
def test_choose_env_fails_when_there_is_nothing_to_restore(slot_file):
    with pytest.raises(se.EnvFileError) as excinfo:
        se.choose_env('r2', slot_file=slot_file)
    assert 'No environment is kept on this host for release r2' in str(excinfo.value)
    assert 'baton_env' in str(excinfo.value)


def test_parse_errors_name_the_line():
    with pytest.raises(se.EnvFileError, match=r'x\.env:2: expected KEY=VALUE'):
        se.parse('A=1\nnonsense\n', 'x.env')
    with pytest.raises(se.EnvFileError, match='the value of A is not a valid JSON string'):
        se.parse('A="unterminated\n', 'x.env')


def test_release_env_path_refuses_traversal():
    assert se.release_env_path('/var/lib/baton/shop/env', 'v1.2') == '/var/lib/baton/shop/env/v1.2.env'
    with pytest.raises(ValueError):
        se.release_env_path('/var/lib/baton/shop/env', '../state')
