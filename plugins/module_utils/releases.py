# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which release directories to prune, used by ``baton.deploy.prune_releases``. Pure."""

from __future__ import annotations

import os


def pinned_releases(state, slot_targets, current=None):
    """The releases that must never be pruned: the one each slot runs or would roll back to.

    ``state`` is the deploy state (or None), ``slot_targets`` the targets of the ``slots/<N>`` symlinks
    (None where there is no link), ``current`` the release just deployed. A slot's release in the state
    file is the rollback target even when a deploy that failed has since re-pointed the slot's link.
    """
    pinned = set()
    for entry in ((state or {}).get('slots') or {}).values():
        if isinstance(entry, dict) and entry.get('release'):
            pinned.add(entry['release'])
    pinned.update(os.path.basename(os.path.normpath(target)) for target in slot_targets if target)
    if current:
        pinned.add(current)
    return pinned


def releases_to_prune(releases, keep, pinned):
    """Names to remove from ``releases`` (``(name, mtime)`` pairs): all but the ``keep`` newest and the pinned ones."""
    if keep < 0:
        raise ValueError('keep must be >= 0, got %r' % (keep,))
    newest_first = sorted(releases, key=lambda item: (item[1], item[0]), reverse=True)
    return sorted(name for name, _mtime in newest_first[keep:] if name not in pinned)
