#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Zero-drop benchmark: Baton's deploys versus the usual scripts, under the same constant load.

Boots lab hosts (tests/lab/baton_lab.py), then for each scenario deploys the demo app
(tests/apps/demo) N times in a row while tests/integration/load.py keeps a constant keep-alive load
plus a stream of slow requests on the public port (the proxy's, or the app's own socket without a
proxy), and probes both slot ports every 20 ms:

* Baton, once per process manager x proxy combination (one fresh host each); a combination
  whose deploy is refused by the argument specs (not implemented yet) is skipped with a note.
  ``systemd+none`` is Baton without a proxy (``baton_proxy: none``): systemd holds the one public
  socket (port SOCKET_PORT) and passes it to both slots, and the load goes to that port;
* baseline "naive": one instance behind nginx, ``systemctl restart``;
* baseline "classic": two instances in one nginx upstream, restart the other, poll until it
  answers anything, stop the old one at once;
* baseline "reuseport": no proxy, each instance listens on SOCKET_PORT itself with SO_REUSEPORT
  (two sockets, two accept queues); start the other, poll until it answers /readyz on its own
  port, stop the old one (SIGTERM) (tests/bench/baselines.sh, plain shell over SSH).

Writes bench-results/<UTC time>/: results.json, results.md (the table), timeline.png, the
per-request samples (samples-<scenario>.csv.gz) and every deploy's log and task timing.

    make bench                                    # 20 deploys, every combination, both baselines
    make bench BENCH_DEPLOYS=3 BENCH_COMBOS=systemd+nginx BENCH_BASELINES=classic
    make bench BENCH_TLS=1                        # Baton's sites over HTTPS (see --tls)

