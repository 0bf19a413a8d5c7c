# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release role's prune step never removes a release a slot points at, whatever the run did.

After a deploy of the release already active (no rotation), deploy.yml used to build the keep-list
from the rotation's record, which did not exist: only the deployed release was kept, so the other
slot's release (what a rollback goes back to) went once enough newer release directories existed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from test_input_validation import ANSIBLE, REPO, run_validate


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_prune_after_a_noop_deploy_keeps_the_rollback_release(tmp_path):
    root = tmp_path / "root"
    (root / "slots").mkdir(parents=True)
    for n in range(1, 7):  # r1 oldest: the rollback target; r2..r5 from deploys that failed
        (root / "releases" / f"r{n}").mkdir(parents=True)
        os.utime(root / "releases" / f"r{n}", (1000 + n, 1000 + n))
    os.symlink(root / "releases" / "r1", root / "slots" / "1")
    os.symlink(root / "releases" / "r6", root / "slots" / "2")
    run_validate({})  # makes sure the collection link exists
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    # An app with no state file on this machine: the slots' links alone must keep r1.
    app = "prunetest" + uuid.uuid4().hex[:8]
    extra = {"baton_app": app, "baton_root": str(root), "baton_release": "r6", "baton_keep_releases": 2,
             "baton_keep_release_ids": ["r6"],  # what deploy.yml passed after a no-op deploy
             "ansible_python_interpreter": sys.executable}
    r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.include_role",
                        "-a", "name=baton.deploy.release tasks_from=prune", "-e", json.dumps(extra)],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    assert sorted(os.listdir(root / "releases")) == ["r1", "r5", "r6"]
