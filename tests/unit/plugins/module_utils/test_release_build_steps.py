# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.baton.deploy.plugins.module_utils import release_build as rb

APP = rb.Account('shop', 1500, 1600, '/home/shop')


class Recording(rb.FileSystem):
    """The real file system in tmp_path, except ownership: recorded, so the tests need no root."""

    def __init__(self):
        self.owners = {}

    def make_dir(self, path, mode, uid, gid):
        os.mkdir(path, mode)
        os.chmod(path, mode)
        self.owners[path] = (uid, gid)

    def lchown(self, path, uid, gid):
        self.owners[path] = (uid, gid)

    def write(self, path, text, mode):
        with open(path, 'w') as handle:
            handle.write(text)
        os.chmod(path, mode)
        self.owners[path] = (0, 0)


class Runner:
    def __init__(self, rc=0, out='built\n', err='', effect=None):
        self.rc, self.out, self.err, self.effect = rc, out, err, effect
        self.calls = []

    def __call__(self, argv, cwd):
        self.calls.append((argv, cwd))
        if self.effect:
            self.effect(cwd)
        return self.rc, self.out, self.err


@pytest.fixture
def fs():
    return Recording()


@pytest.fixture
def root(tmp_path):
    os.makedirs(str(tmp_path / 'releases'))
    os.makedirs(str(tmp_path / 'shared' / 'storage'))
    return str(tmp_path)


def staged_source(root, fs, files=None):
    """Stage v2 and put a source tree into the staging directory, as unarchive would."""
    result = rb.stage(root, 'v2', APP, fs=fs)
    for name, (text, mode) in (files or {'app.py': ('print(1)\n', 0o664), 'bin/run': ('#!/bin/sh\n', 0o4775)}).items():
        path = os.path.join(result['staging'], name)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, 'w') as handle:
            handle.write(text)
        os.chmod(path, mode)
    return result


def test_paths():
    assert rb.paths('/srv/shop', 'v2') == ('/srv/shop/releases/v2', '/srv/shop/releases/.v2.building')


def test_stage_starts_an_empty_staging_directory_owned_by_the_app(root, fs):
    leftover = os.path.join(root, 'releases', '.v2.building')
    os.makedirs(os.path.join(leftover, 'old'))
    result = rb.stage(root, 'v2', APP, fs=fs)
    assert result == dict(built=False, changed=True, release_dir=os.path.join(root, 'releases', 'v2'),
                          staging=leftover)
    assert os.listdir(leftover) == [] and stat.S_IMODE(os.stat(leftover).st_mode) == 0o755
    assert fs.owners[leftover] == (1500, 1600)


def test_stage_without_create_only_removes_the_staging_directory(root, fs):
    leftover = os.path.join(root, 'releases', '.v2.building')
    os.makedirs(leftover)
    assert rb.stage(root, 'v2', APP, create=False, fs=fs)['changed'] is True
    assert not os.path.exists(leftover)


def test_stage_of_a_built_release_does_nothing(root, fs):
    os.makedirs(os.path.join(root, 'releases', 'v2'))
    open(os.path.join(root, 'releases', 'v2', rb.MARKER), 'w').close()
    result = rb.stage(root, 'v2', APP, fs=fs)
    assert result['built'] is True and result['changed'] is False
    assert not os.path.exists(result['staging'])


def test_stage_refuses_a_release_directory_without_the_marker(root, fs):
    os.makedirs(os.path.join(root, 'releases', 'v2'))
    with pytest.raises(rb.BuildError, match='exists but is not a complete build') as excinfo:
        rb.stage(root, 'v2', APP, fs=fs)
    assert excinfo.value.step == 'Look for an existing build of the release'
    assert not os.path.exists(os.path.join(root, 'releases', '.v2.building'))


def test_stage_in_check_mode_changes_nothing(root, fs):
    result = rb.stage(root, 'v2', APP, check_mode=True, fs=fs)
    assert result['changed'] is True and not os.path.exists(result['staging']) and fs.owners == {}


def test_release_mode_is_chmod_u_rwX_g_rX_g_w_o_w_ug_s():
    assert rb.release_mode(stat.S_IFREG | 0o664) == 0o644
    assert rb.release_mode(stat.S_IFREG | 0o600) == 0o640
    assert rb.release_mode(stat.S_IFREG | 0o4775) == 0o755
    assert rb.release_mode(stat.S_IFREG | 0o2701) == 0o751  # o keeps its x: only o-w
    assert rb.release_mode(stat.S_IFDIR | 0o700) == 0o750
    assert rb.release_mode(stat.S_IFDIR | 0o777) == 0o755
    assert rb.release_mode(stat.S_IFREG | 0o1646) == 0o1644  # the sticky bit is not ug-s


