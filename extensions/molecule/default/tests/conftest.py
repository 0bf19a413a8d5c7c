# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The default scenario's hosts (one per Debian release) are tested side by side.

molecule.yml runs pytest with pytest-xdist (`-n 2 --dist loadgroup`): every test of one host goes to
the same worker, in the file's order (a host's tests build on each other's deploys), and the two
hosts, which share nothing, run at the same time instead of one after the other.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        host = getattr(item, "callspec", None) and item.callspec.params.get("_testinfra_host")
        if host is not None:
            item.add_marker(pytest.mark.xdist_group(host.backend.get_pytest_id()))
