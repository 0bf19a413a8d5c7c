# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet rolling on booted lab hosts: three app hosts behind HAProxy (fleet-lb).

Under constant load through HAProxy: a rolling deploy (baton_serial=1, each host drained before its
rotation) and a rolling rollback with zero non-2xx; a release that never gets ready on the second
host stops the rollout with the third host untouched and traffic still 2xx; deploy and rollback
through ansible-runner with the AWX survey's answers. The figures go to tests/output/zero-drop/.

The fleet tests act on the whole fleet, so they run once, from the lb host's test instance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from molecule_helpers import DEPLOY_VARS, REPO, address  # noqa: E402

APPS = ["fleet-app1", "fleet-app2", "fleet-app3"]
LB = "fleet-lb"
HOOK = Path(__file__).resolve().parents[1] / "tasks" / "assert_drained.yml"
OUT = REPO / "tests" / "output" / "zero-drop"
FLEET = ["-e", "baton_target=app", "-e", f"baton_lb_host={LB}", "-e", "baton_serial=1"]


@pytest.fixture
def lb(host):
    if host.backend.get_hostname() != LB:
        pytest.skip("fleet-wide test: runs once, on the lb host's instance")
    return host


def app_host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def app_state(name: str) -> dict:
    return json.loads(app_host(name).file("/var/lib/baton/demo/state.json").content_string)


def active_release(name: str) -> str:
    s = app_state(name)
    return s["slots"][str(s["active_slot"])]["release"]


def lb_states(lb) -> dict:
    """{server: (admin state, operational state)} from HAProxy's runtime API, read on the lb host."""
    out = lb.check_output("echo 'show servers state demo' | python3 -c \"import socket,sys; s=socket.socket("
                          "socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); s.sendall(sys.stdin.read().encode());"
                          " print(s.makefile().read())\"")
    rows = [ln.split() for ln in out.splitlines()[2:] if ln.strip()]
    return {r[3]: ({0: "ready", 8: "drain"}.get(int(r[6]), r[6]), int(r[5])) for r in rows}


def served_by(lb, requests: int = 6) -> set:
    """Members that answered requests through HAProxy (its X-Baton-Server header; HAProxy sends header names
    in lower case)."""
    return {lb.check_output("curl -s -D - -o /dev/null http://127.0.0.1/ | awk 'tolower($1) == \"x-baton-server:\" "
                            "{print $2}' | tr -d '\\r'") for _request in range(requests)}


def playbook_cmd(*extra: str) -> tuple[dict, list[str]]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"), ANSIBLE_PIPELINING="1",
               ANSIBLE_HOST_KEY_CHECKING="False", MOLECULE_PROJECT_DIRECTORY=str(REPO),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env, [str(Path(sys.executable).parent / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                 "-e", f"@{DEPLOY_VARS}", *extra]


def under_load(lb, name: str, steps: str, *extra: str) -> dict:
    """zero_drop.py through HAProxy with the given ansible-playbook options; result kept in tests/output."""
    env, cmd = playbook_cmd(*extra)
    r = subprocess.run([sys.executable, str(REPO / "tests" / "integration" / "zero_drop.py"),
                        "--url", f"http://{address(lb)}", "--steps", steps, "--", *cmd],
                       env=env, capture_output=True, text=True, timeout=600, check=False)
    print(r.stdout, r.stderr[-5000:])
    result = json.loads(r.stdout)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"fleet-{name}.json").write_text(r.stdout)
    return result


