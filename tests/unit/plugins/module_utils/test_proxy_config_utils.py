# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.proxy_config import (
    ProxyConfigError,
    apply_config,
)

OLD = 'server 127.0.0.1:8001;\n'
NEW = 'server 127.0.0.1:8002;\n'
VALIDATE = ['nginx', '-t']
RELOAD = ['systemctl', 'reload', 'nginx']


class Runner:
    """Records commands; answers from a table of argv tuple -> (rc, out, err), default success.

    It also records what the file held when each command ran, to prove the order of events."""

    def __init__(self, path, answers=None):
        self.path, self.answers, self.calls = path, answers or {}, []

    def __call__(self, argv):
        with open(self.path) as handle:
            self.calls.append((tuple(argv), handle.read()))
        return self.answers.get(tuple(argv), (0, '{"apps": {}}', ''))


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'demo.upstream.conf'
    path.write_text(OLD)
    path.chmod(0o600)
    return str(path)


def read(path):
    with open(path) as handle:
        return handle.read()


def test_flip_writes_validates_then_reloads(conf):
    run = Runner(conf)
    result = apply_config(conf, NEW, VALIDATE, run, apply=RELOAD)
    assert result['changed'] is True and result['applied'] is True
    assert (result['before'], result['after']) == (OLD, NEW)
    assert run.calls == [(tuple(VALIDATE), NEW), (tuple(RELOAD), NEW)]
    assert read(conf) == NEW
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    assert [n for n in os.listdir(os.path.dirname(conf)) if n != 'demo.upstream.conf'] == []  # no temp left


def test_same_content_runs_nothing(conf):
    run = Runner(conf)
    result = apply_config(conf, OLD, VALIDATE, run, apply=RELOAD)
    assert (result['changed'], result['applied'], run.calls) == (False, False, [])


def test_force_applies_unchanged_content(conf):
    run = Runner(conf)
    result = apply_config(conf, OLD, VALIDATE, run, apply=RELOAD, force=True)
    assert result['applied'] is True
    assert [argv for argv, _content in run.calls] == [tuple(VALIDATE), tuple(RELOAD)]


def test_no_content_reloads_as_is(conf):
    run = Runner(conf)
    result = apply_config(conf, None, VALIDATE, run, apply=RELOAD)
    assert result['applied'] is True and result['changed'] is True
    assert run.calls == [(tuple(VALIDATE), OLD), (tuple(RELOAD), OLD)]
    assert read(conf) == OLD


def test_invalid_config_is_restored_and_not_reloaded(conf):
    run = Runner(conf, {tuple(VALIDATE): (1, '', 'nginx: [emerg] unknown directive "bogus"\n')})
    with pytest.raises(ProxyConfigError) as excinfo:
        apply_config(conf, NEW, VALIDATE, run, apply=RELOAD)
    assert excinfo.value.restored is True
    assert str(excinfo.value) == (
        'validation failed (nginx -t exited 1): nginx: [emerg] unknown directive "bogus". The previous content of '
        '%s was restored and nothing was applied: the proxy still runs its previous configuration.' % conf)
    assert [argv for argv, _content in run.calls] == [tuple(VALIDATE)]
    assert read(conf) == OLD


def test_failed_reload_restores_the_file(conf):
    run = Runner(conf, {tuple(RELOAD): (1, '', 'Job for nginx.service failed.\n')})
    with pytest.raises(ProxyConfigError, match=r'applying failed \(systemctl reload nginx exited 1\): Job for'):
        apply_config(conf, NEW, VALIDATE, run, apply=RELOAD)
    assert read(conf) == OLD


def test_new_file_is_removed_when_invalid(tmp_path):
    path = str(tmp_path / 'new.conf')
    open(path, 'w').close()
    os.unlink(path)
    run = Runner(path, {tuple(VALIDATE): (1, 'bad', '')})
    with pytest.raises(ProxyConfigError, match='validation failed .*: bad'):
        apply_config(path, NEW, VALIDATE, run, apply=RELOAD)
    assert not os.path.exists(path)


def test_reload_failure_without_content_says_file_unchanged(conf):
    run = Runner(conf, {tuple(VALIDATE): (1, '', '')})
    with pytest.raises(ProxyConfigError) as excinfo:
        apply_config(conf, None, VALIDATE, run, apply=RELOAD)
    assert excinfo.value.restored is False
    assert 'no output. %s was not changed and nothing was applied' % conf in str(excinfo.value)


@pytest.mark.parametrize('socket', [None, '/run/caddy-admin/admin.sock'])
def test_apply_url_posts_the_validated_output(conf, socket):
    posts = []
    run = Runner(conf, {('caddy', 'adapt'): (0, '{"apps": {"http": {}}}', '')})
    result = apply_config(conf, NEW, ['caddy', 'adapt'], run, apply_url='http://localhost/load', apply_socket=socket,
                          post=lambda url, body, sock: posts.append((url, body, sock, read(conf))) or 200)
    assert result['applied'] is True
    assert posts == [('http://localhost/load', '{"apps": {"http": {}}}', socket, NEW)]


def refuse(url, body, sock):
    raise PermissionError(13, 'Permission denied')


@pytest.mark.parametrize('post, socket, message', [
    (lambda url, body, sock: 400, None, 'applying failed (POST http://localhost/load): HTTP status 400'),
    (refuse, '/run/caddy-admin/admin.sock',
     'applying failed (POST http://localhost/load on /run/caddy-admin/admin.sock): [Errno 13] Permission denied'),
])
def test_apply_url_failure_restores(conf, post, socket, message):
    with pytest.raises(ProxyConfigError) as excinfo:
        apply_config(conf, NEW, ['caddy', 'adapt'], Runner(conf), apply_url='http://localhost/load',
                     apply_socket=socket, post=post)
    assert str(excinfo.value).startswith(message)
    assert read(conf) == OLD


def test_check_mode_changes_nothing(conf):
    run = Runner(conf)
    result = apply_config(conf, NEW, VALIDATE, run, apply=RELOAD, check_mode=True)
    assert (result['changed'], result['applied'], run.calls) == (True, False, [])
    assert read(conf) == OLD


def test_exactly_one_way_to_apply(conf):
    with pytest.raises(ValueError):
        apply_config(conf, NEW, VALIDATE, Runner(conf))
    with pytest.raises(ValueError):
        apply_config(conf, NEW, VALIDATE, Runner(conf), apply=RELOAD, apply_url='http://x/load')
