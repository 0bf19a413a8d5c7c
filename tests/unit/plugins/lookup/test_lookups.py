# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lookups tree_digest and source_tarball, in a real ansible-playbook run on localhost (the plugin loader
reads their documented options), writing only under the test's tmp_path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Use the lookups
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: >-
          {{ {'digest': lookup('baton.deploy.tree_digest', 'roles', root=tree),
              'again': lookup('baton.deploy.tree_digest', 'roles', root=tree),
              'tarball': lookup('baton.deploy.source_tarball', tree ~ '/app/', cache_dir=cache)} | to_json }}
    - name: A path outside the root is refused
      ansible.builtin.debug:
        msg: "{{ lookup('baton.deploy.tree_digest', '../etc', root=tree) }}"
      register: outside
      ignore_errors: true
    - name: A relative source is refused
      ansible.builtin.debug:
        msg: "{{ lookup('baton.deploy.source_tarball', 'app', cache_dir=cache) }}"
      register: relative
      ignore_errors: true
    - name: Keep the errors
      ansible.builtin.copy:
        dest: "{{ out }}.errors"
        mode: "0600"
        content: "{{ [outside.msg, relative.msg] | to_json }}"
"""


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="ansible not installed next to this python")
def test_lookups_in_a_playbook(tmp_path, ansible_env):
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "main.yml").write_text("x\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text("print(1)\n")
    (tmp_path / "play.yml").write_text(PLAY)
    r = subprocess.run([PLAYBOOK, "-c", "local", "-i", "localhost,", str(tmp_path / "play.yml"),
                        "-e", json.dumps({"tree": str(tmp_path), "cache": str(tmp_path / "cache"),
                                          "out": str(tmp_path / "out.json"),
                                          "ansible_python_interpreter": sys.executable})],
                       env=ansible_env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out["digest"]) == 40 and out["again"] == out["digest"]
    assert os.path.dirname(out["tarball"]) == str(tmp_path / "cache")
    with tarfile.open(out["tarball"]) as archive:
        assert archive.getnames() == ["app.py"]
    outside, relative = json.loads((tmp_path / "out.json.errors").read_text())
    assert "../etc is not a path inside" in outside
    assert "app is not an absolute path" in relative
