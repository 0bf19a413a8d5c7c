# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.baton.deploy.plugins.module_utils import release_build as rb
from ansible_collections.baton.deploy.plugins.modules import release_build

ME = rb.Account('shop', os.getuid(), os.getgid(), '/home/shop')


def run_module(capsys, **args):
    with mock.patch.dict(ansible_warnings._global_warnings, clear=True), patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            release_build.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def root(tmp_path, mocker):
    # The app user is whoever runs the tests; ownership changes to root are recorded, not made.
    mocker.patch.object(rb.Account, 'lookup', return_value=ME)
    owners = {}
    mocker.patch.object(rb.FileSystem, 'lchown', side_effect=lambda path, uid, gid: owners.__setitem__(path, (uid, gid)))
    mocker.patch.object(os, 'chown', side_effect=lambda path, uid, gid, **kw: owners.__setitem__(path, (uid, gid)))
    os.makedirs(str(tmp_path / 'releases'))
    return str(tmp_path)


def test_staged_then_finished_puts_the_release_in_place(capsys, root, mocker):
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 0 and out['changed'] is True and out['built'] is False
    assert out['staging'] == os.path.join(root, 'releases', '.v2.building') and os.path.isdir(out['staging'])
    with open(os.path.join(out['staging'], 'app.py'), 'w') as handle:
        handle.write('print(1)\n')
    run = mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(0, 'ok\n', ''))
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='finished', build_command='make')
    assert rc == 0 and out['changed'] is True and out['stdout'] == 'ok\n' and out['files'] == 2
    argv = run.call_args[0][0]
    assert argv[:3] == ['runuser', '-u', 'shop'] and argv[-1] == 'make'
    assert run.call_args[1]['cwd'] == os.path.join(root, 'releases', '.v2.building')
    assert os.path.isfile(os.path.join(root, 'releases', 'v2', rb.MARKER))
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 0 and out['changed'] is False and out['built'] is True


def test_a_failed_build_says_which_step_and_that_nothing_live_was_touched(capsys, root, mocker):
    run_module(capsys, root=root, release='v2', user='shop')
    mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(1, '', 'boom'))
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='finished', build_command='make')
    assert rc == 1 and out['step'] == 'Run the build command'
    assert out['msg'] == ("Building release v2 failed at 'Run the build command': exit status 1: boom. Nothing live "
                          "was touched (the running slot and the proxy are unchanged) and the partial build was "
                          "removed. Fix the source or build command and deploy again.")
    assert not os.path.exists(os.path.join(root, 'releases', '.v2.building'))


def test_a_release_directory_that_is_not_a_build_is_refused_before_any_change(capsys, root):
    os.makedirs(os.path.join(root, 'releases', 'v2'))
    rc, out = run_module(capsys, root=root, release='v2', user='shop')
    assert rc == 1 and 'is not a complete build' in out['msg'] and out['msg'].endswith('Nothing was changed on the host.')


