# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HAProxy's backend sends each member's traffic to the port that member serves on: its proxy's port,
or its shared socket's when it has no proxy (baton_proxy: none)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "lb_haproxy"
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def render(tmp_path: Path, members: dict) -> str:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"lb": {"ansible_connection": "local"}, **members}}}))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    r = subprocess.run(
        [ANSIBLE, "lb", "-i", str(inventory), "-m", "ansible.builtin.debug",
         "-a", "msg={{ lookup('ansible.builtin.template', '%s') }}" % (ROLE / "templates" / "haproxy.cfg.j2"),
         "-e", f"@{ROLE / 'defaults' / 'main.yml'}", "-e", json.dumps({"baton_lb_members": list(members)})],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.split("=>", 1)[1])["msg"]


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_each_member_is_reached_on_the_port_it_serves_on(tmp_path):
    config = render(tmp_path, {
        "web1": {"ansible_host": "10.0.0.1"},
        "web2": {"ansible_host": "10.0.0.2", "baton_proxy": "caddy", "baton_proxy_port": 8081},
        "web3": {"ansible_host": "10.0.0.3", "baton_proxy": "none"},
        "web4": {"ansible_host": "10.0.0.4", "baton_proxy": "none", "baton_socket_port": 9000,
                 "baton_proxy_port": 81},
    })
    servers = [line.split()[:3] for line in config.splitlines() if line.strip().startswith("server ")]
    assert servers == [["server", "web1", "10.0.0.1:80"], ["server", "web2", "10.0.0.2:8081"],
                       ["server", "web3", "10.0.0.3:8080"], ["server", "web4", "10.0.0.4:9000"]], config
