# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-app deploy lock used by the ``baton.deploy.deploy_lock`` module.

The lock is a small JSON file (by default ``/var/lib/baton/<app>/deploy.lock``)::

    {"app": "shop", "owner": "alice@controller pid 1234", "time": "2026-11-02T10:00:00Z",
     "timestamp": 1793613600.0, "token": "3f0c...", "host": "web1"}

It is created with ``os.open(O_CREAT | O_EXCL)``, so only one process can create it. The
``token`` (random hex) identifies the holder: only the holder's token releases the lock.
A lock older than ``stale_after`` seconds, or any lock when ``force`` is set, may be taken over.

Take-overs and releases (read, compare, unlink, create) are serialized between
cooperating processes with ``flock`` on the lock's directory, so two deploys that
both find the same stale lock cannot both take it over.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime
import json
import os
import pwd
import re
import secrets
import socket
import time

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import (
    DEFAULT_BASE_DIR,
    DIR_MODE,
    ensure_dir,
    fsync_dir,
    utc_now_iso,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None

LOCK_FILE_NAME = 'deploy.lock'
LOCK_MODE = 0o640
DEFAULT_STALE_AFTER = 3600
TOKEN_RE = re.compile(r'^[!-~]{1,256}$')
_ACQUIRE_ATTEMPTS = 5


class LockError(Exception):
    """The lock cannot be acquired or released. ``holder`` is the current holder's record, if known."""

    def __init__(self, msg, holder=None):
        super().__init__(msg)
        self.holder = holder


def default_lock_path(app, base_dir=DEFAULT_BASE_DIR):
    """Default lock path for ``app``: ``/var/lib/baton/<app>/deploy.lock``."""
    return os.path.join(base_dir, app, LOCK_FILE_NAME)


def default_owner(environ=None, hostname=None):
    """``<user>@<host>`` built from the environment of the module (SUDO_USER, USER, LOGNAME, effective uid).

    The module runs on the target and cannot know the controller, so callers should pass a better owner.
    """
    environ = os.environ if environ is None else environ
    user = environ.get('SUDO_USER') or environ.get('USER') or environ.get('LOGNAME')
    if not user:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = 'uid %d' % os.geteuid()
    return '%s@%s' % (user, hostname or socket.gethostname())


def new_token():
    """A random hex token identifying a lock holder."""
    return secrets.token_hex(16)


def validate_token(token):
    """Return an error message for an unusable token, or None."""
    if token is not None and not TOKEN_RE.match(token):
        return 'token must be 1 to 256 printable characters without spaces, got %r' % (token,)
    return None


def _parse_iso(value):
    try:
        return float(calendar.timegm(time.strptime(value, '%Y-%m-%dT%H:%M:%SZ')))
    except (TypeError, ValueError):
        return None


def read_holder(path):
    """Return the current holder record of the lock at ``path``, or None if there is no lock.

    The record always has ``owner``, ``time``, ``timestamp`` and ``token`` keys. A lock file that is
    empty or not valid JSON (for example because its writer died half way) is reported with
    ``owner`` saying so, ``token`` None and the file's modification time.
    """
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
            mtime = os.fstat(handle.fileno()).st_mtime
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw.decode('utf-8'))
        if not isinstance(record, dict):
            raise ValueError('not a JSON object')
    except ValueError:
        return {
            'owner': 'unknown (the lock file is empty or unreadable)',
            'time': utc_now_iso(_utc_datetime(mtime)),
            'timestamp': mtime,
            'token': None,
            'corrupt': True,
        }
    holder = dict(record)
    timestamp = holder.get('timestamp')
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        timestamp = _parse_iso(holder.get('time'))
    if timestamp is None:
        timestamp = mtime
    holder['timestamp'] = float(timestamp)
    if not isinstance(holder.get('time'), str):
        holder['time'] = utc_now_iso(_utc_datetime(timestamp))
    if not isinstance(holder.get('owner'), str) or not holder['owner']:
        holder['owner'] = 'unknown owner'
    if not isinstance(holder.get('token'), str):
        holder['token'] = None
    return holder


