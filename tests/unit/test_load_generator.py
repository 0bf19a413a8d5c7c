# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/integration's load generator (the zero-drop tests' client): every request is counted, and
the first non-2xx answers are kept with what tells who gave them, so a failed CI run says whether a
503 came from the proxy ("no upstreams available") or from the app. Against a real loopback server."""
from __future__ import annotations

import http.server
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from load import MAX_FAILURES  # noqa: E402
from zero_drop import ConstantLoad  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    failing = threading.Event()

    def answer(self) -> None:
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = (503, b"no upstreams available") if self.failing.is_set() else (200, b"{}")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Baton-Upstream", "127.0.0.1:8002")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def version_string(self) -> str:
        return "test-proxy"

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.failing.clear()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def run_load(server, seconds: float) -> dict:
    with ConstantLoad(f"http://127.0.0.1:{server.server_address[1]}", rate=40, workers=4, slow_ms=100,
                      slow_workers=1, post_workers=1) as load:
        time.sleep(seconds)
    return load.result()


def test_all_2xx_keeps_no_failure(server):
    result = run_load(server, 0.5)
    assert result["requests"] > 10 and result["non_2xx"] == 0
    assert result["failures"] == []


def test_non_2xx_answers_are_sampled_with_who_gave_them(server):
    Handler.failing.set()
    result = run_load(server, 0.5)
    assert result["non_2xx"] == result["requests"] > MAX_FAILURES
    assert result["posts_lost"] == result["posts"] > 0
    # Only the first ones are kept, in the order they were answered, each one complete.
    assert len(result["failures"]) == MAX_FAILURES
    ats = [f["at"] for f in result["failures"]]
    assert all(0 <= at < 0.5 for at in ats)
    for failure in result["failures"]:
        assert failure["status"] == 503 and failure["kind"] in ("fast", "slow", "post")
        assert failure["body"] == "no upstreams available"
        assert failure["server"].startswith("test-proxy") and failure["upstream"] == "127.0.0.1:8002"


def test_a_refused_connection_is_sampled_by_its_tag():
    with ConstantLoad("http://127.0.0.1:9", rate=20, workers=2, slow_ms=100, slow_workers=1) as load:
        time.sleep(0.3)
    result = load.result()
    assert result["non_2xx"] == result["requests"] > 0
    assert result["failures"][0]["status"].startswith("conn:")
    assert result["failures"][0]["body"] == "" and result["failures"][0]["upstream"] is None


def test_fresh_workers_open_a_new_connection_for_each_request(server):
    connections = []
    real = Handler.setup

    def setup(self):  # one call per accepted connection
        connections.append(self.client_address)
        real(self)

    Handler.setup = setup
    try:
        with ConstantLoad(f"http://127.0.0.1:{server.server_address[1]}", rate=10, workers=1, slow_ms=100,
                          slow_workers=0, fresh_workers=2) as load:
            time.sleep(0.6)
    finally:
        Handler.setup = real
    result = load.result()
    fresh = result["codes"].get("fresh:200", 0)
    assert fresh >= 10 and result["non_2xx"] == 0 and result["retried"] == 0, result
    # Each fresh GET had a connection of its own; the keep-alive worker kept one.
    assert len(connections) >= fresh + 1, (len(connections), result)


def test_a_fresh_request_that_is_refused_counts_and_is_never_resent():
    with ConstantLoad("http://127.0.0.1:9", rate=10, workers=1, slow_ms=100, slow_workers=0,
                      fresh_workers=1) as load:
        time.sleep(0.3)
    result = load.result()
    refused = {code: n for code, n in result["codes"].items() if code.startswith("fresh:conn:")}
    assert refused and result["non_2xx"] == result["requests"] and result["retried"] == 0, result
