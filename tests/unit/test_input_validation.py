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


# --- Every role variable of the deploy, through the real playbook --------------------------------
# One ansible-playbook run of playbooks/deploy.yml with one inventory host per case (connection
# local, so it is fast). Each host's interpreter is /bin/false: a module that runs on the host
# fails at once, so nothing on this machine can change, and a module that runs before the bad
# input is refused shows up as the host's failure instead of the validation's.

RECORDER = '''
from ansible.plugins.callback import CallbackBase
import json, os


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "faults_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.failed = {}

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self.failed.setdefault(result._host.get_name(), {
            "task": result._task.get_name(), "action": result._task.action,
            "msg": str(result._result.get("msg", ""))})

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["FAULTS_RECORD"], "w") as handle:
            json.dump(self.failed, handle)
'''

# Tasks that only run on the controller and make no change: validation happens in these.
VALIDATION_TASKS = ("Validating arguments against arg spec", "Validate the input against every role's argument specs",
                    "Validate the app name and slot ports", "Check the release id")
GOOD = {"baton_release": "v1", "baton_source": "/nonexistent"}


# (case id, bad vars, what the error says)
BAD_INPUT = [
    ("app-traversal", {"baton_app": "../etc"}, "Invalid input: baton_app must match"),
    ("app-shell", {"baton_app": "demo;rm -rf /"}, "Invalid input: baton_app must match"),
    ("app-uppercase", {"baton_app": "Demo"}, "Invalid input: baton_app must match"),
    ("app-list", {"baton_app": ["demo"]}, "Invalid input: baton_app must match"),
    ("same-ports", {"baton_slot1_port": 8001, "baton_slot2_port": 8001},
     "must be two different ports in 1-65535 (got 8001 / 8001)"),
    ("port-zero", {"baton_slot1_port": 0}, "must be two different ports in 1-65535 (got 0 / 8002)"),
    ("port-too-big", {"baton_slot2_port": 70000}, "must be two different ports in 1-65535 (got 8001 / 70000)"),
    ("port-not-int", {"baton_slot1_port": "http"},
     "argument 'baton_slot1_port' is of type str and we were unable to convert to int"),
    ("process-manager-choice", {"baton_process_manager": "runit"},
     "value of baton_process_manager must be one of: systemd, supervisor, got: runit"),
    ("env-not-dict", {"baton_env": ["SECRET=1"]},
     "argument 'baton_env' is of type list and we were unable to convert to dict"),
    ("drain-not-int", {"baton_drain_timeout": "long"},
     "argument 'baton_drain_timeout' is of type str and we were unable to convert to int"),
    ("proxy-choice", {"baton_proxy": "haproxy"}, "value of baton_proxy must be one of: nginx, caddy, got: haproxy"),
    ("proxy-port-range", {"baton_proxy_port": 70000},
     "baton_proxy_port a port in 1-65535 that is not a slot port (got 70000)"),
    ("proxy-port-is-a-slot-port", {"baton_proxy_port": 8001},
     "baton_proxy_port a port in 1-65535 that is not a slot port (got 8001)"),
    ("header-not-bool", {"baton_proxy_upstream_header": "maybe"},
     "argument 'baton_proxy_upstream_header' is of type str and we were unable to convert to bool"),
    ("source-type-choice", {"baton_source_type": "svn"},
     "value of baton_source_type must be one of: git, archive, path, got: svn"),
    ("keep-not-int", {"baton_keep_releases": "all"},
     "argument 'baton_keep_releases' is of type str and we were unable to convert to int"),
    ("release-traversal", {"baton_release": "../../etc"}, "baton_release must be set for 'path' sources and match"),
    ("ready-timeout-not-int", {"baton_ready_timeout": "soon"},
     "argument 'baton_ready_timeout' is of type str and we were unable to convert to int"),
    ("force-not-bool", {"baton_force": "perhaps"},
     "argument 'baton_force' is of type str and we were unable to convert to bool"),
]


def _case_id(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.fixture(scope="module")
def deploy_failures(tmp_path_factory):
    """Run deploy.yml once for every bad-input case; return {case id: first failed task of its host}."""
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "callbacks").mkdir()
    (tmp / "callbacks" / "faults_record.py").write_text(RECORDER)
    hosts = {}
    for case in BAD_INPUT:
        case_id, bad = (case.values if hasattr(case, "values") else case)[:2]
        hosts[case_id.replace("-", "_")] = {**GOOD, **bad, "ansible_connection": "local", "ansible_become": False,
                                            "ansible_python_interpreter": "/bin/false"}
    (tmp / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    run_validate({})  # makes sure the collection link exists
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_CALLBACK_PLUGINS=str(tmp / "callbacks"), ANSIBLE_CALLBACKS_ENABLED="faults_record",
               FAULTS_RECORD=str(tmp / "failed.json"), ANSIBLE_FORKS="20")
    subprocess.run([str(Path(ANSIBLE).parent / "ansible-playbook"), "-i", str(tmp / "inventory.json"),
                    str(REPO / "playbooks" / "deploy.yml")],
                   env=env, capture_output=True, text=True, timeout=300, check=False)
    return {host.replace("_", "-"): failed for host, failed in json.loads((tmp / "failed.json").read_text()).items()}


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
@pytest.mark.parametrize("case_id,bad,message", BAD_INPUT, ids=[_case_id(c) for c in BAD_INPUT])
def test_deploy_refuses_bad_input_before_any_change(deploy_failures, case_id, bad, message):
    failed = deploy_failures.get(case_id)
    assert failed is not None, f"deploy.yml accepted {bad}"
    # Refused by a validation task: had any module run first, it would have failed first.
    assert failed["task"].split(" : ", 1)[-1].startswith(VALIDATION_TASKS), failed
    assert message in failed["msg"], failed["msg"]
