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


def run_validate_all(extra: dict) -> subprocess.CompletedProcess:
    """The validation of deploy.yml and rollback.yml (every role's) with ``extra``, on localhost."""
    run_validate({})  # makes sure the collection link exists
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    return subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.include_role",
         "-a", "name=baton.deploy.rotate tasks_from=validate", "-e", json.dumps(extra)],
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
                    "Validate the app name and slot ports", "Check the release id",
                    "Validate the site's names and settings", "Refuse control characters",
                    "Validate the site's HTTPS settings", "Validate the site's certificate files on the controller",
                    "Validate the site's static paths", "Refuse the mode without a proxy under supervisor",
                    "Validate the shared socket's port")
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
    # baton_proxy none: supervisor cannot pass the shared socket; the socket's port is not a slot's.
    ("socket-under-supervisor", {"baton_proxy": "none", "baton_process_manager": "supervisor"},
     "baton_proxy none needs baton_process_manager systemd"),
    ("socket-port-is-a-slot-port", {"baton_proxy": "none", "baton_socket_port": 8002},
     "baton_socket_port must be a port in 1-65535 that is not a slot port (got 8002; slots 8001 / 8002)"),
    ("process-manager-choice", {"baton_process_manager": "runit"},
     "value of baton_process_manager must be one of: systemd, supervisor, got: runit"),
    ("env-not-dict", {"baton_env": ["SECRET=1"]},
     "argument 'baton_env' is of type list and we were unable to convert to dict"),
    ("drain-not-int", {"baton_drain_timeout": "long"},
     "argument 'baton_drain_timeout' is of type str and we were unable to convert to int"),
    ("proxy-choice", {"baton_proxy": "haproxy"}, "value of baton_proxy must be one of: nginx, caddy, none, got: haproxy"),
    ("proxy-port-range", {"baton_proxy_port": 70000},
     "baton_proxy_port a port in 1-65535 that is not a slot port (got 70000)"),
    ("proxy-port-is-a-slot-port", {"baton_proxy_port": 8001},
     "baton_proxy_port a port in 1-65535 that is not a slot port (got 8001)"),
    ("header-not-bool", {"baton_proxy_upstream_header": "maybe"},
     "argument 'baton_proxy_upstream_header' is of type str and we were unable to convert to bool"),
    ("name-not-hostname", {"baton_server_names": ["shop.example", "bad name"]},
     'Invalid site settings: the site\'s names (baton_server_names, else baton_server_name) must be "_" alone'),
    ("name-uppercase", {"baton_server_name": "Shop.example"}, "not valid: Shop.example"),
    ("name-with-scheme", {"baton_server_names": ["https://shop.example"]}, "not valid: https://shop.example"),
    ("name-catch-all-mixed", {"baton_server_names": ["_", "shop.example"]}, 'not valid: _'),
    ("name-twice", {"baton_server_names": ["shop.example", "shop.example"]},
     'got ["shop.example", "shop.example"]'),
    ("name-newline", {"baton_server_names": ["shop.example\nlisten 8080"]}, "not valid: shop.example"),
    ("names-not-list", {"baton_server_names": {"a": 1}},
     "argument 'baton_server_names' is of type dict and we were unable to convert to list"),
    ("tls-catch-all", {"baton_tls": True},
     'Invalid HTTPS settings: baton_tls needs the site\'s real names in baton_server_names (the catch-all "_" '
     'has no name to get a certificate for; got ["_"])'),
    ("tls-port-is-http-port", {"baton_tls": True, "baton_server_name": "shop.example", "baton_tls_port": 80},
     "baton_tls_port different from baton_proxy_port (got 80 / 80)"),
    ("tls-caddy-other-http-port", {"baton_tls": True, "baton_server_name": "shop.example", "baton_proxy": "caddy",
                                   "baton_proxy_port": 8080},
     "on Caddy baton_proxy_port 80 (Caddy answers ACME challenges and redirects on port 80; got 8080)"),
    ("tls-acme-wildcard", {"baton_tls": True, "baton_server_names": ["*.shop.example"]},
     "no wildcard name with acme"),
    ("tls-files-unset", {"baton_tls": True, "baton_server_name": "shop.example", "baton_tls_source": "host"},
     'both baton_tls_certificate and baton_tls_certificate_key (got "" / "")'),
    ("tls-source-choice", {"baton_tls": True, "baton_tls_source": "letsencrypt"},
     "value of baton_tls_source must be one of: acme, controller, host, got: letsencrypt"),
    ("tls-certificate-missing", {"baton_tls": True, "baton_server_name": "shop.example",
                                 "baton_tls_source": "controller", "baton_tls_certificate": "/nonexistent/shop.pem",
                                 "baton_tls_certificate_key": str(REPO / "COPYING")},
     "Invalid HTTPS settings: /nonexistent/shop.pem not found on the controller"),
    ("body-negative", {"baton_proxy_max_body_mb": -1}, "baton_proxy_max_body_mb 0 or more (got -1)"),
    ("static-url-trailing-slash", {"baton_proxy_static": [{"url": "/assets/", "path": "public/assets"}]},
     'Invalid baton_proxy_static: each item needs a url that starts with "/"'),
    ("static-url-root", {"baton_proxy_static": [{"url": "/", "path": "public"}]}, "not valid: [{"),
    ("static-path-traversal", {"baton_proxy_static": [{"url": "/assets", "path": "public/../../etc"}]},
     'not valid: [{"url": "/assets", "path": "public/../../etc"}]'),
    ("static-path-absolute", {"baton_proxy_static": [{"url": "/assets", "path": "/etc"}]}, "not valid: [{"),
    ("static-url-twice", {"baton_proxy_static": [{"url": "/a", "path": "x"}, {"url": "/a", "path": "y"}]},
     "and no url twice"),
    ("static-url-missing", {"baton_proxy_static": [{"path": "public"}]},
     "missing required arguments: url found in baton_proxy_static"),
    ("read-timeout-zero", {"baton_proxy_read_timeout": 0}, "baton_proxy_read_timeout at least 1 s (got 0)"),
    ("source-type-choice", {"baton_source_type": "svn"},
     "value of baton_source_type must be one of: git, archive, path, got: svn"),
    ("keep-not-int", {"baton_keep_releases": "all"},
     "argument 'baton_keep_releases' is of type str and we were unable to convert to int"),
    ("release-traversal", {"baton_release": "../../etc"}, "baton_release must be set for 'path' sources and match"),
    ("ready-timeout-not-int", {"baton_ready_timeout": "soon"},
     "argument 'baton_ready_timeout' is of type str and we were unable to convert to int"),
    ("force-not-bool", {"baton_force": "perhaps"},
     "argument 'baton_force' is of type str and we were unable to convert to bool"),
    # A newline would add a line of the caller's choosing to a unit, a supervisor program, an env file
    # or the proxy site; the error names the variable, never a value.
    ("start-command-newline", {"baton_start_command": "python3 app.py\nExecStartPre=/bin/sh -c id"},
     "Invalid input: baton_start_command must not contain a newline or another control character"),
    ("root-escape-char", {"baton_root": "/srv/demo\x1b[2J"},
     "Invalid input: baton_root must not contain a newline or another control character"),
    ("log-size-newline", {"baton_supervisor_log_maxbytes": "10MB\ncommand=/bin/sh"},
     "Invalid input: baton_supervisor_log_maxbytes must not contain a newline"),
    ("env-value-newline", {"baton_env": {"SECRET": "s3cr3t\nPORT=1"}},
     "Invalid input: baton_env.SECRET must not contain a newline or another control character"),
    ("env-value-tab", {"baton_env": {"TOKEN": "a\tb"}}, "Invalid input: baton_env.TOKEN must not contain"),
    ("env-name-invalid", {"baton_env": {"BAD NAME": "x"}},
     'Invalid input: baton_env names must be environment variable names ([A-Za-z_][A-Za-z0-9_]*), got "BAD NAME"'),
    ("env-name-newline", {"baton_env": {"A\nPORT": "x"}}, "baton_env names must be environment variable names"),
    ("server-name-newline", {"baton_server_name": "example.com;\n    location /x {}"},
     "not valid: example.com;\n    location /x {}"),
    ("location-extra-carriage-return", {"baton_nginx_location_extra": "gzip on;\r"},
     "Invalid input: baton_nginx_location_extra must not contain"),
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
    assert "s3cr3t" not in failed["msg"]  # secrets are named, never shown


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="ansible not installed next to this python")
def test_multiline_snippets_and_percent_signs_pass():
    """The proxy's *_extra snippets are several lines by design, and '%' is an ordinary character."""
    r = run_validate_all({"baton_nginx_location_extra": "gzip on;\n\tgzip_types text/plain;",
                          "baton_start_command": "gunicorn --access-logformat '%(h)s %s' app:app",
                          "baton_env": {"DATE_FORMAT": "%Y-%m-%d %H:%M", "N": 5, "DEBUG": True}})
    assert r.returncode == 0, r.stdout[-3000:]
