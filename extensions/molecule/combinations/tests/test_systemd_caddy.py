# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The combinations scenario's checks (combinations_checks.py) on its systemd + caddy (Debian 12) host."""
from __future__ import annotations

from combinations_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import

testinfra_hosts = ["ansible://systemd-caddy"]
