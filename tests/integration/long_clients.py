# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Long-lived clients of a site through its proxy, for the scenarios' WebSocket and SSE tests."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time


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

    def websocket(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        # wss:// wraps the socket in TLS with the URI's host (vhost) as server name.
        scheme, tls = ("wss", {"ssl": self.tls}) if self.tls else ("ws", {})
        sock = socket.create_connection((self.addr, self.port), timeout=5)
        with connect(f"{scheme}://{self.vhost}/ws", sock=sock, open_timeout=5, **tls) as ws:
            ws.send("hello")
            session = [json.loads(ws.recv(timeout=5))["release"], time.monotonic(), None, None]
            self.sessions.append(session)
            try:
                while not self.stopping.wait(0.2):
                    ws.send("ping")
                    assert json.loads(ws.recv(timeout=5))["release"] == session[0]
                session[2:] = [time.monotonic(), "stopped by the test"]
            except ConnectionClosed:
                session[2:] = [time.monotonic(), f"closed {ws.close_code}"]

    def events(self) -> None:
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
            while not self.stopping.is_set():
                line = resp.readline()
                if not line:
                    session[2:] = [time.monotonic(), "end of stream"]
                    return
            session[2:] = [time.monotonic(), "stopped by the test"]
        finally:
            conn.close()