def test_check_mode_reports_a_build_and_changes_nothing(capsys, root):
    rc, out = run_module(capsys, root=root, release='v2', user='shop', _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and not os.path.exists(out['staging'])


def test_abandoned_removes_the_staging_directory(capsys, root):
    run_module(capsys, root=root, release='v2', user='shop')
    rc, out = run_module(capsys, root=root, release='v2', user='shop', state='abandoned')
    assert rc == 0 and out['changed'] is True and not os.path.exists(out['staging'])


@pytest.mark.parametrize('release', ['', '.hidden', '../v1', 'a/b'])
def test_a_release_that_is_not_a_directory_name_is_refused(capsys, root, release):
    rc, out = run_module(capsys, root=root, release=release, user='shop')
    assert rc == 1 and 'plain directory name' in out['msg']


def make_tarball(path, members):
    """A gzip tarball with ``members``: {name: bytes (a file), None (a directory), or a TarInfo type}."""
    import io
    import tarfile

    with tarfile.open(str(path), 'w:gz') as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                archive.addfile(info)
            elif isinstance(content, bytes) and content not in (tarfile.SYMTYPE, tarfile.CHRTYPE):
                info.size, info.mode = len(content), 0o700 if name.endswith('.sh') else 0o600
                archive.addfile(info, io.BytesIO(content))
            else:
                info.type, info.linkname = content, '/etc/passwd'
                archive.addfile(info)
    return str(path)


def test_staged_with_an_archive_unpacks_it_owned_by_the_app_user(capsys, root, tmp_path):
    archive = make_tarball(tmp_path / 'src.tar.gz', {'.': None, 'app': None, 'app/main.py': b'print(1)\n',
                                                     'run.sh': b'#!/bin/sh\n', 'lib/deep/x.txt': b'x'})
    rc, out = run_module(capsys, root=root, release='v3', user='shop', archive=archive)
    assert rc == 0 and out['changed'] is True and out['files'] == 4
    staging = out['staging']
    with open(os.path.join(staging, 'app', 'main.py')) as handle:
        assert handle.read() == 'print(1)\n'
    # u=rwX,g=rX,o=rX whatever the archive said; parents missing from the archive are made too.
    modes = {name: oct(os.stat(os.path.join(staging, name)).st_mode & 0o7777)
             for name in ('app', 'app/main.py', 'run.sh', 'lib', 'lib/deep', 'lib/deep/x.txt')}
    assert modes == {'app': '0o755', 'app/main.py': '0o644', 'run.sh': '0o755', 'lib': '0o755',
                     'lib/deep': '0o755', 'lib/deep/x.txt': '0o644'}
    # Already built: the archive is left unused.
    rc, out = run_module(capsys, root=root, release='v3', user='shop', state='finished')
    assert rc == 0 and os.path.isfile(os.path.join(root, 'releases', 'v3', 'run.sh'))
    rc, out = run_module(capsys, root=root, release='v3', user='shop', archive=archive)
    assert rc == 0 and out['built'] is True and out['changed'] is False and out['files'] == 0


@pytest.mark.parametrize('members, reason', [
    ({'../evil': b'x'}, "'../evil' is not a path inside the release"),
    ({'/etc/evil': b'x'}, "'/etc/evil' is not a path inside the release"),
    ({'a/../../evil': b'x'}, "is not a path inside the release"),
    ({'ok.txt': b'x', 'link': 'SYMTYPE'}, "'link' is not a regular file or a directory"),
    ({'dev': 'CHRTYPE'}, "'dev' is not a regular file or a directory"),
])
def test_an_archive_with_anything_but_files_and_directories_inside_fails_and_leaves_no_staging(
        capsys, root, tmp_path, members, reason):
    import tarfile

    members = {name: getattr(tarfile, value) if isinstance(value, str) else value for name, value in members.items()}
    archive = make_tarball(tmp_path / 'bad.tar.gz', members)
    rc, out = run_module(capsys, root=root, release='v4', user='shop', archive=archive)
    assert rc == 1 and out['step'] == 'Unpack the source tarball'
    assert reason in out['msg'] and out['msg'].startswith("Building release v4 failed at 'Unpack the source tarball'")
    assert not os.path.exists(out['staging'])
    assert not os.path.exists(str(tmp_path / 'evil')) and not os.path.exists('/etc/evil')


def test_a_corrupt_archive_fails_naming_it(capsys, root, tmp_path):
    archive = tmp_path / 'broken.tar.gz'
    archive.write_bytes(b'\x1f\x8b\x08\x00not really gzip')
    rc, out = run_module(capsys, root=root, release='v5', user='shop', archive=str(archive))
    assert rc == 1 and out['step'] == 'Unpack the source tarball' and str(archive) in out['msg']
    assert not os.path.exists(out['staging'])


def test_an_archive_goes_only_with_a_staging_directory_to_unpack_into(capsys, root, tmp_path):
    archive = make_tarball(tmp_path / 'src.tar.gz', {'a.txt': b'a'})
    rc, out = run_module(capsys, root=root, release='v6', user='shop', archive=archive, create=False)
    assert rc == 1 and 'goes with state=staged or built, and create=true' in out['msg']
    rc, out = run_module(capsys, root=root, release='v6', user='shop', src=archive)
    assert rc == 1 and 'uploaded by the action plugin' in out['msg']


def test_check_mode_with_an_archive_unpacks_nothing(capsys, root, tmp_path):
    archive = make_tarball(tmp_path / 'src.tar.gz', {'a.txt': b'a'})
    rc, out = run_module(capsys, root=root, release='v7', user='shop', archive=archive, _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and not os.path.exists(out['staging'])


def test_built_stages_unpacks_builds_and_moves_the_release_in_one_run(capsys, root, tmp_path, mocker):
    archive = make_tarball(tmp_path / 'src.tar.gz', {'app': None, 'app/main.py': b'print(1)\n', 'run.sh': b'#!/bin/sh\n'})
    os.makedirs(os.path.join(root, 'shared', 'storage'))
    run = mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(0, 'built\n', ''))
    rc, out = run_module(capsys, root=root, release='v8', user='shop', state='built', archive=archive,
                         build_command='make', shared_paths=['storage'])
    assert rc == 0 and out['changed'] is True and out['built'] is False and out['stdout'] == 'built\n'
    assert run.call_args[1]['cwd'] == out['staging'] and run.call_args[0][0][-1] == 'make'
    release_dir = os.path.join(root, 'releases', 'v8')
    assert out['release_dir'] == release_dir and not os.path.exists(out['staging'])
    assert os.path.isfile(os.path.join(release_dir, rb.MARKER)) and os.path.isfile(os.path.join(release_dir, 'app', 'main.py'))
    assert os.readlink(os.path.join(release_dir, 'storage')) == os.path.join(root, 'shared', 'storage')
    assert out['files'] == 5  # handed to root: the release, app, app/main.py, run.sh, the storage link
    # Already built: nothing runs, the tarball is left unused.
    run.reset_mock()
    rc, out = run_module(capsys, root=root, release='v8', user='shop', state='built', archive=archive, build_command='make')
    assert (rc, out['changed'], out['built']) == (0, False, True) and not run.called


def test_built_with_a_failing_build_command_removes_the_staging_directory(capsys, root, tmp_path, mocker):
    archive = make_tarball(tmp_path / 'src.tar.gz', {'a.txt': b'a'})
    mocker.patch('ansible.module_utils.basic.AnsibleModule.run_command', return_value=(2, '', 'no rule'))
    rc, out = run_module(capsys, root=root, release='v9', user='shop', state='built', archive=archive,
                         build_command='make')
    assert rc == 1 and out['step'] == 'Run the build command' and 'exit status 2: no rule. Nothing live' in out['msg']
    assert not os.path.exists(out['staging']) and not os.path.exists(os.path.join(root, 'releases', 'v9'))


def test_built_needs_a_tarball_and_changes_nothing_in_check_mode(capsys, root, tmp_path):
    rc, out = run_module(capsys, root=root, release='v10', user='shop', state='built')
    assert rc == 1 and out['msg'].startswith('state=built needs the source as a tarball')
    archive = make_tarball(tmp_path / 'src.tar.gz', {'a.txt': b'a'})
    rc, out = run_module(capsys, root=root, release='v10', user='shop', state='built', archive=archive,
                         _ansible_check_mode=True)
    assert rc == 0 and out['changed'] is True and os.listdir(os.path.join(root, 'releases')) == []
