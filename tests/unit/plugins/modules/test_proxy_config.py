# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module end to end: real commands (sh), and a real local HTTP server (on TCP or on a unix socket)
standing in for Caddy's /load."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.modules import proxy_config


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc_info:
            proxy_config.main()
    return exc_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'demo.upstream'
    path.write_text('to 127.0.0.1:8001\n')
    return path


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class LoadServer:
    """Answers POST /load with a fixed status and keeps the bodies it got (and the Host header)."""

    def __init__(self, status, unix_path=None):
        bodies = self.bodies = []
        hosts = self.hosts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                hosts.append(self.headers['Host'])
                bodies.append((self.headers['Content-Type'], self.rfile.read(int(self.headers['Content-Length']))))
                reply = b'{"error": "loading config: bad upstream"}' if status != 200 else b''
                self.send_response(status)
                self.send_header('Content-Length', str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 (signature from base)
                pass

        if unix_path is None:
            self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
            self.url = 'http://127.0.0.1:%d/load' % self.httpd.server_address[1]
        else:
            self.httpd = UnixHTTPServer(unix_path, Handler)
            self.url = 'http://localhost/load'
        self.unix_path = unix_path
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def load_server(request):
    srv = LoadServer(request.param)
    yield srv
    srv.stop()


def test_flip_with_commands(conf, tmp_path, capsys):
    log = tmp_path / 'log'
    code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n',
                            'validate': ['sh', '-c', 'cat "$0" >> %s' % log, str(conf)],
                            'apply': ['sh', '-c', 'echo reloaded >> %s' % log], '_ansible_diff': True}, capsys)
    assert code == 0 and out['changed'] is True and out['applied'] is True
    assert log.read_text() == 'to 127.0.0.1:8002\nreloaded\n'  # validated the new file, then applied
    assert out['diff']['before'] == 'to 127.0.0.1:8001\n' and out['diff']['after'] == 'to 127.0.0.1:8002\n'


def test_invalid_config_fails_and_restores(conf, capsys):
    code, out = run_module({'path': str(conf), 'content': 'bogus\n',
                            'validate': ['sh', '-c', 'echo "unrecognized directive: bogus" >&2; exit 1'],
                            'apply': ['false']}, capsys)
    assert code == 1 and out['failed'] is True and out['restored'] is True
    assert out['msg'].startswith('validation failed (sh -c echo "unrecognized directive: bogus" >&2; exit 1 exited 1): '
                                 'unrecognized directive: bogus. The previous content of %s was restored' % conf)
    assert conf.read_text() == 'to 127.0.0.1:8001\n'


@pytest.mark.parametrize('load_server', [200], indirect=True)
def test_apply_url_posts_json(conf, load_server, capsys):
    code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n',
                            'validate': ['echo', '{"apps": {}}'], 'apply_url': load_server.url}, capsys)
    assert code == 0 and out['applied'] is True
    assert load_server.bodies == [('application/json', b'{"apps": {}}\n')]


def test_apply_socket_posts_through_the_socket_with_an_empty_host(conf, tmp_path, capsys):
    srv = LoadServer(200, unix_path=str(tmp_path / 'admin.sock'))
    try:
        code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n', 'validate': ['echo', '{}'],
                                'apply_url': srv.url, 'apply_socket': srv.unix_path}, capsys)
    finally:
        srv.stop()
    assert code == 0 and out['applied'] is True, out
    assert srv.bodies == [('application/json', b'{}\n')]
    assert srv.hosts == ['']  # Caddy's admin socket refuses any other Host ("host not allowed: localhost")


def test_apply_socket_that_cannot_be_opened_restores(conf, tmp_path, capsys):
    missing = str(tmp_path / 'none' / 'admin.sock')
    code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n', 'validate': ['echo', '{}'],
                            'apply_url': 'http://localhost/load', 'apply_socket': missing}, capsys)
    assert code == 1 and out['restored'] is True
    assert out['msg'].startswith('applying failed (POST http://localhost/load on %s): ' % missing), out['msg']
    assert conf.read_text() == 'to 127.0.0.1:8001\n'


@pytest.mark.parametrize('load_server', [400], indirect=True)
def test_apply_url_error_body_is_reported(conf, load_server, capsys):
    code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n',
                            'validate': ['echo', '{}'], 'apply_url': load_server.url}, capsys)
    assert code == 1
    assert 'HTTP 400: {"error": "loading config: bad upstream"}' in out['msg']
    assert conf.read_text() == 'to 127.0.0.1:8001\n'


def test_check_mode(conf, capsys):
    code, out = run_module({'path': str(conf), 'content': 'to 127.0.0.1:8002\n', 'validate': ['false'],
                            'apply': ['false'], '_ansible_check_mode': True}, capsys)
    assert code == 0 and out['changed'] is True and out['applied'] is False
    assert conf.read_text() == 'to 127.0.0.1:8001\n'


@pytest.mark.parametrize('args, fragment', [
    ({'validate': ['true']}, 'one of the following is required: apply, apply_url'),
    ({'validate': ['true'], 'apply': ['true'], 'apply_url': 'http://x/load'}, 'mutually exclusive'),
    ({'validate': [], 'apply': ['true']}, 'validate and apply must be non-empty commands'),
    ({'validate': ['true'], 'apply': ['true'], 'apply_socket': '/run/x.sock'}, 'apply_socket'),
    ({'validate': ['true'], 'apply': ['true'], 'mode': 'rw'}, 'mode must be an octal string'),
])
def test_invalid_params(conf, capsys, args, fragment):
    code, out = run_module(dict(args, path=str(conf), content='x\n'), capsys)
    assert code == 1 and fragment in out['msg']
    assert conf.read_text() == 'to 127.0.0.1:8001\n'


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(proxy_config.DOCUMENTATION)
    yaml.safe_load(proxy_config.EXAMPLES)
    assert set(yaml.safe_load(proxy_config.RETURN)) == {'applied', 'elapsed'}
    assert set(doc['options']) == {'path', 'content', 'mode', 'validate', 'apply', 'apply_url', 'apply_socket',
                                   'force'}
    assert doc['attributes']['check_mode']['support'] == 'full'