With --tls, Baton's deploys serve the site as bench.example over HTTPS on port 443 (baton_tls,
baton_tls_source controller, with a certificate the benchmark makes with openssl), and the load
connects with SNI and verifies the chain against it. The baselines, and systemd+none (no proxy to
end TLS), stay on plain HTTP.
"""
from __future__ import annotations

import argparse
import bisect
import csv
import gzip
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from load import Load  # noqa: E402 (tests/integration/load.py, shared with the zero-drop tests)
from plot import plot_timelines  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]
LAB = [sys.executable, str(REPO / "tests/lab/baton_lab.py")]
LAB_STATE = Path(os.environ.get("BATON_LAB_STATE", "/var/tmp/baton-lab"))
APP = REPO / "tests/apps/demo"
COMBOS = ("systemd+nginx", "systemd+caddy", "supervisor+nginx", "supervisor+caddy", "systemd+none")
BASELINES = {"naive": "baseline: naive restart (1 instance)", "classic": "baseline: classic 2-instance script",
             "reuseport": "baseline: SO_REUSEPORT, 2 sockets"}
SLOT_PORTS = [8001, 8002]
PROXY_PORT = 80
# Without a proxy (Baton's baton_proxy none, the reuseport baseline) the load goes to the app's own
# public port: Baton's baton_socket_port (its default), the port baselines.sh gives REUSEPORT_PORT.
SOCKET_PORT = 8080
TLS_PORT, TLS_NAME = 443, "bench.example"
# What ansible-core prints when a role's argument spec refuses a value (e.g. a proxy not yet
# implemented): such a combination is skipped, any other failure is reported as one.
NOT_IMPLEMENTED = re.compile(r"must be one of|Validating arguments against arg spec")
# Figures from the rotation's summary line ("ready after 5.1 s (26 checks), served through the proxy
# 0.01 s later; drained 2 in-flight connection(s) of slot 1 in 0.6 s; rotation took 13.9 s."; without
# a proxy "accepting on the shared socket 0.01 s later"). "routed" is optional (older lines).
SUMMARY = {"ready": re.compile(r"ready after ([\d.]+) s"),
           "drain": re.compile(r"in-flight connection\(s\) of slot \S+ in ([\d.]+) s"),
           "rotation": re.compile(r"rotation took ([\d.]+) s")}
SUMMARY_ROUTED = re.compile(r"(?:served through the proxy|accepting on the shared socket) (-?[\d.]+) s later")
# Window of a deploy for the latency split: from its first probe/load event to its last one.
WINDOW_BEFORE, WINDOW_AFTER = 0.5, 1.0
# Issue 11's targets: medians per host, repeat deploys; wall ratio against the classic script's median wall.
TARGETS = {"ok_pct": 100.0, "overhead_s": 3.0, "ready_to_routed_s": 0.3, "p99_ratio": 1.5, "classic_ratio": 1.5}


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of values (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- deploys -------------------------------------------------------------------------------

class BatonDeploy:
    """ansible-playbook playbooks/deploy.yml for one host and one combination."""

    def __init__(self, lab: str, host: str, combo: str, warmup: float, logs: Path, tls: dict | None = None) -> None:
        self.host, self.logs = host, logs
        manager, proxy = combo.split("+")
        collections = REPO / ".cache/collections"
        (collections / "ansible_collections/baton").mkdir(parents=True, exist_ok=True)
        link = collections / "ansible_collections/baton/deploy"
        if not link.is_symlink():
            link.symlink_to(REPO)
        self.env = dict(
            os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_timer")
        # BIND=0.0.0.0 lets the benchmark's probe reach the slot ports from outside the host.
        app_env = {"WARMUP_SECONDS": str(warmup), "BIND": "0.0.0.0"}
        # ansible-playbook on the lab's inventory: a deploy and Ansible's floor (floor()) alike.
        self.playbook = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(LAB_STATE / lab / "inventory.yml")]
        self.cmd = [*self.playbook, str(REPO / "playbooks/deploy.yml"), "--limit", host, "-e", "baton_app=demo",
                    "-e", f"baton_source={APP}", "-e", f"baton_process_manager={manager}",
                    "-e", f"baton_proxy={proxy}", "-e", json.dumps({"baton_env": app_env})]
        if proxy == "none":
            self.cmd += ["-e", f"baton_socket_port={SOCKET_PORT}"]
        if tls:
            self.cmd += ["-e", json.dumps({"baton_server_names": [TLS_NAME], "baton_tls": True,
                                           "baton_tls_source": "controller", "baton_tls_certificate": tls["cert"],
                                           "baton_tls_certificate_key": tls["key"]})]

    def __call__(self, release: str) -> dict:
        timing = self.logs / f"{release}.timing.json"
        started = time.time()
        with open(self.logs / f"{release}.log", "w+", encoding="utf-8") as out:
            rc = subprocess.call([*self.cmd, "-e", f"baton_release={release}"], stdout=out,
                                 stderr=subprocess.STDOUT, env=dict(self.env, BATON_BENCH_TIMING=str(timing)))
            out.seek(0)
            text = out.read()
        result = {"rc": rc, "launched_epoch": started}
        if rc and NOT_IMPLEMENTED.search(text):
            result["not_implemented"] = next(line.strip() for line in text.splitlines() if NOT_IMPLEMENTED.search(line))
        summary = parse_summary(next((line for line in text.splitlines() if " active on slot " in line), ""))
        if summary:
            result["summary"] = summary
        if timing.exists():
            result["timing"] = json.loads(timing.read_text())
        return result

    def floor(self) -> dict:
        """One run of tests/bench/floor.yml on the host: ansible-playbook with the same inventory, connection
        settings and callback as a deploy, and 3 module runs that do nothing (Ansible's own cost)."""
        timing = self.logs / f"floor-{time.monotonic_ns()}.timing.json"
        started = time.monotonic()
        with open(self.logs / "floor.log", "a", encoding="utf-8") as out:
            rc = subprocess.call([*self.playbook, str(BENCH / "floor.yml"), "--limit", self.host],
                                 stdout=out, stderr=subprocess.STDOUT, env=dict(self.env, BATON_BENCH_TIMING=str(timing)))
        ended = time.monotonic()
        runs = json.loads(timing.read_text())["remote_runs"] if timing.exists() else None
        return {"rc": rc, "t0": started, "t1": ended, "wall_s": round(ended - started, 2), "remote_runs": runs}


def parse_summary(line: str) -> dict | None:
    """The figures of a rotation's summary line (None without all of ready, drain and rotation)."""
    found = {key: pattern.search(line) for key, pattern in SUMMARY.items()}
    if not all(found.values()):
        return None
    summary = {key: float(match.group(1)) for key, match in found.items()}
    routed = SUMMARY_ROUTED.search(line)
    if routed:
        summary["routed"] = float(routed.group(1))
    return summary


def public_port(scenario: str, tls: bool = False) -> int:
    """The port the load goes to: the app's own socket without a proxy ("...+none", reuseport),
    else the proxy's (443 with --tls, Baton's combinations with a proxy only)."""
    if scenario.endswith("+none") or scenario == "reuseport":
        return SOCKET_PORT
    return TLS_PORT if tls else PROXY_PORT


class BaselineDeploy:
    """tests/bench/baselines.sh over SSH on the baseline host."""

    def __init__(self, lab: str, host: str, mode: str, warmup: float, logs: Path) -> None:
        self.ssh = ["ssh", "-F", str(LAB_STATE / lab / "ssh_config"), "-o", "BatchMode=yes", host]
        self.mode, self.logs = mode, logs
        self.script = (BENCH / "baselines.sh").read_text()
        with open(APP / "demo_app.py", "rb") as app:
            subprocess.run([*self.ssh, "mkdir -p /opt/bench-baseline && cat > /opt/bench-baseline/demo_app.py"],
                           stdin=app, check=True)
        self.run("setup", mode, str(warmup), log_name="setup", check=True)

    def run(self, *args: str, log_name: str, check: bool = False) -> int:
        with open(self.logs / f"{log_name}.log", "w", encoding="utf-8") as out:
            return subprocess.run([*self.ssh, "bash", "-s", "--", *args], input=self.script, text=True,
                                  stdout=out, stderr=subprocess.STDOUT, check=check).returncode

    def __call__(self, release: str) -> dict:
        return {"rc": self.run(self.mode, release, log_name=release)}


# --- analysis ------------------------------------------------------------------------------

class Timeline:
    """Probe transitions and load samples of one scenario, with lookups by time."""

    def __init__(self, samples: list, transitions: list) -> None:
        self.samples = sorted(samples)
        self.starts = [s[0] for s in self.samples]
        self.transitions = sorted(transitions)

    def between(self, lo: float, hi: float) -> list:
        return self.samples[bisect.bisect_left(self.starts, lo):bisect.bisect_left(self.starts, hi)]

    def state_at(self, port: int, t: float) -> str:
        state = "down"
        for when, p, s in self.transitions:
            if when > t:
                break
            if p == port:
                state = s
        return state

    def events(self, t0: float, t_next: float, release: str, previous: str) -> dict:
        """When, during one deploy, the new instance started/got ready/got traffic and the old one
        served its last response/closed its port (None for what did not happen)."""
        old_ports = [p for p in SLOT_PORTS if self.state_at(p, t0) == "ready"]
        state = {p: self.state_at(p, t0) for p in SLOT_PORTS}
        ev = dict.fromkeys(("started", "ready", "routed", "drained", "stopped"))
        for when, port, new in self.transitions:
            if not t0 < when < t_next:
                continue
            if ev["started"] is None and state[port] == "down" and new not in ("down", "timeout"):
                ev["started"] = when
            if ev["ready"] is None and ev["started"] is not None and new == "ready":
                ev["ready"] = when
            if ev["stopped"] is None and port in old_ports and new == "down":
                ev["stopped"] = when
            state[port] = new
        window = self.between(t0, t_next)
        ev["routed"] = min((s[1] for s in window if s[4] == release), default=None)
        ev["drained"] = max((s[1] for s in window if s[4] == previous), default=None)
        return ev


def inside(intervals: list[tuple[float, float]], t: float) -> bool:
    """Whether t falls in one of the sorted, non-overlapping intervals."""
    i = bisect.bisect_right(intervals, (t, float("inf"))) - 1
    return i >= 0 and t <= intervals[i][1]


def spread(values: list[float], digits: int = 3) -> dict:
    """Median and max of per-deploy figures (None for both without any)."""
    return {"median": rounded(statistics.median(values), digits) if values else None,
            "max": rounded(max(values, default=None), digits)}


def declared_ready(deploy: dict) -> float | None:
    """When Baton declared the new slot ready (the end of the rotate module's ``ready`` step), on the
    load's monotonic clock; None without the step. The lab hosts share the controller's kernel clock."""
    step = next((s for s in deploy.get("timing", {}).get("steps", []) if s["step"] == "ready" and s.get("started")), None)
    if step is None:
        return None
    return step["started"] + step["seconds"] - (time.time() - time.monotonic())


def analyse(load: Load, deploys: list[dict], origin: float, end: float,
            other_busy: list[tuple[float, float]] = ()) -> dict:
    """Counts and latencies of one scenario. A request is "during a deploy" when it starts in a
    rotation window (first to last event of a deploy, widened by WINDOW_BEFORE/AFTER) and
    "steady" when it starts while no deploy runs at all (the settle time between deploys), nor
    anything else of the benchmark's (other_busy: the runs of Ansible's floor)."""
    timeline = Timeline(load.samples, load.transitions)
    windows, busy = [], list(other_busy)
    for i, deploy in enumerate(deploys):
        t_next = deploys[i + 1]["t0"] if i + 1 < len(deploys) else end
        previous = deploys[i - 1]["release"] if i else "r0"
        ev = timeline.events(deploy["t0"], t_next, deploy["release"], previous)
        seen = [t for t in ev.values() if t is not None]
        windows.append((min(seen) - WINDOW_BEFORE, max(seen) + WINDOW_AFTER) if seen else (deploy["t0"], deploy["t1"]))
        busy.append((min(deploy["t0"], windows[-1][0]), max(deploy["t1"], windows[-1][1])))
        deploy["events"] = {k: rounded(None if v is None else v - origin) for k, v in ev.items()}
        if ev["ready"] is not None and ev["routed"] is not None:
            deploy["ready_to_routed_s"] = rounded(ev["routed"] - ev["ready"])
        declared = declared_ready(deploy)
        if declared is not None and ev["routed"] is not None:
            deploy["declared_ready_to_routed_s"] = rounded(ev["routed"] - declared)
        if "summary" in deploy:
            deploy["overhead_s"] = rounded(deploy["wall_s"] - deploy["summary"]["ready"] - deploy["summary"]["drain"], 2)

    busy.sort()  # deploys in order, then the floor's runs after them
    samples = timeline.samples
    codes = Counter(str(s[3]) for s in samples)
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    conn_errors = {code: n for code, n in sorted(codes.items()) if code.startswith("conn:")}
    during = [s for s in samples if inside(windows, s[0])]
    latency = {"steady": [], "deploy": []}
    for s in samples:
        if s[2] == "fast" and isinstance(s[3], int):
            if inside(windows, s[0]):
                latency["deploy"].append((s[1] - s[0]) * 1000)
            elif not inside(busy, s[0]):
                latency["steady"].append((s[1] - s[0]) * 1000)
    ready_to_routed = [d["ready_to_routed_s"] for d in deploys if "ready_to_routed_s" in d]
    declared_to_routed = [d["declared_ready_to_routed_s"] for d in deploys if "declared_ready_to_routed_s" in d]
    overheads = [d["overhead_s"] for d in deploys if "overhead_s" in d]
    duration = samples[-1][0] - samples[0][0] if samples else 0
    return {
        "deploys": len(deploys),
        "failed_deploys": sum(1 for d in deploys if d["rc"]),
        "requests": len(samples),
        "fast_requests": sum(1 for s in samples if s[2] == "fast"),
        "slow_requests": sum(1 for s in samples if s[2] == "slow"),
        "fresh_requests": sum(1 for s in samples if s[2] == "fresh"),
        "fresh_failed": sum(1 for s in samples if s[2] == "fresh" and not str(s[3]).startswith("2")),
        "rate_per_s": rounded(len(samples) / duration if duration else None, 1),
        "ok_pct": rounded(100 * ok / len(samples) if samples else None, 3),
        "codes": dict(sorted(codes.items())),
        "non_2xx": {code: n for code, n in sorted(codes.items()) if not code.startswith("2")},
        "http_errors": {code: n for code, n in sorted(codes.items())
                        if not code.startswith("2") and not code.startswith("conn:")},
        "connection_errors": sum(conn_errors.values()),
        "connection_errors_by_tag": conn_errors,
        "client_retries": load.retried,
        "deploy_window_requests": len(during),
        "deploy_window_ok_pct": rounded(100 * sum(1 for s in during if str(s[3]).startswith("2")) / len(during)
                                        if during else None, 3),
        "stale_keepalive_retries": load.retried,
        "latency_ms": {f"{k}_{p}": rounded(percentile(v, q), 2) for k, v in latency.items()
                       for p, q in (("p50", 50), ("p99", 99))},
        "ready_to_routed_s": spread(ready_to_routed),
        "declared_ready_to_routed_s": spread(declared_to_routed),
        "overhead_s": spread(overheads, 2),
        "wall_s": {"median": rounded(statistics.median(d["wall_s"] for d in deploys), 2) if deploys else None},
    }


def task_breakdown(deploys: list[dict]) -> dict:
    """Mean seconds per deploy of every task (by file position), plus start-up and exit."""
    per_task: dict[str, dict] = {}
    totals = defaultdict(float)
    steps: dict[str, float] = defaultdict(float)
    timed = [d for d in deploys if "timing" in d]
    for d in timed:
        timing = d["timing"]
        first = timing["tasks"][0]["start"] if timing["tasks"] else 0
        totals["ansible-playbook start-up (interpreter, inventory, playbook parse, until the first task)"] += (
            timing["loaded"] - d["launched_epoch"] + first)
        totals["ansible-playbook exit"] += d["launched_epoch"] + d["wall_s"] - timing["ended"]
        totals["remote module runs (count)"] += timing["remote_runs"]
        for step in timing.get("steps", []):
            steps[step["step"]] += step["seconds"]
        for task in timing["tasks"]:
            file, _sep, line = task["path"].rpartition(":")
            key = f"{os.path.relpath(Path(file).resolve(), REPO)}:{line}"
            entry = per_task.setdefault(key, {"task": re.sub(r"\br?\d+\b", "N", task["name"]),
                                              "action": task["action"], "seconds": 0.0, "runs": 0})
            entry["seconds"] += task["seconds"]
            entry["runs"] += 1
    if not timed:
        return {}
    n = len(timed)
    tasks = sorted(({"where": k, **v, "seconds": round(v["seconds"] / n, 3), "runs": round(v["runs"] / n, 2)}
                    for k, v in per_task.items()), key=lambda t: -t["seconds"])
    return {"deploys": n, "wall_s_mean": round(sum(d["wall_s"] for d in timed) / n, 2),
            **{k: round(v / n, 2) for k, v in totals.items()}, "tasks": tasks,
            "rotation_steps": {k: round(v / n, 3) for k, v in steps.items()}}


# --- scenarios -----------------------------------------------------------------------------

def make_certificate(out: Path) -> dict:
    """A self-signed certificate for TLS_NAME (P-256, 2 days): the site's chain and key (--tls)."""
    cert, key = out / "tls" / "bench.pem", out / "tls" / "bench.key"
    cert.parent.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", f"/CN={TLS_NAME}", "-addext", f"subjectAltName=DNS:{TLS_NAME}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return {"cert": str(cert), "key": str(key)}


def run_scenario(name: str, deploy, addr: str, args: argparse.Namespace, out: Path, origin: float,
                 tls: dict | None = None, port: int = PROXY_PORT) -> dict:
    """Deploy args.deploys times under load on port; over HTTPS (SNI TLS_NAME, chain verified) with tls.
    Then, for Baton, args.floor runs of Ansible's floor (BatonDeploy.floor) under the same load."""
    https = {}
    if tls:
        https = {"vhost": TLS_NAME, "tls": ssl.create_default_context(cafile=tls["cert"])}
    load = Load(addr, port, SLOT_PORTS, rate=args.rate, workers=args.workers,
                slow_workers=args.slow_workers, slow_ms=args.slow_ms, fresh_workers=args.fresh_workers,
                fresh_rate=args.fresh_rate, **https)
    load.start()
    deploys, floors = [], []
    try:
        time.sleep(args.settle)
        for i in range(1, args.deploys + 1):
            release = f"r{i}"
            t0 = time.monotonic()
            result = deploy(release)
            t1 = time.monotonic()
            deploys.append({"release": release, "t0": t0, "t1": t1, "wall_s": round(t1 - t0, 2), **result})
            line = f"  {name}: deploy {i}/{args.deploys} {release} rc={result['rc']} {t1 - t0:.1f} s"
            if "summary" in result:
                line += " (ready {ready} s, drain {drain} s)".format(**result["summary"])
            log(line)
            if result["rc"]:
                break
            time.sleep(args.settle)
        for i in range(1, (args.floor if hasattr(deploy, "floor") else 0) + 1):
            floors.append(deploy.floor())
            log(f"  {name}: Ansible's floor {i}/{args.floor}: rc={floors[-1]['rc']} {floors[-1]['wall_s']} s, "
                f"{floors[-1]['remote_runs']} module runs")
            time.sleep(args.settle)
    finally:
        load.stop()
    end = time.monotonic()
    summary = analyse(load, deploys, origin, end, [(f["t0"], f["t1"]) for f in floors])
    good = [f for f in floors if f["rc"] == 0]
    if good:
        summary["floor_s"] = {**spread([f["wall_s"] for f in good], 2), "runs": len(good),
                              "remote_runs": good[0]["remote_runs"]}
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    with gzip.open(out / f"samples-{slug}.csv.gz", "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start_s", "end_s", "kind", "status", "release"])
        writer.writerows((round(s[0] - origin, 4), round(s[1] - origin, 4), *s[2:]) for s in load.samples)
    mid = deploys[len(deploys) // 2] if deploys else None
    plot = None
    if mid and mid["events"]["started"] is not None:
        anchor = mid["events"]["started"] + origin
        plot = {"title": f"{name}: deploy {mid['release']}", "anchor": anchor - origin,
                "events": mid["events"],
                "samples": [(s[1] - origin, s[3]) for s in load.samples if anchor - 5 < s[1] < anchor + 16]}
    for d in deploys:
        d["t0"], d["t1"] = round(d["t0"] - origin, 3), round(d["t1"] - origin, 3)
    return {"name": name, "port": port, "summary": summary, "breakdown": task_breakdown(deploys),
            "deploys": [{k: v for k, v in d.items() if k != "timing"} for d in deploys], "plot": plot}


def lab_hosts(combos: list[str], baselines: list[str]) -> dict[str, str]:
    """Scenario host names: one fresh host per combination, one for the baselines."""
    hosts = {combo: "bench-" + combo.replace("+", "-") for combo in combos}
    if baselines:
        hosts["baseline"] = "bench-baseline"
    return hosts


def run(args: argparse.Namespace, out: Path) -> list[dict]:
    hosts = lab_hosts(args.combos, args.baselines)
    subprocess.run([*LAB, "up", args.lab, *hosts.values()], check=True, stdout=subprocess.DEVNULL)
    addrs = json.loads((LAB_STATE / args.lab / "hosts.json").read_text())["hosts"]
    origin = time.monotonic()
    results = []
    tls = make_certificate(out) if args.tls else None
    for combo in args.combos:
        name, host = f"Baton {combo}", hosts[combo]
        logs = out / "logs" / combo
        logs.mkdir(parents=True)
        # No proxy, no TLS: the shared socket is the app's own plain HTTP port.
        combo_tls = None if combo.endswith("+none") else tls
        deploy = BatonDeploy(args.lab, host, combo, args.warmup, logs, combo_tls)
        log(f"{name}: first deploy r0 on {host} (sets up the host, not measured)")
        first = deploy("r0")
        if first["rc"]:
            reason = first.get("not_implemented")
            note = (f"skipped: not implemented yet ({reason})" if reason
                    else f"skipped: the first deploy failed (rc={first['rc']}, see {logs}/r0.log)")
            log(f"{name}: {note}")
            results.append({"name": name, "skipped": note})
            continue
        results.append(run_scenario(name, deploy, addrs[host], args, out, origin, combo_tls,
                                    public_port(combo, combo_tls is not None)))
    for mode in args.baselines:
        logs = out / "logs" / mode
        logs.mkdir(parents=True)
        log(f"{BASELINES[mode]}: setting up on {hosts['baseline']}")
        deploy = BaselineDeploy(args.lab, hosts["baseline"], mode, args.warmup, logs)
        results.append(run_scenario(BASELINES[mode], deploy, addrs[hosts["baseline"]], args, out, origin,
                                    port=public_port(mode)))
    return results


# --- report --------------------------------------------------------------------------------

def fmt(value, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def table(results: list[dict], args: argparse.Namespace) -> str:
    rows = [f"{args.deploys} deploys per scenario, load {args.workers} keep-alive workers at {args.rate} req/s "
            f"on / plus {args.slow_workers} back-to-back /slow?ms={args.slow_ms}, WARMUP_SECONDS={args.warmup}"
            + (f"; Baton over HTTPS (https://{TLS_NAME}:{TLS_PORT}/, TLS with SNI), the baselines and Baton "
               "without a proxy over HTTP." if args.tls else ".")
            + (f" Also {args.fresh_workers} workers at {args.fresh_rate:g} req/s each that open a new connection for "
               "every GET / (Connection: close, never resent): their failures are in the connection errors, and "
               "counted apart in the last column." if args.fresh_workers else "")
            + f" Port: where the load goes ({PROXY_PORT}: the proxy; {SOCKET_PORT}: the app's own socket, no proxy).",
            "",
            "| scenario | port | deploys (failed) | requests (req/s) | 2xx % | 2xx % in deploy windows | non-2xx HTTP "
            "| connection errors | client retries | p50 / p99 steady (ms) "
            "| p50 / p99 deploy (ms) | ready→routed median / max (s) | Baton ready→routed median / max (s) "
            "| overhead median / max (s) | wall median (s) |"
            + (" new-connection GETs failed / sent |" if args.fresh_workers else ""),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.fresh_workers else "")]
    for r in results:
        if "skipped" in r:
            rows.append(f"| {r['name']} | | {r['skipped']} | | | | | | | | | | | | |" + (" |" if args.fresh_workers else ""))
            continue
        rows.append(table_row(r) + (f" {r['summary'].get('fresh_failed')} / {r['summary'].get('fresh_requests')} |"
                                    if args.fresh_workers else ""))
    classic = next((r["summary"]["wall_s"]["median"] for r in results
                    if "skipped" not in r and r["name"].startswith("baseline: classic")), None)
    rows += ["", "Targets (Baton, medians per host): 2xx = 100.000 %; overhead ≤ 3 s; Baton ready→routed ≤ 0.3 s; "
             "wall ≤ 1.5 × the classic script's wall; p99 during deploys ≤ 1.5 × steady p99."]
    rows += [f"- {r['name']}: " + "; ".join(target_checks(r["summary"], classic))
             for r in results if "skipped" not in r and r["name"].startswith("Baton")]
    return "\n".join(rows)


def table_row(r: dict) -> str:
    """One scenario's row of the table. Connection errors: requests that got no HTTP answer (by
    tag: conn:refused, conn:reset, conn:closed, conn:timeout); client retries: requests resent once
    on a new connection because a reused keep-alive one was closed before any answer."""
    s, lat = r["summary"], r["summary"]["latency_ms"]
    http = s.get("http_errors", {k: v for k, v in s["non_2xx"].items() if not k.startswith("conn:")})
    by_tag = s.get("connection_errors_by_tag", {k: v for k, v in s["non_2xx"].items() if k.startswith("conn:")})
    http_text = ", ".join(f"{c}: {n}" for c, n in http.items()) or "none"
    conn_text = str(sum(by_tag.values())) + (" (" + ", ".join(f"{c[5:]}: {n}" for c, n in by_tag.items()) + ")"
                                             if by_tag else "")
    retries = s.get("client_retries", s.get("stale_keepalive_retries"))
    return (f"| {r['name']} | {fmt(r.get('port'))} | {s['deploys']} ({s['failed_deploys']}) "
            f"| {s['requests']} ({s['rate_per_s']}) "
            f"| {fmt(rounded_pct(s['ok_pct']))} | {fmt(rounded_pct(s['deploy_window_ok_pct']))} "
            f"| {http_text} | {conn_text} | {fmt(retries)} | {fmt(lat['steady_p50'])} / {fmt(lat['steady_p99'])} "
            f"| {fmt(lat['deploy_p50'])} / {fmt(lat['deploy_p99'])} "
            f"| {fmt(s['ready_to_routed_s']['median'])} / {fmt(s['ready_to_routed_s']['max'])} "
            f"| {fmt(s['declared_ready_to_routed_s']['median'])} / {fmt(s['declared_ready_to_routed_s']['max'])} "
            f"| {fmt(s['overhead_s']['median'])} / {fmt(s['overhead_s']['max'])} | {fmt(s['wall_s']['median'])} |")


def rounded_pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def target_checks(s: dict, classic_wall: float | None = None) -> list[str]:
    """Each target's figure and whether it meets the target (classic_wall: the classic script's median wall)."""
    lat = s["latency_ms"]
    ratio = rounded(lat["deploy_p99"] / lat["steady_p99"], 2) if lat["deploy_p99"] and lat["steady_p99"] else None
    wall = s["wall_s"]["median"]
    classic = rounded(wall / classic_wall, 2) if wall and classic_wall else None
    figures = [("2xx", s["ok_pct"], "%", "ok_pct"), ("overhead median", s["overhead_s"]["median"], "s", "overhead_s"),
               ("Baton ready→routed median", s["declared_ready_to_routed_s"]["median"], "s", "ready_to_routed_s"),
               ("wall/classic", classic, "×", "classic_ratio"), ("p99 deploy/steady", ratio, "×", "p99_ratio")]
    checks = []
    for label, value, unit, target in figures:
        if target == "classic_ratio" and classic_wall is None:
            checks.append(f"{label} - (no classic baseline in this run)")
            continue
        ok = value is not None and (value == TARGETS[target] if target == "ok_pct" else value <= TARGETS[target])
        checks.append(f"{label} {fmt(value)} {unit} ({'meets' if ok else 'MISSES'})")
    floor, overhead = s.get("floor_s"), s["overhead_s"]["median"]
    if floor:
        above = None if overhead is None else rounded(overhead - floor["median"], 2)
        checks.append(f"Ansible's floor median {floor['median']} s ({floor['remote_runs']} module runs that do nothing, "
                      f"same host, same load; the overhead above it: {fmt(above)} s)")
    return checks


def breakdown_text(results: list[dict], top: int = 20) -> str:
    lines = []
    for r in results:
        b = r.get("breakdown")
        if not b:
            continue
        lines += [f"Where a deploy's {b['wall_s_mean']} s go ({r['name']}, mean of {b['deploys']} deploys, "
                  f"{b['remote module runs (count)']} remote module runs each):"]
        lines += [f"  {v:7.2f}  {k}" for k, v in b.items() if k.startswith("ansible-playbook")]
        lines += [f"  {t['seconds']:7.2f}  {t['task']} [{t['action']}] ×{t['runs']} ({t['where']})"
                  for t in b["tasks"][:top]]
        if b.get("rotation_steps"):
            lines += ["  of which the rotation's steps on the host (baton.deploy.rotate events):"]
            lines += [f"  {v:9.3f}  {k}" for k, v in b["rotation_steps"].items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deploys", type=int, default=int(os.environ.get("BENCH_DEPLOYS", 20)))
    p.add_argument("--combos", default=",".join(COMBOS),
                   help="process-manager+proxy combinations, comma-separated (default: all five)")
    p.add_argument("--baselines", default=",".join(BASELINES), help="naive,classic,reuseport or empty")
    p.add_argument("--rate", type=int, default=600, help="requests/s of the constant load on /")
    p.add_argument("--workers", type=int, default=60, help="keep-alive connections of the constant load")
    p.add_argument("--slow-workers", type=int, default=4)
    p.add_argument("--slow-ms", type=int, default=2000)
    p.add_argument("--fresh-workers", type=int, default=int(os.environ.get("BENCH_FRESH", 0)),
                   help="workers that open a new connection for every GET / (Connection: close), never resent")
    p.add_argument("--fresh-rate", type=float, default=20.0, help="requests/s of each fresh worker")
    p.add_argument("--warmup", type=float, default=5.0, help="WARMUP_SECONDS of the demo app")
    p.add_argument("--settle", type=float, default=3.0, help="seconds of steady load before and between deploys")
    p.add_argument("--floor", type=int, default=int(os.environ.get("BENCH_FLOOR", 3)),
                   help="runs of tests/bench/floor.yml after each Baton combination's deploys, under the same load: "
                        "Ansible's own cost of a deploy's 3 module runs (0: none)")
    p.add_argument("--lab", default="bench", help="lab name (tests/lab/baton_lab.py)")
    p.add_argument("--out", type=Path, default=REPO / "bench-results")
    p.add_argument("--tls", action="store_true", default=False,
                   help=f"Baton's sites over HTTPS as {TLS_NAME} (own certificate, baton_tls_source controller)")
    args = p.parse_args(argv)
    args.combos = [c for c in args.combos.split(",") if c]
    args.baselines = [b for b in args.baselines.split(",") if b]
    unknown = [c for c in args.combos if c.count("+") != 1] + [b for b in args.baselines if b not in BASELINES]
    if unknown or args.deploys < 1:
        p.error(f"bad --combos/--baselines/--deploys: {unknown or args.deploys}")
    if (LAB_STATE / args.lab).exists():
        raise SystemExit(f"lab {args.lab} is up already: `{LAB[1]} down {args.lab}` first (or pass --lab)")
    out = args.out / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True)
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))  # so the lab comes down on a kill too
    try:
        results = run(args, out)
    finally:
        subprocess.run([*LAB, "down", args.lab], check=False)
    panels = [r.pop("plot") for r in results if r.get("plot")]
    if panels:
        plot_timelines(panels, str(out / "timeline.png"))
    report = table(results, args)
    (out / "results.md").write_text(report + "\n")
    (out / "results.json").write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v
                                                           for k, v in vars(args).items()},
                                                  "results": results}, indent=1))
    latest = args.out / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(out.name)
    print(report)
    print(breakdown_text(results))
    log(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
