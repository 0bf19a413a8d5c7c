#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure how Caddy flips between two app slots under keep-alive POST + GET load.

Runs ON a host with caddy and python3 (a Baton lab host: see run_lab.sh). Standard library only.
For each mechanism it starts its own Caddy (own admin port), two demo-app slots flipping
back and forth, and keep-alive clients that never retry, then prints one line of figures.

Mechanisms (a flip = start next slot, wait ready, switch, verify through the proxy, watch,
take the old slot out, drain and stop it, as Baton's rotation does):
  load    Baton today: rewrite the upstream file, `caddy adapt`, POST /load (twice per flip:
          new+old as backup for the watch window, then new only).
  patch   the same two changes as PATCHes of the reverse_proxy handler's sub-path in /config/.
  health  both slots permanently in the config, `lb_policy first` + active health on /readyz;
          no config change: the flip is the old slot's drain (its /readyz turns 503), started
          as soon as the new slot answers ready on its own port.
  health_wait  the same, but the drain waits --settle seconds more, so that Caddy's health
          checker has seen the new slot ready (Caddy 2.6 cannot be asked whether it has).
  gate    both slots permanently in the config, one reverse_proxy per slot (its own slot first,
          the other as health-gated backup), chosen per request by a `file` matcher on a gate
          file Baton creates/removes; no config change at all.
  gate_passive  the same without active health checks (`first` + passive health only).

Clients: `other` POSTs to another app's site on the same Caddy (--proxy-port + 1), like `checked`.
`checked` POST connections behave like urllib3/requests (before reusing an idle
connection they look whether the server closed it, and then reconnect); `naive` POST
connections are bare http.client (write on the reused socket whatever happened to it).
Neither ever retries a request: every failure is a lost request.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MECHANISMS = ("load", "patch", "health", "health_wait", "gate", "gate_passive")

COMMON = """\
\t\tlb_try_duration 5s
\t\tlb_try_interval 250ms
\t\ttransport http {
\t\t\tkeepalive off
\t\t}
\t\theader_down X-Baton-Upstream {http.reverse_proxy.upstream.hostport}
"""
PASSIVE = """\
\t\tlb_policy first
\t\tfail_duration 5s
"""
HEALTH = PASSIVE + """\
\t\thealth_uri /readyz
\t\thealth_interval 250ms
"""


class Bench:
    def __init__(self, args, mechanism: str) -> None:
        self.args = args
        self.mech = mechanism
        self.dir = Path(args.workdir) / mechanism
        self.port = args.proxy_port
        self.admin = f"localhost:{args.admin_port}"
        self.slots = {1: args.slot1_port, 2: args.slot2_port}
        self.procs: dict[int, subprocess.Popen] = {}
        self.caddy: subprocess.Popen | None = None
        self.handler_path: str | None = None

    # ---- configuration -------------------------------------------------------------------
    def up(self, slot: int) -> str:
        return f"127.0.0.1:{self.slots[slot]}"

    def upstream_file(self, live: int, backup: int | None) -> str:
        # What Baton 0.2's upstream.j2 rendered (the /load flip, before the gate).
        if backup is None:
            return f"\t\tto {self.up(live)}\n"
        return f"\t\tto {self.up(live)} {self.up(backup)}\n" + HEALTH

    def caddyfile(self) -> str:
        head = "{\n\tadmin %s\n\tauto_https off\n}\n" % self.admin
        if self.mech in ("load", "patch"):
            body = (f":{self.port} {{\n\treverse_proxy {{\n\t\timport {self.dir}/upstream.caddyfile\n"
                    + COMMON + "\t}\n}\n")
        elif self.mech in ("health", "health_wait"):
            body = (f":{self.port} {{\n\treverse_proxy {{\n\t\tto {self.up(1)} {self.up(2)}\n"
                    + HEALTH + COMMON + "\t}\n}\n")
        else:  # gate, gate_passive
            health = HEALTH if self.mech == "gate" else PASSIVE
            gate = f"file {{\n\t\t\troot {self.dir}/gate\n\t\t\ttry_files /slot1\n\t\t}}"
            body = (f":{self.port} {{\n"
                    f"\t@slot1 {{\n\t\t{gate}\n\t}}\n"
                    f"\t@slot2 {{\n\t\tnot {gate}\n\t}}\n"
                    f"\treverse_proxy @slot1 {{\n\t\tto {self.up(1)} {self.up(2)}\n" + health + COMMON + "\t}\n"
                    f"\treverse_proxy @slot2 {{\n\t\tto {self.up(2)} {self.up(1)}\n" + health + COMMON + "\t}\n"
                    "}\n")
        # Another app's site on the same Caddy: its clients show what a flip does to bystanders.
        other = f":{self.port + 1} {{\n\trespond \"other app\" 200\n}}\n"
        return head + body + other

    def adapt(self) -> bytes:
        out = subprocess.run(["caddy", "adapt", "--config", str(self.dir / "Caddyfile"), "--adapter", "caddyfile"],
                             check=True, capture_output=True)
        return out.stdout

    def admin_request(self, method: str, path: str, body: bytes) -> None:
        req = urllib.request.Request(f"http://{self.admin}{path}", data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def set_upstreams(self, live: int, backup: int | None) -> None:
        (self.dir / "upstream.caddyfile").write_text(self.upstream_file(live, backup))
        cfg = self.adapt()
        if self.mech == "load" or self.handler_path is None:
            self.admin_request("POST", "/load", cfg)
            if self.mech == "patch":
                self.handler_path = find_handler(json.loads(cfg), "/config")
            return
        node = json.loads(cfg)
        for part in self.handler_path.split("/")[2:]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        self.admin_request("PATCH", self.handler_path, json.dumps(node).encode())

    def set_gate(self, live: int) -> None:
        gate = self.dir / "gate" / "slot1"
        if live == 1:
            gate.touch()
        else:
            gate.unlink(missing_ok=True)

    # ---- processes -----------------------------------------------------------------------
    def start_caddy(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "gate").mkdir(parents=True)
        self.set_gate(1)
        (self.dir / "upstream.caddyfile").write_text(self.upstream_file(1, None))
        (self.dir / "Caddyfile").write_text(self.caddyfile())
        log = open(self.dir / "caddy.log", "wb")
        self.caddy = subprocess.Popen(["caddy", "run", "--config", str(self.dir / "Caddyfile"), "--adapter", "caddyfile"],
                                      stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.admin}/config/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"caddy did not start, see {self.dir / 'caddy.log'}")
        if self.mech == "patch":
            self.set_upstreams(1, None)  # the first change is a /load: it records the handler's path

    def start_slot(self, slot: int) -> None:
        env = dict(os.environ, PORT=str(self.slots[slot]), BATON_SLOT=str(slot), BATON_RELEASE=f"r{slot}",
                   WARMUP_SECONDS=str(self.args.warmup), DRAIN_SECONDS=str(self.args.drain_seconds),
                   DRAIN_TIMEOUT="30")
        self.procs[slot] = subprocess.Popen([sys.executable, str(HERE / "post_app.py")], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.up(slot)}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"slot {slot} did not become ready")

    def drain_slot(self, slot: int, wait: bool) -> None:
        proc = self.procs.get(slot)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        if wait:
            proc.wait(timeout=60)
            del self.procs[slot]

    def stop_all(self) -> None:
        for slot in list(self.procs):
            self.drain_slot(slot, wait=True)
        if self.caddy is not None:
            self.caddy.terminate()
            self.caddy.wait(timeout=30)

    def served_by(self) -> str | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            resp = conn.getresponse()
            resp.read()
            return resp.getheader("X-Baton-Upstream")
        except OSError:
            return None
        finally:
            conn.close()

    # ---- one flip --------------------------------------------------------------------------
    def flip(self, old: int, new: int) -> float:
        self.start_slot(new)
        t0 = time.monotonic()
        if self.mech in ("load", "patch"):
            self.set_upstreams(new, old)
        elif self.mech in ("health", "health_wait"):
            if self.mech == "health_wait":
                time.sleep(self.args.settle)
                t0 = time.monotonic()
            self.drain_slot(old, wait=False)
        else:
            self.set_gate(new)
        deadline = t0 + 10
        while self.served_by() != self.up(new):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.mech}: the proxy does not route to slot {new} 10 s after the flip")
            time.sleep(0.01)
        routed = time.monotonic() - t0
        time.sleep(self.args.watch)
        if self.mech in ("load", "patch"):
            self.set_upstreams(new, None)
        self.drain_slot(old, wait=True)
        time.sleep(self.args.pause)
        return routed