def _utc_datetime(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def lock_age(holder, now):
    """Age of a lock in seconds (never negative, in case clocks disagree)."""
    return max(0.0, now - holder['timestamp'])


def held_message(app, path, holder, age):
    """The error shown when another deploy holds the lock."""
    return (
        'Another deploy of %s holds the lock %s since %s (%ds ago): %s. Wait for it to finish; if it died, '
        're-run with baton_deploy_force_unlock=true or remove %s.'
        % (app, path, holder['time'], int(age), holder['owner'], path)
    )


def _public_holder(holder):
    if holder is None:
        return None
    return dict(holder)


@contextlib.contextmanager
def _directory_lock(directory):
    """Serialize take-overs and releases between cooperating processes (flock on the directory)."""
    if fcntl is None or not os.path.isdir(directory):
        yield
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _create(path, record):
    """Create the lock file exclusively. Raises FileExistsError if it already exists."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, 'O_CLOEXEC', 0), LOCK_MODE)
    try:
        os.fchmod(fd, LOCK_MODE)  # the mode given to os.open is filtered by the umask
        data = (json.dumps(record, sort_keys=True) + '\n').encode('utf-8')
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    os.close(fd)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def acquire(path, app, owner, token=None, stale_after=DEFAULT_STALE_AFTER, force=False, check_mode=False,
            clock=time.time):
    """Acquire the lock at ``path``.

    Returns a dict with ``token``, ``owner``, ``acquired``, ``took_over``, ``previous_holder``, ``path``,
    ``changed`` and ``warnings``. If the lock is already held with ``token``, it is kept (changed False).
    A lock held by someone else is taken over when it is older than ``stale_after`` seconds or ``force``
    is set (with a warning); otherwise :class:`LockError` is raised with :func:`held_message`.
    In ``check_mode`` nothing is written and the result says what would happen.
    """
    token = token or new_token()
    result = dict(token=token, owner=owner, acquired=False, took_over=False, previous_holder=None, path=path,
                  changed=False, warnings=[])
    directory = os.path.dirname(os.path.abspath(path))

    def record():
        now = clock()
        return {'app': app, 'owner': owner, 'time': utc_now_iso(_utc_datetime(now)), 'timestamp': now,
                'token': token, 'host': socket.gethostname()}

    if not check_mode:
        ensure_dir(directory, DIR_MODE)

    with (contextlib.nullcontext() if check_mode else _directory_lock(directory)):
        for dummy in range(_ACQUIRE_ATTEMPTS):
            if check_mode:
                holder = read_holder(path)
                if holder is None:
                    result.update(acquired=True, changed=True)
                    return result
            else:
                try:
                    _create(path, record())
                except FileExistsError:
                    holder = read_holder(path)
                    if holder is None:
                        continue  # released between our attempt and the read: try again
                else:
                    result.update(acquired=True, changed=True)
                    return result

            if holder.get('token') is not None and holder['token'] == token:
                result.update(acquired=True, owner=holder['owner'])
                return result

            age = lock_age(holder, clock())
            stale = age > stale_after
            if not (force or stale):
                raise LockError(held_message(app, path, holder, age), holder=_public_holder(holder))

            if force and not stale:
                why = 'because force is set'
            else:
                why = 'because it is older than stale_after=%ds' % stale_after
            result['warnings'].append(
                '%s the deploy lock %s of %s held by %s since %s (%ds ago) %s.'
                % ('Would take over' if check_mode else 'Took over', path, app, holder['owner'], holder['time'],
                   int(age), why))
            result.update(acquired=True, took_over=True, previous_holder=_public_holder(holder), changed=True)
            if check_mode:
                return result
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            try:
                _create(path, record())
            except FileExistsError:
                # Somebody that does not use the directory lock created it in between: start over.
                result.update(acquired=False, took_over=False, previous_holder=None, changed=False, warnings=[])
                continue
            return result
    raise LockError('Could not acquire the deploy lock %s of %s: it kept changing hands. Try again.' % (path, app))


READ_MAX_BYTES = 65536


def validate_read_names(names):
    """An error message if ``names`` (files to read next to the lock) are not plain file names, else None."""
    bad = [name for name in names or [] if not name or name in ('.', '..') or '/' in name or '\x00' in name]
    if bad:
        return 'read takes file names in the lock\'s directory (no "/"), got %s' % ', '.join(repr(n) for n in bad)
    return None


def read_beside(path, names):
    """({name: text}, warnings) for the small files ``names`` in the directory of the lock at ``path``.

    Lets a deploy read what it needs from the app's state directory (say the fingerprint of the host's last
    setup) in the same module run that takes the lock. A file that does not exist is None; so is one that
    cannot be read or is over READ_MAX_BYTES, with a warning: the caller treats it as missing, never fails
    while it holds the lock."""
    directory = os.path.dirname(os.path.abspath(path))
    found, warnings = {}, []
    for name in names or []:
        target = os.path.join(directory, name)
        found[name] = None
        try:
            with open(target, 'rb') as handle:
                data = handle.read(READ_MAX_BYTES + 1)
        except FileNotFoundError:
            continue
        except OSError as exc:
            warnings.append('Could not read %s (taken as missing): %s' % (target, exc))
            continue
        if len(data) > READ_MAX_BYTES:
            warnings.append('%s is over %d bytes (taken as missing)' % (target, READ_MAX_BYTES))
            continue
        found[name] = data.decode('utf-8', errors='replace')
    return found, warnings


def release(path, app, token=None, force=False, check_mode=False):
    """Release the lock at ``path`` if it is held with ``token`` (or regardless of the holder when ``force``).

    Returns a dict with ``token``, ``owner`` (of the released lock, or None), ``acquired`` (False),
    ``took_over`` (False), ``previous_holder`` (the released holder, or None), ``released``, ``path``,
    ``changed`` and ``warnings``. A missing lock is not an error (changed False). A lock held with another
    token raises :class:`LockError` unless ``force`` is set.
    """
    result = dict(token=token, owner=None, acquired=False, took_over=False, previous_holder=None, released=False,
                  path=path, changed=False, warnings=[])
    directory = os.path.dirname(os.path.abspath(path))
    with (contextlib.nullcontext() if check_mode else _directory_lock(directory)):
        holder = read_holder(path)
        if holder is None:
            return result
        matches = token is not None and holder.get('token') == token
        if not matches:
            if not force:
                if token is None:
                    reason = 'no token was given'
                else:
                    reason = 'it is held with a different token, so another deploy probably took it over'
                raise LockError(
                    'Not releasing the deploy lock %s of %s: %s. It is held by %s since %s. '
                    'Release it with the token returned when it was acquired, or remove %s if you are sure '
                    'no deploy is running.' % (path, app, reason, holder['owner'], holder['time'], path),
                    holder=_public_holder(holder))
            result['warnings'].append(
                '%s the deploy lock %s of %s held by %s since %s because force is set.'
                % ('Would remove' if check_mode else 'Removed', path, app, holder['owner'], holder['time']))
        result.update(owner=holder['owner'], previous_holder=_public_holder(holder), released=True, changed=True)
        if not check_mode:
            try:
                os.unlink(path)
            except FileNotFoundError:
                result.update(released=False, changed=False)
            else:
                fsync_dir(directory)
        return result