def test_haproxy_balances_the_app_hosts(lb):
    assert lb.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    assert lb.service("haproxy").is_enabled and lb.service("haproxy").is_running
    # Set up again, nothing changes (the scenario has no idempotence step: the app hosts' roles have theirs).
    env, cmd = playbook_cmd("-e", "baton_target=lb")
    r = subprocess.run([*cmd, str(REPO / "playbooks" / "lb_haproxy.yml")], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0 and f"{LB}" in r.stdout and "changed=0" in r.stdout.split("PLAY RECAP")[1], r.stdout[-3000:]
    cfg = lb.file("/etc/haproxy/haproxy.cfg").content_string
    for name in APPS:
        assert f"server {name} {address(app_host(name))}:80" in cfg
    # The runtime API is a local unix socket only: HAProxy listens on the app port and nowhere else.
    sock = lb.file("/run/haproxy/admin.sock")
    assert sock.is_socket and sock.mode == 0o660
    assert lb.check_output("ss -Hltnp | grep haproxy | awk '{print $4}' | sort -u").split() == ["0.0.0.0:80"]
    assert lb_states(lb) == {name: ("ready", 2) for name in APPS}
    assert served_by(lb) == set(APPS)


def test_rolling_deploy_and_rollback_under_load_drop_nothing(lb):
    # Each host's before-flip hook asserts that HAProxy has it, and only it, drained at that moment.
    result = under_load(lb, "rolling", "deploy:v3,rollback", *FLEET, "-e", f"baton_hook_before_flip={HOOK}")
    assert result["requests"] > 1000
    assert result["non_2xx"] == 0, result["codes"]
    assert [step["rc"] for step in result["steps"]] == [0, 0]
    assert all(active_release(name) == "v1" for name in APPS)
    assert all(app_state(name)["history"][-2:][0]["release"] == "v3" for name in APPS)
    assert lb_states(lb) == {name: ("ready", 2) for name in APPS}

    # One host alone (the same deploy, same LB steps), for the fleet-vs-one-host figure.
    env, cmd = playbook_cmd(*FLEET, "--limit", "fleet-app1", "-e", "baton_release=v3")
    started = time.monotonic()
    r = subprocess.run([*cmd, str(REPO / "playbooks" / "deploy.yml")], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    one_host_s = round(time.monotonic() - started, 2)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert active_release("fleet-app1") == "v3"
    figures = {"fleet_deploy_s": result["steps"][0]["wall_s"], "fleet_rollback_s": result["steps"][1]["wall_s"],
               "one_host_deploy_s": one_host_s, "hosts": len(APPS), "serial": 1,
               "requests": result["requests"], "non_2xx": result["non_2xx"]}
    (OUT / "fleet-figures.json").write_text(json.dumps(figures, indent=2))
    print(figures)


def test_failure_on_host_2_stops_the_rollout(lb, tmp_path):
    """v9 never gets ready on fleet-app2: app1 rotates, app2 fails and stays drained, app3 is untouched."""
    before = {name: active_release(name) for name in APPS}
    fail_vars = tmp_path / "fail.yml"
    fail_vars.write_text(yaml.safe_dump({
        "baton_ready_timeout": "{{ 3 if inventory_hostname == 'fleet-app2' else 60 }}",
        "baton_env": "{{ {'WARMUP_SECONDS': '600' if inventory_hostname == 'fleet-app2' else '3', "
                     "'DRAIN_SECONDS': '0.5'} }}",
    }))
    history3 = app_state("fleet-app3")["history"]
    result = under_load(lb, "failure", "deploy:v9", *FLEET, "-e", f"@{fail_vars}")
    assert result["non_2xx"] == 0, result["codes"]
    assert result["requests"] > 500
    assert [step["rc"] for step in result["steps"]] == [2]
    assert active_release("fleet-app1") == "v9"
    assert active_release("fleet-app2") == before["fleet-app2"]
    assert active_release("fleet-app3") == before["fleet-app3"]
    assert app_state("fleet-app3")["history"] == history3
    assert not app_host("fleet-app3").file("/srv/demo/releases/v9").exists  # not even built
    states = lb_states(lb)
    # The failed host stays drained: it gets no traffic until a deploy succeeds on it.
    assert states["fleet-app2"][0] == "drain"
    assert states["fleet-app1"] == ("ready", 2) and states["fleet-app3"] == ("ready", 2)
    assert served_by(lb) == {"fleet-app1", "fleet-app3"}


def survey_answers(name: str, **answers) -> dict:
    """Extra vars AWX would send for the survey examples/awx/surveys/<name>.json: defaults plus answers."""
    spec = json.loads((REPO / "examples" / "awx" / "surveys" / f"{name}.json").read_text())
    values = {q["variable"]: q["default"] for q in spec["spec"] if q.get("default") not in (None, "")}
    values.update(answers)
    return values


@pytest.mark.parametrize("job,answers", [
    # All hosts at once here ("0"): the rolling order is what the tests above cover.
    ("deploy", {"baton_release": "v4", "baton_target": "app", "baton_serial": "0"}),
    ("rollback", {"baton_target": "app", "baton_serial": "0"}),
])
def test_awx_job_through_ansible_runner(lb, tmp_path, job, answers):
    """What an AWX job template runs: the example project's playbook with the survey's extra vars."""
    import ansible_runner  # only this test needs it

    extravars = {**yaml.safe_load(DEPLOY_VARS.read_text()), **survey_answers(job, **answers), "baton_lb_host": LB}
    extravars["baton_source"] = str(REPO / "tests" / "apps" / "demo")
    run = ansible_runner.run(
        private_data_dir=str(tmp_path), project_dir=str(REPO / "examples" / "awx"), playbook=f"{job}.yml",
        inventory=os.environ["MOLECULE_INVENTORY_FILE"], extravars=extravars, quiet=True,
        envvars={"ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"), "ANSIBLE_PIPELINING": "1",
                 "ANSIBLE_HOST_KEY_CHECKING": "False"})
    stdout = run.stdout.read()
    print(stdout[-4000:])
    assert (run.status, run.rc) == ("successful", 0), stdout[-3000:]
    summaries = [e["event_data"]["res"]["msg"] for e in run.events
                 if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Summarise the deploy"]
    released = sorted(s.split(" active on slot")[0].removeprefix("demo: release ") for s in summaries)
    assert len(summaries) == len(APPS), summaries
    assert released == sorted(active_release(name) for name in APPS)
    if job == "deploy":
        assert released == ["v4"] * len(APPS)
    assert run.stats["failures"] == {}
    assert lb_states(lb) == {name: ("ready", 2) for name in APPS}
    (OUT / f"fleet-awx-{job}.json").write_text(json.dumps(
        {"status": run.status, "rc": run.rc, "stats": run.stats, "summaries": summaries}, indent=2))
