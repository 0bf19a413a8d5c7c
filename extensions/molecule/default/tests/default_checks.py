# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The checks of the systemd + nginx scenario on a booted lab host, then deploys under load and rollbacks.

Not collected by itself: test_bookworm.py imports them for the scenario's Debian 12 host, so that
pytest-xdist (`--dist loadfile`, molecule.yml) tests it side by side with the host without a proxy
(test_socket.py), each host's checks in order (they build on each other's deploys)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from molecule_helpers import (  # noqa: E402
    REPO, STATE, constant_load, gate_slot, live, proxied, run_playbook, run_playbook_without_env, state, under_load)


def test_systemd_is_pid1(host):
    assert host.check_output("ps -p 1 -o comm=").strip() == "systemd"


def test_only_the_active_slot_runs(host):
    assert host.service("baton-demo@2").is_running
    assert not host.service("baton-demo@1").is_running
    assert host.socket("tcp://127.0.0.1:8002").is_listening
    assert not host.socket("tcp://127.0.0.1:8001").is_listening


def test_instances_run_unprivileged_and_sandboxed(host):
    unit = host.check_output("systemctl show baton-demo@2 -p User -p NoNewPrivileges -p ProtectSystem")
    assert "User=demo" in unit
    assert "NoNewPrivileges=yes" in unit
    assert "ProtectSystem=strict" in unit
    assert host.user("demo").shell == "/usr/sbin/nologin"
    pid = host.check_output("systemctl show -p MainPID --value baton-demo@2")
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert "PORT=8002" in environ and "BATON_RELEASE=v2" in environ
    assert 'BATON_DEMO_SECRET=s3cr3t $HOME "quoted"' in environ  # passed through exactly, not expanded


def test_nginx_routes_to_the_active_slot(host):
    assert gate_slot(host, "nginx") == 2
    assert not host.file("/etc/nginx/baton/demo.upstream.conf").exists  # the gate replaced it
    site = host.file("/etc/nginx/sites-enabled/baton-demo.conf").content_string
    assert "if (-f /etc/nginx/baton/demo.gate/slot1)" in site and "proxy_pass http://$baton_upstream;" in site
    assert host.run("nginx -t").rc == 0
    headers = proxied(host)
    assert " 200 " in headers.splitlines()[0]
    assert "X-Release: v2" in headers
    assert "X-Baton-Upstream: 127.0.0.1:8002" in headers


def test_state_file_is_right(host):
    f = host.file(STATE)
    assert f.mode == 0o640
    s = state(host)
    assert s["active_slot"] == 2 and s["next_slot"] == 1
    assert s["slots"]["2"]["release"] == "v2"
    assert s["slots"]["1"]["release"] == "v1"
    assert [h["release"] for h in s["history"]] == ["v1", "v2"]


def test_releases_are_built_and_linked(host):
    assert host.file("/srv/demo/slots/2").linked_to == "/srv/demo/releases/v2"
    assert host.file("/srv/demo/releases/v1/.baton-release").content_string.strip() == "v1"
    assert not host.file("/var/lib/baton/demo/deploy.lock").exists


def test_three_deploys_under_load_drop_nothing(host):
    """Constant load through nginx, slow requests in flight at each flip, 3 deploys: zero non-2xx."""
    result = under_load(host, "three-deploys", "deploy:v3,deploy:v2,deploy:v3")
    assert result["requests"] > 1000
    assert result["non_2xx"] == 0, f"{result['failures']} {result['codes']}"
    assert [step["rc"] for step in result["steps"]] == [0, 0, 0]
    assert state(host)["slots"][str(state(host)["active_slot"])]["release"] == "v3"


def test_rollback_serves_the_previous_release(host):
    before = state(host)
    r = run_playbook(host, "rollback.yml")
    assert r.returncode == 0, r.stdout[-3000:]
    after = state(host)
    assert after["active_slot"] == before["next_slot"]
    assert after["history"][-1]["action"] == "rollback"
    assert f"X-Release: {after['slots'][str(after['active_slot'])]['release']}" in proxied(host)
    assert after["slots"][str(after["active_slot"])]["release"] == "v2"


