# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP readiness polling used by the ``baton.deploy.wait_ready`` module.

This file is deliberately independent of ``AnsibleModule`` so it can be unit
tested (and reused by other plugins) without going through module plumbing.

The main entry point is :func:`wait_ready`, which polls a URL until it has seen
``passes`` *consecutive* successful responses or an overall deadline expires.
Any failed attempt (unexpected status, connection error, per-request timeout,
body or header mismatch) resets the consecutive counter to zero.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import time
import traceback
from urllib.parse import urlsplit, urlunsplit

try:
    import requests
    import requests.adapters
    import requests.exceptions
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None


if HAS_REQUESTS:
    class ConnectToAdapter(requests.adapters.HTTPAdapter):
        """Sends HTTPS requests to another address while naming the URL's host in TLS.

        Like ``curl --resolve``: the request URL names the address to connect to, and every
        connection of this adapter sends ``server_hostname`` as SNI and checks the server's
        certificate against it. One adapter serves one name (it is mounted per session).
        """

        def __init__(self, server_hostname, **kwargs):
            self.server_hostname = server_hostname
            super(ConnectToAdapter, self).__init__(**kwargs)

        def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
            pool_kwargs['server_hostname'] = self.server_hostname
            pool_kwargs['assert_hostname'] = self.server_hostname
            super(ConnectToAdapter, self).init_poolmanager(connections, maxsize, block=block, **pool_kwargs)


DEFAULT_STATUS_CODES = (200,)
DEFAULT_PASSES = 3
DEFAULT_INTERVAL = 0.2
MAX_INTERVAL = 60.0
DEFAULT_TIMEOUT = 60.0
MAX_REQUEST_TIMEOUT_DEFAULT = 2.0
METHODS = ('GET', 'HEAD')

# How much of a non-matching body is quoted back in last_error.
_BODY_SNIPPET_CHARS = 80