def test_finish_builds_as_the_app_user_and_moves_a_root_owned_tree_into_place(root, fs):
    staged = staged_source(root, fs)
    runner = Runner(effect=lambda cwd: open(os.path.join(cwd, 'built.txt'), 'w').close())
    result = rb.finish(root, 'v2', APP, shared_paths=['storage'], build_command='make assets', runner=runner, fs=fs)
    release = staged['release_dir']
    assert result['changed'] is True and result['release_dir'] == release and result['stdout'] == 'built\n'
    assert not os.path.exists(staged['staging'])
    [(argv, cwd)] = runner.calls
    assert cwd == staged['staging']
    assert argv[:6] == ['runuser', '-u', 'shop', '--', 'env', '-i'] and argv[-3:] == ['/bin/sh', '-c', 'make assets']
    assert 'HOME=/home/shop' in argv and 'USER=shop' in argv and not any(a.startswith('ANSIBLE') for a in argv)
    with open(os.path.join(release, rb.MARKER)) as handle:
        assert handle.read() == 'v2\n'
    assert os.readlink(os.path.join(release, 'storage')) == os.path.join(root, 'shared', 'storage')
    assert stat.S_IMODE(os.stat(os.path.join(release, 'app.py')).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(release, 'bin', 'run')).st_mode) == 0o755  # setuid dropped
    # Every path handed to root with the app's group (the link itself, not shared/storage); the marker root:root.
    staging = staged['staging']
    for name in ('', 'app.py', 'bin', 'bin/run', 'storage', 'built.txt'):
        assert fs.owners[os.path.join(staging, name) if name else staging] == (0, 1600), name
    assert fs.owners[os.path.join(staging, rb.MARKER)] == (0, 0)
    assert fs.owners.get(os.path.join(root, 'shared', 'storage')) is None
    assert result['files'] == 6


def test_finish_replaces_what_the_source_has_at_a_shared_path(root, fs):
    staged = staged_source(root, fs, {'storage/seed.db': ('x', 0o644), 'log': ('x', 0o644)})
    rb.finish(root, 'v2', APP, shared_paths=['storage', 'log'], runner=Runner(), fs=fs)
    for name in ('storage', 'log'):
        assert os.readlink(os.path.join(staged['release_dir'], name)) == os.path.join(root, 'shared', name)


def test_finish_without_a_build_command_runs_nothing(root, fs):
    staged_source(root, fs)
    runner = Runner()
    assert rb.finish(root, 'v2', APP, runner=runner, fs=fs)['changed'] is True
    assert runner.calls == []


def test_a_failed_build_command_removes_the_staging_directory_and_names_the_step(root, fs):
    staged = staged_source(root, fs)
    with pytest.raises(rb.BuildError) as excinfo:
        rb.finish(root, 'v2', APP, build_command='false', runner=Runner(rc=2, err='boom\n'), fs=fs)
    assert excinfo.value.step == 'Run the build command'
    assert excinfo.value.detail == 'exit status 2: boom'
    assert not os.path.exists(staged['staging']) and not os.path.exists(staged['release_dir'])


def test_a_long_build_output_is_cut_to_its_end(root, fs):
    staged_source(root, fs)
    with pytest.raises(rb.BuildError) as excinfo:
        rb.finish(root, 'v2', APP, build_command='x', runner=Runner(rc=1, out='a' * 5000 + 'END'), fs=fs)
    assert excinfo.value.detail.endswith('END') and len(excinfo.value.detail) < 2100


def test_a_shared_path_in_a_missing_directory_fails_the_build(root, fs):
    staged = staged_source(root, fs)
    with pytest.raises(rb.BuildError, match='the directory .* is not in the source') as excinfo:
        rb.finish(root, 'v2', APP, shared_paths=['var/cache'], runner=Runner(), fs=fs)
    assert excinfo.value.step == 'Link shared paths into the release'
    assert not os.path.exists(staged['staging'])


def test_a_file_system_error_is_named_by_its_step(root, fs):
    staged = staged_source(root, fs)

    def refuse(source, dest):
        raise OSError(13, 'Permission denied', dest)

    fs.rename = refuse
    with pytest.raises(rb.BuildError) as excinfo:
        rb.finish(root, 'v2', APP, runner=Runner(), fs=fs)
    assert excinfo.value.step == 'Move the release into place'
    assert excinfo.value.detail == 'Permission denied (%s)' % staged['release_dir']
    assert not os.path.exists(staged['staging'])


def test_finish_without_a_staged_source_fails(root, fs):
    with pytest.raises(rb.BuildError, match='the source was not fetched'):
        rb.finish(root, 'v2', APP, runner=Runner(), fs=fs)


def test_finish_of_a_built_release_and_in_check_mode_change_nothing(root, fs):
    staged = staged_source(root, fs)
    runner = Runner()
    assert rb.finish(root, 'v2', APP, build_command='make', runner=runner, check_mode=True, fs=fs)['changed'] is True
    assert runner.calls == [] and os.path.isdir(staged['staging'])
    rb.finish(root, 'v2', APP, runner=runner, fs=fs)
    again = rb.finish(root, 'v2', APP, build_command='make', runner=runner, fs=fs)
    assert again['changed'] is False and runner.calls == []


def test_abandon_removes_the_staging_directory(root, fs):
    staged = staged_source(root, fs)
    assert rb.abandon(root, 'v2', fs=fs) is True and not os.path.exists(staged['staging'])
    assert rb.abandon(root, 'v2', fs=fs) is False


def test_account_lookup_of_a_missing_user_says_what_to_do():
    with pytest.raises(rb.BuildError, match='baton_setup=always'):
        rb.Account.lookup('no-such-user-baton')
    me = rb.Account.lookup('root')
    assert (me.uid, me.gid) == (0, 0)
