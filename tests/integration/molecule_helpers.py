# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Molecule scenarios' testinfra tests share: the state file, requests through the proxy,
the collection's playbooks run against the scenario's hosts, deploys under constant load, and the
SIGKILL of a rotation at a given step."""
from __future__ import annotations

import ast
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = "/var/lib/baton/demo/state.json"
# Deploy vars every scenario shares (the demo app, warm-up 3 s).
DEPLOY_VARS = REPO / "extensions" / "molecule" / "default" / "vars" / "deploy.yml"


def state(host) -> dict:
    return json.loads(host.file(STATE).content_string)


def proxied(host, path: str = "/") -> str:
    """Response headers of a request through the proxy, made on the host itself."""
    return host.check_output(f"curl -s -D - -o /dev/null http://127.0.0.1{path}")


def gate_slot(host, proxy: str, app: str = "demo") -> int:
    """The live slot the app's gate names (baton.deploy.proxy_gate): slot1 exists -> 1, else 2."""
    gate = f"/etc/{proxy}/baton/{app}.gate"
    assert host.file(gate).is_directory, f"{gate} missing"
    return 1 if host.file(f"{gate}/slot1").exists else 2


def live(host) -> tuple:
    """What is serving now: (state file, release answering through the proxy)."""
    return state(host), [ln for ln in proxied(host).splitlines() if ln.startswith("X-Release")]


def address(host) -> str:
    return host.ansible.get_variables()["ansible_host"]


def playbook_cmd(host, *extra: str) -> tuple[dict, list[str]]:
    """Environment and ansible-playbook command (no playbook yet) for this host only."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"), ANSIBLE_PIPELINING="1",
               ANSIBLE_HOST_KEY_CHECKING="False", MOLECULE_PROJECT_DIRECTORY=str(REPO),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env, [str(Path(sys.executable).parent / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                 "--limit", host.backend.get_hostname(), "-e", f"@{DEPLOY_VARS}", *extra]


def run_playbook(host, name: str, *extra: str) -> subprocess.CompletedProcess:
    # A bound, not an expectation: a deploy takes 15-30 s, but a run killed by this timeout leaves
    # its lock behind and fails every test after it, so leave room for a heavily loaded machine.
    env, cmd = playbook_cmd(host, *extra)
    return subprocess.run([*cmd, str(REPO / "playbooks" / name)], env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def run_playbook_without_env(host, tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """As run_playbook, but the shared deploy vars lack baton_env: a run that is not given baton_env."""
    import yaml

    deploy_vars = yaml.safe_load(DEPLOY_VARS.read_text())
    deploy_vars.pop("baton_env")
    trimmed = tmp_path / "deploy-vars-without-env.yml"
    trimmed.write_text(yaml.safe_dump(deploy_vars))
    env, cmd = playbook_cmd(host, *extra)
    cmd = [f"@{trimmed}" if arg == f"@{DEPLOY_VARS}" else arg for arg in cmd]
    return subprocess.run([*cmd, str(REPO / "playbooks" / name)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def under_load(host, name: str, steps: str, *extra: str, rate: int = 100) -> dict:
    """Run the steps (zero_drop.py --steps) under constant load through the host's proxy (``rate``
    req/s, about the 80 of the field measurements, plus slow requests always in flight); ``extra``
    goes to every ansible-playbook run. The JSON result is also kept as
    tests/output/zero-drop/<scenario>-<host>-<name>.json, for the record."""
    env, cmd = playbook_cmd(host, *extra)
    r = subprocess.run(
        [sys.executable, str(REPO / "tests" / "integration" / "zero_drop.py"), "--url", f"http://{address(host)}",
         "--steps", steps, "--rate", str(rate), "--", *cmd],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    print(r.stdout, r.stderr)
    result = json.loads(r.stdout)
    out = REPO / "tests" / "output" / "zero-drop"
    out.mkdir(parents=True, exist_ok=True)
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME", "scenario")
    (out / f"{scenario}-{host.backend.get_hostname()}-{name}.json").write_text(r.stdout)
    return result


@contextlib.contextmanager
def constant_load(*hosts, rate: int = 100, settle: float = 0.5):
    """Constant load through each host's proxy while the block runs (zero_drop.ConstantLoad).

    Yields a dict that holds, after the block, one zero_drop result per host (by host name)."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from zero_drop import ConstantLoad

    results: dict = {}
    with contextlib.ExitStack() as stack:
        loads = {h.backend.get_hostname(): stack.enter_context(
            ConstantLoad(f"http://{address(h)}", rate=rate, workers=max(1, rate // 10), slow_ms=1000,
                         slow_workers=2)) for h in hosts}
        time.sleep(settle)
        yield results
        time.sleep(settle)
    for name, load in loads.items():
        results[name] = load.result()
    # For the record, as under_load does: one line per load, named after the test.
    record_loads({"results": results})


@contextlib.contextmanager
def site_loads(host, sites: dict, rate: int = 60, post_workers: int = 2, post_rate: float = 10.0,
               settle: float = 0.5):
    """Constant load on several sites of one host's proxy while the block runs: for each site
    ({label: Host header}) keep-alive GETs at ``rate`` req/s, slow requests in flight, and
    ``post_workers`` keep-alive POST streams that never resend a POST.

    Yields a dict that holds, after the block, one zero_drop result per label (with "posts" and
    "posts_lost"); the results are also appended to tests/output/zero-drop/<scenario>-loads.jsonl."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from zero_drop import ConstantLoad

    results: dict = {}
    with contextlib.ExitStack() as stack:
        loads = {}
        for label, vhost in sites.items():
            loads[label] = stack.enter_context(ConstantLoad(
                f"http://{address(host)}", rate=rate, workers=max(1, rate // 10), slow_ms=1000, slow_workers=1,
                vhost=vhost, post_workers=post_workers, post_rate=post_rate))
        time.sleep(settle)
        yield results
        time.sleep(settle)
    for label, load in loads.items():
        results[label] = load.result()
    record_loads({"host": host.backend.get_hostname(), "results": results})


def record_loads(entry: dict) -> None:
    """Append one line, named after the running test, to tests/output/zero-drop/<scenario>-loads.jsonl."""
    out = REPO / "tests" / "output" / "zero-drop"
    out.mkdir(parents=True, exist_ok=True)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    with open(out / f"{os.environ.get('MOLECULE_SCENARIO_NAME', 'scenario')}-loads.jsonl", "a") as handle:
        handle.write(json.dumps({"test": test, **entry}) + "\n")


def rotation_steps() -> list[str]:
    """The steps of the rotation engine, in order (``rotation.STEPS``), read from its source: the test
    runs without the collection on its Python path."""
    tree = ast.parse((REPO / "plugins" / "module_utils" / "rotation.py").read_text())
    [steps] = [node.value for node in tree.body if isinstance(node, ast.Assign)
               and [getattr(target, "id", None) for target in node.targets] == ["STEPS"]]
    return list(ast.literal_eval(steps))


STEPS = rotation_steps()
# The rotation's journal (baton.deploy.rotate): the step in progress, until the rotation ends.
JOURNAL = "/var/lib/baton/demo/rotation.json"


# Run on a host as `python3 - <journal> <step> <steps> <release> <timeout>`: waits until the journal of the
# rotation to <release> names <step> or a later one (or is gone after naming an earlier one: the rotation
# ended between two looks, which only happens for the last step), then SIGKILLs the module that Ansible runs
# there and what it started. Prints the step it saw. With pipelining, ansible-core 2.19 runs a module as
# `/bin/sh -c '... python3 ... && sleep 0'`; 2.21 dropped the `sleep 0`: the module is a python3 with no
# argument (it reads the module on stdin), or the shell that runs one. The killer itself has arguments.
KILL_AT_STEP = r"""
import json, os, signal, sys, time
journal, step, steps, release, timeout = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], float(sys.argv[5])
deadline, seen = time.monotonic() + timeout, None

