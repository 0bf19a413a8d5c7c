#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Constant load through the proxy while deploys and rollbacks run; report every non-2xx.

Load (``load.py``, next to this file): keep-alive ``GET /`` at a constant rate plus workers that
keep slow requests (``/slow?ms=N``) in flight, so some are always open at the flip. Every request
is counted, also those that failed at the connection level (refused, reset, timeout). Steps run one after the
other: ``deploy:RELEASE`` runs ``PLAYBOOKS/deploy.yml -e baton_release=RELEASE``, ``rollback``
runs ``PLAYBOOKS/rollback.yml``, each appended to the given ansible-playbook command.
Prints a JSON summary; exits 1 if any request was not 2xx or any step failed.
Tests that drive their own steps use the load alone: ``with ConstantLoad(url) as load: ...``.

    zero_drop.py --url http://10.77.10.10 --steps deploy:v2,deploy:v3,rollback \
        -- ansible-playbook -i inventory.yml -e @vars.yml --limit web1
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections import Counter

from load import Load


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

    ``result()`` (after the block) counts every request: {"requests", "non_2xx", "codes", "retried",
    "posts", "posts_lost"}; codes are HTTP statuses or connection errors (``conn:refused``...),
    ``slow:`` for slow requests, ``post:`` for POSTs (never resent: ``posts_lost`` counts every
    POST that did not get a 2xx) and ``fresh:`` for GETs on a new connection each; ``failures`` samples the first non-2xx answers (when, status, the
    upstream and Server headers, the body's start). ``vhost`` is the Host header (the site's name).
    """

    def __init__(self, url: str, rate: int = 200, workers: int = 20, slow_ms: int = 1500,
                 slow_workers: int = 3, vhost: str | None = None, post_workers: int = 0,
                 post_rate: float = 10.0, fresh_workers: int = 0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.load = Load(parts.hostname, parts.port or 80, [], rate=rate, workers=workers,
                         slow_workers=slow_workers, slow_ms=slow_ms, vhost=vhost, post_workers=post_workers,
                         post_rate=post_rate, fresh_workers=fresh_workers)

    def __enter__(self) -> "ConstantLoad":
        self.load.start()
        return self

    def __exit__(self, *exc) -> None:
        self.load.stop()

    def result(self) -> dict:
        codes = Counter(("" if kind == "fast" else kind + ":") + str(status)
                        for _start, _end, kind, status, _release in self.load.samples)
        # A kind's prefix off ("slow:200" -> "200", "post:conn:reset" -> "conn:reset"): all but a 2xx is bad.
        bad = sum(n for code, n in codes.items()
                  if not (code.split(":", 1)[1] if code.startswith(("slow:", "post:", "fresh:")) else code).startswith("2"))
        posts = [status for _start, _end, kind, status, _release in self.load.samples if kind == "post"]
        # retried: GETs resent once after the server closed an idle keep-alive connection (what
        # every HTTP client does); they are counted once, by their final answer. POSTs never are.
        return {"requests": sum(codes.values()), "non_2xx": bad, "codes": dict(codes), "retried": self.load.retried,
                "posts": len(posts), "posts_lost": sum(1 for status in posts if not str(status).startswith("2")),
                "failures": self.load.failures}


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
            # "served through the proxy 0.1 s later", or without a proxy "accepting on the shared socket ..."
            routed = re.search(r"(?:served through the proxy|accepting on the shared socket) ([0-9.]+) s later",
                               summary[-1]) if summary else None
            done.append({"step": name, "rc": r.returncode, "wall_s": round(time.monotonic() - t0, 2),
                         "ready_to_routed_s": float(routed.group(1)) if routed else None,
                         "summary": summary[-1] if summary else None,
                         # ansible-core 2.19 prints task failures on stderr
                         "failure": (r.stdout[-3000:] + r.stderr[-3000:]) if r.returncode else None})
            if r.returncode:
                break
        time.sleep(a.settle)
    result = dict(load.result(), steps=done)
    print(json.dumps(result, indent=2))
    if not result["requests"]:
        print("no requests were made", file=sys.stderr)
        return 1
    return 1 if result["non_2xx"] or any(d["rc"] for d in done) or len(done) < len(steps) else 0


if __name__ == "__main__":
    sys.exit(main())
