# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Constant HTTP load and a slot probe for the zero-drop benchmark (stdlib asyncio only).

Why not ``hey``: its ``-o csv`` output has one row per *response* and silently leaves out
requests that failed at the connection level (refused, reset, closed), and it does not show
response headers. Here every request is one row, and a row carries the ``X-Release`` header,
so each response can be attributed to the instance that served it.

``Load`` runs on its own thread with its own event loop:

* fast workers: keep-alive ``GET /``, each at a fixed rate (like ``hey -c W -q Q``: a worker
  waits for its reply, so the rate holds as long as replies are faster than the interval);
* slow workers: ``GET /slow?ms=N`` one after the other (at most one per N ms each), staggered,
  so some are always in flight;
* post workers (optional): keep-alive ``POST /`` with a small body at a fixed rate each, never
  resent (a client must not repeat a write it cannot know was not done): any failure counts;
* fresh workers (optional): ``GET /`` at a fixed rate each, every one on a new connection
  (``Connection: close``), never resent: they reach the server at the moment an instance stops
  listening, which keep-alive clients hardly do (a connection left in a closed socket's accept
  queue is reset);
* a probe: every 20 ms ``GET /readyz`` on each slot port (new connection each time, closed at
  once), recording only state changes: ``down`` (refused), ``warming``, ``ready``,
  ``draining``, ``timeout``.

Like browsers and Go's net/http, a request is retried once on a fresh connection when a
*reused* keep-alive connection turns out to be closed before any response byte arrived (the
server may close an idle connection at any time, RFC 9112 section 9.3.1); such retries are
counted separately. Any other failure is recorded as a connection error.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.parse

# One row per request: (start, end, kind, status, release). Times are time.monotonic();
# kind is "fast", "slow", "post" or "fresh"; status is the HTTP status (int) or an error tag (str).
Sample = tuple[float, float, str, "int | str", "str | None"]
# One row per probe state change: (time, port, state).
Transition = tuple[float, int, str]

PROBE_INTERVAL = 0.02
PROBE_TIMEOUT = 0.3


MAX_FAILURES = 10  # failure samples kept per load


class StaleConnection(Exception):
    """A reused keep-alive connection was closed before any response byte arrived."""


def error_tag(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "conn:refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "conn:reset"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "conn:closed"
    if isinstance(exc, TimeoutError):
        return "conn:timeout"
    return f"conn:{type(exc).__name__}"


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # no trailers expected: the empty line after 0
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
        headers["connection"] = "close"
    return status, headers, body


class Connection:
    """One keep-alive client connection (opened lazily, reopened after it is closed).

    ``vhost`` is the Host header (the site's name when the proxy serves several sites). With
    ``tls`` (an ``ssl.SSLContext``) the connection to ``host`` is HTTPS and the name in ``vhost``
    (without a port) is the TLS server name (SNI) the certificate is checked against, as for a
    browser that resolved the name to ``host`` (``curl --resolve``)."""

    def __init__(self, host: str, port: int, vhost: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.vhost, self.tls = host, port, vhost or host, tls
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.used = False

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.tls is None:
            return await asyncio.open_connection(self.host, self.port)
        server_name = urllib.parse.urlsplit("//" + self.vhost).hostname
        return await asyncio.open_connection(self.host, self.port, ssl=self.tls, server_hostname=server_name)

    def close(self) -> None:
        if self.streams:
            self.streams[1].close()
        self.streams, self.used = None, False

    async def send(self, method: str, path: str, body: bytes = b"",
                   close: bool = False) -> tuple[int, dict[str, str], bytes]:
        if self.streams is not None and self.streams[0].at_eof():
            # The server closed this idle connection (a proxy reload does): reconnect before
            # sending, as requests/urllib3 and browsers check, rather than write into a closed one.
            self.close()
        if self.streams is None:
            self.streams = await self.open()
        reader, writer = self.streams
        reused, self.used = self.used, True
        length = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
        length += "Connection: close\r\n" if close else ""
        try:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.vhost}\r\nUser-Agent: baton-bench\r\n"
                         f"{length}\r\n".encode() + body)
            await writer.drain()
            status, headers, answer = await read_response(reader)
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError, ssl.SSLEOFError) as exc:
            self.close()
            # A reset carries no partial data; a clean close tells how much had arrived.
            if reused and not getattr(exc, "partial", b""):
                raise StaleConnection from exc
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, answer


