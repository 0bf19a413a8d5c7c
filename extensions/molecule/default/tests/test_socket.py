# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mode without a proxy (baton_proxy: none) on the default scenario's Debian 13 host: one socket that
systemd holds on port 8080, passed to both slots. Under constant load (keep-alive GETs, slow requests in
flight, POST streams that never resend): deploys, a rollback and a never-ready release, with no request
lost, no connection error and no client retry; last, the app switches to nginx. The checks build on each
other's deploys, in this file's order. That supervisor, or a slot's port as the socket's, is refused
before any change is checked without a host: tests/unit/test_input_validation.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from molecule_helpers import (  # noqa: E402
    JOURNAL, REPO, address, playbook_cmd, record_loads, run_playbook, start_rotation_killer, state)

testinfra_hosts = ["ansible://baton-socket"]
SOCKET_PORT = 8080


class SocketLoad:
    """Constant load on the shared socket while the block runs (zero_drop.ConstantLoad, with POSTs)."""

    def __init__(self, host, rate: int = 100):
        sys.path.insert(0, str(REPO / "tests" / "integration"))
        from zero_drop import ConstantLoad

        self.load = ConstantLoad(f"http://{address(host)}:{SOCKET_PORT}", rate=rate, workers=max(1, rate // 10),
                                 slow_ms=1000, slow_workers=2, post_workers=2, post_rate=10)
        self.result: dict = {}

    def __enter__(self) -> "SocketLoad":
        self.load.__enter__()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)
        self.load.__exit__(*exc)
        self.result.update(self.load.result())
        record_loads({"results": {"socket": self.result}})


def assert_nothing_lost(result: dict) -> None:
    assert result["requests"] > 500, result
    assert result["non_2xx"] == 0, f"{result['failures']} {result['codes']}"
    assert result["retried"] == 0, f"clients had to resend {result['retried']} request(s): {result['codes']}"
    assert result["posts"] > 50 and result["posts_lost"] == 0, result


def slot_units(host) -> dict:
    return {slot: host.service(f"baton-demo@{slot}").is_running for slot in (1, 2)}


def test_systemd_holds_the_socket_and_no_proxy_is_installed(host):
    assert host.service("baton-demo.socket").is_running
    assert host.socket(f"tcp://0.0.0.0:{SOCKET_PORT}").is_listening or host.socket(f"tcp://:::{SOCKET_PORT}").is_listening
    unit = host.file("/etc/systemd/system/baton-demo@.service").content_string
    assert "Sockets=baton-demo.socket" in unit
    # The lab image has the packages already (a faster boot): no proxy is set up or running.
    for proxy in ("nginx", "caddy"):
        assert not host.service(proxy).is_running
        assert not host.file(f"/etc/{proxy}/baton").exists
    # Converged as the other host: v1 on slot 1, then v2 on slot 2.
    s = state(host)
    assert s["active_slot"] == 2 and s["slots"]["2"]["release"] == "v2" and s["slots"]["1"]["release"] == "v1"
    assert slot_units(host) == {1: False, 2: True}


def test_the_live_slot_was_given_the_socket_and_accepts_on_it(host):
    pid = host.check_output("systemctl show -p MainPID --value baton-demo@2")
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert "LISTEN_FDS=1" in environ.splitlines()
    # Any request on the shared port is answered by the live slot (the only one running).
    assert host.check_output(f"curl -s -D - -o /dev/null http://127.0.0.1:{SOCKET_PORT}/ | grep -i ^x-slot") \
        .strip().lower() == "x-slot: 2"


def test_deploys_and_a_rollback_under_load_lose_nothing(host):
    with SocketLoad(host) as load:
        runs = [run_playbook(host, "deploy.yml", "-e", f"baton_release={release}") for release in ("v3", "v4")]
        runs.append(run_playbook(host, "rollback.yml"))
    for r in runs:
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    summaries = [line for r in runs for line in r.stdout.splitlines() if "active on slot" in line]
    assert len(summaries) == 3 and all("accepting on the shared socket" in line for line in summaries), summaries
    assert_nothing_lost(load.result)
    s = state(host)  # v3 then v4 deployed, rolled back to v3
    assert s["slots"][str(s["active_slot"])]["release"] == "v3" and s["history"][-1]["action"] == "rollback"
    assert slot_units(host)[s["active_slot"]] and not slot_units(host)[s["next_slot"]]


def test_a_release_that_never_gets_ready_never_takes_a_connection(host):
    before = state(host)
    nxt = before["next_slot"]
    with SocketLoad(host) as load:
        r = run_playbook(host, "deploy.yml", "-e", "baton_release=v9", "-e", "baton_ready_timeout=4",
                         "-e", '{"baton_env": {"WARMUP_SECONDS": "600"}}')
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f"Release v9 on slot {nxt} did not become ready" in out, out[-3000:]
    assert_nothing_lost(load.result)
    assert state(host) == before
    assert not host.service(f"baton-demo@{nxt}").is_running
    assert not host.file("/var/lib/baton/demo/deploy.lock").exists


