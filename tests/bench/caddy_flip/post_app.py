#!/usr/bin/env python3
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo app (tests/apps/demo/demo_app.py, same environment variables) plus POST.

POST reads its body and is answered like GET, so a write stream can run through the proxy.
demo_app.py must sit next to this file (flip_bench.py copies it there).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_app  # noqa: E402


def do_POST(self):  # noqa: N802 (http.server naming)
    length = int(self.headers.get("Content-Length") or 0)
    if length:
        self.rfile.read(length)
    self.do_GET()


demo_app.Handler.do_POST = do_POST

if __name__ == "__main__":
    sys.exit(demo_app.main(sys.argv))
