# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ansible_collections.baton.deploy.plugins.module_utils import readiness
from ansible_collections.baton.deploy.plugins.module_utils.readiness import (
    ReadinessResult,
    check_once,
    default_request_timeout,
    describe_exception,
    evaluate_response,
    validate_params,
    wait_ready,
    watch,
)


# --------------------------------------------------------------------------------------------
# A real HTTP server on 127.0.0.1 whose replies are scripted per test.
# --------------------------------------------------------------------------------------------

class Reply:
    def __init__(self, status=200, body='ok', headers=None, delay=0.0):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.delay = delay


class ScriptedServer:
    """Serves ``script`` in order; the last reply repeats (or the whole script cycles)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._script = [Reply()]
        self._cycle = False
        self.requests = []  # (method, path, headers) per request received
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms delayed-ACK stalls

            def do_GET(self):
                self._reply(send_body=True)

            def do_HEAD(self):
                self._reply(send_body=False)

            def _reply(self, send_body):
                reply = owner._next(self.command, self.path, dict(self.headers))
                if reply.delay:
                    time.sleep(reply.delay)
                body = b'' if reply.status in (204, 304) else reply.body.encode('utf-8')
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header('Content-Type', 'text/plain; charset=utf-8')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format, *args):  # keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                # Clients that gave up (per-request timeouts) cause broken pipes; that is expected.
                pass

        self._httpd = Server(('127.0.0.1', 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2)

    def url(self, path='/healthz'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def script(self, *replies, cycle=False):
        with self._lock:
            self._script = [r if isinstance(r, Reply) else Reply(status=r) for r in replies]
            self._cycle = cycle
            self.requests = []

    def _next(self, method, path, headers):
        with self._lock:
            index = len(self.requests)
            self.requests.append((method, path, headers))
            if self._cycle:
                return self._script[index % len(self._script)]
            return self._script[min(index, len(self._script) - 1)]


@pytest.fixture
def server():
    srv = ScriptedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


FAST = dict(interval=0.01, timeout=5)


# --------------------------------------------------------------------------------------------
# Against the real server
# --------------------------------------------------------------------------------------------

def test_ready_after_initial_failures(server):
    server.script(503, 503, 200)
    result = wait_ready(server.url(), passes=3, **FAST)

    assert isinstance(result, ReadinessResult)
    assert result.ready is True
    assert result.attempts == 5
    assert result.passes == 3
    assert result.last_status == 200
    assert result.last_error is None
    assert 0 < result.first_pass_elapsed <= result.elapsed
    assert len(server.requests) == 5
    assert result.as_dict() == {
        'ready': True, 'elapsed': result.elapsed, 'attempts': 5, 'passes': 3, 'last_status': 200,
        'last_error': None, 'first_pass_elapsed': result.first_pass_elapsed, 'started_at': result.started_at,
        'last_headers': result.last_headers, 'process': None,
    }
    assert result.last_headers['content-type'] == 'text/plain; charset=utf-8'


def test_first_success_is_enough_with_one_pass(server):
    server.script(200)
    result = wait_ready(server.url(), passes=1, **FAST)
    assert result.ready and result.attempts == 1 and result.passes == 1


def test_flapping_resets_consecutive_counter(server):
    server.script(200, 503, 200, 200, 503, 200, 200, 200)
    result = wait_ready(server.url(), passes=3, **FAST)

    assert result.ready is True
    # Streaks of 1 and 2 were broken by a 503; only the final streak of 3 counts.
    assert result.attempts == 8
    assert result.passes == 3


def test_flapping_forever_is_never_ready(server):
    server.script(200, 503, cycle=True)
    result = wait_ready(server.url(), passes=2, interval=0.01, timeout=0.4)

    assert result.ready is False
    assert result.passes <= 1
    assert result.attempts >= 4
    assert result.last_status in (200, 503)
    if result.last_status == 503:
        assert result.last_error == 'status 503' and result.first_pass_elapsed is None
    else:
        assert result.last_error is None and result.first_pass_elapsed is not None


def test_timeout_exhaustion(server):
    server.script(503)
    started = time.monotonic()
    result = wait_ready(server.url(), passes=1, interval=0.05, timeout=0.5)
    took = time.monotonic() - started

    assert result.ready is False
    assert result.last_status == 503
    assert result.last_error == 'status 503'
    assert result.passes == 0
    assert result.first_pass_elapsed is None
    assert 0.5 <= result.elapsed < 1.5
    assert took < 1.5
    assert 3 <= result.attempts <= 11
    assert len(server.requests) == result.attempts


def test_custom_status_codes_and_redirects_not_followed(server):
    server.script(Reply(302, headers={'Location': '/elsewhere'}))
    result = wait_ready(server.url('/start'), status_codes=[301, 302], passes=2, **FAST)

    assert result.ready is True
    assert result.last_status == 302
    assert [path for _method, path, _headers in server.requests] == ['/start', '/start']


def test_status_not_in_list_fails(server):
    server.script(204)
    result = wait_ready(server.url(), passes=1, interval=0.01, timeout=0.2)
    assert result.ready is False
    assert result.last_status == 204
    assert result.last_error == 'status 204'


def test_body_regex_must_match(server):
    server.script(Reply(200, body='{"status": "starting"}'), Reply(200, body='{"status": "ok"}'))
    result = wait_ready(server.url(), body_regex=r'"status":\s*"ok"', passes=2, **FAST)

    assert result.ready is True
    assert result.attempts == 3


def test_body_regex_mismatch_reported(server):
    server.script(Reply(200, body='still booting'))
    result = wait_ready(server.url(), body_regex='^ready$', passes=1, interval=0.01, timeout=0.2)

    assert result.ready is False
    assert result.last_status == 200
    assert result.last_error.startswith("body did not match '^ready$'")
    assert 'still booting' in result.last_error


def test_expected_headers_match_case_insensitively(server):
    server.script(
        Reply(200, headers={'X-App-Release': 'v1.9'}),
        Reply(200),  # header missing
        Reply(200, headers={'X-App-Release': 'v2.0'}),
    )
    result = wait_ready(server.url(), expected_headers={'x-app-release': r'^v2\.'}, passes=2, **FAST)

    assert result.ready is True
    assert result.attempts == 4


def test_expected_header_missing_reported(server):
    server.script(200)
    result = wait_ready(server.url(), expected_headers={'X-App-Release': '.*'}, passes=1,
                        interval=0.01, timeout=0.2)
    assert result.ready is False
    assert result.last_error == 'header X-App-Release missing'


def test_expected_header_mismatch_reported(server):
    server.script(Reply(200, headers={'X-App-Release': 'v1.9'}))
    result = wait_ready(server.url(), expected_headers={'X-App-Release': '^v2'}, passes=1,
                        interval=0.01, timeout=0.2)
    assert result.ready is False
    assert result.last_error == "header X-App-Release value 'v1.9' did not match '^v2'"


def test_request_headers_and_head_method(server):
    server.script(200)
    result = wait_ready(server.url(), method='HEAD', headers={'Host': 'app.example.com', 'X-Probe': 1},
                        passes=2, **FAST)

    assert result.ready is True
    assert [method for method, _path, _headers in server.requests] == ['HEAD', 'HEAD']
    sent = server.requests[0][2]
    assert sent['Host'] == 'app.example.com'
    assert sent['X-Probe'] == '1'


def test_connection_refused(closed_port):
    result = wait_ready('http://127.0.0.1:%d/healthz' % closed_port, passes=1, interval=0.05, timeout=0.3)

    assert result.ready is False
    assert result.last_status is None
    assert result.last_error == 'connection refused'
    assert result.attempts >= 2
    assert result.passes == 0


def test_slow_request_times_out_and_resets(server):
    server.script(Reply(200, delay=0.5), Reply(200))
    result = wait_ready(server.url(), request_timeout=0.1, passes=2, **FAST)

    assert result.ready is True
    assert result.attempts == 3
    assert result.elapsed < 0.5


def test_slow_requests_until_deadline(server):
    server.script(Reply(200, delay=1.0))
    result = wait_ready(server.url(), request_timeout=0.1, passes=1, interval=0.01, timeout=0.3)

    assert result.ready is False
    assert result.last_status is None
    assert result.last_error == 'request timed out after 0.1s'
    assert result.elapsed < 0.8


def test_passed_session_is_used_and_not_closed(server):
    server.script(200)
    with requests.Session() as session:
        calls = []
        original = session.request

        def spy(*args, **kwargs):
            calls.append(kwargs)
            return original(*args, **kwargs)

        session.request = spy
        result = wait_ready(server.url(), passes=2, session=session, validate_certs=False, **FAST)
        assert result.ready
        assert len(calls) == 2
        assert calls[0]['verify'] is False
        assert calls[0]['allow_redirects'] is False
        # Still usable: wait_ready did not close a session it did not create.
        assert session.get(server.url(), timeout=2).status_code == 200


# --------------------------------------------------------------------------------------------
# Deterministic timing with an injected clock, sleep and session
# --------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class FakeResponse:
    def __init__(self, status=200, text='', headers=None):
        self.status_code = status
        self.text = text
        self.headers = requests.structures.CaseInsensitiveDict(headers or {})
        self.closed = False

    def close(self):
        self.closed = True


class FakeSession:
    """Returns/raises scripted outcomes; each request takes ``duration`` fake seconds."""

    def __init__(self, clock, outcomes, duration=0.0):
        self.clock = clock
        self.outcomes = list(outcomes)
        self.duration = duration
        self.calls = []
        self.responses = []

    def request(self, method, url, **kwargs):
        self.calls.append(dict(kwargs, method=method, url=url, at=self.clock.now))
        self.clock.now += self.duration
        outcome = self.outcomes[min(len(self.calls), len(self.outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        response = outcome if isinstance(outcome, FakeResponse) else FakeResponse(outcome)
        self.responses.append(response)
        return response


def run_fake(outcomes, duration=0.0, **kwargs):
    clock = FakeClock()
    session = FakeSession(clock, outcomes, duration)
    result = wait_ready('http://app.test/healthz', session=session, clock=clock, sleep=clock.sleep, **kwargs)
    return result, clock, session


def test_fake_deadline_and_interval():
    result, clock, session = run_fake([503], timeout=1, interval=0.25, passes=1)

    assert result.ready is False
    assert result.attempts == 4
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]
    assert result.elapsed == 1.0
    assert [call['at'] for call in session.calls] == [100.0, 100.25, 100.5, 100.75]


def test_fake_last_sleep_capped_to_deadline():
    result, clock, _session = run_fake([503], timeout=1, interval=0.4, passes=1)

    assert result.attempts == 3
    assert clock.sleeps == [0.4, 0.4, 0.2]
    assert result.elapsed == 1.0


def test_fake_request_timeout_default_and_no_attempt_after_deadline():
    result, _clock, session = run_fake([503], duration=0.5, timeout=1.5, interval=0.1, passes=1)

    assert default_request_timeout(60) == 2.0
    assert default_request_timeout(1.5) == 1.5
    # default min(2, 1.5) = 1.5, not shortened near the deadline (so the last error is genuine)
    assert [call['timeout'] for call in session.calls] == [1.5, 1.5, 1.5]
    # attempts start at t=0, 0.6, 1.2; the one started before the deadline may finish after it
    assert [round(call['at'] - 100, 6) for call in session.calls] == [0.0, 0.6, 1.2]
    assert result.attempts == 3
    assert result.elapsed == 1.7


def test_fake_explicit_request_timeout():
    _result, _clock, session = run_fake([200], timeout=10, request_timeout=0.75, passes=2)
    assert [call['timeout'] for call in session.calls] == [0.75, 0.75]


def test_fake_started_at_is_the_wall_clock_at_start():
    clock = FakeClock()
    session = FakeSession(clock, [503, 200], 0.0)
    result = wait_ready('http://app.test/readyz', session=session, clock=clock, sleep=clock.sleep,
                        wall_clock=lambda: 1700000000.12345, timeout=10, interval=1, passes=1)
    assert result.started_at == 1700000000.123
    assert result.elapsed == 1.0


def test_fake_first_pass_elapsed_tracks_final_streak():
    result, _clock, session = run_fake([503, 200, 503, 200, 200, 200], timeout=100, interval=1, passes=3)

    assert result.ready is True
    assert result.attempts == 6
    assert result.first_pass_elapsed == 3.0
    assert result.elapsed == 5.0
    assert all(response.closed for response in session.responses)


def test_fake_incomplete_streak_at_deadline():
    result, _clock, _session = run_fake([503, 200], timeout=2.5, interval=1, passes=5)

    assert result.ready is False
    assert result.passes == 2
    assert result.first_pass_elapsed == 1.0
    assert result.last_status == 200
    assert result.last_error is None


def test_fake_always_makes_one_attempt_even_if_first_request_is_slow():
    result, _clock, _session = run_fake([200], duration=5, timeout=1, passes=2)
    assert result.attempts == 1
    assert result.ready is False
    assert result.passes == 1
    assert result.elapsed == 5.0


def test_fake_request_arguments():
    _result, _clock, session = run_fake([200], timeout=1, passes=1, method='head',
                                        headers={'Host': 'app.example.com'}, validate_certs=False)
    call = session.calls[0]
    assert call['method'] == 'HEAD'
    assert call['url'] == 'http://app.test/healthz'
    assert call['headers'] == {'Host': 'app.example.com'}
    assert call['verify'] is False
    assert call['allow_redirects'] is False


@pytest.mark.parametrize('exc, expected', [
    (requests.exceptions.ConnectTimeout('connect timed out'), 'request timed out after 0.5s'),
    (requests.exceptions.ReadTimeout('read timed out'), 'request timed out after 0.5s'),
    (requests.exceptions.SSLError('certificate verify failed'), 'TLS error: certificate verify failed'),
    (requests.exceptions.ConnectionError('boom'), 'connection error: boom'),
    (requests.exceptions.InvalidHeader('bad header'), 'request failed: InvalidHeader: bad header'),
])
def test_fake_exceptions_are_described(exc, expected):
    result, _clock, _session = run_fake([exc], timeout=0.5, interval=1, passes=1)
    assert result.ready is False
    assert result.last_status is None
    assert result.last_error == expected


def test_describe_exception_finds_nested_connection_refused():
    wrapped = None
    try:
        try:
            raise ConnectionRefusedError(111, 'Connection refused')
        except OSError as inner:
            raise OSError('Failed to establish a new connection') from inner
    except OSError as middle:
        wrapped = requests.exceptions.ConnectionError(middle)
    assert describe_exception(wrapped) == 'connection refused'


def test_describe_exception_name_resolution():
    wrapped = requests.exceptions.ConnectionError(socket.gaierror(-2, 'Name or service not known'))
    assert describe_exception(wrapped).startswith('name resolution failed')


def test_evaluate_response_order_and_messages():
    response = FakeResponse(200, text='x' * 200, headers={'X-A': '1'})
    assert evaluate_response(response, {200}) is None
    assert evaluate_response(response, {204}) == 'status 200'
    message = evaluate_response(response, {200}, body_regex='y')
    assert message == "body did not match 'y' (body starts with %r)" % ('x' * 80)
    assert evaluate_response(response, {200}, expected_headers={'x-a': '^1$'}) is None
    assert evaluate_response(response, {200}, expected_headers={'X-B': ''}) == 'header X-B missing'


def test_check_once_reports_body_read_failure():
    class BrokenBody(FakeResponse):
        @property
        def text(self):
            raise requests.exceptions.ChunkedEncodingError('connection broken')

        @text.setter
        def text(self, value):
            pass

    clock = FakeClock()
    response = BrokenBody(200)
    session = FakeSession(clock, [response])
    passed, status, error, _headers = check_once(session, 'http://app.test/', {200}, body_regex='ok')
    assert passed is False
    assert status == 200
    assert error.startswith('reading response failed:')
    assert response.closed


# --------------------------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------------------------

def test_validate_params_accepts_defaults():
    assert validate_params('http://127.0.0.1:8080/healthz') == []
    assert validate_params('HTTPS://example.com', status_codes=[100, 599], method='HEAD') == []


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(url='127.0.0.1:8080/healthz'), 'url must be an absolute http:// or https:// URL'),
    (dict(url='ftp://example.com/'), 'url must be an absolute'),
    (dict(passes=0), 'passes must be an integer >= 1'),
    (dict(interval=0), 'interval must be > 0 and <= 60'),
    (dict(interval=61), 'interval must be > 0 and <= 60'),
    (dict(timeout=0), 'timeout must be > 0'),
    (dict(timeout=-1), 'timeout must be > 0'),
    (dict(request_timeout=0), 'request_timeout must be > 0'),
    (dict(status_codes=[200, 600]), 'between 100 and 599, got 600'),
    (dict(status_codes=[99]), 'between 100 and 599, got 99'),
    (dict(status_codes=[]), 'at least one HTTP status code'),
    (dict(body_regex='('), 'body_regex'),
    (dict(body_regex='ok', method='HEAD'), 'body_regex cannot be used with method=HEAD'),
    (dict(expected_headers={'X-A': '['}), "expected_headers['X-A']"),
    (dict(method='POST'), 'method must be one of GET, HEAD'),
])
def test_validate_params_rejects(kwargs, fragment):
    params = dict(url='http://127.0.0.1/healthz')
    params.update(kwargs)
    errors = validate_params(**params)
    assert len(errors) == 1
    assert fragment in errors[0]


def test_wait_ready_raises_on_invalid_params():
    session = FakeSession(FakeClock(), [200])
    with pytest.raises(ValueError, match='passes must be an integer >= 1'):
        wait_ready('http://app.test/', passes=0, session=session)
    assert session.calls == []


def test_import_guard_flags():
    assert readiness.HAS_REQUESTS is True
    assert readiness.REQUESTS_IMPORT_ERROR is None


# --------------------------------------------------------------------------------------------
# watch(): the endpoint must stay ready
# --------------------------------------------------------------------------------------------

def run_watch(outcomes, **kwargs):
    clock = FakeClock()
    session = FakeSession(clock, outcomes)
    result = watch('http://app.test/readyz', session=session, clock=clock, sleep=clock.sleep, **kwargs)
    return result, clock, session


def test_watch_healthy_for_the_whole_duration():
    result, clock, session = run_watch([200], duration=3, interval=1)
    assert result.healthy is True and result.failed_after is None
    assert result.attempts == 4 and len(session.calls) == 4  # at 0, 1, 2 and 3 s
    assert clock.sleeps == [1, 1, 1]
    assert result.elapsed == 3.0


def test_watch_stops_at_the_first_run_of_failures():
    result, _clock, session = run_watch([200, 200, 503, 503, 200], duration=10, interval=1, failures=2)
    assert result.healthy is False
    assert result.failed_after == 2.0  # the first of the two failures
    assert (result.attempts, result.last_status, result.last_error) == (4, 503, 'status 503')
    assert result.elapsed == 3.0


def test_watch_tolerates_a_single_blip():
    result, _clock, _session = run_watch([200, 503, 200, 200], duration=3, interval=1, failures=2)
    assert result.healthy is True and result.attempts == 4


def test_watch_connection_refused_counts_as_failure():
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, 'Connection refused'))
    result, _clock, _session = run_watch([200, refused], duration=5, interval=0.5, failures=1)
    assert result.healthy is False
    assert (result.failed_after, result.last_status, result.last_error) == (0.5, None, 'connection refused')


@pytest.mark.parametrize('kwargs, fragment', [
    ({'duration': 0}, 'timeout must be > 0'),
    ({'duration': 5, 'failures': 0}, 'failures must be an integer >= 1'),
    ({'duration': 5, 'interval': 0}, 'interval must be > 0'),
])
def test_watch_invalid_params(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        watch('http://app.test/readyz', **kwargs)


def test_watch_real_server(server):
    server.script(200, 200, 500)
    result = watch(server.url(), duration=5, interval=0.01, failures=1)
    assert result.healthy is False and result.last_status == 500
    assert len(server.requests) == 3


# --------------------------------------------------------------------------------------------
# The process watch: a slot whose process exits stops the wait at once (fake clock, fake runner).
# --------------------------------------------------------------------------------------------

class ScriptedSystemd:
    """A fake ``systemctl show`` / ``journalctl`` runner: the unit's state per call of ``systemctl show``
    (the last one repeats), read on the shared fake clock."""

    RUNNING = 'ActiveState=active\nSubState=running\nResult=success\nExecMainCode=0\nExecMainStatus=0\nNRestarts=0\n'
    STARTING = 'ActiveState=activating\nSubState=start\nResult=success\nExecMainCode=0\nExecMainStatus=0\nNRestarts=0\n'
    EXITED_3 = ('ActiveState=activating\nSubState=auto-restart\nResult=exit-code\nExecMainCode=1\nExecMainStatus=3\n'
                'NRestarts=0\n')
    BACK_AFTER_CRASH = 'ActiveState=active\nSubState=running\nResult=success\nExecMainCode=0\nNRestarts=1\n'

    def __init__(self, clock, states, log='boot\nTraceback\nSystemExit: 3\n'):
        self.clock = clock
        self.states = list(states)
        self.log = log
        self.shows = []  # fake time of each systemctl show

    def __call__(self, argv):
        if argv[0] == 'systemctl':
            self.shows.append(self.clock.now)
            return 0, self.states[min(len(self.shows), len(self.states)) - 1], ''
        assert argv[0] == 'journalctl'
        return 0, self.log, ''


def run_watched(outcomes, states, **kwargs):
    from ansible_collections.baton.deploy.plugins.module_utils.process_managers import ProcessWatch, Systemd

    clock = FakeClock()
    session = FakeSession(clock, outcomes, 0.0)
    runner = ScriptedSystemd(clock, states)
    watch = ProcessWatch(Systemd(runner), 'baton-shop@2.service')
    result = wait_ready('http://app.test/readyz', session=session, clock=clock, sleep=clock.sleep,
                        process_watch=watch, **kwargs)
    return result, session, runner


def test_watch_exited_process_stops_the_wait_on_the_next_poll():
    running = ScriptedSystemd.RUNNING
    # Refused twice while the process runs, then it exits: the third poll sees it and nothing more is requested.
    result, session, runner = run_watched([ConnectionRefusedError('refused')], [running, running,
                                          ScriptedSystemd.EXITED_3], timeout=60, interval=0.2)

    assert result.ready is False
    assert result.attempts == 2 and len(session.calls) == 2
    assert result.elapsed == 0.4  # two intervals, not the 60 s timeout
    assert runner.shows == [100.0, 100.2, 100.4]
    assert result.process['state'] == 'crash-loop'
    assert result.process['exit_status'] == 3
    assert result.process['log_tail'] == 'boot\nTraceback\nSystemExit: 3'
    assert result.last_error == result.process['reason'] == (
        'the process of baton-shop@2.service exited with status 3 (crash loop; activating/auto-restart, '
        'result exit-code)')
    assert result.as_dict()['process'] is result.process


def test_watch_process_that_is_already_gone_fails_before_any_request():
    result, session, _runner = run_watched([200], [ScriptedSystemd.EXITED_3], timeout=60)
    assert (result.ready, result.attempts, session.calls, result.elapsed) == (False, 0, [], 0.0)


def test_watch_crash_loop_caught_while_running_again():
    result, _session, _runner = run_watched([503], [ScriptedSystemd.RUNNING, ScriptedSystemd.BACK_AFTER_CRASH],
                                            timeout=60, interval=1)
    assert (result.ready, result.attempts, result.elapsed) == (False, 1, 1.0)
    assert result.process['state'] == 'crash-loop' and result.process['restarts'] == 1


def test_watch_still_starting_is_not_flagged():
    # Starting, then running and warming up (503), then ready: the watch never interrupts.
    result, session, runner = run_watched([503, 503, 200], [ScriptedSystemd.STARTING, ScriptedSystemd.RUNNING],
                                          timeout=60, interval=0.5, passes=2)
    assert result.ready is True and result.process is None
    assert result.attempts == 4
    assert len(runner.shows) == 4  # asked before every attempt


def test_watch_does_not_change_the_timeout_of_a_live_process():
    result, _session, runner = run_watched([503], [ScriptedSystemd.RUNNING], timeout=1, interval=0.25, passes=1)
    assert (result.ready, result.process, result.attempts, result.elapsed) == (False, None, 4, 1.0)
    assert result.last_error == 'status 503'
