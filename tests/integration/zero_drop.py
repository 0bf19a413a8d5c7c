#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Constant load through the proxy while deploys and rollbacks run; report every non-2xx.

Load: ``hey`` at a constant rate (keep-alive) on ``/`` plus threads that keep slow requests
(``/slow?ms=N``) in flight, so some are always open at the flip. Steps run one after the
other: ``deploy:RELEASE`` runs ``PLAYBOOKS/deploy.yml -e baton_release=RELEASE``, ``rollback``
runs ``PLAYBOOKS/rollback.yml``, each appended to the given ansible-playbook command.
Prints a JSON summary; exits 1 if any request was not 2xx or any step failed.
Tests that drive their own steps use the load alone: ``with ConstantLoad(url) as load: ...``.

    zero_drop.py --url http://10.77.10.10 --steps deploy:v2,deploy:v3,rollback \
        -- ansible-playbook -i inventory.yml -e @vars.yml --limit web1
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def slow_worker(url: str, stop: threading.Event, results: list) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                results.append(r.status)
        except urllib.error.HTTPError as e:
            results.append(e.code)
        except OSError as e:
            results.append(f"error: {e}")


def parse_step(step: str, playbooks: str) -> tuple[str, list[str]]:
    """'deploy:v2' or 'rollback' -> (step, ansible-playbook arguments)."""
    action, _sep, release = step.partition(":")
    if action == "deploy" and release:
        return step, [os.path.join(playbooks, "deploy.yml"), "-e", f"baton_release={release}"]
    if action == "rollback" and not release:
        return step, [os.path.join(playbooks, "rollback.yml")]
    raise SystemExit(f"bad step {step!r}: use deploy:RELEASE or rollback")


class ConstantLoad:
    """The load alone, for callers that run their own steps (``with ConstantLoad(url) as load:``).

    ``result()`` (after the block) counts every response: {"requests", "non_2xx", "codes", "hey_errors"}.
    """

    def __init__(self, url: str, rate: int = 200, workers: int = 20, slow_ms: int = 1500,
                 slow_workers: int = 3) -> None:
        self.url, self.rate, self.workers = url.rstrip("/"), rate, workers
        self.slow_ms, self.slow_workers = slow_ms, slow_workers
        self.out = self.err = ""
        self.slow: list = []

    def __enter__(self) -> "ConstantLoad":
        self.hey = subprocess.Popen(
            ["hey", "-z", "3600s", "-c", str(self.workers), "-q", str(max(1, self.rate // self.workers)),
             "-o", "csv", self.url + "/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=slow_worker, daemon=True,
                                         args=(f"{self.url}/slow?ms={self.slow_ms}", self.stop, self.slow))
                        for _worker in range(self.slow_workers)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.hey.send_signal(signal.SIGINT)
        self.stop.set()
        self.out, self.err = self.hey.communicate(timeout=60)
        for t in self.threads:
            t.join(timeout=self.slow_ms / 1000 + 35)

    def result(self) -> dict:
        codes: dict[str, int] = {}
        rows = list(csv.DictReader(io.StringIO(self.out)))
        for row in rows:
            code = row.get("status-code") or "error"
            codes[code] = codes.get(code, 0) + 1
        for s in self.slow:
            codes[f"slow:{s}"] = codes.get(f"slow:{s}", 0) + 1
        bad = sum(n for c, n in codes.items() if not c.removeprefix("slow:").startswith("2"))
        return {"requests": len(rows) + len(self.slow), "non_2xx": bad, "codes": codes,
                "hey_requests": len(rows), "hey_errors": self.err.strip()[-500:] if self.err.strip() else ""}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True, help="proxy base URL, e.g. http://10.77.10.10")
    p.add_argument("--steps", required=True, help="comma-separated deploy:RELEASE or rollback")
    p.add_argument("--playbooks", default=os.path.join(os.path.dirname(__file__), "..", "..", "playbooks"),
                   help="directory with deploy.yml and rollback.yml (default: the collection's)")
    p.add_argument("--rate", type=int, default=200, help="requests/s of the constant load")
    p.add_argument("--workers", type=int, default=20)
    p.add_argument("--slow-ms", type=int, default=1500)
    p.add_argument("--slow-workers", type=int, default=3)
    p.add_argument("--settle", type=float, default=2.0, help="seconds of load before/after deploys")
    p.add_argument("playbook_cmd", nargs=argparse.REMAINDER,
                   help="-- ansible-playbook ... (the playbook and baton_release are appended per step)")
    a = p.parse_args()
    cmd = [c for c in a.playbook_cmd if c != "--"]
    steps = [parse_step(step, a.playbooks) for step in a.steps.split(",")]
    done = []
    with ConstantLoad(a.url, a.rate, a.workers, a.slow_ms, a.slow_workers) as load:
        time.sleep(a.settle)
        for name, args in steps:
            t0 = time.monotonic()
            r = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
            summary = [ln.strip().strip('"') for ln in r.stdout.splitlines() if "active on slot" in ln]
            routed = re.search(r"served through the proxy ([0-9.]+) s later", summary[-1]) if summary else None
            done.append({"step": name, "rc": r.returncode, "wall_s": round(time.monotonic() - t0, 2),
                         "ready_to_routed_s": float(routed.group(1)) if routed else None,
                         "summary": summary[-1] if summary else None})
            if r.returncode:
                sys.stderr.write(r.stdout[-3000:] + r.stderr[-2000:])
                break
        time.sleep(a.settle)
    counted = load.result()
    rows = counted.pop("hey_requests")
    result = {"requests": counted["requests"], "non_2xx": counted["non_2xx"], "codes": counted["codes"],
              "steps": done, "hey_errors": counted["hey_errors"]}
    print(json.dumps(result, indent=2))
    if not rows:
        print("no requests recorded by hey", file=sys.stderr)
        return 1
    return 1 if result["non_2xx"] or any(d["rc"] for d in done) or len(done) < len(steps) else 0


if __name__ == "__main__":
    sys.exit(main())