class ReadinessResult:
    """Outcome of a :func:`wait_ready` run.

    Attributes:
        ready: True when ``passes`` consecutive passes were seen before the deadline.
        elapsed: seconds from start to finish (rounded to 3 decimals).
        attempts: number of requests made.
        passes: length of the final streak of consecutive passes.
        last_status: HTTP status of the last attempt, or None if it got no response.
        last_error: why the last attempt failed, or None if it passed.
        first_pass_elapsed: seconds (since start) at which the first pass of the
            final streak was observed, or None when the final streak is empty.
        started_at: wall-clock time (epoch seconds) of the start, so runs on one host
            can be placed on one time line (e.g. ready on the slot, then routed by the proxy).
        last_headers: response headers of the last attempt, names in lower case ({} without a
            response), e.g. to read which upstream answered.
        process: None, or what the ``process_watch`` reported when it stopped the wait (the
            process behind the URL exited or crash-loops): a dict with at least ``reason``.
    """

    __slots__ = ('ready', 'elapsed', 'attempts', 'passes', 'last_status', 'last_error', 'first_pass_elapsed',
                 'started_at', 'last_headers', 'process')

    def __init__(self, ready=False, elapsed=0.0, attempts=0, passes=0, last_status=None, last_error=None,
                 first_pass_elapsed=None, started_at=None, last_headers=None, process=None):
        self.ready = ready
        self.elapsed = elapsed
        self.attempts = attempts
        self.passes = passes
        self.last_status = last_status
        self.last_error = last_error
        self.first_pass_elapsed = first_pass_elapsed
        self.started_at = started_at
        self.last_headers = {} if last_headers is None else last_headers
        self.process = process

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self):
        return 'ReadinessResult(%s)' % ', '.join('%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


def default_request_timeout(timeout):
    """Per-request timeout used when none is given: ``min(2, timeout)``."""
    return min(MAX_REQUEST_TIMEOUT_DEFAULT, float(timeout))


def validate_params(url, status_codes=DEFAULT_STATUS_CODES, body_regex=None, expected_headers=None,
                    passes=DEFAULT_PASSES, interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
                    request_timeout=None, method='GET', connect_to=None):
    """Check polling parameters.

    Returns a list of human-readable problems; an empty list means valid.
    """
    errors = []
    if not isinstance(url, str) or not re.match(r'^https?://[^/?#\s]+', url, re.IGNORECASE):
        errors.append('url must be an absolute http:// or https:// URL, got %r' % (url,))
    codes = list(status_codes or [])
    if not codes:
        errors.append('status_codes must contain at least one HTTP status code')
    bad_codes = [code for code in codes if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599]
    if bad_codes:
        errors.append('status_codes must be HTTP status codes between 100 and 599, got %s'
                      % ', '.join(repr(code) for code in bad_codes))
    if body_regex is not None:
        try:
            re.compile(body_regex)
        except re.error as exc:
            errors.append('body_regex %r is not a valid regular expression: %s' % (body_regex, exc))
        if str(method).upper() == 'HEAD':
            errors.append('body_regex cannot be used with method=HEAD (HEAD responses have no body)')
    for name, pattern in (expected_headers or {}).items():
        try:
            re.compile(str(pattern))
        except re.error as exc:
            errors.append('expected_headers[%r] = %r is not a valid regular expression: %s' % (name, pattern, exc))
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
        errors.append('passes must be an integer >= 1, got %r' % (passes,))
    if not _is_number(interval) or not 0 < interval <= MAX_INTERVAL:
        errors.append('interval must be > 0 and <= %g seconds, got %r' % (MAX_INTERVAL, interval))
    if not _is_number(timeout) or not 0 < timeout <= float('inf'):
        errors.append('timeout must be > 0 seconds, got %r' % (timeout,))
    if request_timeout is not None and (not _is_number(request_timeout) or not request_timeout > 0):
        errors.append('request_timeout must be > 0 seconds, got %r' % (request_timeout,))
    if str(method).upper() not in METHODS:
        errors.append('method must be one of %s, got %r' % (', '.join(METHODS), method))
    if connect_to is not None and not _is_address(connect_to):
        errors.append('connect_to must be an IP address or a host name without a port, got %r' % (connect_to,))
    return errors


_HOST_NAME_RE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z')


def _is_address(value):
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.ip_address(value.strip('[]'))
    except ValueError:
        return bool(_HOST_NAME_RE.match(value))
    return True


def connect_target(url, connect_to=None):
    """Where a request for ``url`` goes when it must connect to ``connect_to``.

    Returns ``(request_url, host_header, server_hostname)``: the URL with its host replaced by
    the address (its port and path kept), the Host header naming the URL's host (and port, as
    a browser sends it), and the name for SNI and the certificate check (None for http://).
    Without ``connect_to`` the URL is used as it is: ``(url, None, None)``.
    """
    if connect_to is None:
        return url, None, None
    parts = urlsplit(url)
    address = connect_to.strip('[]')
    if ':' in address:
        address = '[%s]' % address
    netloc = address if parts.port is None else '%s:%d' % (address, parts.port)
    request_url = urlunsplit((parts.scheme, netloc, parts.path or '/', parts.query, ''))
    host_header = parts.netloc.rpartition('@')[2]
    server_hostname = parts.hostname if parts.scheme.lower() == 'https' else None
    return request_url, host_header, server_hostname


def make_session(url, connect_to=None):
    """A ``requests.Session`` for polling ``url``, connecting to ``connect_to`` when set."""
    if not HAS_REQUESTS:
        raise RuntimeError('the requests library is required: %s' % REQUESTS_IMPORT_ERROR)
    session = requests.Session()
    server_hostname = connect_target(url, connect_to)[2]
    if server_hostname is not None:
        session.mount('https://', ConnectToAdapter(server_hostname))
    return session


def request_plan(url, headers=None, connect_to=None):
    """The URL to request and the headers to send: ``headers`` plus Host when connecting elsewhere.

    A Host given in ``headers`` wins (any capitalisation), as with ``curl -H``.
    """
    request_url, host_header, server_hostname = connect_target(url, connect_to)
    request_headers = {str(name): str(value) for name, value in (headers or {}).items()}
    if host_header is not None and not any(name.lower() == 'host' for name in request_headers):
        request_headers['Host'] = host_header
    return request_url, request_headers


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _iter_exception_chain(exc, _seen=None):
    """Yield ``exc`` and everything it wraps (requests/urllib3 nest exceptions deeply)."""
    seen = set() if _seen is None else _seen
    stack = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.append(getattr(current, 'reason', None))
        stack.append(current.__cause__)
        stack.append(current.__context__)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))


def describe_exception(exc, request_timeout=None):
    """Turn a requests exception into a short, stable ``last_error`` string."""
    chain = list(_iter_exception_chain(exc))
    timed_out = HAS_REQUESTS and isinstance(exc, requests.exceptions.Timeout)
    if timed_out or any(isinstance(item, (socket.timeout, TimeoutError)) for item in chain):
        if request_timeout is not None:
            return 'request timed out after %gs' % request_timeout
        return 'request timed out'
    for item in chain:
        if isinstance(item, ConnectionRefusedError) or getattr(item, 'errno', None) == errno.ECONNREFUSED:
            return 'connection refused'
    for item in chain:
        if isinstance(item, socket.gaierror) or type(item).__name__ == 'NameResolutionError':
            return 'name resolution failed: %s' % _short(item)
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError):
        return 'TLS error: %s' % _short(exc)
    for item in chain:
        if isinstance(item, ConnectionResetError):
            return 'connection reset by peer'
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectionError):
        return 'connection error: %s' % _short(exc)
    return 'request failed: %s: %s' % (type(exc).__name__, _short(exc))


