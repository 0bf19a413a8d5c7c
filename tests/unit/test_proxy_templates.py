# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The proxy's site templates render with numbers given as strings, as `-e name=value` gives them.

Role argument specs check that "12" is an int but do not convert it: a template that compares the
value (`baton_proxy_max_body_mb > 0`) fails on a string, and only on that proxy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "proxy"
ANSIBLE = str(Path(sys.executable).parent / "ansible")
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
# Every int variable of the role, as a string of a value other than its default.
AS_STRINGS = {name: str(int(spec["default"]) + 7) for name, spec in SPECS.items() if spec["type"] == "int"}


def render(proxy: str, extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    template = ROLE / "templates" / proxy / "site.j2"
    return subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.debug",
         "-a", "msg={{ lookup('ansible.builtin.template', '%s') }}" % template,
         "-e", f"@{ROLE / 'defaults' / 'main.yml'}", "-e", f"@{ROLE / 'vars' / 'main.yml'}",
         "-e", f"@{ROLE / 'vars' / f'{proxy}.yml'}", "-e", json.dumps({"baton_app": "demo", "baton_proxy": proxy, **extra})],
        env=env, capture_output=True, text=True, timeout=120, check=False)


def test_there_are_int_variables():
    assert "baton_proxy_max_body_mb" in AS_STRINGS and "baton_proxy_read_timeout" in AS_STRINGS


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
@pytest.mark.parametrize("proxy, expected", [
    ("nginx", ["client_max_body_size 17m;", "proxy_read_timeout 67s;"]),
    ("caddy", ["max_size 17MB", "read_timeout 67s"]),
])
def test_site_renders_with_numbers_given_as_strings(proxy, expected):
    r = render(proxy, AS_STRINGS)
    assert r.returncode == 0, r.stdout + r.stderr
    site = json.loads(r.stdout.split("=>", 1)[1])["msg"]
    for line in expected:
        assert line in site, site
