# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the rotation engine's tests (test_rotation.py, test_shared_socket.py)."""

from __future__ import annotations

import pytest

from ansible_collections.baton.deploy.tests.unit.plugins.fake_host import FakeHost


@pytest.fixture
def host(tmp_path):
    """A fake host (fake_host.FakeHost) with releases v1, v2 and v3 built, nothing deployed."""
    host = FakeHost(tmp_path)
    for release in ('v1', 'v2', 'v3'):
        host.build(release)
    return host
