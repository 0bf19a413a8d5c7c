# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for tests/apps/demo/demo_app.py: the app runs as a real subprocess on loopback."""
from __future__ import annotations

import fcntl
import http.client
import json
import os
import select
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
            "CRASH_AFTER_SECONDS", "EXIT_AFTER_SECONDS", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "REUSEPORT_PORT")
# Puts the test's listening socket on fd 3, as systemd does, sets LISTEN_PID ("self": this pid, kept
# by exec; "": unset; else that value) and execs the app: argv fd, listen_pid, script.
LISTEN_WRAPPER = """import os, sys
fd, listen_pid, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
if listen_pid:
    os.environ["LISTEN_PID"] = str(os.getpid()) if listen_pid == "self" else listen_pid
os.execv(sys.executable, [sys.executable, script])
"""


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

    def start(script: Path = APP, listener: socket.socket | None = None, listen_pid: str = "self", **env: str) -> App:
        """listener: passed to the app as fd 3 (set LISTEN_FDS in env for the app to use it)."""
        port = free_port()
        started = time.monotonic()
        argv, pass_fds = [sys.executable, str(script)], ()
        if listener is not None:
            argv = [sys.executable, "-c", LISTEN_WRAPPER, str(listener.fileno()), listen_pid, str(script)]
            pass_fds = (listener.fileno(),)
        proc = subprocess.Popen(
            argv, env=clean_env(PORT=str(port), **env), pass_fds=pass_fds,
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
    ({"PORT": "8000", "LISTEN_FDS": "all"}, "LISTEN_FDS must be an integer"),
    ({"PORT": "8000", "LISTEN_FDS": "1", "LISTEN_PID": "me"}, "LISTEN_PID must be an integer"),
    ({"PORT": "8000", "REUSEPORT_PORT": "0"}, "REUSEPORT_PORT must be between 1 and 65535"),
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


# The shared socket (LISTEN_FDS; baton_proxy: none, docs/socket-mode.md). The test's listening socket
# plays the one systemd holds: the test keeps its copy open, as systemd does, and can accept on it
# as the other slot would.


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(5)  # accept() in a test: bounded, whatever O_NONBLOCK the app leaves on it
        yield sock


def shared_port(listener: socket.socket) -> int:
    return listener.getsockname()[1]


def raw_get(sock: socket.socket, path: str) -> tuple[int, http.client.HTTPMessage, dict]:
    """One GET on a raw keep-alive connection: the test sees how the connection ends afterwards."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = json.loads(resp.read())
    resp.close()
    return resp.status, resp.headers, body


def answered(sock: socket.socket, within: float) -> bool:
    return bool(select.select([sock], [], [], within)[0])


def test_shared_socket_is_not_accepted_on_while_warming(start_app, listener):
    app = start_app(listener=listener, LISTEN_FDS="1", WARMUP_SECONDS="3")
    client = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=10)  # queued by the kernel
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # Sent while the app still warms up (it says so on its port): the request waits in the queue...
    assert app.get("/readyz")[0] == 503
    assert app.stats()["shared_socket"] == "waiting"
    assert not answered(client, within=0.2)
    # ...and is answered once the app is ready: 200, not the 503 a warming app answers.
    resp = http.client.HTTPResponse(client)
    resp.begin()
    assert (resp.status, json.loads(resp.read())["status"]) == (200, "ready")
    assert time.monotonic() - app.started >= 3
    assert app.stats()["shared_socket"] == "accepting"
    client.close()


@pytest.mark.parametrize("listen_pid", ["self", ""], ids=["LISTEN_PID", "no-LISTEN_PID"])
def test_shared_socket_and_port_both_serve_once_ready(start_app, listener, listen_pid):
    app = start_app(listener=listener, listen_pid=listen_pid, LISTEN_FDS="1", LISTEN_FDNAMES="demo",
                    BATON_SLOT="2", BATON_RELEASE="r5")
    wait_for(lambda: app.stats()["shared_socket"] == "accepting")
    for port in (shared_port(listener), app.port):
        status, headers, body = request(port, "/")
        assert (status, body) == (200, {"release": "r5", "slot": "2", "status": "ready"}), port
        assert headers["X-Slot"] == "2"
        assert request(port, "/readyz")[0] == 200
    assert app.stats()["served"] >= 4
    wait_for(lambda: app.stats()["shared_connections"] == 0)  # the client closed each one


def test_never_ready_release_never_accepts_on_the_shared_socket(start_app, listener):
    app = start_app(listener=listener, LISTEN_FDS="1", READYZ_STATUS="500", DRAIN_SECONDS="0")
    assert app.get("/readyz")[0] == 500 and app.get("/")[0] == 200  # warm, but /readyz is not 200
    client = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=5)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not answered(client, within=0.5)
    assert app.stats()["shared_socket"] == "waiting"
    taken, _addr = listener.accept()  # still in the queue: another process (the other slot) takes it
    taken.close()
    client.close()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=10) == 0
    err = app.proc.stderr.read()
    assert "socket: not accepting on the shared socket: /readyz answers 500" in err
    assert "accepting on the shared socket (fd 3) now" not in err


def test_sigterm_hands_the_shared_socket_over(start_app, listener):
    app = start_app(listener=listener, LISTEN_FDS="1", DRAIN_SECONDS="30", DRAIN_TIMEOUT="10")
    wait_for(lambda: app.stats()["shared_socket"] == "accepting")
    keep = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=10)
    status, headers, _body = raw_get(keep, "/")
    assert status == 200 and headers["Connection"] is None  # kept alive
    result = {}
    slow = threading.Thread(target=lambda: result.update(r=request(shared_port(listener), "/slow?ms=1000", timeout=10)))
    slow.start()
    wait_for(lambda: app.stats()["in_flight"] == 1)
    app.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: app.stats()["shared_socket"] == "closed")
    # The app closed its copy; the socket is still open (here in the test, as in systemd and the
    # other slot): a new connection is queued and taken by whoever accepts.
    client = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=5)
    taken, _addr = listener.accept()
    taken.close()
    client.close()
    # The kept-alive connection's next request is answered, with Connection: close, then it ends
    # cleanly (FIN, no reset).
    status, headers, body = raw_get(keep, "/")
    assert (status, headers["Connection"], body["status"]) == (200, "close", "draining")
    assert keep.recv(1) == b""
    keep.close()
    slow.join(timeout=10)
    assert result["r"][0] == 200  # in flight at SIGTERM: finished
    assert app.proc.wait(timeout=10) == 0
    lines = app.proc.stderr.read().splitlines()
    assert "demo_app socket: accepting on the shared socket (fd 3) now that the app is ready" in lines
    assert any(line.startswith("demo_app draining: stopped accepting on the shared socket (fd 3)") for line in lines)
    assert lines[-1] == "demo_app drained: exiting"


def test_idle_shared_connection_is_closed_after_drain_seconds(start_app, listener):
    app = start_app(listener=listener, LISTEN_FDS="1", DRAIN_SECONDS="0.5", SSE_INTERVAL="0.1")
    wait_for(lambda: app.stats()["shared_socket"] == "accepting")
    idle = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=10)
    assert raw_get(idle, "/")[0] == 200
    events = http.client.HTTPConnection("127.0.0.1", shared_port(listener), timeout=10)
    events.request("GET", "/sse")
    stream = events.getresponse()
    assert stream.readline().startswith(b"data: ")
    wait_for(lambda: app.stats()["shared_connections"] == 2)
    t0 = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    stream.read()  # returns: the event stream ended when the app stopped accepting
    assert stream.isclosed()
    events.close()
    assert idle.recv(1) == b""  # closed (FIN, not a reset) once the grace is over, never before
    assert time.monotonic() - t0 >= 0.5
    idle.close()
    assert app.proc.wait(timeout=10) == 0
    assert "closed 1 idle shared connection(s)" in app.proc.stderr.read()


def test_two_slots_hand_the_shared_socket_over_without_an_error(start_app, listener):
    # The deploy: slot 1 serves; slot 2 starts (systemd clears O_NONBLOCK on the socket when it
    # starts a slot, as here), warms up, accepts too; slot 1 gets SIGTERM. Clients on new and on
    # kept-alive connections see no error, and only slot 2 once slot 1 has exited.
    old = start_app(listener=listener, LISTEN_FDS="1", BATON_SLOT="1", DRAIN_SECONDS="0.5")
    wait_for(lambda: old.stats()["shared_socket"] == "accepting")
    seen, errors, stop = [], [], threading.Event()

    def client(keep_alive: bool) -> None:
        conn = None
        for _attempt in range(2000):  # bounded; ends when the test says so
            if stop.is_set():
                break
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", shared_port(listener), timeout=10)
                conn.request("GET", "/slow?ms=10")
                resp = conn.getresponse()
                seen.append((time.monotonic(), resp.status, json.loads(resp.read())["slot"]))
                if resp.will_close or not keep_alive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn = None
        if conn:
            conn.close()

    clients = [threading.Thread(target=client, args=(keep_alive,)) for keep_alive in (True, True, False, False)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: len(seen) >= 20)
        flags = fcntl.fcntl(listener.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(listener.fileno(), fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        new = start_app(listener=listener, LISTEN_FDS="1", BATON_SLOT="2", WARMUP_SECONDS="0.5")
        wait_for(lambda: new.stats()["shared_socket"] == "accepting")
        old.proc.send_signal(signal.SIGTERM)
        assert old.proc.wait(timeout=10) == 0
        old_exited = time.monotonic()
        count = len(seen)
        wait_for(lambda: len(seen) >= count + 20)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=15)
    assert errors == []
    assert {status for _t, status, _slot in seen} == {200}
    assert {slot for _t, _status, slot in seen} == {"1", "2"}
    assert {slot for t, _status, slot in seen if t > old_exited} == {"2"}


def test_listen_pid_of_another_process_is_ignored(start_app, listener):
    app = start_app(listener=listener, listen_pid=str(os.getpid()), LISTEN_FDS="1", DRAIN_SECONDS="0")
    assert app.get("/")[0] == 200
    stats = app.stats()
    assert stats["shared_socket"] is None and stats["shared_connections"] == 0
    client = socket.create_connection(("127.0.0.1", shared_port(listener)), timeout=5)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not answered(client, within=0.5)
    taken, _addr = listener.accept()  # the app left fd 3 alone
    taken.close()
    client.close()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=10) == 0
    assert f"socket: LISTEN_PID={os.getpid()} is another process" in app.proc.stderr.read()


def test_no_socket_on_fd_3_exits_1():
    proc = subprocess.run([sys.executable, str(APP)], env=clean_env(PORT=str(free_port()), LISTEN_FDS="1"),
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 1
    assert "demo_app: error: cannot use fd 3 (LISTEN_FDS)" in proc.stderr


def test_stats_without_a_shared_socket(start_app):
    stats = start_app().stats()
    assert stats["shared_socket"] is None and stats["shared_connections"] == 0


# REUSEPORT_PORT (the benchmark's "reuseport" baseline): each instance opens its own socket on the
# port with SO_REUSEPORT once ready, and closes it at SIGTERM.


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_reuseport_port_opens_once_ready_and_closes_at_sigterm(start_app):
    public = free_port()
    app = start_app(REUSEPORT_PORT=str(public), WARMUP_SECONDS="1", DRAIN_SECONDS="0.2", BATON_RELEASE="r1")
    assert refused(public)  # warming up: not listening on it yet
    wait_for(lambda: app.stats()["shared_socket"] == "accepting")
    status, _headers, body = request(public, "/")
    assert (status, body["release"]) == (200, "r1")
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=10) == 0
    assert refused(public)
    err = app.proc.stderr.read()
    assert f"accepting on port {public} (SO_REUSEPORT) now that the app is ready" in err
    assert f"stopped accepting on port {public} (SO_REUSEPORT), readyz=503: its socket and accept queue are closed" in err


def test_two_instances_listen_on_the_reuseport_port(start_app):
    public = free_port()
    apps = [start_app(REUSEPORT_PORT=str(public), BATON_SLOT=slot, DRAIN_SECONDS="0") for slot in ("1", "2")]
    for app in apps:
        wait_for(lambda app=app: app.stats()["shared_socket"] == "accepting")
    # A new connection each time: the kernel spreads them over both sockets (by the client's port).
    slots = {request(public, "/")[1]["X-Slot"] for _attempt in range(64)}
    assert slots == {"1", "2"}
    apps[0].proc.send_signal(signal.SIGTERM)
    assert apps[0].proc.wait(timeout=10) == 0
    assert {request(public, "/")[1]["X-Slot"] for _attempt in range(16)} == {"2"}
