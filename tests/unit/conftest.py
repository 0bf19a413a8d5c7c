# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.baton.deploy`` importable under plain pytest.

``ansible-test units`` runs the tests from a real ``ansible_collections/baton/deploy``
tree, so there the import already works and this file does nothing. When running
``python -m pytest tests/unit`` from a checkout, it builds
``<repo>/.cache/pytest-collections/ansible_collections/baton/deploy -> <repo>``
and puts ``<repo>/.cache/pytest-collections`` first on ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest


def _collection_importable():
    try:
        importlib.import_module('ansible_collections.baton.deploy')
    except ImportError:
        return False
    return True


def _bootstrap_collection_path():
    if _collection_importable():
        return
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    collections_root = os.path.join(repo_root, '.cache', 'pytest-collections')
    namespace_dir = os.path.join(collections_root, 'ansible_collections', 'baton')
    link = os.path.join(namespace_dir, 'deploy')
    os.makedirs(namespace_dir, exist_ok=True)
    if os.path.islink(link):
        if os.path.realpath(link) != os.path.realpath(repo_root):
            os.unlink(link)
    elif os.path.exists(link):
        raise RuntimeError('%s exists and is not a symlink; remove it so tests can import the collection' % link)
    if not os.path.islink(link):
        try:
            os.symlink(repo_root, link)
        except FileExistsError:  # another pytest process created it concurrently
            pass
    if collections_root not in sys.path:
        sys.path.insert(0, collections_root)
    # ansible_collections is a namespace package: its __path__ is recomputed when sys.path changes,
    # so only the finder caches need refreshing.
    importlib.invalidate_caches()


_bootstrap_collection_path()


@pytest.fixture
def ansible_env():
    """The environment of an ``ansible`` or ``ansible-playbook`` run on localhost that uses this checkout as
    ``baton.deploy`` (through ``<repo>/.cache/collections/ansible_collections/baton/deploy -> <repo>``)."""
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    collections = os.path.join(repo_root, '.cache', 'collections')
    os.makedirs(os.path.join(collections, 'ansible_collections', 'baton'), exist_ok=True)
    link = os.path.join(collections, 'ansible_collections', 'baton', 'deploy')
    if not os.path.lexists(link):
        try:
            os.symlink(repo_root, link)
        except FileExistsError:  # another pytest process created it concurrently
            pass
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_LOCALHOST_WARNING='False',
                ANSIBLE_INVENTORY_UNPARSED_WARNING='False')
