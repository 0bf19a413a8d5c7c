# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make lint` holds everything that ships or deploys to the production profile, with nothing waived."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_lint_profile_is_production_and_covers_what_ships():
    config = yaml.safe_load((REPO / ".ansible-lint").read_text())
    assert config["profile"] == "production"
    assert not config.get("warn_list")
    # The one documented skip (shared baton_* namespace); no rule of the production profile is waived.
    assert config.get("skip_list", []) == ["var-naming[no-role-prefix]"]
    excluded = [p.rstrip("/") for p in config.get("exclude_paths", [])]
    for shipped in ("roles", "playbooks", "plugins", "extensions", "extensions/molecule"):
        assert not any(shipped == p or shipped.startswith(p + "/") for p in excluded), shipped
    assert "ansible-lint" in (REPO / "scripts" / "lint.sh").read_text()