def _short(value, limit=200):
    text = ' '.join(str(value).split())
    if len(text) > limit:
        text = text[:limit - 3] + '...'
    return text


def evaluate_response(response, status_codes, body_regex=None, expected_headers=None):
    """Decide whether one response is a pass.

    ``response`` needs ``status_code``, ``headers`` (case-insensitive mapping) and,
    when ``body_regex`` is set, ``text``. ``body_regex`` / the values of
    ``expected_headers`` may be strings or compiled patterns.

    Returns None for a pass, otherwise the reason it failed.
    """
    status = response.status_code
    if status not in status_codes:
        return 'status %s' % status
    if body_regex is not None:
        pattern = _compile(body_regex)
        body = response.text or ''
        if not pattern.search(body):
            return 'body did not match %r (body starts with %r)' % (pattern.pattern, body[:_BODY_SNIPPET_CHARS])
    for name, regex in (expected_headers or {}).items():
        value = response.headers.get(name)
        if value is None:
            return 'header %s missing' % name
        pattern = _compile(regex)
        if not pattern.search(value):
            return 'header %s value %r did not match %r' % (name, value, pattern.pattern)
    return None


def _compile(regex):
    return regex if hasattr(regex, 'search') else re.compile(str(regex))


def check_once(session, url, status_codes=DEFAULT_STATUS_CODES, body_regex=None, expected_headers=None,
               request_timeout=MAX_REQUEST_TIMEOUT_DEFAULT, headers=None, validate_certs=True, method='GET'):
    """Make a single request and evaluate it.

    ``validate_certs`` is passed to requests as ``verify``: a bool, or the path of a CA bundle.
    Returns ``(passed, status, error, headers)``; ``status`` is None and ``headers`` empty when
    no response arrived, ``error`` is None when the attempt passed; header names are lower case.
    """
    try:
        response = session.request(
            method.upper(), url,
            headers=headers or None,
            timeout=request_timeout,
            verify=validate_certs,
            allow_redirects=False,
        )
    except Exception as exc:  # requests raises many types; every one is a failed attempt
        return False, None, describe_exception(exc, request_timeout), {}
    received = {str(name).lower(): str(value) for name, value in response.headers.items()}
    try:
        error = evaluate_response(response, status_codes, body_regex, expected_headers)
    except Exception as exc:  # e.g. body decoding or connection dropped while reading the body
        error = 'reading response failed: %s' % describe_exception(exc, request_timeout)
    finally:
        close = getattr(response, 'close', None)
        if close is not None:
            close()
    return error is None, response.status_code, error, received


def wait_ready(url, status_codes=DEFAULT_STATUS_CODES, body_regex=None, expected_headers=None,
               passes=DEFAULT_PASSES, interval=DEFAULT_INTERVAL, timeout=DEFAULT_TIMEOUT,
               request_timeout=None, headers=None, validate_certs=True, method='GET', connect_to=None,
               ca_path=None, process_watch=None, session=None, clock=time.monotonic, sleep=time.sleep,
               wall_clock=time.time):
    """Poll ``url`` until ``passes`` consecutive attempts pass or ``timeout`` expires.

    At least one attempt is always made and no attempt starts after the deadline.
    Between attempts the poller sleeps ``interval`` seconds (less if the deadline
    is closer). Each request may take up to ``request_timeout`` seconds (default
    ``min(2, timeout)``); that is deliberately not shortened near the deadline, so
    the last attempt reports the endpoint's real behaviour rather than an
    artificial timeout. The total run time is therefore bounded by roughly
    ``timeout + request_timeout``. Redirects are not followed.

    ``connect_to`` (an address) sends the requests there instead of to the URL's host, which
    still names the site: Host header, and on https:// SNI and the certificate check (like
    ``curl --resolve``). ``ca_path`` is a CA bundle to verify the certificate against instead
    of the system's (only with ``validate_certs``).

    ``process_watch`` is a callable (e.g. ``process_managers.ProcessWatch``) run before every
    attempt: it returns None while the process that should answer runs or starts, else a dict
    saying why it is gone (with a ``reason``). The wait then stops at once: not ready, that dict
    as ``process``, its reason as ``last_error``. A crashed release fails within one interval
    instead of at the deadline.

    ``session`` is a ``requests.Session`` (or anything with a compatible
    ``request()`` method); one is created (:func:`make_session`) and closed here when omitted.
    ``clock``, ``sleep`` and ``wall_clock`` are injectable for tests.

    Raises ValueError when the parameters are invalid (see :func:`validate_params`).
    Returns a :class:`ReadinessResult`.
    """
    errors = validate_params(url, status_codes, body_regex, expected_headers, passes, interval, timeout,
                             request_timeout, method, connect_to)
    if errors:
        raise ValueError('; '.join(errors))
    if request_timeout is None:
        request_timeout = default_request_timeout(timeout)
    status_codes = frozenset(status_codes)
    body_pattern = re.compile(body_regex) if body_regex is not None else None
    header_patterns = {str(name): re.compile(str(regex)) for name, regex in (expected_headers or {}).items()}
    request_url, request_headers = request_plan(url, headers, connect_to)
    verify = ca_path if validate_certs and ca_path else validate_certs

    own_session = session is None
    if own_session:
        session = make_session(url, connect_to)

    result = ReadinessResult(started_at=round(wall_clock(), 3))
    start = clock()
    deadline = start + timeout
    try:
        while True:
            failure = process_watch() if process_watch is not None else None
            if failure is not None:
                result.process = failure
                result.last_error = failure['reason']
                result.passes = 0
                result.first_pass_elapsed = None
                break
            passed, status, error, received = check_once(
                session, request_url,
                status_codes=status_codes,
                body_regex=body_pattern,
                expected_headers=header_patterns,
                request_timeout=request_timeout,
                headers=request_headers,
                validate_certs=verify,
                method=method,
            )
            now = clock()
            result.attempts += 1
            result.last_status = status
            result.last_error = error
            result.last_headers = received
            if passed:
                if result.passes == 0:
                    result.first_pass_elapsed = round(now - start, 3)
                result.passes += 1
                if result.passes >= passes:
                    result.ready = True
                    break
            else:
                result.passes = 0
                result.first_pass_elapsed = None

            remaining = deadline - now
            if remaining <= 0:
                break
            sleep(min(interval, remaining))
            if clock() >= deadline:
                break
    finally:
        if own_session:
            session.close()
    result.elapsed = round(clock() - start, 3)
    return result


