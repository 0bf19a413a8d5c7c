# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Long-lived clients of a site through its proxy, for the scenarios' WebSocket and SSE tests."""
from __future__ import annotations

import asyncio
import collections
import http.client
import json
import logging
import socket
import ssl
import sys
import threading
import time
import traceback


class _Recent(logging.Handler):
    """The last lines a client's websockets logger wrote (frames sent and received, state changes)."""

    def __init__(self, lines: collections.deque) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.created:.3f} {record.getMessage()}")


class LongClient(threading.Thread):
    """A WebSocket (messages every 0.2 s) or SSE client of one site that reconnects at once when
    its connection ends. ``sessions``: one [release, opened, ended, how it ended] per connection.

    Connects to ``addr`` (the host's address) on ``port``; ``vhost`` is the Host header and, with
    ``tls`` (an ``ssl.SSLContext``), the TLS server name and certificate name (wss://, https://)."""

    def __init__(self, addr: str, vhost: str, kind: str, port: int = 80, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(daemon=True)
        self.addr, self.vhost, self.kind, self.port, self.tls = addr, vhost, kind, port, tls
        self.sessions: list[list] = []
        self.stopping = threading.Event()
        # What the client is doing now, and, when stop() found it still busy, where it was stuck: for
        # the tests' failure messages (a reconnect that never happened says why).
        self.phase = "not started"
        self.stuck: str | None = None
        self.recent: collections.deque = collections.deque(maxlen=40)
        self.logger = logging.getLogger(f"baton.long_client.{id(self)}")
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(_Recent(self.recent))

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                (self.websocket if self.kind == "ws" else self.events)()
            except Exception as exc:  # noqa: BLE001 (recorded, then reconnect)
                self.sessions.append([None, time.monotonic(), time.monotonic(), f"connect failed: {exc!r}"])
                time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
        if self.is_alive():
            self.stuck = self.where()

    def where(self) -> str:
        """The phase, the thread's stack and the last websockets log lines (for failure messages)."""
        frame = sys._current_frames().get(self.ident) if self.ident else None
        stack = "".join(traceback.format_stack(frame)[-8:]) if frame else "(not running)"
        return f"phase: {self.phase}\nstack:\n{stack}log:\n" + "\n".join(self.recent)

    def opened(self) -> list[list]:
        """The sessions that opened (a connection that answered its first message), in order."""
        return [s for s in self.sessions if s[0] is not None]

    def failed_attempts(self) -> list[list]:
        """Connection attempts that never got their first answer (recorded, then retried 0.2 s later)."""
        return [s for s in self.sessions if s[0] is None]

    def __repr__(self) -> str:
        return f"LongClient({self.kind} {self.vhost}: {self.sessions}; stuck: {self.stuck})"

    def websocket(self) -> None:
        asyncio.run(self._websocket())

    async def _websocket(self) -> None:
        """One WebSocket session on websockets' asyncio client: one thread (this one's event loop) reads
        and writes the connection. websockets' sync client reads in a thread of its own while the caller
        writes, and over TLS that puts two threads in one OpenSSL connection at once, which OpenSSL does
        not allow (openssl/openssl#8977): now and then a request was reported written but never sent, so
        the proxy waited 60 s for its headers (reproduced and captured on a lab host, docs/sites.md)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        # wss:// wraps the socket in TLS with the URI's host (vhost) as server name.
        scheme, tls = ("wss", {"ssl": self.tls}) if self.tls else ("ws", {})
        self.phase = "ws: TCP connect"
        sock = socket.create_connection((self.addr, self.port), timeout=5)
        sock.setblocking(False)
        self.phase = "ws: TLS and upgrade" if self.tls else "ws: upgrade"
        async with connect(f"{scheme}://{self.vhost}/ws", sock=sock, open_timeout=5, logger=self.logger, **tls) as ws:
            self.phase = "ws: first message"
            await ws.send("hello")
            session = [json.loads(await asyncio.wait_for(ws.recv(), 5))["release"], time.monotonic(), None, None]
            self.sessions.append(session)
            self.phase = "ws: open"
            try:
                while True:
                    await asyncio.sleep(0.2)
                    if self.stopping.is_set():
                        break
                    await ws.send("ping")
                    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["release"] == session[0]
                session[2:] = [time.monotonic(), "stopped by the test"]
            except ConnectionClosed:
                session[2:] = [time.monotonic(), f"closed {ws.close_code}"]
            self.phase = "ws: closing"
        self.phase = "ws: closed"

    def events(self) -> None:
        self.phase = "sse: connect"
        conn = http.client.HTTPConnection(self.vhost, self.port, timeout=5)
        sock = socket.create_connection((self.addr, self.port), timeout=5)
        # Host: vhost (from the connection's name), on a socket to addr (TLS with SNI vhost).
        conn.sock = self.tls.wrap_socket(sock, server_hostname=self.vhost) if self.tls else sock
        try:
            conn.request("GET", "/sse")
            resp = conn.getresponse()
            line = resp.readline()
            session = [json.loads(line[len(b"data: "):])["release"], time.monotonic(), None, None]
            self.sessions.append(session)
            self.phase = "sse: open"
            while not self.stopping.is_set():
                line = resp.readline()
                if not line:
                    session[2:] = [time.monotonic(), "end of stream"]
                    return
            session[2:] = [time.monotonic(), "stopped by the test"]
        finally:
            conn.close()
