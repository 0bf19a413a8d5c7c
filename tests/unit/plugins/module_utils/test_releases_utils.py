# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.releases import pinned_releases, releases_to_prune

STATE = {'slots': {'1': {'release': 'r1', 'port': 8001}, '2': {'release': 'r9', 'port': 8002}}}
RELEASES = [('r%d' % n, 1000 + n) for n in range(1, 10)]  # r9 newest


def test_pinned_are_the_state_slots_the_links_and_the_current_release():
    pinned = pinned_releases(STATE, ['/srv/shop/releases/r5', None], current='r9')
    assert pinned == {'r1', 'r9', 'r5'}


def test_no_state_no_links():
    assert pinned_releases(None, [None, None]) == set()
    assert pinned_releases({'slots': {'1': {'release': None}, '2': {'release': None}}}, [None, None], 'r1') == {'r1'}


def test_the_rollback_release_survives_a_noop_deploy():
    """The bug: after a no-op deploy of r9 the keep-list was [r9] only, so r1 (slot 1, the rollback
    target, older than the newest releases left by failed deploys) was removed."""
    pinned = pinned_releases(STATE, ['/srv/shop/releases/r1', '/srv/shop/releases/r9'], current='r9')
    removed = releases_to_prune(RELEASES, 2, pinned)
    assert 'r1' not in removed
    assert removed == ['r2', 'r3', 'r4', 'r5', 'r6', 'r7']


def test_the_state_pins_a_slot_whose_link_a_failed_deploy_re_pointed():
    # slots/1 -> r8 (a deploy of r8 never got ready), but the state's slot 1 still rolls back to r1.
    pinned = pinned_releases(STATE, ['/srv/shop/releases/r8', '/srv/shop/releases/r9'], current='r9')
    assert releases_to_prune(RELEASES, 1, pinned) == ['r2', 'r3', 'r4', 'r5', 'r6', 'r7']


def test_keep_counts_the_newest_by_mtime():
    assert releases_to_prune([('b', 2), ('a', 3), ('c', 1)], 1, set()) == ['b', 'c']
    assert releases_to_prune([('b', 2)], 5, set()) == []
    assert releases_to_prune([('b', 2), ('a', 3)], 0, {'a'}) == ['b']
    with pytest.raises(ValueError):
        releases_to_prune([], -1, set())
