# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Building a release directory on the host, used by ``baton.deploy.release_build``.

A build has two halves around the source fetch (``unarchive`` or ``git``, which stay Ansible tasks
because they move files from the controller or a repository; a ``path`` source comes as a tarball
that the module's action plugin uploads, unpacked by :func:`unpack` in the same run as :func:`stage`):

* :func:`stage`: is ``<root>/releases/<release>`` already a complete build (its ``.baton-release``
  marker)? If not, start from an empty staging directory ``<root>/releases/.<release>.building``
  owned by the app user.
* :func:`finish`: link the shared paths, run the build command as the app user, give the tree to
  root (the app's group reads it, nothing is writable by the app, no setuid/setgid bit survives),
  write the marker and move the staging directory into place, in one rename.

When a step of :func:`finish` fails, the staging directory is removed and :class:`BuildError` names
the step; nothing live is touched. File operations go through :class:`FileSystem` and commands
through a ``runner(argv, cwd) -> (rc, stdout, stderr)``, so both can be replaced in tests.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zlib

MARKER = '.baton-release'
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
# What the build command's output may show of itself in a failure message (the end of it).
OUTPUT_TAIL = 2000


class BuildError(Exception):
    """A step of the build failed; ``step`` names it as the release role's tasks did."""

    def __init__(self, step, detail):
        super(BuildError, self).__init__('%s: %s' % (step, detail))
        self.step = step
        self.detail = detail


class Account(object):
    """The app user: name, uid, gid and home (what the build command runs as)."""

    def __init__(self, name, uid, gid, home):
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home

    @classmethod
    def lookup(cls, name):
        import pwd

        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise BuildError('Look up the app user', 'there is no user %r on the host (the instances role '
                             'creates it: run the deploy with baton_setup=always)' % name)
        return cls(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


class FileSystem(object):
    """The file operations a build needs (replaced by a recording fake in the unit tests)."""

    exists = staticmethod(os.path.lexists)
    isdir = staticmethod(os.path.isdir)
    islink = staticmethod(os.path.islink)
    rename = staticmethod(os.rename)
    symlink = staticmethod(os.symlink)
    unlink = staticmethod(os.unlink)
    walk = staticmethod(os.walk)

    @staticmethod
    def remove_tree(path):
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path)

    @staticmethod
    def make_dir(path, mode, uid, gid):
        os.mkdir(path, mode)
        os.chmod(path, mode)  # whatever the umask
        os.chown(path, uid, gid)

    @staticmethod
    def lchown(path, uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)

    @staticmethod
    def mode(path):
        return os.lstat(path).st_mode

    @staticmethod
    def chmod(path, mode):
        os.chmod(path, mode)

    @staticmethod
    def write(path, text, mode):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, text.encode('utf-8'))
        finally:
            os.close(fd)
        os.chmod(path, mode)
        os.chown(path, 0, 0)


def paths(root, release):
    """``(release_dir, staging_dir)`` of ``release`` under the app's ``root``."""
    releases = os.path.join(root, 'releases')
    return os.path.join(releases, release), os.path.join(releases, '.%s.building' % release)


def is_built(release_dir, fs=FileSystem):
    return fs.exists(os.path.join(release_dir, MARKER))


def stage(root, release, account, create=True, check_mode=False, fs=FileSystem):
    """Prepare the build of ``release``: a dict with ``built`` (already complete: nothing to do),
    ``changed``, ``release_dir`` and ``staging``.

    Otherwise the staging directory is emptied and, with ``create``, made again (mode 0755, owned by
    the app user); without it (a git checkout creates its own directory) it is only removed.
    A release directory without the marker (a build that was not Baton's, or a copy interrupted by
    hand) is refused: building into it would mix two trees.
    """
    release_dir, staging = paths(root, release)
    result = dict(built=False, changed=False, release_dir=release_dir, staging=staging)
    if is_built(release_dir, fs):
        result['built'] = True
        return result
    if fs.exists(release_dir):
        raise BuildError('Look for an existing build of the release',
                         '%s exists but is not a complete build (no %s marker). Remove it, or deploy under '
                         'another release id' % (release_dir, MARKER))
    result['changed'] = True
    if check_mode:
        return result
    try:
        if fs.exists(staging):
            fs.remove_tree(staging)
        if create:
            fs.make_dir(staging, 0o755, account.uid, account.gid)
    except OSError as exc:
        raise BuildError('Start from an empty staging directory', _os_error(exc))
    return result


def unpack(staging, archive, account, fs=FileSystem):
    """Unpack the tarball ``archive`` (any compression ``tarfile`` reads) into the directory ``staging``,
    every entry owned by the app user, with ``u=rwX,g=rX,o=rX`` (as ``unarchive`` with that mode did).
    Only regular files and directories are taken, and only inside ``staging``: a link, a device, an
    absolute path or a ``..`` is refused (Python 3.11's ``tarfile`` of Debian 12 has no extraction
    filters). Returns the number of entries unpacked."""
    try:
        with tarfile.open(archive, 'r:*') as archive_file:
            return _unpack_members(archive_file, staging, archive, account, fs)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BuildError('Unpack the source tarball',
                         '%s: %s' % (archive, _os_error(exc) if isinstance(exc, OSError) else exc))


def _unpack_members(archive_file, staging, archive, account, fs):
    count = 0
    for member in archive_file:
        parts = [part for part in member.name.split('/') if part not in ('', '.')]
        if member.name.startswith('/') or '..' in parts:
            raise BuildError('Unpack the source tarball', '%s: %r is not a path inside the release'
                             % (archive, member.name))
        if not (member.isfile() or member.isdir()):
            raise BuildError('Unpack the source tarball', '%s: %r is not a regular file or a directory'
                             % (archive, member.name))
        if not parts:
            continue  # the top directory itself: staging, made by stage()
        path = staging
        for part in parts[:-1]:  # parents missing from the archive, made as unarchive would
            path = os.path.join(path, part)
            if not fs.isdir(path):
                fs.make_dir(path, 0o755, account.uid, account.gid)
        path = os.path.join(path, parts[-1])
        if member.isdir():
            if not fs.isdir(path):
                fs.make_dir(path, 0o755, account.uid, account.gid)
        else:
            mode = 0o755 if member.mode & 0o111 else 0o644
            source = archive_file.extractfile(member)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, 'wb') as target:
                shutil.copyfileobj(source, target)
            os.chmod(path, mode)  # whatever the umask
            os.chown(path, account.uid, account.gid)
        count += 1
    return count


