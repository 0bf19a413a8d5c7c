# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad days on two real hosts (systemd + nginx, supervisor + caddy), each fault on both at once.

Where traffic matters the fault happens under constant load through both proxies, and the test
asserts zero non-2xx, then a consistent host: the proxy names the active slot of the state file,
that slot runs the recorded release and answers ready, the other slot is stopped, no lock is left,
and the state file parses. The tests run in file order (each starts from the previous one's host).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "integration"))
from molecule_helpers import REPO, STATE, address, constant_load, gate_slot, playbook_cmd  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[1]
FAULT_VARS = SCENARIO / "vars" / "faults.yml"
LOCK = "/var/lib/baton/demo/deploy.lock"
PORTS = {1: 8001, 2: 8002}
# Bound of one ansible-playbook run: against a hung run, not a figure. A deploy takes well under a minute
# here, but several minutes on an overloaded 2-core machine; a run cut short leaves its lock behind, and
# every test after it fails.
DEPLOY_TIMEOUT = 900
ADMIN_SOCKET = "/run/caddy-admin/admin.sock"
# Caddy's admin API through its socket (which wants an empty Host header).
ADMIN_CURL = f"curl -s -m 5 --unix-socket {ADMIN_SOCKET} -H 'Host: '"


def rotation_steps(tasks: list) -> list[str]:
    """The rotation's tasks, in order, as ansible-playbook announces them: blocks are not announced
    (their tasks are; not their rescue), the hooks are skipped, and a name's templated tail varies."""
    steps = []
    for task in tasks:
        if "block" in task:
            steps += rotation_steps(task["block"])
        elif "hook" not in task["name"]:
            steps.append(re.sub(r"\s*\{\{.*", "", task["name"]).strip())
    return steps


ROTATION = rotation_steps(yaml.safe_load((REPO / "roles" / "rotate" / "tasks" / "rotation.yml").read_text()))


@pytest.fixture(scope="module")
def hosts():
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return [testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")
            for name in ("faults-sn", "faults-uc")]


def name(h) -> str:
    return h.backend.get_hostname()


def hvar(h, var: str) -> str:
    return h.ansible.get_variables()[var]


def deploy_cmd(hosts, *extra: str) -> tuple[dict, list[str]]:
    """ansible-playbook deploy.yml on both hosts at once, with the faults vars and `extra`."""
    env, cmd = playbook_cmd(hosts[0], "-e", f"@{FAULT_VARS}", *extra)
    cmd[cmd.index("--limit") + 1] = ",".join(name(h) for h in hosts)
    return env, [*cmd, str(REPO / "playbooks" / "deploy.yml")]


def deploy(hosts, *extra: str) -> subprocess.CompletedProcess:
    env, cmd = deploy_cmd(hosts, *extra)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT, check=False)
    r.out = r.stdout + r.stderr  # ansible-core 2.19 prints task failures on stderr
    return r


def deploy_each(hosts, cases: tuple, args) -> dict:
    """Two cases at once, case i on host i: one deploy per case, on its hosts, side by side (a case named
    twice is one deploy on both hosts). ``args(case)`` gives a case's extra vars. Returns each host's run."""
    runs = {}
    try:
        for case in dict.fromkeys(cases):
            env, cmd = deploy_cmd([h for h, c in zip(hosts, cases) if c == case], *args(case))
            runs[case] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for run in runs.values():
            run.out = run.communicate(timeout=DEPLOY_TIMEOUT)[0]
    finally:
        for run in runs.values():
            run.kill()  # none is left running, also when one timed out
            run.wait()
    return {name(h): runs[case] for h, case in zip(hosts, cases)}


def round_id(cases: tuple) -> str:
    return "+".join(dict.fromkeys(cases))


def read_state(h) -> dict:
    """The state file, which must always parse."""
    return json.loads(h.file(STATE).content_string)


def upstream_port(h) -> int:
    """The port of the slot the proxy's gate names (nginx or caddy)."""
    return PORTS[gate_slot(h, hvar(h, "baton_proxy"))]


