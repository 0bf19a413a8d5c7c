# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for tests/apps/demo/demo_app.py: the app runs as a real subprocess on loopback."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "apps" / "demo" / "demo_app.py"
# Variables the app reads: never inherit them from the developer's shell.
APP_VARS = ("PORT", "BIND", "BATON_SLOT", "BATON_RELEASE", "WARMUP_SECONDS",
            "DRAIN_SECONDS", "DRAIN_TIMEOUT", "ACCESS_LOG", "READYZ_STATUS", "EXIT_AT_START",
            "CRASH_AFTER_SECONDS", "EXIT_AFTER_SECONDS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in APP_VARS}
    env.update(extra)
    return env


def request(port: int, path: str, timeout: float = 5.0):
    """GET path; return (status, headers, parsed JSON body). Never raises on 4xx/5xx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.headers, json.loads(body) if body else None
    finally:
        conn.close()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


class App:
    def __init__(self, proc: subprocess.Popen, port: int, started: float) -> None:
        self.proc, self.port, self.started = proc, port, started

    def get(self, path: str, timeout: float = 5.0):
        return request(self.port, path, timeout)

    def stats(self) -> dict:
        return self.get("/stats")[2]


@pytest.fixture
def start_app():
    """Factory: start the app with extra env (and optionally another script path)."""
    procs = []

    def start(script: Path = APP, **env: str) -> App:
        port = free_port()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=clean_env(PORT=str(port), **env),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        app = App(proc, port, started)

        def live():
            if proc.poll() is not None:
                pytest.fail(f"app exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                return app.get("/livez", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(live, timeout=10)
        return app

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        proc.stderr.close()


def test_warming_instance_is_live_but_not_ready(start_app):
    app = start_app(WARMUP_SECONDS="30")
    status, _headers, body = app.get("/livez")
    assert (status, body["status"]) == (200, "warming")
    assert app.get("/readyz")[0] == 503
    assert app.get("/healthz")[0] == 503
    assert app.get("/")[0] == 503
    assert app.get("/slow?ms=1")[0] == 503
    stats = app.stats()
    assert stats["ready"] is False and stats["draining"] is False


def test_becomes_ready_after_warmup(start_app):
    app = start_app(WARMUP_SECONDS="0.5")
    seen = []

    def ready():
        seen.append(app.get("/readyz")[0])
        return seen[-1] == 200

    wait_for(ready, timeout=5)
    # The app cannot be ready before WARMUP_SECONDS since it was spawned.
    assert time.monotonic() - app.started >= 0.5
    assert set(seen) <= {503, 200}
    assert app.get("/healthz")[0] == 200
    status, _headers, body = app.get("/")
    assert (status, body["status"]) == (200, "ready")


def test_body_and_headers(start_app):
    app = start_app(BATON_RELEASE="r42", BATON_SLOT="1")
    status, headers, body = app.get("/")
    assert status == 200
    assert body == {"release": "r42", "slot": "1", "status": "ready"}
    assert headers["Content-Type"] == "application/json"
    for path in ("/", "/livez", "/readyz", "/stats", "/nope", "/slow?ms=x"):
        _status, headers, _body = app.get(path)
        assert (headers["X-Release"], headers["X-Slot"]) == ("r42", "1"), path
        assert int(headers["Content-Length"]) > 0


def test_release_file_fallback(start_app, tmp_path):
    script = tmp_path / "demo_app.py"
    shutil.copy(APP, script)
    assert start_app(script=script).get("/")[1]["X-Release"] == "dev"
    (tmp_path / "RELEASE").write_text("20260101-abc\n")
    _status, headers, body = start_app(script=script).get("/")
    assert headers["X-Release"] == body["release"] == "20260101-abc"
    assert headers["X-Slot"] == "0"


def test_keep_alive(start_app):
    app = start_app()
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    try:
        for path in ("/", "/livez", "/stats"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and not resp.will_close
    finally:
        conn.close()


def test_post_reads_the_body_on_a_kept_alive_connection(start_app):
    app = start_app(BATON_RELEASE="r7")
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    try:
        for size in (0, 5, 70000):
            conn.request("POST", "/", body=b"x" * size, headers={"Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            assert (resp.status, json.loads(resp.read())) == (200, {"release": "r7", "slot": "0", "received": size})
            assert not resp.will_close
        conn.request("POST", "/nope", body=b"x")
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
    finally:
        conn.close()


def test_post_while_warming_is_503(start_app):
    app = start_app(WARMUP_SECONDS="30")
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    try:
        conn.request("POST", "/", body=b"abc")
        assert conn.getresponse().status == 503
    finally:
        conn.close()


def test_slow(start_app):
    app = start_app()
    t0 = time.monotonic()
    status, _headers, body = app.get("/slow?ms=200")
    assert status == 200 and body["slept_ms"] == 200
    assert time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("query", ["", "?ms=", "?ms=abc", "?ms=-5", "?ms=1.5", "?ms=%C2%B2"])
def test_slow_bad_ms(start_app, query):
    assert start_app().get("/slow" + query)[0] == 400


def test_unknown_path_404(start_app):
    status, _headers, body = start_app().get("/does/not/exist")
    assert status == 404 and body["error"] == "not found"


def test_stats_counts_in_flight_but_not_itself(start_app):
    app = start_app()
    # The fixture's /livez is counted until its handler returns, which may be just after the client
    # has read the response: wait for it rather than assert at once (flaky under xdist).
    wait_for(lambda: app.stats()["in_flight"] == 0)
    t = threading.Thread(target=app.get, args=("/slow?ms=400",))
    t.start()
    try:
        wait_for(lambda: app.stats()["in_flight"] == 1)
    finally:
        t.join(timeout=5)
    wait_for(lambda: app.stats()["in_flight"] == 0)
    assert app.stats()["served"] >= 2  # /livez from the fixture and /slow; /stats not counted


def test_sigterm_grace_keeps_serving(start_app):
    app = start_app(DRAIN_SECONDS="10", BATON_RELEASE="old")
    app.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: app.get("/readyz")[0] == 503)
    status, headers, body = app.get("/")
    assert (status, body["status"]) == (200, "draining")
    assert headers["Connection"] == "close"  # keep-alive clients are pushed to reconnect
    assert app.get("/livez")[0] == 200
    assert app.get("/healthz")[0] == 503
    assert app.stats()["draining"] is True
    assert app.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_survives_drain(start_app, sig):
    # The request (0.8 s) outlasts the grace (0.1 s): it must still complete, then exit 0.
    app = start_app(DRAIN_SECONDS="0.1", DRAIN_TIMEOUT="10")
    result = {}
    t = threading.Thread(target=lambda: result.update(r=app.get("/slow?ms=800", timeout=10)))
    t.start()
    wait_for(lambda: app.stats()["in_flight"] == 1)
    app.proc.send_signal(sig)

    def refused():  # after the grace, new connections are refused while the request runs
        try:
            socket.create_connection(("127.0.0.1", app.port), timeout=1).close()
            return False
        # A probe that lands in the listen backlog just as the socket closes is reset rather
        # than refused: either way the app no longer accepts.
        except (ConnectionRefusedError, ConnectionResetError):
            return True

    wait_for(refused, timeout=3, interval=0.01)
    assert app.proc.poll() is None and t.is_alive()
    t.join(timeout=10)
    assert result["r"][0] == 200
    assert app.proc.wait(timeout=10) == 0
    lines = app.proc.stderr.read().splitlines()
    assert lines[0].startswith("demo_app release=dev slot=0 port=")
    assert any("stopped accepting" in line and "1 in-flight" in line for line in lines)
    assert lines[-1] == "demo_app drained: exiting"
    assert not any("GET" in line for line in lines)  # access log is off by default


def test_drain_timeout_bounds_the_wait(start_app):
    app = start_app(DRAIN_SECONDS="0", DRAIN_TIMEOUT="0.2")
    errors = []

    def slow():
        try:
            app.get("/slow?ms=5000", timeout=10)
        except OSError as exc:  # the process exits under the request: expected here
            errors.append(exc)

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    wait_for(lambda: app.stats()["in_flight"] == 1)
    t0 = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 3
    assert "drain timeout" in app.proc.stderr.read()
    t.join(timeout=5)
    assert len(errors) == 1  # the abandoned request was cut off, not answered


def test_access_log_opt_in(start_app):
    app = start_app(ACCESS_LOG="1", DRAIN_SECONDS="0")
    app.get("/")
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=5) == 0
    assert '"GET / HTTP/1.1" 200' in app.proc.stderr.read()


@pytest.mark.parametrize("env, message", [
    ({}, "PORT is required"),
    ({"PORT": "abc"}, "PORT must be an integer"),
    ({"PORT": "70000"}, "PORT must be between 1 and 65535"),
    ({"PORT": "8000", "WARMUP_SECONDS": "soon"}, "WARMUP_SECONDS must be a number"),
    ({"PORT": "8000", "DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS must be a finite number >= 0"),
    ({"PORT": "8000", "DRAIN_TIMEOUT": "nan"}, "DRAIN_TIMEOUT must be a finite number >= 0"),
    ({"PORT": "8000", "BATON_RELEASE": "a\nb"}, "BATON_RELEASE must be non-empty printable"),
    ({"PORT": "8000", "READYZ_STATUS": "ok"}, "READYZ_STATUS must be an integer"),
    ({"PORT": "8000", "READYZ_STATUS": "99"}, "READYZ_STATUS must be between 200 and 599"),
    ({"PORT": "8000", "EXIT_AT_START": "0"}, "EXIT_AT_START must be between 1 and 255"),
    ({"PORT": "8000", "CRASH_AFTER_SECONDS": "-2"}, "CRASH_AFTER_SECONDS must be a finite number >= 0"),
    ({"PORT": "8000", "EXIT_AFTER_SECONDS": "soon"}, "EXIT_AFTER_SECONDS must be a number"),
])
def test_invalid_config_exits_2(env, message):
    proc = subprocess.run([sys.executable, str(APP)], env=clean_env(**env),
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 2
    assert f"demo_app: error: {message}" in proc.stderr


def test_readyz_status_when_warm(start_app):
    app = start_app(READYZ_STATUS="500")
    status, _headers, body = app.get("/readyz")
    assert (status, body["status"]) == (500, "ready")
    assert app.get("/healthz")[0] == 500
    assert app.get("/")[0] == 200 and app.get("/livez")[0] == 200  # only readiness is broken
    app.proc.send_signal(signal.SIGTERM)  # draining still says 503, as the contract wants
    wait_for(lambda: app.get("/readyz")[0] == 503)


def test_readyz_status_while_warming_is_503(start_app):
    assert start_app(READYZ_STATUS="500", WARMUP_SECONDS="30").get("/readyz")[0] == 503


def test_exit_at_start():
    # Exits before it binds: the port does not even have to be free.
    proc = subprocess.run([sys.executable, str(APP)], env=clean_env(PORT="1", EXIT_AT_START="3"),
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 3
    assert "exiting at start with status 3 (EXIT_AT_START)" in proc.stderr


def test_port_in_use_exits_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = subprocess.run([sys.executable, str(APP)], env=clean_env(PORT=str(s.getsockname()[1])),
                              capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 1
    assert "cannot listen" in proc.stderr


def test_help_documents_env_vars():
    proc = subprocess.run([sys.executable, str(APP), "--help"], env=clean_env(),
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 0
    for var in APP_VARS:
        assert var in proc.stdout


def test_crash_after_ready(start_app):
    # Ready first (the fixture waits for /livez), then it dies without draining: exit 1.
    app = start_app(CRASH_AFTER_SECONDS="3")
    assert app.get("/readyz")[0] == 200
    assert app.proc.wait(timeout=10) == 1
    assert "demo_app crashing (CRASH_AFTER_SECONDS)" in app.proc.stderr.read()


def test_exit_after_seconds_while_warming_up(start_app):
    # Listening (the fixture waits for /livez) but not ready yet, then it exits with status 4.
    app = start_app(WARMUP_SECONDS="60", EXIT_AFTER_SECONDS="2")
    assert app.get("/readyz")[0] == 503
    assert app.proc.wait(timeout=10) == 4
    assert "exiting with status 4 after 2.0s (EXIT_AFTER_SECONDS)" in app.proc.stderr.read()


def test_websocket_echo_then_going_away_when_the_instance_stops(start_app):
    from websockets.sync.client import connect

    app = start_app(BATON_RELEASE="r9", DRAIN_SECONDS="0.2")
    with connect(f"ws://127.0.0.1:{app.port}/ws", open_timeout=5) as ws:
        ws.send("hello")
        assert json.loads(ws.recv(timeout=5)) == {"release": "r9", "slot": "0", "echo": "hello"}
        assert app.get("/stats")[2]["long"] == 1
        assert app.get("/stats")[2]["in_flight"] == 0  # a long connection is not an in-flight request
        app.proc.send_signal(signal.SIGTERM)
        ws.send("still here while draining")
        assert json.loads(ws.recv(timeout=5))["echo"] == "still here while draining"
        with pytest.raises(Exception) as closed:
            while True:
                ws.recv(timeout=10)
        assert ws.close_code == 1001, closed.value
    assert app.proc.wait(timeout=10) == 0


def _ws_raw(port: int) -> socket.socket:
    """A WebSocket connection on a raw socket, past its handshake: the test reads the frames."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ") or head.startswith(b"HTTP/1.0 101 "), head
    return sock