def find_handler(node, path):
    """Config path of the (only) reverse_proxy handler in an adapted config."""
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            return path
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for key, value in items:
        found = find_handler(value, f"{path}/{key}")
        if found:
            return found
    return None


class Client(threading.Thread):
    def __init__(self, kind: str, port: int, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.kind, self.port, self.rate, self.stop = kind, port, rate, stop
        self.method = "GET" if kind == "get" else "POST"
        self.sent = 0
        self.ok = 0
        self.non2xx: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.closed_idle = 0  # server closed our idle connection (seen before reuse)
        self.told_close = 0   # responses with Connection: close
        self.conns = 0

    def run(self) -> None:
        conn = None
        interval = 1.0 / self.rate
        nxt = time.monotonic()
        body = b'{"order": 1}'
        while not self.stop.is_set():
            if conn is not None and self.kind != "naive" and conn.sock is not None:
                readable, _, _ = select.select([conn.sock], [], [], 0)
                if readable:  # EOF (or junk) on an idle connection: what urllib3 checks
                    self.closed_idle += 1
                    conn.close()
                    conn = None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                self.conns += 1
            self.sent += 1
            try:
                if self.method == "POST":
                    conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                else:
                    conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    self.ok += 1
                else:
                    self.non2xx[resp.status] += 1
                if resp.will_close:
                    self.told_close += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors[type(exc).__name__] += 1
                conn.close()
                conn = None
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
        if conn is not None:
            conn.close()


def run(args, mechanism: str) -> dict:
    bench = Bench(args, mechanism)
    stop = threading.Event()
    clients: list[Client] = []
    routed: list[float] = []
    started = time.monotonic()
    try:
        bench.start_caddy()
        bench.start_slot(1)
        while bench.served_by() != bench.up(1):
            time.sleep(0.1)
        clients = ([Client("checked", args.proxy_port, args.post_rate, stop) for _ in range(args.checked)]
                   + [Client("naive", args.proxy_port, args.post_rate, stop) for _ in range(args.naive)]
                   + [Client("get", args.proxy_port, args.get_rate, stop) for _ in range(args.gets)]
                   + [Client("other", args.proxy_port + 1, args.post_rate, stop) for _ in range(args.other)])
        for c in clients:
            c.start()
        time.sleep(1)
        live = 1
        for _ in range(args.flips):
            if time.monotonic() - started > args.max_seconds:
                break
            new = 2 if live == 1 else 1
            routed.append(bench.flip(live, new))
            live = new
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=20)
        bench.stop_all()
    res = {"mechanism": mechanism, "flips": len(routed), "seconds": round(time.monotonic() - started, 1),
           "routed_ms_max": round(1000 * max(routed), 1) if routed else None,
           "routed_ms_median": round(1000 * sorted(routed)[len(routed) // 2], 1) if routed else None}
    for kind in ("checked", "naive", "get", "other"):
        group = [c for c in clients if c.kind == kind]
        errors = sum((c.errors for c in group), collections.Counter())
        non2xx = sum((c.non2xx for c in group), collections.Counter())
        res[kind] = {"sent": sum(c.sent for c in group), "ok": sum(c.ok for c in group),
                     "lost": sum(errors.values()) + sum(non2xx.values()),
                     "errors": dict(errors), "non2xx": {str(k): v for k, v in non2xx.items()},
                     "idle_closed_by_proxy": sum(c.closed_idle for c in group),
                     "connections": sum(c.conns for c in group)}
    return res


def table(results: list[dict]) -> str:
    head = ("mechanism     flips  checked POST lost/sent  naive POST lost/sent  GET lost/sent  "
            "other app POST lost/sent  idle conns closed by proxy  routed ms (median/max)")
    lines = [head, "-" * len(head)]
    for r in results:
        ch, nv, gt, ot = r["checked"], r["naive"], r["get"], r["other"]
        closed = ch["idle_closed_by_proxy"] + gt["idle_closed_by_proxy"] + ot["idle_closed_by_proxy"]
        lines.append(f"{r['mechanism']:<12}  {r['flips']:>5}  {ch['lost']:>10}/{ch['sent']:<12}  "
                     f"{nv['lost']:>8}/{nv['sent']:<11}  {gt['lost']:>5}/{gt['sent']:<7}  "
                     f"{ot['lost']:>14}/{ot['sent']:<9}  "
                     f"{closed:>26}  {r['routed_ms_median']}/{r['routed_ms_max']}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mechanisms", default=",".join(MECHANISMS))
    p.add_argument("--flips", type=int, default=60)
    p.add_argument("--checked", type=int, default=3, help="checked keep-alive POST connections")
    p.add_argument("--naive", type=int, default=1, help="naive keep-alive POST connections")
    p.add_argument("--gets", type=int, default=2, help="keep-alive GET connections")
    p.add_argument("--other", type=int, default=2,
                   help="checked keep-alive POST connections to another site on the same Caddy (port + 1)")
    p.add_argument("--post-rate", type=float, default=10.0, help="requests/s per POST connection")
    p.add_argument("--get-rate", type=float, default=15.0, help="requests/s per GET connection")
    p.add_argument("--watch", type=float, default=1.0, help="watch window after the flip (s)")
    p.add_argument("--pause", type=float, default=0.5, help="pause between flips (s)")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--drain-seconds", type=float, default=1.0)
    p.add_argument("--settle", type=float, default=0.75,
                   help="health_wait: wait after the new slot is ready before draining the old (s)")
    p.add_argument("--max-seconds", type=float, default=900, help="bound per mechanism")
    p.add_argument("--proxy-port", type=int, default=8080)
    p.add_argument("--admin-port", type=int, default=2999)
    p.add_argument("--slot1-port", type=int, default=8001)
    p.add_argument("--slot2-port", type=int, default=8002)
    p.add_argument("--workdir", default="/tmp/caddy_flip")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    results = []
    for mech in args.mechanisms.split(","):
        if mech not in MECHANISMS:
            p.error(f"unknown mechanism {mech!r}; choose from {', '.join(MECHANISMS)}")
        res = run(args, mech)
        print(json.dumps(res), flush=True)
        results.append(res)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