def through_proxy(h, path: str = "/") -> dict:
    """Status and headers of one request through the host's proxy, made on the host."""
    out = h.check_output(f"curl -s -m 10 -D - -o /dev/null http://127.0.0.1{path}").splitlines()
    headers = dict(line.split(": ", 1) for line in out[1:] if ": " in line)
    headers["status"] = int(out[0].split()[1]) if out else 0
    return headers


def readyz(h, port: int) -> int:
    return int(h.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/readyz").stdout or 0)


def slot_pid(h, slot: int) -> str:
    """Main process of a running slot: the app itself (baton-exec and sh exec it under supervisor)."""
    if hvar(h, "baton_process_manager") == "systemd":
        return h.check_output(f"systemctl show -p MainPID --value baton-demo@{slot}")
    return h.check_output(f"supervisorctl pid baton-demo-{slot}")


def in_slot(h, command: str, as_app: bool = True):
    """`command` in the namespaces of the running active slot, as the app user (or as root)."""
    ids = f"-S {h.user('demo').uid} -G {h.group('demo').gid}" if as_app else ""
    return h.run(f"nsenter -t {slot_pid(h, read_state(h)['active_slot'])} -a {ids} sh -c {command!r}")


def as_app(h, command: str):
    return h.run(f"su -s /bin/sh demo -c {command!r}")


def slot_running(h, slot: int) -> bool:
    if hvar(h, "baton_process_manager") == "systemd":
        return h.run(f"systemctl is-active -q baton-demo@{slot}").rc == 0
    return "RUNNING" in h.run(f"supervisorctl status baton-demo-{slot}").stdout


SSH = ["ssh", "-i", str(Path.home() / ".cache" / "baton-lab" / "id_ed25519"), "-o", "StrictHostKeyChecking=no",
       "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3", "-o", "BatchMode=yes"]


def ssh(h, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A command on the host over plain SSH: no Ansible module of ours in the process list, and it
    works while the host reboots (fails instead of hanging)."""
    try:
        return subprocess.run([*SSH, f"root@{address(h)}", command], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, exc.stdout or "", exc.stderr or "")


def wait_for_orphans(h, timeout: float = 90) -> None:
    """Wait until no module that a killed ansible-playbook started is still running on the host
    (Ansible runs each one as `... python3 && sleep 0`)."""
    deadline = time.monotonic() + timeout
    while ssh(h, "pgrep -f '[s]leep 0'").returncode == 0:
        assert time.monotonic() < deadline, "a module of the killed run is still running"
        time.sleep(0.5)


def assert_safe(h) -> None:
    """What must hold at every moment, even right after the controller died: the state file parses,
    the proxy names a slot that runs and is ready, and serves it."""
    read_state(h)
    port = upstream_port(h)
    slot = {p: s for s, p in PORTS.items()}[port]
    assert slot_running(h, slot), f"{name(h)}: the proxy names slot {slot}, which is stopped"
    assert readyz(h, port) == 200, f"{name(h)}: the proxy names slot {slot}, which is not ready"
    answer = through_proxy(h)
    assert answer["status"] == 200 and answer["X-Baton-Upstream"] == f"127.0.0.1:{port}", answer


def assert_consistent(h, release: str | None = None) -> dict:
    """After a deploy (failed or not): one running, ready slot, named by the proxy and the state file."""
    s = read_state(h)
    active = s["active_slot"]
    assert upstream_port(h) == PORTS[active], f"{name(h)}: proxy and state file disagree"
    assert slot_running(h, active) and readyz(h, PORTS[active]) == 200
    assert not slot_running(h, 3 - active), f"{name(h)}: the inactive slot {3 - active} runs"
    answer = through_proxy(h)
    assert answer["status"] == 200
    assert answer["X-Baton-Upstream"] == f"127.0.0.1:{PORTS[active]}"
    assert answer["X-Release"] == s["slots"][str(active)]["release"]
    if release is not None:
        assert answer["X-Release"] == release, f"{name(h)} serves {answer['X-Release']}, not {release}"
    assert not h.file(LOCK).exists
    assert not h.run("ls -a /srv/demo/releases | grep -F .building").stdout
    return s


def live(h) -> tuple:
    """What serves now: active slot, its release through the proxy, the upstream port."""
    s = read_state(h)
    return s["active_slot"], s["slots"][str(s["active_slot"])]["release"], through_proxy(h)["X-Release"], \
        upstream_port(h)


def assert_no_drop(load: dict) -> None:
    for host, result in load.items():
        assert result["requests"] > 100, (host, result)
        assert result["non_2xx"] == 0, (host, result["codes"])


def run_until_task(env: dict, cmd: list[str], task: str, timeout: float = DEPLOY_TIMEOUT) -> str:
    """Run ansible-playbook and SIGKILL its whole process group as soon as it announces `task`.

    Returns the output up to then. Fails if the task never starts (bounded by `timeout`)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    watchdog = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    seen, killed = [], False
    try:
        for line in proc.stdout:
            seen.append(line)
            banner = re.match(r"TASK \[(?:[^\]]+ : )?(.*?)\]", line)
            if banner and banner.group(1).startswith(task):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
    finally:
        watchdog.cancel()
        proc.stdout.close()
        proc.wait(timeout=30)
    out = "".join(seen)
    assert killed, f"the deploy never started {task!r}:\n{out[-3000:]}"
    return out


# --- 9. hardening (on the freshly converged hosts) --------------------------------------------

def test_app_user_is_unprivileged_and_owns_only_what_it_must(hosts):
    for h in hosts:
        user = h.user("demo")
        assert user.uid < 1000 and user.shell == "/usr/sbin/nologin" and user.home == "/srv/demo"
        assert user.groups == ["demo"], user.groups  # no sudo, adm, ...
        assert h.run("sudo -l -U demo | grep -q 'not allowed'").rc == 0
        owned = h.check_output("find / -xdev -user demo -not -path '/proc/*' 2>/dev/null").split()
        outside = [p for p in owned if not p.startswith("/srv/demo/shared")]
        assert outside == [], f"{name(h)}: the app user owns {outside}"  # not its releases either
        for path in ("/srv/demo", "/srv/demo/releases", "/srv/demo/slots", "/srv/demo/slots/1.env",
                     "/srv/demo/slots/2.env", "/var/lib/baton/demo"):
            assert h.file(path).user == "root", path
        # Root owns the releases; the app's group reads them, nobody else but root writes them.
        loose = h.check_output("find /srv/demo/releases -mindepth 1 -not -type l "
                               "\\( -not -user root -o -perm /022 -o -perm /6000 \\) -print")
        assert loose == "", f"{name(h)}: {loose}"
        assert (h.file("/srv/demo/releases/v2").group, h.file("/srv/demo/releases/v2/demo_app.py").mode) == \
            ("demo", 0o644)


def test_the_app_cannot_rewrite_its_release_from_its_running_slot(hosts):
    """Both process managers: as the app user, outside (su) and inside the running slot (its namespaces,
    its uid), writing into the release is refused and shared/ is writable; inside the slot the file
    system is mounted read-only, so even root there cannot write, and /tmp is the slot's own."""
    for h in hosts:
        active = read_state(h)["active_slot"]
        release = "/srv/demo/releases/" + read_state(h)["slots"][str(active)]["release"]
        for run in (lambda c, h=h: as_app(h, c), lambda c, h=h: in_slot(h, c)):
            r = run(f"touch {release}/demo_app.py || touch /srv/demo/slots/{active}/x || echo x > {release}/new")
            assert r.rc != 0 and not h.file(f"{release}/new").exists, f"{name(h)}: {r.stderr}"
            assert run("touch /srv/demo/shared/probe && rm /srv/demo/shared/probe").rc == 0, name(h)
        for path in ("/etc/baton-probe", f"{release}/probe"):
            assert "Read-only file system" in in_slot(h, f"touch {path}", as_app=False).stderr, (name(h), path)
        h.run_expect([0], "touch /tmp/baton-host-probe")
        assert in_slot(h, "ls /tmp/baton-host-probe").rc != 0, f"{name(h)}: the slot sees the host's /tmp"


def test_systemd_slots_are_sandboxed(hosts):
    h = hosts[0]
    active = read_state(h)["active_slot"]
    props = h.check_output(f"systemctl show baton-demo@{active} -p User -p NoNewPrivileges -p ProtectSystem "
                           "-p ProtectHome -p PrivateTmp -p PrivateDevices -p ProtectKernelTunables "
                           "-p ProtectControlGroups -p RestrictSUIDSGID -p ReadWritePaths")
    for want in ("User=demo", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes",
                 "RestrictSUIDSGID=yes", "ReadWritePaths=/srv/demo/shared"):
        assert want in props, (want, props)
    pid = h.check_output(f"systemctl show -p MainPID --value baton-demo@{active}")
    status = h.check_output(f"cat /proc/{pid}/status")
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert re.search(r"^Uid:\s+(\d+)", status, re.M).group(1) == str(h.user("demo").uid)
    # From inside the slot's mount namespace the releases are read-only and shared/ is writable.
    ns = f"nsenter -t {pid} -m -S {h.user('demo').uid} -G {h.group('demo').gid}"
    assert h.run(f"{ns} touch /srv/demo/releases/v2/owned").rc != 0
    assert h.run(f"{ns} touch /srv/demo/shared/probe && rm -f /srv/demo/shared/probe").rc == 0


def test_supervisor_slots_are_sandboxed(hosts):
    h = hosts[1]
    active = read_state(h)["active_slot"]
    pid = slot_pid(h, active)
    assert h.check_output(f"ps -o user= -p {pid}") == "demo"
    status = h.check_output(f"cat /proc/{pid}/status")
    for field in ("NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000"):
        assert field in status, (field, status)
    conf = h.file(f"/etc/supervisor/conf.d/baton-demo-{active}.conf")
    # supervisord starts baton-exec as root (no user=): it builds the sandbox, then becomes demo.
    assert "--user demo --read-write /srv/demo/shared " in conf.content_string
    assert not re.search(r"^user=", conf.content_string, re.M)
    assert "s3cr3t" not in conf.content_string  # secrets stay in the slot's env file
    assert conf.mode == 0o644 and conf.user == "root"
    # The slot's own mount namespace: read-only but for shared/, private /tmp and /dev, no homes.
    assert h.check_output(f"readlink /proc/{pid}/ns/mnt") != h.check_output("readlink /proc/self/ns/mnt")
    mounts = {ln.split()[0]: ln.split()[1] for ln in
              h.check_output(f"findmnt -N {pid} -rn -o TARGET,OPTIONS").splitlines()}
    for target, mode in (("/", "ro"), ("/srv/demo/shared", "rw"), ("/tmp", "rw"), ("/var/tmp", "rw"),
                         ("/root", "ro"), ("/proc/sys", "ro"), ("/sys", "ro")):
        assert mounts[target].split(",")[0] == mode, (target, mounts.get(target))
    assert in_slot(h, "ls /dev").stdout.split() == sorted(
        "fd full log mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero".split())


def test_caddy_admin_api_answers_root_only(hosts):
    """Caddy's admin API is a unix socket only root and caddy can open: no local user, the app least
    of all (su, or from inside its running slot), can load a configuration into the proxy."""
    h = hosts[1]
    assert h.run(f"{ADMIN_CURL} -o /dev/null -w '%{{http_code}}' http://localhost/config/").stdout == "200"
    assert h.check_output("ss -Htln 'sport = :2019'") == ""  # no TCP listener at all
    for r in (as_app(h, f"{ADMIN_CURL} -X POST -d '{{}}' http://localhost/load"),
              in_slot(h, f"{ADMIN_CURL} -X POST -d '{{}}' http://localhost/load")):
        assert r.rc == 7, (r.rc, r.stdout, r.stderr)  # 7: could not connect (permission denied)
    assert "Permission denied" in in_slot(h, f"ls {ADMIN_SOCKET}").stderr
    assert_consistent(h)  # and the proxy still serves the active slot
    outside = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{address(h)}:2019/config/"], capture_output=True, text=True, check=False)
    assert outside.stdout == "000" and outside.returncode == 7, outside  # 7: connection refused


def test_secrets_are_never_logged_and_files_are_private(hosts, tmp_path):
    secret = f"faults-{os.getpid()}-t0p-s3cret"
    extra = tmp_path / "secret.yml"
    extra.write_text(json.dumps({"baton_env": {"WARMUP_SECONDS": "1", "DRAIN_SECONDS": "0.5",
                                               "BATON_DEMO_SECRET": secret}}))
    r = deploy(hosts, "-v", "--diff", "-e", f"@{extra}", "-e", "baton_release=s1")
    assert r.returncode == 0, r.out[-3000:]
    assert "Write the environment of the slot" in r.out and "no_log: true" in r.out  # it ran, censored...
    assert secret not in r.out  # ...and neither -v nor --diff showed its content
    for h in hosts:
        env = h.file(f"/srv/demo/slots/{read_state(h)['active_slot']}.env")
        assert (env.mode, env.user, env.group) == (0o640, "root", "demo")
        assert secret in env.content_string
        assert h.file(STATE).mode == 0o640
        assert h.file("/var/lib/baton/demo").mode == 0o750
        leaked = h.run(f"grep -rlF {secret} /etc /var/log /tmp 2>/dev/null").stdout.split()
        assert leaked == [], leaked
        assert_consistent(h, "s1")
    # The next deploy that starts a slot writes its environment: the usual one (tests below check the slot
    # that serves, whatever its environment).


# --- 1. a release that fails to start -----------------------------------------------------------

FAILED_STARTS = {
    # name: (app environment of the broken release, what the error says)
    "exits-at-start": ({"EXIT_AT_START": "3"}, None),
    "never-ready": ({"WARMUP_SECONDS": "600"}, "status 503"),
    "readyz-500": ({"READYZ_STATUS": "500"}, "status 500"),
}
# The cases on (systemd + nginx, supervisor + caddy), at once. An app that exits fails differently under
# each process manager: on both. One that stays unready fails the same way on any host (the wait on the
# slot's own port; stopping the slot is the same as above): one host each.
FAILED_START_ROUNDS = [("exits-at-start", "exits-at-start"), ("never-ready", "readyz-500")]


@pytest.mark.parametrize("cases", FAILED_START_ROUNDS, ids=round_id)
def test_release_that_never_gets_ready_is_never_routed(hosts, tmp_path, cases):
    def args(case):
        broken = tmp_path / f"{case}.yml"
        broken.write_text(json.dumps({"baton_env": {"WARMUP_SECONDS": "1", "DRAIN_SECONDS": "0.5",
                                                    **FAILED_STARTS[case][0]}}))
        return ["-e", f"@{broken}", "-e", f"baton_release=bad-{case}", "-e", "baton_ready_timeout=5"]

    before = {name(h): live(h) for h in hosts}
    with constant_load(*hosts) as load:
        runs = deploy_each(hosts, cases, args)
    assert_no_drop(load)
    for h, case in zip(hosts, cases):
        r, reason = runs[name(h)], FAILED_STARTS[case][1]
        assert r.returncode != 0
        nxt = 3 - before[name(h)][0]
        assert f"Release bad-{case} on slot {nxt} did not become ready" in r.out
        assert "It was stopped; the proxy and slot" in r.out
        if reason:
            assert reason in r.out
        assert live(h) == before[name(h)]
        assert_consistent(h)


def test_good_deploy_after_a_failed_setting_change_converges(hosts):
    """A failed deploy's setup (here a start command that exits) stays on the host; the next deploy with the
    good settings must see that the host's setup differs and set it up again."""
    r = deploy(hosts, "-e", "baton_release=bad-cmd", "-e", "baton_start_command=/bin/false",
               "-e", "baton_ready_timeout=3")
    try:
        assert r.returncode != 0 and "did not become ready" in r.out
        r = deploy(hosts, "-e", "baton_release=s3")
        assert r.returncode == 0, r.out[-3000:]
    except AssertionError:
        # Set the hosts up right again for the tests after this one, then fail.
        deploy(hosts, "-e", "baton_release=s3", "-e", "baton_setup=always")
        raise


def test_host_is_consistent_after_the_setting_change(hosts):
    for h in hosts:
        assert_consistent(h, "s3")


# --- 7. build and source failures ---------------------------------------------------------------

BAD_BUILDS = {
    "build-command-fails": (["-e", "baton_build_command='echo boom >&2; exit 3'"], "boom"),
    "git-repo-missing": (["-e", "baton_source_type=git", "-e", "baton_git_repo=file:///nonexistent/repo.git",
                          "-e", "baton_git_version=v1"], "Check out the release"),
    "archive-missing": (["-e", "baton_source_type=archive", "-e", "baton_source=/nonexistent/demo.tar.gz"],
                        "Unpack the release tarball"),
}
# A build fails before anything of the process manager or the proxy runs: the cases need not run on both
# hosts. Two at once, case i on host i; the build command (the usual failure) on both.
BAD_BUILD_ROUNDS = [("build-command-fails", "git-repo-missing"), ("archive-missing", "build-command-fails")]


@pytest.mark.parametrize("cases", BAD_BUILD_ROUNDS, ids=round_id)
def test_failed_build_touches_nothing_live(hosts, cases):
    before = {name(h): live(h) for h in hosts}
    with constant_load(*hosts) as load:
        runs = deploy_each(hosts, cases, lambda case: ["-e", f"baton_release=broken-{case}", *BAD_BUILDS[case][0]])
    assert_no_drop(load)
    for h, case in zip(hosts, cases):
        r, release = runs[name(h)], f"broken-{case}"
        assert r.returncode != 0
        assert f"Building release {release} failed" in r.out and "Nothing live was touched" in r.out
        assert BAD_BUILDS[case][1] in r.out
        assert live(h) == before[name(h)]
        assert not h.file(f"/srv/demo/releases/.{release}.building").exists
        assert not h.file(f"/srv/demo/releases/{release}").exists
        assert_consistent(h)


# --- 5. a proxy configuration that fails validation --------------------------------------------

BAD_PROXY = ["-e", "baton_nginx_location_extra='no_such_directive on;'",
             "-e", "baton_caddy_site_extra='no_such_directive on'"]


def proxy_fingerprint(h) -> tuple:
    """Evidence of a reload: nginx's worker pids / Caddy's loaded configuration."""
    if hvar(h, "baton_proxy") == "nginx":
        return tuple(sorted(h.check_output("pgrep -f 'nginx: worker process'").split()))
    return (h.check_output(f"{ADMIN_CURL} http://localhost/config/"),)


def test_rejected_proxy_config_is_not_loaded(hosts):
    before = {name(h): (live(h), proxy_fingerprint(h)) for h in hosts}
    with constant_load(*hosts) as load:
        r = deploy(hosts, "-e", "baton_release=p1", *BAD_PROXY)
    assert r.returncode != 0
    assert_no_drop(load)
    assert "no_such_directive" in r.out  # the proxy's own error reaches the user
    for h in hosts:
        assert (live(h), proxy_fingerprint(h)) == before[name(h)], f"{name(h)}: the proxy was reloaded"
        assert_consistent(h)


def test_rejected_proxy_config_is_not_left_on_disk(hosts):
    problems = []
    for h in hosts:
        check = "nginx -t" if hvar(h, "baton_proxy") == "nginx" else \
            "caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile"
        r = h.run(check)
        if r.rc != 0:
            problems.append(f"{name(h)}: {check}: {r.stderr.strip()[-300:]}")
    assert problems == []


def test_good_config_after_a_rejected_one_converges(hosts):
    with constant_load(*hosts) as load:
        r = deploy(hosts, "-e", "baton_release=p2")
    assert r.returncode == 0, r.out[-3000:]
    assert_no_drop(load)
    for h in hosts:
        assert_consistent(h, "p2")
        assert h.run("nginx -t" if hvar(h, "baton_proxy") == "nginx" else
                     "caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile").rc == 0


# --- 4. two deploys at once ---------------------------------------------------------------------

def test_second_concurrent_deploy_is_refused_at_once(hosts, tmp_path):
    go = tmp_path / "go"
    hook = ["-e", f"baton_hook_before_flip={SCENARIO / 'hooks' / 'hold_before_flip.yml'}",
            "-e", f"faults_release_file={go}"]
    env, first_cmd = deploy_cmd(hosts, "-e", "baton_release=c1", *hook)
    with constant_load(*hosts) as load:
        first = subprocess.Popen(first_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
        try:
            held = []
            for line in first.stdout:  # until the first deploy holds the lock, its new slot ready
                held.append(line)
                if "Wait until the test releases this deploy" in line:
                    break
            assert first.poll() is None, "".join(held)[-3000:]
            holders = {name(h): json.loads(h.file(LOCK).content_string) for h in hosts}
            # The second deploy with its setup forced (as when its settings changed): everything it does before
            # it reaches the lock runs while the first deploy rotates.
            second = deploy(hosts, "-e", "baton_release=c2", "-e", "baton_setup=always")
        finally:
            go.write_text("go\n")
            rest = first.communicate(timeout=DEPLOY_TIMEOUT)[0]
    first_out = "".join(held) + rest
    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode != 0
    assert_no_drop(load)
    for h in hosts:
        holder = holders[name(h)]
        assert f"Another deploy of demo holds the lock {LOCK} since {holder['time']}" in second.out
        assert holder["owner"] in second.out and "(Deploy with Baton)" in holder["owner"]
    assert "re-run with baton_deploy_force_unlock=true" in second.out
    # Refused at the lock: the second deploy set up, built and started nothing.
    for task in ("Create the unprivileged app user", "Copy the source directory", "Point the next slot",
                 "Start the next slot"):
        assert task not in second.out, task
    for h in hosts:
        s = assert_consistent(h, "c1")
        assert "c2" not in [slot["release"] for slot in s["slots"].values()]


def test_refused_deploy_leaves_the_boot_configuration_alone(hosts):
    """After the race above, a reboot must still start the active slot (supervisor's autostart)."""
    h = hosts[1]
    active = read_state(h)["active_slot"]
    conf = h.file(f"/etc/supervisor/conf.d/baton-demo-{active}.conf").content_string
    other = h.file(f"/etc/supervisor/conf.d/baton-demo-{3 - active}.conf").content_string
    assert "autostart=true" in conf and "autostart=false" in other


# --- 3. ansible-playbook killed in each phase of the rotation ----------------------------------

# Every task of the rotation, by phase. Killed anywhere within a phase, the deploy leaves the same host
# behind for the re-run (the comment says what), so each phase is killed once, at its first task listed
# here; the deploy is killed as that task is announced (its module may still run on the host to its end).
KILL_PHASES = {
    # The next slot points at the release; nothing started, nothing routed.
    "before-start": ["Start the next slot", "Point the next slot at the release"],
    # The next slot runs (warming up, or ready), the proxy and the state file still name the old slot.
    "waiting-ready": ["Wait until the next slot is ready on its own port", "Flip the proxy to the next slot"],
    # The gate names the next slot, the state file the old one, which still runs (also in the watch window).
    "after-flip": ["Verify that the proxy routes to the next slot", "Check that the next slot stays ready"],
    # As after the flip, with requests still in flight on the old slot, or the old slot being stopped.
    "during-drain": ["Wait until the old slot has no in-flight requests", "Stop the old slot"],
    # The old slot stopped, the state file still names it (unless the record's module ran on); after the
    # record only the lock is left (the re-run takes it over and has nothing to do).
    "before-record": ["Record the new active slot", "Summarise the deploy"],
}


def test_every_rotation_task_has_a_kill_phase():
    """A task added to the rotation must be placed in a phase (or get a phase of its own)."""
    phased = [task for tasks in KILL_PHASES.values() for task in tasks]
    assert sorted(phased) == sorted(ROTATION), \
        f"roles/rotate/tasks/rotation.yml has {ROTATION}; place each task in KILL_PHASES (test_faults.py)"


@pytest.mark.parametrize("phase", KILL_PHASES)
def test_deploy_killed_in_each_phase_then_rerun(hosts, phase):
    step = KILL_PHASES[phase][0]
    release = f"k{list(KILL_PHASES).index(phase)}"
    env, cmd = deploy_cmd(hosts, "-e", f"baton_release={release}")
    with constant_load(*hosts) as load:
        run_until_task(env, cmd, step)
        for h in hosts:
            wait_for_orphans(h)
            assert_safe(h)
            assert h.file(LOCK).exists  # the killed run could not release it
        if phase == next(iter(KILL_PHASES)):
            # The documented recovery, step by step: a plain re-run is refused and names the dead holder...
            r = deploy(hosts, "-e", f"baton_release={release}")
            assert r.returncode != 0
            assert "Another deploy of demo holds the lock" in r.out and "(Deploy with Baton)" in r.out
            assert "baton_deploy_force_unlock=true" in r.out
            for h in hosts:
                assert_safe(h)
        # ...and a re-run that takes the lock over converges.
        r = deploy(hosts, "-e", f"baton_release={release}", "-e", "baton_deploy_force_unlock=true")
        assert r.returncode == 0, r.out[-3000:]
        assert "Took over the deploy lock" in r.out
    assert_no_drop(load)
    for h in hosts:
        assert_consistent(h, release)


def test_rerunning_the_last_deploy_changes_nothing(hosts):
    release = read_state(hosts[0])["slots"][str(read_state(hosts[0])["active_slot"])]["release"]
    r = deploy(hosts, "-e", f"baton_release={release}")
    assert r.returncode == 0, r.out[-3000:]
    for h in hosts:
        assert re.search(rf"{name(h)}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", r.out), r.out[-2000:]
        assert_consistent(h, release)


# --- 6. host reboot -----------------------------------------------------------------------------

def test_reboot_brings_back_the_active_slot_only(hosts):
    before = {name(h): read_state(h) for h in hosts}
    boot_ids = {name(h): h.file("/proc/sys/kernel/random/boot_id").content_string for h in hosts}
    for h in hosts:
        ssh(h, "systemctl reboot", timeout=30)
    deadline = time.monotonic() + 180
    for h in hosts:
        while True:  # back up: a new boot id, and systemd done starting units
            r = ssh(h, "cat /proc/sys/kernel/random/boot_id; timeout 20 systemctl is-system-running --wait")
            lines = r.stdout.split()
            if lines and lines[0] != boot_ids[name(h)].strip() and lines[-1] in ("running", "degraded"):
                break
            assert time.monotonic() < deadline, f"{name(h)} did not come back: {r.stdout} {r.stderr}"
            time.sleep(1)
    for h in hosts:
        active = before[name(h)]["active_slot"]
        while readyz(h, PORTS[active]) != 200:  # the app warms up after the boot
            assert time.monotonic() < deadline, f"{name(h)}: slot {active} is not ready after the reboot"
            time.sleep(0.5)
        assert read_state(h) == before[name(h)]
        assert_consistent(h, before[name(h)]["slots"][str(active)]["release"])