class Load:
    """Constant load on one proxy URL plus the slot probe; start(), then stop() returns data."""

    def __init__(self, host: str, port: int, slot_ports: list[int], *, rate: int, workers: int,
                 slow_workers: int, slow_ms: int, timeout: float = 10.0, vhost: str | None = None,
                 post_workers: int = 0, post_rate: float = 10.0, tls: ssl.SSLContext | None = None,
                 fresh_workers: int = 0, fresh_rate: float = 20.0) -> None:
        self.host, self.port, self.slot_ports, self.vhost, self.tls = host, port, slot_ports, vhost, tls
        self.post_workers, self.post_interval = post_workers, 1 / post_rate
        self.fresh_workers, self.fresh_interval = fresh_workers, 1 / fresh_rate
        self.interval = workers / rate
        self.workers, self.slow_workers, self.slow_ms = workers, slow_workers, slow_ms
        self.timeout = timeout
        self.samples: list[Sample] = []
        self.transitions: list[Transition] = []
        self.retried = 0
        # The first non-2xx answers in full enough to tell who gave them (the proxy or the app):
        # {"at", "kind", "status", "upstream", "server", "body"}, "at" in seconds from start().
        self.failures: list[dict] = []
        self.started = time.monotonic()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),),
                                       name="bench-load", daemon=True)
        self.stopping: asyncio.Event | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()
        while self.stopping is None:  # wait until the loop runs: stop() needs the event
            time.sleep(0.01)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join()
        self.loop.close()

    async def main(self) -> None:
        self.stopping = asyncio.Event()
        tasks = [asyncio.create_task(self.fast_worker(i * self.interval / self.workers))
                 for i in range(self.workers)]
        slow_stagger = self.slow_ms / 1000 / max(1, self.slow_workers)
        tasks += [asyncio.create_task(self.slow_worker(i * slow_stagger)) for i in range(self.slow_workers)]
        tasks += [asyncio.create_task(self.post_worker(i * self.post_interval / max(1, self.post_workers)))
                  for i in range(self.post_workers)]
        tasks += [asyncio.create_task(self.fresh_worker(i * self.fresh_interval / max(1, self.fresh_workers)))
                  for i in range(self.fresh_workers)]
        tasks += [asyncio.create_task(self.probe(port)) for port in self.slot_ports]
        await self.stopping.wait()
        # Let requests in flight finish (a slow one takes slow_ms), so none is cut off by us.
        await asyncio.wait(tasks, timeout=self.slow_ms / 1000 + self.timeout)
        for task in tasks:
            task.cancel()

    async def request(self, conn: Connection, path: str, kind: str) -> None:
        start = time.monotonic()
        method, body = ("POST", b'{"order": 1}') if kind == "post" else ("GET", b"")
        answer = b""  # the response's body: a failure's sample quotes it
        for attempt in range(2):
            try:
                status, headers, answer = await asyncio.wait_for(conn.send(method, path, body, kind == "fresh"),
                                                                 self.timeout)
            except StaleConnection:
                if attempt == 0 and method == "GET":
                    self.retried += 1
                    continue
                status, headers = "conn:closed", {}
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                conn.close()
                status, headers = error_tag(exc), {}
            break
        self.samples.append((start, time.monotonic(), kind, status, headers.get("x-release")))
        if not str(status).startswith("2") and len(self.failures) < MAX_FAILURES:
            self.failures.append({"at": round(start - self.started, 3), "kind": kind, "status": status,
                                  "upstream": headers.get("x-baton-upstream"), "server": headers.get("server"),
                                  "body": answer[:160].decode("utf-8", "replace")})

    async def fast_worker(self, offset: float) -> None:
        conn = Connection(self.host, self.port, self.vhost, self.tls)
        due = time.monotonic() + offset
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.interval, time.monotonic())  # no burst after a slow reply
            await self.request(conn, "/", "fast")
        conn.close()

    async def post_worker(self, offset: float) -> None:
        conn = Connection(self.host, self.port, self.vhost, self.tls)
        due = time.monotonic() + offset
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.post_interval, time.monotonic())
            await self.request(conn, "/", "post")
        conn.close()

    async def fresh_worker(self, offset: float) -> None:
        # A new connection for every request: never reused, so never retried.
        due = time.monotonic() + offset
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.fresh_interval, time.monotonic())
            conn = Connection(self.host, self.port, self.vhost, self.tls)
            await self.request(conn, "/", "fresh")
            conn.close()

    async def slow_worker(self, offset: float) -> None:
        # Back to back while they take slow_ms; paced at one per slow_ms when they fail fast.
        conn = Connection(self.host, self.port, self.vhost, self.tls)
        due = time.monotonic() + offset
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.slow_ms / 1000, time.monotonic())
            await self.request(conn, f"/slow?ms={self.slow_ms}", "slow")
        conn.close()

    async def probe_once(self, port: int) -> str:
        try:
            reader, writer = await asyncio.open_connection(self.host, port)
        except OSError:
            return "down"
        try:
            writer.write(f"GET /readyz HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode())
            status, _headers, body = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            return "down"
        finally:
            writer.close()
        if status == 200:
            return "ready"
        try:
            return str(json.loads(body)["status"])
        except (ValueError, KeyError, TypeError):
            return f"http{status}"

    async def probe(self, port: int) -> None:
        last = None
        while not self.stopping.is_set():
            tick = time.monotonic()
            try:
                state = await asyncio.wait_for(self.probe_once(port), PROBE_TIMEOUT)
            except TimeoutError:
                state = "timeout"
            if state != last:
                self.transitions.append((tick, port, state))
                last = state
            await asyncio.sleep(max(0.0, tick + PROBE_INTERVAL - time.monotonic()))
