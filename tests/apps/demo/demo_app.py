#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Baton demo app: a tiny HTTP service that behaves like a real release during a deploy.

Run one instance per slot: ``PORT=8001 BATON_SLOT=1 python3 demo_app.py``.

Environment variables:
  PORT            TCP port to listen on (required, 1-65535)
  BIND            address to bind (default 127.0.0.1; IPv6 literals such as ::1 work too)
  BATON_SLOT      slot name reported in responses (default 0)
  BATON_RELEASE   release id (default: contents of RELEASE next to this file, else "dev")
  WARMUP_SECONDS  seconds after start before the app is ready (default 0)
  DRAIN_SECONDS   grace after SIGTERM/SIGINT during which everything is still served (default 1.0)
  DRAIN_TIMEOUT   max extra wait for in-flight requests after the grace (default 30)
  ACCESS_LOG      1 to log every request to stderr (default off)
  READYZ_STATUS   status /readyz answers once warm (default 200; e.g. 500 for a release that
                  never becomes ready)
  EXIT_AT_START   exit at once with this status (1-255) before listening: a release that crashes
                  at start (default: unset, start normally)
  CRASH_AFTER_SECONDS  once ready, crash (exit 1 at once, connections cut) after this many
                  seconds: a release that passes its readiness check, then dies (default: unset)
  EXIT_AFTER_SECONDS  exit with status 4 this many seconds after start, ready or not (e.g. while
                  still warming up: a release that dies before it is ready) (default: unset)
  LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES  systemd socket activation (sd_listen_fds): when
                  LISTEN_FDS >= 1 and LISTEN_PID is unset or this process's pid, fd 3 is a listening
                  socket shared with the other slot (baton_proxy: none); see "Shared socket" below.
                  All three are removed from the environment once read (default: unset, no shared socket)
  REUSEPORT_PORT  also listen on this port (on BIND), with SO_REUSEPORT, opened only once the app is
                  ready: each instance has its own socket and accept queue on the same port, the
                  kernel spreads new connections over them (the benchmark's "reuseport" baseline).
                  Served and drained as the shared socket below, except that closing it at SIGTERM
                  closes its queue. Ignored with LISTEN_FDS (default: unset)

Endpoints (all bodies JSON; every response has X-Release and X-Slot headers):
  /livez          200 while the process answers, even while warming or draining
  /readyz         200 (READYZ_STATUS) when ready, 503 while warming or draining
  /healthz        legacy alias of /readyz
  /               200 {"release", "slot", "status"}; 503 while warming
  /slow?ms=N      sleep N ms (capped at 60000) then 200; 400 on a bad N; 503 while warming
  POST /          a write: reads the body (Content-Length), 200 {"release", "slot", "received"};
                  503 while warming
  /stats          in_flight, served, ready, draining, release, slot, long (not counted itself),
                  shared_socket ("waiting", "accepting", "closed"; null without one), shared_connections
  /ws             WebSocket: answers each text message with {"release", "slot", "echo"}
  /sse            Server-Sent Events: {"release", "slot", "n"} every SSE_INTERVAL seconds (default 0.5)

Long connections (/ws, /sse) are not in-flight requests: they stay open while the instance
drains and serves, and are closed cleanly (WebSocket close 1001 "going away", end of the event
stream) when it stops accepting, so that clients reconnect at once to another instance.

On SIGTERM/SIGINT: /readyz turns 503, everything else is still served for DRAIN_SECONDS,
then the listening socket is closed, in-flight requests get up to DRAIN_TIMEOUT to finish,
and the process exits 0.

Shared socket (LISTEN_FDS): systemd holds one public listening socket and passes it to both
slots as fd 3. The app serves the same endpoints on it, and on PORT as always (where Baton asks
/readyz). It accepts on the shared socket only once it is ready and /readyz answers 200: while it
warms up (or forever, with READYZ_STATUS other than 200) connections wait in the socket's queue
for a slot that accepts. On SIGTERM/SIGINT it stops accepting on the shared socket at once (it
closes its copy of fd 3; the socket stays open in systemd and the other slot, which takes the
queued connections) and long connections end. Each open connection from the shared socket gets
Connection: close on its next reply; after DRAIN_SECONDS those still idle are closed (never one
in the middle of a request). In-flight requests then get up to DRAIN_TIMEOUT to finish, PORT
closes and the process exits 0.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SLOW_CAP_MS = 60000
SD_LISTEN_FDS_START = 3  # sd_listen_fds(3): passed sockets start at fd 3
LISTEN_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def log(msg: str) -> None:
    print(f"demo_app {msg}", file=sys.stderr, flush=True)


class ConfigError(ValueError):
    pass


def _float_env(env: dict, name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {raw!r}")
    return value


def _header_safe(name: str, value: str) -> str:
    # Both values end up in response headers: refuse anything that could break the header.
    if not value or not value.isprintable() or not value.isascii():
        raise ConfigError(f"{name} must be non-empty printable ASCII, got {value!r}")
    return value


def _int_env(env: dict, name: str, low: int, high: int) -> int | None:
    raw = env.get(name, "")
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def default_release() -> str:
    # resolve() so a release started through a `current` symlink still finds its own file.
    try:
        text = (Path(__file__).resolve().parent / "RELEASE").read_text(encoding="utf-8").strip()
    except OSError:
        return "dev"
    return text or "dev"


def load_config(env: dict) -> dict:
    raw_port = env.get("PORT", "")
    if raw_port == "":
        raise ConfigError("PORT is required")
    try:
        port = int(raw_port)
    except ValueError:
        raise ConfigError(f"PORT must be an integer, got {raw_port!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"PORT must be between 1 and 65535, got {port}")
    return {
        "port": port,
        "bind": env.get("BIND", "") or "127.0.0.1",
        "slot": _header_safe("BATON_SLOT", env.get("BATON_SLOT", "0")),
        "release": _header_safe("BATON_RELEASE", env.get("BATON_RELEASE") or default_release()),
        "warmup": _float_env(env, "WARMUP_SECONDS", 0.0),
        "drain_seconds": _float_env(env, "DRAIN_SECONDS", 1.0),
        "drain_timeout": _float_env(env, "DRAIN_TIMEOUT", 30.0),
        "access_log": env.get("ACCESS_LOG", "") == "1",
        "readyz_status": _int_env(env, "READYZ_STATUS", 200, 599) or 200,
        "exit_at_start": _int_env(env, "EXIT_AT_START", 1, 255),
        "crash_after": _float_env(env, "CRASH_AFTER_SECONDS", -1.0),
        "exit_after": _float_env(env, "EXIT_AFTER_SECONDS", -1.0),
        "sse_interval": _float_env(env, "SSE_INTERVAL", 0.5) or 0.5,
        "reuseport_port": _int_env(env, "REUSEPORT_PORT", 1, 65535),
    }


def listen_fds(env: dict, pid: int) -> int:
    """How many sockets systemd passed to this process from fd 3 on (0: none, or meant for another).

    As sd_listen_fds(3), except that an unset LISTEN_PID is accepted (a test or a wrapper that
    cannot know the pid in advance). Raises ConfigError on a malformed value.
    """
    count = _int_env(env, "LISTEN_FDS", 0, 65536)
    listen_pid = _int_env(env, "LISTEN_PID", 1, 2**31 - 1)
    if not count or listen_pid not in (None, pid):
        return 0
    return count


class State:
    """Shared, thread-safe view of the instance: warm-up, drain flag and request counters."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.started = time.monotonic()
        self.draining = threading.Event()
        self.closing = threading.Event()  # set when the instance stops accepting: long connections end
        self.long = 0  # open long connections (WebSocket, SSE)
        self.cond = threading.Condition()  # guards in_flight/served, notified when one finishes
        self.in_flight = 0
        self.served = 0
        # The shared socket (LISTEN_FDS): None without one, else "waiting" (not accepting yet),
        # "accepting", "closed". Its open connections: {socket: "idle" | "busy" | "closed"},
        # "busy" from the first byte of a request to the end of its reply (guarded by cond).
        self.shared: str | None = None
        self.shared_conns: dict = {}

    def warming(self) -> bool:
        return time.monotonic() - self.started < self.cfg["warmup"]

    def status(self) -> str:
        if self.draining.is_set():
            return "draining"
        return "warming" if self.warming() else "ready"

    def begin(self) -> None:
        with self.cond:
            self.in_flight += 1

    def end(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.served += 1
            self.cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.in_flight == 0, timeout=timeout)

    def accepts_on_shared_socket(self) -> bool:
        """Rule 1 of the contract: only once ready, and only if /readyz would answer 200."""
        return self.status() == "ready" and self.cfg["readyz_status"] == 200

    def close_idle_shared(self) -> int:
        """Close the shared socket's connections that wait between two requests (keep-alive).

        Reading is shut down, so the handler sees the end of the stream and closes the connection
        (FIN, not a reset). Skipped: a connection in the middle of a request, or with the first
        bytes of one already received (it is served, and its reply closes it).
        """
        with self.cond:  # also held by SharedServer.shutdown_request: no socket closes under us
            idle = [conn for conn, use in self.shared_conns.items() if use == "idle" and not _has_input(conn)]
            for conn in idle:
                self.shared_conns[conn] = "closed"
                try:
                    conn.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        return len(idle)


def _has_input(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except OSError:  # BlockingIOError: nothing received yet
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; needs Content-Length on every response
    server_version = "baton-demo/1"
    state: State  # set on the subclass built in main()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = urlsplit(self.path).path
        if path == "/stats":  # observing must not change what is observed
            self.route(path)
            return
        if path in ("/ws", "/sse") and self.command == "GET" and self.state.status() != "warming":
            self.long_connection(path)
            return
        self.state.begin()
        try:
            self.route(path)
        finally:
            self.state.end()

    do_HEAD = do_GET

    def handle_one_request(self) -> None:
        conns = self.state.shared_conns if getattr(self.server, "shared", False) else None
        if conns is None:
            super().handle_one_request()
            return
        try:  # idle (between two requests of a keep-alive connection) until a request starts
            self.rfile.peek(1)
        except OSError:
            self.close_connection = True
            return
        with self.state.cond:
            conns[self.connection] = "busy"
        try:
            super().handle_one_request()
        finally:
            with self.state.cond:
                if conns.get(self.connection) == "busy":
                    conns[self.connection] = "idle"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        """A write: the body is read in full and its size answered (503 while warming, as for GET)."""
        self.state.begin()
        try:
            length = self.headers.get("Content-Length", "0")
            size = len(self.rfile.read(int(length))) if length.isascii() and length.isdigit() else -1
            if size < 0:
                self.reply(411, {"error": "Content-Length required"})
            elif urlsplit(self.path).path != "/":
                self.reply(404, {"error": "not found", "path": urlsplit(self.path).path})
            elif self.state.status() == "warming":
                self.reply(503, {"error": "warming up", "release": self.state.cfg["release"]})
            else:
                self.reply(200, {"release": self.state.cfg["release"], "slot": self.state.cfg["slot"],
                                 "received": size})
        finally:
            self.state.end()

    def route(self, path: str) -> None:
        st, cfg = self.state, self.state.cfg
        status = st.status()
        if path == "/livez":
            self.reply(200, {"status": status})
        elif path in ("/readyz", "/healthz"):
            self.reply(cfg["readyz_status"] if status == "ready" else 503, {"status": status})
        elif path == "/stats":
            with st.cond:
                counts = {"in_flight": st.in_flight, "served": st.served, "long": st.long,
                          "shared_socket": st.shared, "shared_connections": len(st.shared_conns)}
            self.reply(200, {**counts, "ready": status == "ready", "draining": st.draining.is_set(),
                             "release": cfg["release"], "slot": cfg["slot"]})
        elif path == "/ws":
            self.reply(400, {"error": "WebSocket upgrade required"})
        elif path not in ("/", "/slow", "/sse"):
            self.reply(404, {"error": "not found", "path": path})
        elif status == "warming":
            # A slow-starting app cannot serve yet: routing traffic here too early must hurt.
            self.reply(503, {"error": "warming up", "release": cfg["release"], "slot": cfg["slot"]})
        elif path == "/":
            self.reply(200, {"release": cfg["release"], "slot": cfg["slot"], "status": status})
        else:
            raw = parse_qs(urlsplit(self.path).query).get("ms", [""])[0]
            # isascii(): str.isdigit() also accepts digits like "²" that int() refuses.
            if not (raw.isascii() and raw.isdigit()):  # rejects "", "-5", "1.5", "abc"
                self.reply(400, {"error": "ms must be a non-negative integer", "ms": raw[:50]})
                return
            digits = raw.lstrip("0") or "0"  # int() refuses > 4300 digits: cap before parsing
            ms = SLOW_CAP_MS if len(digits) > 5 else min(int(digits), SLOW_CAP_MS)
            time.sleep(ms / 1000)
            self.reply(200, {"release": cfg["release"], "slot": cfg["slot"], "slept_ms": ms})

    def long_connection(self, path: str) -> None:
        st = self.state
        with st.cond:
            st.long += 1
        try:
            if path == "/sse":
                self.serve_events()
            elif self.headers.get("Upgrade", "").lower() == "websocket" and self.headers.get("Sec-WebSocket-Key"):
                self.serve_websocket()
            else:
                self.reply(400, {"error": "WebSocket upgrade required"})
        finally:
            with st.cond:
                st.long -= 1
                st.cond.notify_all()

    def serve_events(self) -> None:
        st, cfg = self.state, self.state.cfg
        self.send_response(200)
        for name, value in (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                            ("Transfer-Encoding", "chunked"), ("X-Release", cfg["release"]), ("X-Slot", cfg["slot"])):
            self.send_header(name, value)
        self.end_headers()
        n = 0
        try:
            while not st.closing.is_set():
                event = f"data: {json.dumps({'release': cfg['release'], 'slot': cfg['slot'], 'n': n})}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                n += 1
                st.closing.wait(cfg["sse_interval"])
            self.wfile.write(b"0\r\n\r\n")  # the end of the stream: the client reconnects
        except OSError:
            pass
        self.close_connection = True

    def serve_websocket(self) -> None:
        st, cfg = self.state, self.state.cfg
        accept = base64.b64encode(hashlib.sha1(
            self.headers["Sec-WebSocket-Key"].strip().encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.send_response(101)
        for name, value in (("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Accept", accept.decode()), ("X-Release", cfg["release"])):
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        lock, done, close_sent = threading.Lock(), threading.Event(), threading.Event()

        def send(opcode: int, payload: bytes) -> None:
            size = len(payload)
            if size < 126:
                length = bytes([size])
            elif size < 65536:
                length = bytes([126]) + struct.pack(">H", size)
            else:
                length = bytes([127]) + struct.pack(">Q", size)
            head = bytes([0x80 | opcode]) + length
            with lock:
                self.wfile.write(head + payload)
                self.wfile.flush()

        def read_messages() -> None:
            try:
                while True:
                    first, second = self.rfile.read(2)
                    opcode, size = first & 0x0F, second & 0x7F
                    if size >= 126:
                        size = struct.unpack(">H" if size == 126 else ">Q", self.rfile.read(2 if size == 126 else 8))[0]
                    mask = self.rfile.read(4) if second & 0x80 else b"\0\0\0\0"
                    data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
                    if opcode == 0x8:  # close: answer it (unless it answers ours, RFC 6455 5.5.1) and end
                        if not close_sent.is_set():
                            close_sent.set()
                            send(0x8, data[:2])
                        break
                    if opcode == 0x9:
                        send(0xA, data)
                    elif opcode == 0x1:
                        send(0x1, json.dumps({"release": cfg["release"], "slot": cfg["slot"],
                                              "echo": data.decode(errors="replace")}).encode())
            except (OSError, ValueError):
                pass
            done.set()

        threading.Thread(target=read_messages, name="ws-read", daemon=True).start()
        while not done.is_set() and not st.closing.is_set():
            done.wait(0.1)
        if not done.is_set():
            try:  # 1001 "going away": the client reconnects, to another instance
                close_sent.set()
                send(0x8, struct.pack(">H", 1001) + b"instance stopping")
            except OSError:
                pass
            done.wait(2)

    def reply(self, code: int, payload: dict) -> None:
        body = (json.dumps(payload) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Release", self.state.cfg["release"])
        self.send_header("X-Slot", self.state.cfg["slot"])
        if self.state.draining.is_set():
            # Push keep-alive clients (and proxies) to reconnect, ending up on the new slot.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature from base)
        if self.state.cfg["access_log"]:
            super().log_message(format, *args)

    def address_string(self) -> str:
        # A shared socket may be a Unix socket (ListenStream=/run/...): no (host, port) peer.
        return self.client_address[0] if isinstance(self.client_address, tuple) else "unix"


class SharedServer(ThreadingHTTPServer):
    """Serves the shared socket (fd 3) and tracks its open connections in state.shared_conns."""

    shared = True
    label = f"the shared socket (fd {SD_LISTEN_FDS_START})"
    own_socket = False  # True for REUSEPORT_PORT: closing it closes its accept queue too
    daemon_threads = True
    state: State  # set on the subclass built in shared_server()

    def get_request(self):
        # One socket, several processes: both slots wake up for a connection and one accept()s it.
        # Non-blocking, the other gets EAGAIN (ignored by socketserver) instead of hanging in
        # accept() until the next connection, when it could not stop. O_NONBLOCK belongs to the
        # socket that systemd and both slots share, and systemd clears it each time it starts a
        # slot (unless the unit says NonBlocking=yes): set it again before every accept().
        self.socket.setblocking(False)
        return self.socket.accept()

    def process_request(self, request, client_address) -> None:
        # Registered in the accept loop, before its thread starts: once shutdown() has returned,
        # every connection taken from the shared socket is known.
        with self.state.cond:
            self.state.shared_conns[request] = "idle"
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.state.cond:
            self.state.shared_conns.pop(request, None)
            super().shutdown_request(request)
            self.state.cond.notify_all()


def shared_server(handler: type, state: State) -> SharedServer:
    """The HTTP server for the listening socket that systemd passed as fd 3."""
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)  # family and type come from the fd
    try:
        os.set_inheritable(sock.fileno(), False)  # as sd_listen_fds does (FD_CLOEXEC)
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise OSError("not a listening stream socket")
        cls = type("DemoSharedServer", (SharedServer,), {"address_family": sock.family, "state": state})
        server = cls(sock.getsockname(), handler, bind_and_activate=False)
    except OSError:
        sock.detach()  # leave fd 3 open, as found
        raise
    server.socket.close()  # the unbound socket made by the constructor
    server.socket = sock
    return server


def reuseport_server(handler: type, state: State) -> SharedServer:
    """The HTTP server for REUSEPORT_PORT: a socket of this process alone, bound with SO_REUSEPORT."""
    cfg = state.cfg
    family = socket.AF_INET6 if ":" in cfg["bind"] else socket.AF_INET
    cls = type("DemoReuseportServer", (SharedServer,), {"address_family": family, "state": state,
                                                        "label": f"port {cfg['reuseport_port']} (SO_REUSEPORT)", "own_socket": True,
                                                        "allow_reuse_address": True, "request_queue_size": 1024})
    server = cls((cfg["bind"], cfg["reuseport_port"]), handler, bind_and_activate=False)
    try:
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        server.server_bind()
        server.server_activate()
    except OSError:
        server.server_close()
        raise
    return server


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(__doc__)
        return 0
    env = dict(os.environ)
    for name in LISTEN_VARS:  # as sd_listen_fds(unset_environment=1): not for child processes
        os.environ.pop(name, None)
    try:
        cfg = load_config(env)
        nfds = listen_fds(env, os.getpid())
    except ConfigError as exc:
        print(f"demo_app: error: {exc}", file=sys.stderr)
        return 2
    if cfg["exit_at_start"] is not None:
        print(f"demo_app: exiting at start with status {cfg['exit_at_start']} (EXIT_AT_START)", file=sys.stderr)
        return cfg["exit_at_start"]

    state = State(cfg)  # warm-up is measured from here, before the port is even bound
    # Installed before binding so an early SIGTERM still drains cleanly. The handler only
    # records the request: blocking work inside a signal handler would stall the main thread
    # at an arbitrary point.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())

    handler = type("DemoHandler", (Handler,), {"state": state})
    shared = None
    if nfds:  # before any other socket: without a socket passed as fd 3, the next one would get fd 3
        try:
            shared = shared_server(handler, state)
        except OSError as exc:
            print(f"demo_app: error: cannot use fd {SD_LISTEN_FDS_START} (LISTEN_FDS): {exc}", file=sys.stderr)
            return 1
        state.shared = "waiting"
    elif cfg["reuseport_port"] is not None:
        state.shared = "waiting"  # the socket is opened once ready
    server_cls = type("DemoServer", (ThreadingHTTPServer,), {
        "address_family": socket.AF_INET6 if ":" in cfg["bind"] else socket.AF_INET,
        "daemon_threads": True,  # idle keep-alive connections must not block the exit
        # socketserver's default backlog of 5 drops SYNs under a burst of new proxy connections
        # (the client then waits for a SYN retransmit and the proxy times out): use a real one.
        "request_queue_size": 1024,
    })
    try:
        server = server_cls((cfg["bind"], cfg["port"]), handler)
    except OSError as exc:
        print(f"demo_app: error: cannot listen on {cfg['bind']}:{cfg['port']}: {exc}", file=sys.stderr)
        return 1

    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     name="serve", daemon=True).start()
    log(f"release={cfg['release']} slot={cfg['slot']} port={cfg['port']} warmup={cfg['warmup']}")
    if shared is not None:
        names = env.get("LISTEN_FDNAMES", "").split(":")[0]
        log(f"socket: shared socket on fd {SD_LISTEN_FDS_START}{f' ({names})' if names else ''} "
            f"{shared.socket.getsockname()}{f', {nfds - 1} more fd(s) ignored' if nfds > 1 else ''}: "
            "accepting on it once ready")
    elif env.get("LISTEN_FDS"):
        log(f"socket: LISTEN_PID={env.get('LISTEN_PID')} is another process (this is {os.getpid()}): "
            f"fd {SD_LISTEN_FDS_START} not used")

    # Poll with is_set() rather than stop.wait(): Event.wait holds the event's internal lock at
    # moments when the signal handler (running on this same thread) may need it for set().
    crash_at = state.started + cfg["warmup"] + cfg["crash_after"] if cfg["crash_after"] >= 0 else math.inf
    exit_at = state.started + cfg["exit_after"] if cfg["exit_after"] >= 0 else math.inf
    not_ready_logged = False
    while not stop.is_set():
        if state.shared == "waiting":
            if state.accepts_on_shared_socket():
                if shared is None:  # REUSEPORT_PORT
                    try:
                        shared = reuseport_server(handler, state)
                    except OSError as exc:
                        print(f"demo_app: error: cannot listen on {cfg['bind']}:{cfg['reuseport_port']} "
                              f"(REUSEPORT_PORT): {exc}", file=sys.stderr)
                        return 1
                with state.cond:
                    state.shared = "accepting"
                threading.Thread(target=shared.serve_forever, kwargs={"poll_interval": 0.05},
                                 name="serve-shared", daemon=True).start()
                log(f"socket: accepting on {shared.label} now that the app is ready")
            elif state.status() == "ready" and not not_ready_logged:
                not_ready_logged = True
                log(f"socket: not accepting on the shared socket: /readyz answers {cfg['readyz_status']}")
        if time.monotonic() >= crash_at:
            log("crashing (CRASH_AFTER_SECONDS)")
            os._exit(1)  # no drain, no cleanup: what a crash looks like to the proxy
        if time.monotonic() >= exit_at:
            log(f"exiting with status 4 after {cfg['exit_after']}s (EXIT_AFTER_SECONDS)")
            os._exit(4)
        time.sleep(0.05)

    state.draining.set()
    if shared is not None:
        return drain_shared(state, server, shared)
    log(f"draining: readyz=503, still serving for {cfg['drain_seconds']}s")
    time.sleep(cfg["drain_seconds"])
    server.shutdown()  # stop the accept loop...
    server.server_close()  # ...and close the socket so new connections are refused outright
    state.closing.set()  # long connections end cleanly, their clients reconnect elsewhere
    with state.cond:
        state.cond.wait_for(lambda: state.long == 0, timeout=2)
    with state.cond:
        pending = state.in_flight
    log(f"draining: stopped accepting, waiting up to {cfg['drain_timeout']}s for {pending} in-flight")
    if state.wait_idle(cfg["drain_timeout"]):
        log("drained: exiting")
    else:
        log(f"drain timeout: exiting with {state.in_flight} request(s) still in flight")
    return 0


def drain_shared(state: State, server: ThreadingHTTPServer, shared: SharedServer) -> int:
    """SIGTERM with a shared socket: stop accepting on it at once, let its connections go, exit."""
    cfg, started = state.cfg, time.monotonic()
    if state.shared == "accepting":
        shared.shutdown()  # the accept loop ends (within its 50 ms poll)...
    shared.server_close()  # ...and this copy of fd 3 is closed: systemd and the other slot keep the socket
    with state.cond:
        state.shared = "closed"
        open_conns = len(state.shared_conns)
    log(f"draining: stopped accepting on {shared.label}, readyz=503: "
        + ("its socket and accept queue are closed" if shared.own_socket else "its queued connections go to the other slot"))
    state.closing.set()  # long connections end cleanly, their clients reconnect (to the other slot)
    with state.cond:
        state.cond.wait_for(lambda: state.long == 0, timeout=2)
    log(f"draining: waiting up to {cfg['drain_seconds']}s for {open_conns} shared connection(s) to close "
        "(Connection: close on their next reply)")
    with state.cond:
        state.cond.wait_for(lambda: not state.shared_conns,
                            timeout=max(0.0, started + cfg["drain_seconds"] - time.monotonic()))
    closed = state.close_idle_shared()
    with state.cond:
        pending, still_open = state.in_flight, len(state.shared_conns) - closed
    log(f"draining: closed {closed} idle shared connection(s), waiting up to {cfg['drain_timeout']}s "
        f"for {pending} in-flight, {still_open} other shared connection(s)")
    deadline = time.monotonic() + cfg["drain_timeout"]
    while True:
        with state.cond:
            done = state.cond.wait_for(lambda: state.in_flight == 0 and not state.shared_conns,
                                       timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            left = state.in_flight, len(state.shared_conns)
        if done or time.monotonic() >= deadline:
            break
        state.close_idle_shared()  # one that was in a request and kept alive, now idle
    server.shutdown()
    server.server_close()
    if done:
        log("drained: exiting")
    else:
        log(f"drain timeout: exiting with {left[0]} request(s) still in flight, {left[1]} shared connection(s) open")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