def test_status_names_the_slot_that_runs(host):
    s = state(host)
    r = run_playbook(host, "status.yml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert f'"active_slot": {s["active_slot"]}' in r.stdout
    assert f'"live_slot": "{s["active_slot"]} (only its process runs (it accepts on baton-demo.socket))"' in r.stdout


def test_maintenance_is_refused_without_a_proxy(host):
    r = run_playbook(host, "maintenance.yml", "-e", "baton_maintenance=true")
    assert r.returncode != 0
    assert "Maintenance mode is not available with baton_proxy none" in r.stdout + r.stderr


def test_a_deploy_killed_while_the_old_slot_drains_then_rerun_loses_nothing(host):
    """SIGKILL of the rotate module on the host and of ansible-playbook while the old slot drains (both
    slots run and accept on the socket, as in the faults scenario's phase during-drain): no request is
    lost, status says where the rotation stopped, and a re-run that takes the lock over converges."""
    before = state(host)
    ssh = ["ssh", "-i", str(Path.home() / ".cache" / "baton-lab" / "id_ed25519"), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{address(host)}"]
    with SocketLoad(host) as load:
        killer = start_rotation_killer(ssh, "drain", "v6", 300)
        env, cmd = playbook_cmd(host, "-e", "baton_release=v6")
        with tempfile.TemporaryFile("w+") as output:
            deploy = subprocess.Popen([*cmd, str(REPO / "playbooks" / "deploy.yml")], env=env, stdout=output,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True)
            try:  # until the module is killed, or the deploy ends without reaching the step
                deadline = time.monotonic() + 300
                while killer.poll() is None and deploy.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
            finally:
                os.killpg(deploy.pid, signal.SIGKILL)
                deploy.wait(timeout=30)
                if killer.poll() is None:
                    killer.kill()
            output.seek(0)
            out = output.read()
        killer.wait(timeout=30)
        killed = (killer.stdout.read(), killer.stderr.read())
        assert killer.returncode == 0, f"the rotate module was not killed: {killed[1]}\n{out[-3000:]}"
        step = killed[0].strip()
        assert step in ("drain", "stop"), (step, out[-3000:])
        time.sleep(1)  # both slots accept meanwhile, or only the new one once the old one stopped
        status = run_playbook(host, "status.yml")
        rerun = run_playbook(host, "deploy.yml", "-e", "baton_release=v6", "-e", "baton_deploy_force_unlock=true")
    assert status.returncode == 0, (status.stdout + status.stderr)[-3000:]
    assert f"was interrupted during the step {step}" in status.stdout, status.stdout[-3000:]
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert "Took over the deploy lock" in rerun.stdout + rerun.stderr  # a warning
    assert_nothing_lost(load.result)
    s = state(host)
    assert s["active_slot"] == before["next_slot"] and s["slots"][str(s["active_slot"])]["release"] == "v6"
    assert slot_units(host) == {s["active_slot"]: True, s["next_slot"]: False}
    assert not host.file(JOURNAL).exists and not host.file("/var/lib/baton/demo/deploy.lock").exists


def test_switching_to_a_proxy_stops_the_socket_and_serves_through_the_proxy(host):
    """Last: the app leaves the mode (baton_proxy: nginx). The deploy sets up nginx, the new slot runs on its
    own port behind it, and the shared socket is stopped, disabled and removed with the slot that held it."""
    before = state(host)
    r = run_playbook(host, "deploy.yml", "-e", "baton_release=v5", "-e", "baton_proxy=nginx")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    s = state(host)
    assert s["active_slot"] == before["next_slot"] and s["slots"][str(s["active_slot"])]["release"] == "v5"
    for unit in ("baton-demo.socket", "baton-demo-socket.service"):
        assert host.run(f"systemctl is-active {unit}").stdout.strip() == "inactive", unit
        assert not host.file(f"/etc/systemd/system/{unit}").exists, unit
    assert not host.file("/etc/systemd/system/sockets.target.wants/baton-demo.socket").exists
    assert "Sockets=" not in host.file("/etc/systemd/system/baton-demo@.service").content_string
    assert not host.socket(f"tcp://0.0.0.0:{SOCKET_PORT}").is_listening
    assert not host.socket(f"tcp://:::{SOCKET_PORT}").is_listening
    assert slot_units(host) == {s["active_slot"]: True, s["next_slot"]: False}
    assert host.check_output("curl -s -D - -o /dev/null http://127.0.0.1/ | grep -i ^x-slot") \
        .strip().lower() == f"x-slot: {s['active_slot']}"
