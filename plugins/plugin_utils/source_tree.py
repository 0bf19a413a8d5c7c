# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side work on directory trees, for the lookups tree_digest and source_tarball.

In Python rather than a shell pipeline per host: the setup fingerprint of a deploy is computed from the
collection's files once per evaluation without spawning find/sort/cat/cksum, and a ``path`` source is
uploaded as one tarball (one transfer, one module run) instead of file by file."""
from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import tempfile
import time

# Tarballs of this age in the cache directory are removed when a new one is made.
TARBALL_MAX_AGE = 24 * 3600


def _files(root, paths, skip_suffixes):
    """Relative paths (sorted, '/'-separated) of the regular files under ``root``/``paths``."""
    found = []
    for path in paths:
        top = os.path.join(root, path)
        if os.path.isfile(top):
            found.append(path)
            continue
        if not os.path.isdir(top):
            raise FileNotFoundError('%s is neither a file nor a directory' % top)
        for directory, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in filenames:
                if name.endswith(tuple(skip_suffixes)):
                    continue
                full = os.path.join(directory, name)
                if os.path.isfile(full):
                    found.append(os.path.relpath(full, root).replace(os.sep, '/'))
    return sorted(set(found))


def tree_digest(root, paths, skip_suffixes=('.pyc',)):
    """SHA-1 (hex) of the names and contents of the regular files under ``root``/``paths`` (files or
    directories, relative to ``root``), in sorted order: it changes when a file is added, removed, renamed
    or edited, and only then."""
    digest = hashlib.sha1()
    for relative in _files(root, paths, skip_suffixes):
        digest.update(relative.encode('utf-8', 'surrogateescape') + b'\0')
        with open(os.path.join(root, relative), 'rb') as handle:
            content = handle.read()
        digest.update(str(len(content)).encode('ascii') + b'\0' + content)
    return digest.hexdigest()


def _add_tree(archive, source):
    """Add what is inside ``source`` to ``archive``, sorted, symbolic links followed (as the copy module
    does), owners left out (the release role sets them on the host)."""
    for directory, dirnames, filenames in os.walk(source, followlinks=True):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(directory, name)
            info = archive.gettarinfo(full, arcname=os.path.relpath(full, source).replace(os.sep, '/'))
            if info is None or not (info.isfile() or info.isdir()):
                continue  # sockets, fifos, devices: not part of a release
            info.uid = info.gid = 0
            info.uname = info.gname = ''
            if info.isfile():
                with open(full, 'rb') as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)


def _remove_old(cache_dir, now, keep):
    for name in os.listdir(cache_dir):
        full = os.path.join(cache_dir, name)
        try:
            if name != keep and now - os.lstat(full).st_mtime > TARBALL_MAX_AGE:
                os.unlink(full)
        except OSError:
            pass  # another deploy removed it, or it is not ours to remove


def source_tarball(source, cache_dir, clock=time.time):
    """Path of a gzip tarball of the contents of the directory ``source``, made in ``cache_dir`` (created
    0700 if missing). The name is the SHA-1 of the tarball, whose bytes depend only on the tree (sorted
    entries, no owner names, no time in the gzip header): the hosts of one deploy share it, and hosts made
    at the same time write the same file (each to a temporary name first, then renamed). Tarballs older
    than a day are removed."""
    if not os.path.isdir(source):
        raise FileNotFoundError('%s is not a directory' % source)
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(cache_dir).st_mode) or os.lstat(cache_dir).st_uid != os.getuid():
        raise PermissionError('%s is not a directory of this user' % cache_dir)
    handle, partial = tempfile.mkstemp(prefix='.partial-', suffix='.tar.gz', dir=cache_dir)
    try:
        with os.fdopen(handle, 'wb') as raw:
            with gzip.GzipFile(filename='', mode='wb', fileobj=raw, mtime=0) as zipped:
                with tarfile.open(fileobj=zipped, mode='w', format=tarfile.PAX_FORMAT, dereference=True) as archive:
                    _add_tree(archive, source)
        digest = hashlib.sha1()
        with open(partial, 'rb') as made:
            for block in iter(lambda: made.read(1 << 20), b''):
                digest.update(block)
        final = os.path.join(cache_dir, digest.hexdigest() + '.tar.gz')
        os.replace(partial, final)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    _remove_old(cache_dir, clock(), os.path.basename(final))
    return final
