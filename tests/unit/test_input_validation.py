# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input is refused by the roles' validation before any change, with a message that says why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def run_validate(extra: dict) -> subprocess.CompletedProcess:
    collections = REPO / ".cache" / "collections"
    (collections / "ansible_collections" / "baton").mkdir(parents=True, exist_ok=True)
    link = collections / "ansible_collections" / "baton" / "deploy"
    if not link.exists():
        link.symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    return subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.include_role",
         "-a", "name=baton.deploy.instances tasks_from=validate", "-e", json.dumps(extra)],
        env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
@pytest.mark.parametrize("extra", [
    {"baton_app": "../etc"},
    {"baton_app": "demo;rm -rf /"},
    {"baton_app": "Demo"},
    {"baton_app": "a" * 40},
    {"baton_app": ""},
    {"baton_slot1_port": 8001, "baton_slot2_port": 8001},
    {"baton_slot1_port": 0},
    {"baton_slot2_port": 70000},
])
def test_bad_input_is_refused(extra):
    r = run_validate(extra)
    assert r.returncode != 0
    assert "Invalid input: baton_app must match" in r.stdout
    assert "Nothing was changed." in r.stdout


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_good_input_passes():
    r = run_validate({"baton_app": "shop-api_2", "baton_slot1_port": 9001, "baton_slot2_port": 9002})
    assert r.returncode == 0, r.stdout