class WatchResult:
    """Outcome of a :func:`watch` run.

    Attributes:
        healthy: True when the endpoint never failed ``failures`` checks in a row during the watch.
        elapsed: seconds the watch ran (shorter than the duration when it found a failure).
        attempts: number of requests made.
        failed_after: seconds into the watch at which the first of the failing run of checks was
            made, or None when healthy.
        last_status: HTTP status of the last attempt, or None if it got no response.
        last_error: why the last attempt failed, or None if it passed.
    """

    __slots__ = ('healthy', 'elapsed', 'attempts', 'failed_after', 'last_status', 'last_error')

    def __init__(self):
        self.healthy = True
        self.elapsed = 0.0
        self.attempts = 0
        self.failed_after = None
        self.last_status = None
        self.last_error = None

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


def watch(url, duration, failures=2, status_codes=DEFAULT_STATUS_CODES, interval=0.5, request_timeout=None,
          headers=None, validate_certs=True, session=None, clock=time.monotonic, sleep=time.sleep):
    """Check ``url`` for ``duration`` seconds; stop at the first run of ``failures`` failed checks.

    The counterpart of :func:`wait_ready` once an endpoint is in service: it must *stay* ready.
    A single failed check followed by a pass is tolerated when ``failures`` > 1. Returns a
    :class:`WatchResult`; raises ValueError on invalid parameters.
    """
    errors = validate_params(url, status_codes, interval=interval, timeout=duration, request_timeout=request_timeout)
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        errors.append('failures must be an integer >= 1, got %r' % (failures,))
    if errors:
        raise ValueError('; '.join(errors))
    if request_timeout is None:
        request_timeout = default_request_timeout(min(duration, interval * 4))
    own_session = session is None
    if own_session:
        if not HAS_REQUESTS:
            raise RuntimeError('the requests library is required: %s' % REQUESTS_IMPORT_ERROR)
        session = requests.Session()
    result = WatchResult()
    start = clock()
    streak, streak_start = 0, None
    try:
        while True:
            attempt_at = clock() - start
            passed, status, error, _headers = check_once(
                session, url, status_codes=frozenset(status_codes), request_timeout=request_timeout,
                headers={str(k): str(v) for k, v in (headers or {}).items()}, validate_certs=validate_certs)
            result.attempts += 1
            result.last_status, result.last_error = status, error
            if passed:
                streak, streak_start = 0, None
            else:
                streak += 1
                streak_start = attempt_at if streak_start is None else streak_start
                if streak >= failures:
                    result.healthy = False
                    result.failed_after = round(streak_start, 3)
                    break
            remaining = duration - (clock() - start)
            if remaining <= 0:
                break
            sleep(min(interval, remaining))
    finally:
        if own_session:
            session.close()
    result.elapsed = round(clock() - start, 3)
    return result
