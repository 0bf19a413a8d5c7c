# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils import process_managers
from ansible_collections.baton.deploy.plugins.module_utils.readiness import ReadinessResult
from ansible_collections.baton.deploy.plugins.modules import wait_ready
from ansible_collections.baton.deploy.tests.unit.plugins.fake_supervisord import FakeSupervisord, info


class StatusServer:
    """Local HTTP server answering every request with ``statuses[n]`` (the last one repeats)."""

    def __init__(self):
        self.statuses = [200]
        self.body = 'ok'
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            disable_nagle_algorithm = True

            def do_GET(self):
                owner.requests.append((self.command, self.path))
                status = owner.statuses[min(len(owner.requests), len(owner.statuses)) - 1]
                body = owner.body.encode('utf-8')
                self.send_response(status)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, format, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self._httpd = Server(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/healthz' % self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2)


@pytest.fixture
def server():
    srv = StatusServer()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def closed_url():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return 'http://127.0.0.1:%d/healthz' % port


def run_module(args, capsys):
    """Run main() with ``args``; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc_info:
            wait_ready.main()
    out = capsys.readouterr().out
    return exc_info.value.code, json.loads(out)


RESULT_KEYS = {'ready', 'elapsed', 'attempts', 'passes', 'last_status', 'last_error', 'first_pass_elapsed',
               'started_at', 'last_headers', 'process'}


def test_ready(server, capsys):
    server.statuses = [503, 200]
    code, result = run_module({'url': server.url, 'passes': 2, 'interval': 0.01, 'timeout': 5}, capsys)

    assert code == 0
    assert not result.get('failed')
    assert result['changed'] is False
    assert RESULT_KEYS <= set(result)
    assert result['ready'] is True
    assert result['attempts'] == 3
    assert result['passes'] == 2
    assert result['last_status'] == 200
    assert result['last_error'] is None
    assert 0 < result['first_pass_elapsed'] <= result['elapsed']
    assert abs(result['started_at'] + result['elapsed'] - time.time()) < 5


def test_not_ready_fails_with_clear_message(server, capsys):
    server.statuses = [503]
    code, result = run_module({'url': server.url, 'interval': 0.05, 'timeout': 0.3}, capsys)

    assert code == 1
    assert result['failed'] is True
    assert result['changed'] is False
    assert result['ready'] is False
    assert result['last_status'] == 503
    assert result['last_error'] == 'status 503'
    msg = result['msg']
    assert msg.startswith('%s was not ready after 0.3s: %d attempts, 0 of 3 required consecutive passes'
                          % (server.url, result['attempts']))
    assert 'last result: status 503.' in msg
    assert "Check the application's logs" in msg


def test_connection_refused_message(closed_url, capsys):
    code, result = run_module({'url': closed_url, 'interval': 0.05, 'timeout': 0.2}, capsys)

    assert code == 1
    assert result['last_status'] is None
    assert result['last_error'] == 'connection refused'
    assert 'last result: connection refused.' in result['msg']


def test_incomplete_streak_message(server, capsys):
    server.statuses = [200]
    code, result = run_module({'url': server.url, 'passes': 1000, 'interval': 0.05, 'timeout': 0.2}, capsys)

    assert code == 1
    assert result['last_error'] is None
    assert result['passes'] == result['attempts']
    assert 'last result: status 200 (passed)' in result['msg']


def test_body_regex_and_headers_are_passed_through(server, capsys):
    server.body = 'status: booting'
    code, result = run_module({
        'url': server.url, 'body_regex': 'status: up', 'passes': 1, 'interval': 0.05, 'timeout': 0.2,
        'headers': {'Host': 'app.example.com'},
    }, capsys)

    assert code == 1
    assert result['last_error'].startswith("body did not match 'status: up'")


@pytest.mark.parametrize('args, fragment', [
    ({'passes': 0}, 'passes must be an integer >= 1, got 0'),
    ({'interval': 0}, 'interval must be > 0 and <= 60'),
    ({'interval': 120}, 'interval must be > 0 and <= 60'),
    ({'timeout': 0}, 'timeout must be > 0'),
    ({'request_timeout': -1}, 'request_timeout must be > 0'),
    ({'status_codes': [200, 700]}, 'between 100 and 599, got 700'),
    ({'body_regex': '(unclosed'}, 'body_regex'),
    ({'body_regex': 'ok', 'method': 'HEAD'}, 'body_regex cannot be used with method=HEAD'),
    ({'url': 'localhost:8080/healthz'}, 'url must be an absolute http:// or https:// URL'),
])
def test_invalid_params(server, capsys, args, fragment):
    params = {'url': server.url}
    params.update(args)
    code, result = run_module(params, capsys)

    assert code == 1
    assert result['failed'] is True
    assert result['msg'].startswith('Invalid parameters: ')
    assert fragment in result['msg']
    assert server.requests == []


def test_invalid_method_rejected_by_argument_spec(server, capsys):
    code, result = run_module({'url': server.url, 'method': 'POST'}, capsys)
    assert code == 1
    assert 'method' in result['msg'] and 'GET, HEAD' in result['msg']
    assert server.requests == []


def test_missing_url(capsys):
    code, result = run_module({}, capsys)
    assert code == 1
    assert 'url' in result['msg']


def test_check_mode_still_polls(server, capsys):
    code, result = run_module({
        'url': server.url, 'passes': 2, 'interval': 0.01, 'timeout': 5, 'method': 'HEAD',
        '_ansible_check_mode': True,
    }, capsys)

    assert code == 0
    assert result['changed'] is False
    assert result['ready'] is True
    assert server.requests == [('HEAD', '/healthz'), ('HEAD', '/healthz')]


def test_missing_requests_library(monkeypatch, capsys):
    monkeypatch.setattr(wait_ready, 'HAS_REQUESTS', False)
    monkeypatch.setattr(wait_ready, 'REQUESTS_IMPORT_ERROR', 'Traceback: No module named requests')
    code, result = run_module({'url': 'http://127.0.0.1/healthz'}, capsys)

    assert code == 1
    assert 'requests' in result['msg']
    assert 'Failed to import the required Python library' in result['msg']


def test_failure_message_formatting():
    result = ReadinessResult(ready=False, elapsed=1.0, attempts=1, passes=0, last_status=None,
                             last_error='connection refused')
    msg = wait_ready.failure_message('http://x/', 1.0, result, 3)
    assert msg.startswith('http://x/ was not ready after 1s: 1 attempt, 0 of 3 required consecutive passes, '
                          'last result: connection refused.')


def test_documentation_matches_argument_spec_and_results():
    doc = yaml.safe_load(wait_ready.DOCUMENTATION)
    returns = yaml.safe_load(wait_ready.RETURN)
    yaml.safe_load(wait_ready.EXAMPLES)

    assert doc['module'] == 'wait_ready'
    assert set(doc['options']) == {
        'url', 'status_codes', 'body_regex', 'expected_headers', 'passes', 'interval', 'timeout',
        'request_timeout', 'headers', 'method', 'validate_certs', 'ca_path', 'connect_to',
        'process_manager', 'unit', 'log_lines',
    }
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert doc['attributes']['diff_mode']['support'] == 'none'
    assert set(returns) == RESULT_KEYS == set(ReadinessResult.__slots__)


def test_exited_process_fails_at_once_with_exit_status_and_log_tail(closed_url, capsys, monkeypatch):
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        if argv[-1] == '/var/log/supervisor/supervisord.log':
            return 0, '2026-11-30 21:05:00,200 WARN exited: baton-shop-2 (exit status 3; not expected)\n', ''
        assert argv == ['tail', '-c', '16000', '/var/log/baton/shop-2.log']
        return 0, 'starting\ndemo_app: exiting at start with status 3 (EXIT_AT_START)\n', ''

    monkeypatch.setattr(wait_ready.AnsibleModule, 'run_command', run_command)
    supervisord = FakeSupervisord(getProcessInfo=info('BACKOFF', description='Exited too quickly (process log may have '
                                                                             'details)'))
    monkeypatch.setattr(process_managers, 'SupervisordRPC', lambda: supervisord)
    code, result = run_module({'url': closed_url, 'timeout': 60, 'process_manager': 'supervisor',
                               'unit': 'baton-shop-2', 'log_lines': 1}, capsys)

    assert code == 1
    assert set(result) >= RESULT_KEYS
    assert result['ready'] is False and result['attempts'] == 0
    assert result['process']['exit_status'] == 3 and result['process']['state'] == 'crash-loop'
    assert result['msg'] == (
        '%s was not ready: the process of baton-shop-2 exited with status 3 (crash loop; BACKOFF Exited too quickly '
        '(process log may have details)), %gs after polling started (0 attempts). Last line of its log:\n'
        'demo_app: exiting at start with status 3 (EXIT_AT_START)' % (closed_url, result['elapsed']))
    assert supervisord.calls[0] == ('getProcessInfo', 'baton-shop-2')
    assert calls[0] == ['tail', '-c', '16000', '/var/log/supervisor/supervisord.log']  # no supervisorctl run


def test_process_manager_needs_a_unit(server, capsys):
    code, result = run_module({'url': server.url, 'process_manager': 'systemd'}, capsys)
    assert code == 1
    assert 'parameters are required together: process_manager, unit' in result['msg']


def test_negative_log_lines_rejected(server, capsys):
    code, result = run_module({'url': server.url, 'process_manager': 'systemd', 'unit': 'x.service',
                               'log_lines': -1}, capsys)
    assert code == 1 and 'log_lines must be >= 0' in result['msg']


def test_failure_message_of_an_exited_process_with_an_empty_log():
    process = {'reason': 'the process of x exited', 'log_tail': ''}
    result = ReadinessResult(ready=False, elapsed=0.4, attempts=2, process=process)
    assert wait_ready.failure_message('http://x/', 60, result, 3) == (
        'http://x/ was not ready: the process of x exited, 0.4s after polling started (2 attempts). Its log is empty.')
    result.process['log_tail'] = 'a\nb'
    assert wait_ready.failure_message('http://x/', 60, result, 3).endswith('Last 2 lines of its log:\na\nb')
