# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tree_digest (the setup fingerprint) and source_tarball (a path source as one upload)."""
from __future__ import annotations

import os
import tarfile

import pytest

from ansible_collections.baton.deploy.plugins.plugin_utils import source_tree


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "roles" / "a" / "tasks").mkdir(parents=True)
    (root / "roles" / "a" / "tasks" / "main.yml").write_text("- name: x\n")
    (root / "plugins").mkdir()
    (root / "plugins" / "m.py").write_text("print(1)\n")
    (root / "plugins" / "m.pyc").write_bytes(b"\0compiled")
    return root


def test_digest_changes_with_a_content_a_name_or_a_new_file_only(tree):
    first = source_tree.tree_digest(str(tree), ["roles/a", "plugins"])
    assert first == source_tree.tree_digest(str(tree), ["plugins", "roles/a"])  # order of the paths does not matter
    (tree / "plugins" / "m.pyc").write_bytes(b"\0other")  # compiled files are left out
    assert source_tree.tree_digest(str(tree), ["roles/a", "plugins"]) == first
    (tree / "plugins" / "m.py").write_text("print(2)\n")
    edited = source_tree.tree_digest(str(tree), ["roles/a", "plugins"])
    assert edited != first
    (tree / "plugins" / "m.py").rename(tree / "plugins" / "n.py")
    renamed = source_tree.tree_digest(str(tree), ["roles/a", "plugins"])
    assert renamed not in (first, edited)
    (tree / "plugins" / "new.py").write_text("")
    assert source_tree.tree_digest(str(tree), ["roles/a", "plugins"]) not in (first, edited, renamed)


def test_digest_tells_content_from_names(tree):
    """'ab' + 'c' and 'a' + 'bc' must not hash alike: lengths and names are part of the digest."""
    (tree / "plugins" / "m.py").write_text("ab")
    (tree / "plugins" / "z.py").write_text("c")
    one = source_tree.tree_digest(str(tree), ["plugins"])
    (tree / "plugins" / "m.py").write_text("a")
    (tree / "plugins" / "z.py").write_text("bc")
    assert source_tree.tree_digest(str(tree), ["plugins"]) != one


def test_digest_of_a_missing_path_fails(tree):
    with pytest.raises(FileNotFoundError):
        source_tree.tree_digest(str(tree), ["roles/missing"])


@pytest.fixture
def app(tmp_path):
    src = tmp_path / "app"
    (src / "static" / "css").mkdir(parents=True)
    (src / "app.py").write_text("print('hi')\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "static" / "css" / "site.css").write_text("body{}\n")
    (src / ".env.example").write_text("A=1\n")
    (src / "empty").mkdir()
    (tmp_path / "outside.txt").write_text("linked\n")
    (src / "linked.txt").symlink_to(tmp_path / "outside.txt")
    return src


def test_tarball_holds_the_tree_followed_links_and_modes_without_owners(tmp_path, app):
    path = source_tree.source_tarball(str(app), str(tmp_path / "cache"))
    assert os.path.basename(path).endswith(".tar.gz") and os.path.dirname(path) == str(tmp_path / "cache")
    assert oct(os.stat(tmp_path / "cache").st_mode & 0o777) == "0o700"
    with tarfile.open(path) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert sorted(members) == [".env.example", "app.py", "empty", "linked.txt", "run.sh", "static",
                                   "static/css", "static/css/site.css"]
        assert members["linked.txt"].isfile()  # the link is followed, as the copy module does
        assert archive.extractfile("linked.txt").read() == b"linked\n"
        assert members["run.sh"].mode & 0o111 and members["empty"].isdir()
        assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in members.values())


def test_same_tree_same_tarball_other_tree_other_one(tmp_path, app):
    cache = str(tmp_path / "cache")
    first = source_tree.source_tarball(str(app), cache)
    assert source_tree.source_tarball(str(app), cache) == first  # the hosts of one deploy share it
    (app / "app.py").write_text("print('changed')\n")
    second = source_tree.source_tarball(str(app), cache)
    assert second != first and os.path.exists(first) and os.path.exists(second)
    assert not [name for name in os.listdir(cache) if name.startswith(".partial-")]


def test_old_tarballs_are_removed(tmp_path, app):
    cache = str(tmp_path / "cache")
    old = source_tree.source_tarball(str(app), cache)
    os.utime(old, (1, 1))
    (app / "app.py").write_text("print('new')\n")
    new = source_tree.source_tarball(str(app), cache)
    assert not os.path.exists(old) and os.path.exists(new)


def test_tarball_of_a_missing_directory_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        source_tree.source_tarball(str(tmp_path / "missing"), str(tmp_path / "cache"))
