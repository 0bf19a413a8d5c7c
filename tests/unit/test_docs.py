# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/variables.md documents every role variable, checked against the roles' argument specs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "variables.md").read_text()
ROLES = sorted(p.parents[1].name for p in REPO.glob("roles/*/meta/argument_specs.yml"))
ROW = re.compile(r"^\| `(baton_\w+)` \| (\w+) \| `?(.*?)`? \| (.+) \|$", re.M)


def options(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]["options"]


def documented(role: str) -> dict:
    """{variable: (type, default as written)} from the role's section of docs/variables.md."""
    parts = re.split(r"^## ", DOC, flags=re.M)
    [section] = [p for p in parts if p.startswith(f"Role `baton.deploy.{role}`")]
    return {m.group(1): (m.group(2), m.group(3)) for m in ROW.finditer(section)}


def written(default) -> str:
    if default == "":
        return '""'
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (list, dict)):
        return yaml.safe_dump(default, default_flow_style=True).strip()
    return str(default)


def test_there_are_roles():
    assert len(ROLES) >= 4


@pytest.mark.parametrize("role", ROLES)
def test_every_role_variable_is_documented_as_specified(role):
    spec, doc = options(role), documented(role)
    assert sorted(doc) == sorted(spec), f"docs/variables.md and {role}'s argument specs list different variables"
    for name, option in spec.items():
        assert doc[name] == (option["type"], written(option["default"])), name


MODULES = sorted(p.stem for p in REPO.glob("plugins/modules/*.py") if p.stem != "__init__")
NUMBERS = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen"}


def test_every_module_has_a_section_and_the_count_is_right():
    sections = re.findall(r"^### `baton\.deploy\.(\w+)`", DOC.split("\n## Modules\n", 1)[1], re.M)
    assert sorted(set(sections) & set(MODULES)) == MODULES, set(MODULES) - set(sections)
    assert f"All {NUMBERS[len(MODULES)]} run on the target host" in DOC
