# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The action plugin of baton.deploy.release_build, in a real ansible-playbook run on localhost: ``src``
(a tarball on the controller) is uploaded and unpacked by the staging run itself; check mode uploads
and unpacks nothing; a missing ``src`` fails before anything changes. Writes only under tmp_path."""
from __future__ import annotations

import getpass
import json
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
    - name: Stage the release from a tarball on the controller
      baton.deploy.release_build:
        root: "{{ root }}"
        release: v1
        user: "{{ user }}"
        src: "{{ tarball }}"
      register: staged
    - name: Build another release from the tarball in one run
      baton.deploy.release_build:
        root: "{{ root }}"
        release: v3
        user: "{{ user }}"
        state: built
        src: "{{ tarball }}"
      register: built
    - name: A missing tarball fails
      baton.deploy.release_build:
        root: "{{ root }}"
        release: v2
        user: "{{ user }}"
        src: "{{ root }}/no-such.tar.gz"
      register: missing
      ignore_errors: true
    - name: Keep the results
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ {'staged': staged, 'built': built, 'missing': missing} | to_json }}"
"""


def run_play(tmp_path: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PLAYBOOK, "-c", "local", "-i", "localhost,", str(tmp_path / "play.yml"), *extra,
         "-e", json.dumps({"root": str(tmp_path / "app"), "user": getpass.getuser(),
                           "tarball": str(tmp_path / "src.tar.gz"), "out": str(tmp_path / "out.json"),
                           "ansible_python_interpreter": sys.executable})],
        env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    (tmp_path / "src" / "bin").mkdir()
    (tmp_path / "src" / "bin" / "run").write_text("#!/bin/sh\n")
    (tmp_path / "src" / "bin" / "run").chmod(0o700)
    with tarfile.open(tmp_path / "src.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "src", arcname=".")
    (tmp_path / "app" / "releases").mkdir(parents=True)
    (tmp_path / "play.yml").write_text(PLAY)
    return tmp_path


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="ansible not installed next to this python")
def test_src_is_uploaded_and_unpacked_by_the_staging_run(tree, ansible_env):
    r = run_play(tree, ansible_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads((tree / "out.json").read_text())
    staging = tree / "app" / "releases" / ".v1.building"
    assert out["staged"]["changed"] is True and out["staged"]["staging"] == str(staging)
    assert out["staged"]["files"] == 3  # app.py, bin, bin/run
    assert (staging / "app.py").read_text() == "print(1)\n"
    assert oct((staging / "bin" / "run").stat().st_mode & 0o777) == "0o755"
    assert out["missing"]["failed"] is True and "no-such.tar.gz" in out["missing"]["msg"]
    assert not (tree / "app" / "releases" / ".v2.building").exists()
    # state=built: staged, unpacked, handed to root and moved into place by the same run.
    release = tree / "app" / "releases" / "v3"
    assert out["built"]["changed"] is True and out["built"]["release_dir"] == str(release)
    assert (release / ".baton-release").read_text() == "v3\n" and (release / "app.py").read_text() == "print(1)\n"
    assert not (tree / "app" / "releases" / ".v3.building").exists()


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="ansible not installed next to this python")
def test_check_mode_uploads_and_unpacks_nothing(tree, ansible_env):
    r = run_play(tree, ansible_env, "--check")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "changed: [localhost]" in r.stdout
    assert list((tree / "app" / "releases").iterdir()) == []
    # The missing tarball is reported in check mode too.
    assert "no-such.tar.gz" in r.stdout and "...ignoring" in r.stdout
