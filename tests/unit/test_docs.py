# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/variables.md documents every role variable."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_every_role_variable_is_documented():
    doc = (REPO / "docs" / "variables.md").read_text()
    names = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        names |= set(yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"])
    assert names, "no argument specs found"
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"undocumented in docs/variables.md: {missing}"
