# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection claims to support is what CI tests: the ansible-core range of
meta/runtime.yml against the version matrix (requirements-*.txt, sanity ignore files, the
Molecule's default scenario on the newest version), and the roles' Debian platforms against the lab."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def minor(version: str) -> tuple:
    return tuple(int(part) for part in version.split(".")[:2])


def ci_minor() -> tuple:
    """ansible-core pinned for CI's toolchain (.venv): the oldest leg of the matrix."""
    pin = re.search(r"^ansible-core==([0-9.]+)$", (REPO / "requirements-test.txt").read_text(), re.M)
    return minor(pin.group(1))


def matrix() -> dict:
    """{(2, 20): '2.20.10', ...} from requirements-ansible-<X.Y>.txt, plus CI's toolchain."""
    legs = {}
    for reqs in REPO.glob("requirements-ansible-*.txt"):
        pin = re.search(r"^ansible-core==([0-9.]+)$", reqs.read_text(), re.M)
        assert pin, f"{reqs.name} pins no ansible-core"
        assert minor(pin.group(1)) == minor(reqs.stem.rsplit("-", 1)[1]), f"{reqs.name} pins {pin.group(1)}"
        legs[minor(pin.group(1))] = pin.group(1)
    ci = re.search(r"^ansible-core==([0-9.]+)$", (REPO / "requirements-test.txt").read_text(), re.M).group(1)
    legs[minor(ci)] = ci
    return legs


def test_requires_ansible_is_exactly_the_tested_minors():
    spec = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["requires_ansible"]
    bounds = dict(re.fullmatch(r"(>=|<)([0-9]+\.[0-9]+\.0)", part).groups() for part in spec.split(","))
    low, high = minor(bounds[">="]), minor(bounds["<"])
    claimed = [(low[0], m) for m in range(low[1], high[1])]
    assert low[0] == high[0]
    assert sorted(matrix()) == claimed, f"requires_ansible {spec!r} but the matrix tests {sorted(matrix())}"
    assert low == ci_minor(), "the oldest supported version is CI's toolchain, which runs every scenario"


def test_every_tested_minor_has_its_sanity_ignore_file():
    for leg in matrix():
        assert (REPO / "tests" / "sanity" / f"ignore-{leg[0]}.{leg[1]}.txt").is_file()


def scenario_core(name: str):
    """The ansible-core minor a scenario names in its file ``ansible-core`` (scripts/molecule.sh), else None."""
    path = REPO / "extensions" / "molecule" / name / "ansible-core"
    return minor(path.read_text().strip()) if path.is_file() else None


def test_default_scenario_runs_on_the_newest_minor_and_the_others_on_the_oldest():
    assert scenario_core("default") == max(matrix())
    for config in REPO.glob("extensions/molecule/*/molecule.yml"):
        name = config.parent.name
        if name != "default":
            assert scenario_core(name) in (None, ci_minor()), f"{name} runs neither on the oldest nor in default"


def test_roles_declare_the_oldest_supported_version():
    for meta in REPO.glob("roles/*/meta/main.yml"):
        info = yaml.safe_load(meta.read_text())["galaxy_info"]
        assert minor(info["min_ansible_version"]) == ci_minor(), meta


def lab_releases() -> tuple:
    tree = ast.parse((REPO / "tests" / "lab" / "baton_lab.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RELEASES":
            return ast.literal_eval(node.value)
    raise AssertionError("tests/lab/baton_lab.py has no RELEASES")


def scenario_releases(name: str) -> set:
    config = yaml.safe_load((REPO / "extensions" / "molecule" / name / "molecule.yml").read_text())
    return {p.get("release", lab_releases()[0]) for p in config["platforms"]}


def test_roles_claim_only_debian_releases_the_scenarios_boot():
    booted = set().union(*(scenario_releases(p.parent.name) for p in REPO.glob("extensions/molecule/*/molecule.yml")))
    assert booted <= set(lab_releases())
    for meta in REPO.glob("roles/*/meta/main.yml"):
        platforms = yaml.safe_load(meta.read_text())["galaxy_info"]["platforms"]
        assert [p["name"] for p in platforms] == ["Debian"], meta
        assert set(platforms[0]["versions"]) <= booted, meta
    # the default scenario (systemd + nginx, every role but lb_haproxy) runs on every release
    assert scenario_releases("default") == set(lab_releases())


def test_lb_haproxy_claims_only_what_the_fleet_scenario_boots():
    platforms = yaml.safe_load((REPO / "roles" / "lb_haproxy" / "meta" / "main.yml").read_text())["galaxy_info"]["platforms"]
    assert set(platforms[0]["versions"]) == scenario_releases("fleet")