def slot_environ(host, slot: int) -> list[str]:
    pid = host.check_output(f"systemctl show -p MainPID --value baton-demo@{slot}")
    return host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()


def test_rollback_restores_the_environment_the_release_last_ran_with(host, tmp_path):
    """baton_env per release (as a CI pipeline passes it), then a deploy that never gets ready rewrites
    the idle slot's env file, then a rollback without baton_env: e2 runs with e2's environment."""
    for n in (1, 2, 3):
        env = {"APP_RELEASE": f"e{n}", "WARMUP_SECONDS": "1", "DRAIN_SECONDS": "0.2"}
        r = run_playbook(host, "deploy.yml", "-e", f"baton_release=e{n}", "-e", json.dumps({"baton_env": env}))
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    r = run_playbook(host, "deploy.yml", "-e", "baton_release=e4", "-e", "baton_ready_timeout=2",
                     "-e", json.dumps({"baton_env": {"APP_RELEASE": "e4", "WARMUP_SECONDS": "600"}}))
    assert r.returncode != 0
    idle = state(host)["next_slot"]
    assert "BATON_RELEASE=e4" in host.file(f"/srv/demo/slots/{idle}.env").content_string
    with constant_load(host) as loads:  # a rollback under load: code and environment, nothing dropped
        r = run_playbook_without_env(host, tmp_path, "rollback.yml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    [load] = list(loads.values())
    assert load["requests"] > 100 and load["non_2xx"] == 0, f"{load['failures']} {load}"
    s = state(host)
    assert (s["active_slot"], s["slots"][str(idle)]["release"]) == (idle, "e2")
    assert "X-Release: e2" in proxied(host)
    environ = slot_environ(host, idle)
    assert {"APP_RELEASE=e2", "WARMUP_SECONDS=1", "BATON_RELEASE=e2", f"PORT={8000 + idle}"} <= set(environ)
    kept = host.file("/var/lib/baton/demo/env/e2.env")
    assert (kept.mode, kept.user, kept.group) == (0o640, "root", "demo")
    assert '"e2"' in kept.content_string and "e4" not in kept.content_string
    # Given baton_env, a rollback starts with it (back to e3 here).
    r = run_playbook(host, "rollback.yml", "-e", json.dumps({"baton_env": {"APP_RELEASE": "given"}}))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "APP_RELEASE=given" in slot_environ(host, state(host)["active_slot"])


def test_failed_build_touches_nothing_live(host):
    before = live(host)
    r = run_playbook(host, "deploy.yml", "-e", "baton_release=broken1", "-e", "baton_build_command='exit 3'")
    assert r.returncode != 0
    out = r.stdout + r.stderr  # ansible-core 2.19 prints task failures on stderr
    assert "Building release broken1 failed" in out and "Nothing live was touched" in out
    assert live(host) == before
    assert not host.file("/srv/demo/releases/.broken1.building").exists
    assert not host.file("/srv/demo/releases/broken1").exists


def test_release_that_never_gets_ready_is_not_routed(host):
    before = live(host)
    nxt = before[0]["next_slot"]
    r = run_playbook(host, "deploy.yml", "-e", "baton_release=v9", "-e", "baton_ready_timeout=3",
                     "-e", '{"baton_env": {"WARMUP_SECONDS": "600"}}')
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f"Release v9 on slot {nxt} did not become ready" in out
    assert "status 503" in out
    assert live(host) == before
    assert not host.service(f"baton-demo@{nxt}").is_running
    assert not host.file("/var/lib/baton/demo/deploy.lock").exists


def test_release_that_crashes_after_the_flip_is_flipped_back(host):
    """Ready, flipped, then it dies inside the watch window: back to the old slot, nothing dropped."""
    before = live(host)
    old, nxt = before[0]["active_slot"], before[0]["next_slot"]
    result = under_load(host, "crash-after-flip", "deploy:v10", "-e", "baton_watch_seconds=8", "-e",
                        '{"baton_env": {"WARMUP_SECONDS": "3", "DRAIN_SECONDS": "0.5", "CRASH_AFTER_SECONDS": "2"}}')
    assert result["requests"] > 500
    assert result["non_2xx"] == 0, f"{result['failures']} {result['codes']}"
    [step] = result["steps"]
    assert step["rc"] == 2
    assert f"Release v10 on slot {nxt} was ready, but after the flip" in step["failure"]
    assert f"The proxy was flipped back to slot {old}" in step["failure"]
    assert live(host) == before
    assert not host.service(f"baton-demo@{nxt}").is_running
    assert gate_slot(host, "nginx") == old


def test_second_deploy_refuses_while_locked(host):
    before = live(host)
    held = host.ansible("baton.deploy.deploy_lock", "app=demo owner=someone-else", check=False, become=True)
    try:
        r = run_playbook(host, "deploy.yml", "-e", "baton_release=v5")
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "Another deploy of demo holds the lock" in out and "someone-else" in out
        assert live(host) == before
    finally:
        host.ansible("baton.deploy.deploy_lock", f"app=demo state=absent token={held['token']}",
                     check=False, become=True)


def test_archive_source_deploys(host, tmp_path):
    tarball = tmp_path / "demo-v7.tar.gz"
    subprocess.run(["tar", "-C", str(REPO / "tests" / "apps" / "demo"), "-czf", str(tarball), "."], check=True)
    r = run_playbook(host, "deploy.yml", "-e", "baton_release=v7", "-e", "baton_source_type=archive",
                     "-e", f"baton_source={tarball}")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "X-Release: v7" in proxied(host)
    # Unpacked for the app user, then handed to root before it went live: the app reads its code, cannot change it.
    code = host.file("/srv/demo/releases/v7/demo_app.py")
    assert (code.user, code.group, code.mode) == ("root", "demo", 0o644)


def test_git_source_with_build_command_deploys(host):
    # A repository on the host itself (the lab has no git server): file:// is still the git module's path.
    host.run_expect([0], "apt-get install -y -qq git >/dev/null && rm -rf /opt/demo-src && "
                    "cp -r /srv/demo/releases/v7 /opt/demo-src && cd /opt/demo-src && rm -f .baton-release && "
                    "git init -q -b main && git -c user.email=t@t -c user.name=t add -A && "
                    "git -c user.email=t@t -c user.name=t commit -qm v8 && git tag v8")
    # No baton_release: the release id defaults to the git version.
    r = run_playbook(host, "deploy.yml", "-e", "baton_source_type=git", "-e", "baton_git_repo=file:///opt/demo-src",
                     "-e", "baton_git_version=v8", "-e", "baton_build_command='id -un > BUILD_INFO'")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "X-Release: v8" in proxied(host)
    # The build ran as the app user; what it wrote belongs to root once the release is in place.
    info = host.file("/srv/demo/releases/v8/BUILD_INFO")
    assert (info.content_string.strip(), info.user, info.group, info.mode) == ("demo", "root", "demo", 0o644)


@pytest.mark.parametrize("path,code", [("/livez", 200), ("/readyz", 200)])
def test_health_through_the_proxy(host, path, code):
    assert f" {code} " in proxied(host, path).splitlines()[0]


def test_status_shows_each_slot(host):
    s = state(host)
    active, idle = s["active_slot"], s["next_slot"]
    r = run_playbook(host, "status.yml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert f'"active_slot": {active}' in r.stdout
    assert f'"slot{active}": "{s["slots"][str(active)]["release"]} (readyz 200)"' in r.stdout
    assert f'"slot{idle}": "{s["slots"][str(idle)]["release"]} (not answering)"' in r.stdout
