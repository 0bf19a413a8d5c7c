# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rotate role runs the rotation as baton.deploy.rotate: what it passes is the module's options, taken from
the role's declared variables, and ``--check`` on a deploy or a rollback prints the plan and changes nothing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from test_input_validation import ANSIBLE, REPO, run_validate

ROLE = REPO / "roles" / "rotate"
ROTATE = yaml.safe_load(re.search(r'DOCUMENTATION = r"""(.*?)"""', (REPO / "plugins" / "modules" / "rotate.py")
                                  .read_text(), re.S).group(1))["options"]


def rotate_defaults() -> dict:
    [block] = [task for task in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if "block" in task]
    return block["module_defaults"]["baton.deploy.rotate"]


def test_the_role_passes_rotate_options_from_its_declared_variables():
    passed = rotate_defaults()
    assert set(passed) <= set(ROTATE), set(passed) - set(ROTATE)
    assert {name for name, spec in ROTATE.items() if spec.get("required")} <= set(passed)
    declared = set(yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
                   ["argument_specs"]["main"]["options"])
    internal = set(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()))
    used = {name for value in passed.values() for name in re.findall(r"\b_*baton_\w+", value)}
    # baton_app_user is the instances role's (defaulted to the app's name where it is not given);
    # __baton_lock is the lock's result (tasks/lock.yml, or the play's); playbooks/deploy.yml sets
    # __baton_end_in_rotation in the play that imports the release role's prune (baton_keep_releases).
    assert used - declared - internal == {"baton_app_user", "__baton_lock", "__baton_end_in_rotation",
                                          "baton_keep_releases"}


def run_rotate(tmp_path, tasks_from: str, extra: dict) -> subprocess.CompletedProcess:
    run_validate({})  # makes sure the collection link exists
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    playbook = tmp_path / "rotate.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.include_role": {"name": "baton.deploy.rotate", "tasks_from": tasks_from}}]}]))
    return subprocess.run(
        [str(Path(ANSIBLE).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", "--check", "--diff",
         "-e", json.dumps({"ansible_python_interpreter": sys.executable, **extra}), str(playbook)],
        env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_check_mode_deploy_prints_the_plan_and_changes_nothing(tmp_path):
    app = "rotatecheck" + uuid.uuid4().hex[:8]
    r = run_rotate(tmp_path, "main", {"baton_app": app, "baton_root": str(tmp_path / "root"), "baton_release": "v1",
                                      "baton_slot1_port": 18001, "baton_slot2_port": 18002})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (f"{app}: deploy of release v1 to slot 1; nothing is deployed on this host yet (no state file), so this "
            "is the first deploy. Release v1 is not built on this host yet") in r.stdout
    assert "+slot 1 -> 127.0.0.1:18001 (release v1)" in r.stdout  # the route's diff
    assert not (tmp_path / "root").exists() and not Path(f"/var/lib/baton/{app}").exists()


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_check_mode_rollback_with_nothing_to_roll_back_says_so(tmp_path):
    app = "rotatecheck" + uuid.uuid4().hex[:8]
    r = run_rotate(tmp_path, "rollback", {"baton_app": app, "baton_root": str(tmp_path / "root")})
    assert r.returncode != 0
    assert f"{app} has no previous release on this host" in r.stdout + r.stderr
    assert "Nothing was changed." in r.stdout + r.stderr
    assert not Path(f"/var/lib/baton/{app}").exists()
