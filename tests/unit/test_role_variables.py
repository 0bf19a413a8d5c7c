# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every public variable a role uses has a default in that role (or is guarded where it is used).

A role that reads another role's variable (say the rotation reading baton_process_manager from the
instances role) works only when both run in the same play; run alone, the task fails with
"'baton_...' is undefined". The test parses every Jinja expression of a role's tasks, handlers and
templates and lists the baton_* names read without a default of their own: not in defaults/ or
vars/, not set in the role (set_fact, vars, register), not guarded by `| default(...)` or
`is defined`.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2 import nodes

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent for p in (REPO / "roles").glob("*/defaults/main.yml"))
# Task keywords whose value is a bare Jinja expression, not a template.
BARE = {"when", "that", "failed_when", "changed_when", "until"}
# Reads of another role's variable that are known to be safe: role, name, why.
CROSS_ROLE = {
    ("lb_haproxy", "baton_release"): "drain.yml is only run by deploy.yml, with the rotate role (imported, "
    "so its defaults are the play's) and only on the deploy branch of its condition",
    ("rotate", "baton_keep_releases"): "read only when playbooks/deploy.yml sets __baton_end_in_rotation, in the "
    "play that imports the release role's prune (so its defaults are the play's)",
}
ENV = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])


def guarded_names(tree, include_guarded=False):
    """baton_* names read in the parsed template without a guard of their own (or all, with include_guarded)."""
    found = set()

    def walk(node, guarded):
        if isinstance(node, nodes.Filter) and node.name == "default" and not include_guarded:
            walk(node.node, True)
            for child in (*node.args, *node.kwargs):
                walk(child, guarded)
            return
        if isinstance(node, nodes.Test) and node.name in ("defined", "undefined") and not include_guarded:
            return
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name.startswith("baton_") and not guarded:
            found.add(node.name)
        for child in node.iter_child_nodes():
            walk(child, guarded)

    walk(tree, False)
    return found


def expressions(value, key=None):
    """Every Jinja source in a loaded task file, bare expressions wrapped as templates."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from expressions(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from expressions(v, key)
    elif isinstance(value, str):
        if key in BARE:
            yield "{{ " + value + " }}"
        elif "{{" in value or "{%" in value:
            yield value


def names_set(value):
    """Variables a task file defines: set_fact keys, vars keys, register and loop_var names."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("vars", "set_fact", "ansible.builtin.set_fact") and isinstance(v, dict):
                found |= set(v)
            elif k == "register" or k == "loop_var":
                found.add(v)
            found |= names_set(v)
    elif isinstance(value, list):
        for v in value:
            found |= names_set(v)
    return found


def role_sources(role):
    """(file, Jinja source) of the role's tasks, handlers and templates, and the names the role sets."""
    known = set(yaml.safe_load((role / "defaults/main.yml").read_text()) or {})
    for path in role.glob("vars/*.yml"):
        known |= set(yaml.safe_load(path.read_text()) or {})
    sources = []
    for folder in ("tasks", "handlers"):
        for path in sorted((role / folder).rglob("*.yml")):
            loaded = yaml.safe_load(path.read_text())
            known |= names_set(loaded)
            sources += [(path, src) for src in expressions(loaded)]
    sources += [(path, path.read_text()) for path in sorted((role / "templates").rglob("*.j2"))]
    return sources, known


def read_by(role, include_guarded=False):
    """{baton_* name: files} read in the role's Jinja (unguarded ones only, unless include_guarded)."""
    sources, known = role_sources(role)
    used = {}
    for path, src in sources:
        for name in guarded_names(ENV.parse(src), include_guarded):
            used.setdefault(name, set()).add(str(path.relative_to(role)))
    return used, known


def unguarded(role):
    used, known = read_by(role)
    return {
        name: sorted(where)
        for name, where in used.items()
        if name not in known and (role.name, name) not in CROSS_ROLE
    }


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_reads_only_its_own_or_guarded_variables(role):
    missing = unguarded(role)
    assert not missing, f"{role.name} reads variables with no default in the role (name: files): {missing}"


def test_the_check_finds_an_unguarded_variable():
    tree = ENV.parse("{{ baton_a | default(baton_b) }} {{ baton_c if baton_d is defined else 1 }} {{ baton_e | default(1) }}")
    assert guarded_names(tree) == {"baton_b", "baton_c"}
    assert "baton_x" in guarded_names(ENV.parse(next(expressions({"when": "baton_x | bool"}))))


# playbooks/deploy.yml sets each of these roles up again when its fingerprint changes: the values of the
# variables in the role's argument specs (= its defaults, test_argument_specs.py) and the role's code. A
# public variable the role reads without declaring it, even guarded by default(), would change what the
# role writes without changing the fingerprint: the host would keep the old setup.
FINGERPRINTED = ("instances", "proxy")
# Reads that do not shape what the role writes: role, name, why.
NOT_SETUP = {
    ("instances", "baton_proxy_port"): "validate.yml only: the slot ports must differ from the proxy's port "
    "(validated on every deploy, setup or not)",
}


@pytest.mark.parametrize("name", FINGERPRINTED)
def test_setup_role_declares_every_public_variable_it_reads(name):
    public = set()
    for role in ROLES:
        public |= set(yaml.safe_load((role / "defaults/main.yml").read_text()) or {})
    role = REPO / "roles" / name
    used = read_by(role, include_guarded=True)[0]
    own = set(yaml.safe_load((role / "defaults/main.yml").read_text()) or {})
    undeclared = {n: sorted(where) for n, where in used.items()
                  if n in public and n not in own and (name, n) not in NOT_SETUP}
    assert not undeclared, (
        f"{name} reads public variables that are not in its argument specs, so a change to them does not set "
        f"the host up again (name: files): {undeclared}")


def test_the_setup_check_sees_guarded_reads():
    assert guarded_names(ENV.parse("{{ baton_a | default('/x') }} {{ baton_b is defined }}"), include_guarded=True) \
        == {"baton_a", "baton_b"}