def build_env(account):
    """The build command's environment: a login-like minimum for the app user, no controller secrets."""
    return {'HOME': account.home, 'USER': account.name, 'LOGNAME': account.name, 'PATH': DEFAULT_PATH,
            'SHELL': '/bin/sh', 'LANG': 'C.UTF-8'}


def build_argv(account, command):
    """Run ``command`` with ``/bin/sh -c`` as the app user, in :func:`build_env` only (``env -i``: none
    of the module's own environment reaches the build)."""
    env = ['%s=%s' % item for item in sorted(build_env(account).items())]
    return ['runuser', '-u', account.name, '--', 'env', '-i'] + env + ['/bin/sh', '-c', command]


def release_mode(mode):
    """``chmod u+rwX,g+rX,g-w,o-w,ug-s`` applied to ``mode`` (X: directories and files that some
    class may already execute)."""
    executable = stat.S_ISDIR(mode) or bool(mode & 0o111)
    mode |= stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP
    if executable:
        mode |= stat.S_IXUSR | stat.S_IXGRP
    mode &= ~(stat.S_IWGRP | stat.S_IWOTH | stat.S_ISUID | stat.S_ISGID)
    return stat.S_IMODE(mode)


def hand_to_root(top, gid, fs=FileSystem):
    """``chown -R -h root:<gid>`` and :func:`release_mode` on every file and directory under ``top``.

    Links are re-owned, not followed (a shared path stays the app's); their mode is not theirs to change.
    """
    def hand(path):
        fs.lchown(path, 0, gid)
        if not fs.islink(path):
            fs.chmod(path, release_mode(fs.mode(path)))

    hand(top)
    count = 1
    for directory, dirs, files in fs.walk(top):
        for name in dirs + files:
            hand(os.path.join(directory, name))
            count += 1
    return count


def link_shared(staging, root, shared_paths, fs=FileSystem):
    """Point ``<staging>/<path>`` at ``<root>/shared/<path>`` for each shared path, replacing what the
    source had there."""
    for name in shared_paths:
        dest = os.path.join(staging, name)
        parent = os.path.dirname(dest)
        if not fs.isdir(parent):
            raise BuildError('Link shared paths into the release',
                             '%s: the directory %s is not in the source' % (name, parent))
        if fs.exists(dest):
            fs.remove_tree(dest)
        fs.symlink(os.path.join(root, 'shared', name), dest)


def finish(root, release, account, shared_paths=(), build_command='', runner=None, check_mode=False,
           fs=FileSystem):
    """Finish the build staged by :func:`stage` and move it into place. Returns a dict with
    ``changed``, ``release_dir``, ``files`` (handed to root) and the build command's ``stdout`` /
    ``stderr``. Raises :class:`BuildError` after removing the staging directory when a step fails."""
    release_dir, staging = paths(root, release)
    result = dict(changed=False, release_dir=release_dir, files=0, stdout='', stderr='')
    if is_built(release_dir, fs):
        return result
    result['changed'] = True
    if check_mode:
        return result
    step = 'Find the staged source'
    try:
        if not fs.isdir(staging):
            raise BuildError(step, '%s is missing: the source was not fetched' % staging)
        step = 'Link shared paths into the release'
        link_shared(staging, root, shared_paths, fs)
        if build_command:
            step = 'Run the build command'
            rc, out, err = runner(build_argv(account, build_command), staging)
            result.update(stdout=out, stderr=err)
            if rc != 0:
                raise BuildError(step, 'exit status %d: %s' % (rc, _tail(err or out)))
        step = 'Give the release to root, readable by the app'
        result['files'] = hand_to_root(staging, account.gid, fs)
        step = 'Mark the release complete'
        fs.write(os.path.join(staging, MARKER), release + '\n', 0o644)
        step = 'Move the release into place'
        fs.rename(staging, release_dir)
    except (BuildError, OSError) as exc:
        _remove_quietly(staging, fs)
        if isinstance(exc, BuildError):
            raise
        raise BuildError(step, _os_error(exc))
    return result


def abandon(root, release, fs=FileSystem):
    """Remove the staging directory of ``release`` (a fetch failed); True when there was one."""
    _release_dir, staging = paths(root, release)
    return _remove_quietly(staging, fs)


def _remove_quietly(path, fs):
    try:
        if fs.exists(path):
            fs.remove_tree(path)
            return True
    except OSError:
        pass
    return False


def _tail(text):
    text = (text or '').strip()
    return text if len(text) <= OUTPUT_TAIL else '...' + text[-OUTPUT_TAIL:]


def _os_error(exc):
    where = ' (%s)' % exc.filename if getattr(exc, 'filename', None) else ''
    return '%s%s' % (exc.strerror or exc, where)