def is_module(argv):
    def bare_python(words):
        return len(words) == 1 and os.path.basename(words[0]).startswith(b'python')
    return (b'sleep 0' in b' '.join(argv) or bare_python(argv)
            or (len(argv) == 3 and argv[1] == b'-c' and bare_python(argv[2].split())))

def module_processes():
    parents = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmdline = f.read()
            with open('/proc/%s/stat' % pid) as f:
                parents[int(pid)] = (cmdline, int(f.read().rsplit(')', 1)[1].split()[1]))
        except (OSError, ValueError, IndexError):
            pass
    tree = {pid for pid, (cmdline, _parent) in parents.items() if is_module(cmdline.split(b'\0')[:-1])}
    while True:
        more = {pid for pid, (_cmdline, parent) in parents.items() if parent in tree} - tree
        if not more:
            return tree
        tree |= more

while time.monotonic() < deadline:
    try:
        with open(journal) as f:
            entry = json.load(f)
        now = entry['step'] if entry.get('release') == release else None
    except (OSError, ValueError, KeyError):
        now = None
    if (now in steps and steps.index(now) >= steps.index(step)) or (now is None and seen is not None):
        for pid in module_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        print(now or 'ended after %s' % seen, flush=True)
        sys.exit(0)
    if now in steps:
        seen = now
    time.sleep(0.001)
sys.exit('the rotation to %s never reached the step %s' % (release, step))
"""


def start_rotation_killer(ssh: list[str], step: str, release: str, timeout: float) -> subprocess.Popen:
    """Start KILL_AT_STEP on a host (``ssh``: the command that reaches it, as root): it SIGKILLs the rotate
    module of the rotation to ``release`` once its journal names ``step`` or a later one, prints the step it
    saw and exits 0 (non-zero when the rotation never got there within ``timeout``)."""
    args = " ".join(shlex.quote(arg) for arg in (JOURNAL, step, json.dumps(STEPS), release, str(timeout)))
    killer = subprocess.Popen([*ssh, f"python3 - {args}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    killer.stdin.write(KILL_AT_STEP)
    killer.stdin.close()
    return killer
