# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which release directories to prune, and pruning them: ``baton.deploy.prune_releases`` and the end of a rotation
(``baton.deploy.rotate`` with ``keep_releases``)."""

from __future__ import annotations

import os
import shutil


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


def prune(root, keep, state, env_dir, release=None, check_mode=False):
    """Remove the releases under ``<root>/releases`` that :func:`releases_to_prune` names, and the kept environment
    (``<env_dir>/<release>.env``) of each release that no longer has a directory.

    ``state`` is the deploy state (or None); the ``<root>/slots/<N>`` links and ``release`` pin releases too.
    Directories whose names start with a dot (builds in progress) are left alone. Nothing is removed in
    ``check_mode``. Returns ``dict(changed, removed, pinned, stale_envs)``, names sorted; raises OSError.
    """
    releases_dir = os.path.join(root, 'releases')
    links = [os.path.join(root, 'slots', str(slot)) for slot in (1, 2)]
    pinned = pinned_releases(state, [os.readlink(link) if os.path.islink(link) else None for link in links], release)
    releases = []
    for entry in os.scandir(releases_dir) if os.path.isdir(releases_dir) else []:
        if not entry.name.startswith('.') and entry.is_dir(follow_symlinks=False):
            releases.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
    removed = releases_to_prune(releases, keep, pinned)
    remaining = set(name for name, _mtime in releases) - set(removed)
    stale_envs = sorted(name for name in (os.listdir(env_dir) if os.path.isdir(env_dir) else [])
                        if name.endswith('.env') and name[:-len('.env')] not in remaining | pinned)
    if not check_mode:
        for name in removed:
            shutil.rmtree(os.path.join(releases_dir, name))
        for name in stale_envs:
            os.unlink(os.path.join(env_dir, name))
    return dict(changed=bool(removed or stale_envs), removed=removed, pinned=sorted(pinned), stale_envs=stale_envs)