def _read_all_until_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_websocket_close_handshake_has_one_close_frame_each_way(start_app):
    # The instance stops: it sends one close (1001); the client's answer ends the connection,
    # with no second close frame from the server (RFC 6455 5.5.1: a close is answered once).
    app = start_app(DRAIN_SECONDS="0.2")
    sock = _ws_raw(app.port)
    app.proc.send_signal(signal.SIGTERM)
    first = sock.recv(2)
    assert first[0] == 0x88, first  # FIN + close
    body = sock.recv(first[1] & 0x7F)
    assert body[:2] == (1001).to_bytes(2, "big"), body
    sock.sendall(bytes([0x88, 0x82, 0, 0, 0, 0]) + (1001).to_bytes(2, "big"))  # masked close, mask 0
    assert _read_all_until_eof(sock) == b""
    sock.close()
    # The client closes first: the server answers with one close frame, then the connection ends.
    app2 = start_app(DRAIN_SECONDS="0.2")
    sock = _ws_raw(app2.port)
    sock.sendall(bytes([0x88, 0x82, 0, 0, 0, 0]) + (1000).to_bytes(2, "big"))
    assert _read_all_until_eof(sock) == bytes([0x88, 0x02]) + (1000).to_bytes(2, "big")
    sock.close()


def test_server_sent_events_stream_until_the_instance_stops(start_app):
    app = start_app(BATON_RELEASE="r9", SSE_INTERVAL="0.1", DRAIN_SECONDS="0.2")
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=5)
    conn.request("GET", "/sse")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    events = [json.loads(resp.readline()[len(b"data: "):])]
    app.proc.send_signal(signal.SIGTERM)
    body = resp.read()  # chunked: ends with the last chunk when the instance stops accepting
    events += [json.loads(line[len(b"data: "):]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert events[0] == {"release": "r9", "slot": "0", "n": 0}
    assert [e["n"] for e in events] == list(range(len(events))) and len(events) >= 3
    assert app.proc.wait(timeout=10) == 0
