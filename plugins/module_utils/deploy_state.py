# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-app deploy state file used by the ``baton.deploy.deploy_state`` module.

The state file (by default ``/var/lib/baton/<app>/state.json``) records which of
the two slots is live, which release each slot runs, and a short history::

    {
      "version": 1,
      "app": "shop",
      "active_slot": 1,            # 1, 2 or null (nothing deployed yet)
      "next_slot": 2,              # the slot the next deploy goes to
      "slots": {"1": {"release": "2026.11.02-1", "port": 8081},
                "2": {"release": null, "port": 8082}},
      "history": [{"time": "2026-11-02T10:00:00Z", "action": "deploy",
                   "release": "2026.11.02-1", "slot": 1,
                   "previous_release": null, "previous_slot": null}]
    }

Everything here except :func:`load`, :func:`atomic_write` and the directory
helpers is pure, so it can be unit tested without touching the file system.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import tempfile

STATE_VERSION = 1
DEFAULT_BASE_DIR = '/var/lib/baton'
STATE_FILE_NAME = 'state.json'
DEFAULT_HISTORY_SIZE = 20
FILE_MODE = 0o640
DIR_MODE = 0o750
SLOTS = (1, 2)
ACTIONS = ('deploy', 'rollback', 'flip-back')
APP_NAME_RE = re.compile(r'^[a-z][a-z0-9_-]{0,31}$')


class StateFileError(Exception):
    """The state file exists but cannot be read or does not look like a baton state file."""


def validate_app_name(app):
    """Return an error message for an invalid app name, or None if it is valid."""
    if not isinstance(app, str) or not APP_NAME_RE.match(app):
        return ('app must start with a lowercase letter and contain only lowercase letters, digits, "_" and "-" '
                '(at most 32 characters), got %r' % (app,))
    return None


def default_path(app, base_dir=DEFAULT_BASE_DIR):
    """Default state file path for ``app``: ``/var/lib/baton/<app>/state.json``."""
    return os.path.join(base_dir, app, STATE_FILE_NAME)


def other_slot(slot):
    """Return the slot that is not ``slot`` (1 -> 2, 2 -> 1)."""
    if isinstance(slot, bool) or slot not in SLOTS:
        raise ValueError('slot must be 1 or 2, got %r' % (slot,))
    return 2 if slot == 1 else 1


def utc_now_iso(now=None):
    """ISO 8601 UTC timestamp with second precision, e.g. ``2026-11-02T10:00:00Z``."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def normalize_ports(ports):
    """Turn ``{1: p1, 2: p2}`` (keys may be ints or strings, as after a JSON round trip) into ``{1: int, 2: int}``.

    Returns None for None. Raises ValueError for anything else that is not exactly two distinct valid ports.
    """
    if ports is None:
        return None
    if not isinstance(ports, dict):
        raise ValueError('ports must be a mapping {1: <port of slot 1>, 2: <port of slot 2>}, got %r' % (ports,))
    result = {}
    for key, value in ports.items():
        try:
            slot = int(str(key).strip())
        except ValueError:
            slot = None
        if slot not in SLOTS:
            raise ValueError('ports keys must be the slots 1 and 2, got %r' % (key,))
        if slot in result:
            raise ValueError('ports lists slot %d twice' % slot)
        try:
            port = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            port = None
        if port is None or not 1 <= port <= 65535:
            raise ValueError('ports[%d] must be a TCP port between 1 and 65535, got %r' % (slot, value))
        result[slot] = port
    if sorted(result) != list(SLOTS):
        raise ValueError('ports must give a port for both slots 1 and 2, got %r' % (ports,))
    if result[1] == result[2]:
        raise ValueError('ports of slot 1 and slot 2 must differ, both are %d' % result[1])
    return result


def default_state(app, ports=None):
    """A fresh state for an app that was never deployed: no active slot, next deploy goes to slot 1."""
    ports = normalize_ports(ports)
    return {
        'version': STATE_VERSION,
        'app': app,
        'active_slot': None,
        'next_slot': 1,
        'slots': {
            str(slot): {'release': None, 'port': ports[slot] if ports else None}
            for slot in SLOTS
        },
        'history': [],
    }


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate_state(state, app=None):
    """Check the structure of a loaded state. Returns a list of problems (empty when valid)."""
    if not isinstance(state, dict):
        return ['the top level is a %s, not a JSON object' % type(state).__name__]
    errors = []
    version = state.get('version')
    if version != STATE_VERSION:
        if _is_int(version) and version > STATE_VERSION:
            errors.append('it has version %d, but this version of baton.deploy only understands version %d '
                          '(was it written by a newer baton.deploy?)' % (version, STATE_VERSION))
        else:
            errors.append('"version" must be %d, got %r' % (STATE_VERSION, version))
    if not isinstance(state.get('app'), str):
        errors.append('"app" must be a string, got %r' % (state.get('app'),))
    elif app is not None and state['app'] != app:
        errors.append('it belongs to app %r, not %r' % (state['app'], app))
    if state.get('active_slot') is not None and (not _is_int(state['active_slot']) or state['active_slot'] not in SLOTS):
        errors.append('"active_slot" must be 1, 2 or null, got %r' % (state.get('active_slot'),))
    if not _is_int(state.get('next_slot')) or state.get('next_slot') not in SLOTS:
        errors.append('"next_slot" must be 1 or 2, got %r' % (state.get('next_slot'),))
    slots = state.get('slots')
    if not isinstance(slots, dict):
        errors.append('"slots" must be an object with keys "1" and "2", got %r' % (slots,))
    else:
        for slot in SLOTS:
            entry = slots.get(str(slot))
            if not isinstance(entry, dict):
                errors.append('"slots"."%d" must be an object, got %r' % (slot, entry))
                continue
            if entry.get('release') is not None and not isinstance(entry['release'], str):
                errors.append('"slots"."%d"."release" must be a string or null, got %r' % (slot, entry['release']))
            port = entry.get('port')
            if port is not None and (not _is_int(port) or not 1 <= port <= 65535):
                errors.append('"slots"."%d"."port" must be a TCP port or null, got %r' % (slot, port))
    history = state.get('history')
    if not isinstance(history, list) or not all(isinstance(item, dict) for item in history):
        errors.append('"history" must be a list of objects')
    return errors


def corrupt_message(path, reason):
    """The error shown when the state file at ``path`` cannot be used."""
    return (
        'The baton deploy state file %s is unreadable or corrupt: %s. '
        'Inspect it and fix it by hand, or remove it and redeploy (a new state file is then written and the '
        'deploy starts again from slot 1). The running slots are untouched.' % (path, reason)
    )


def load(path, app=None):
    """Read the state file.

    Returns ``(state, True)`` when the file exists, ``(None, False)`` when it does not.
    Raises :class:`StateFileError` (with a message naming the file and how to fix it)
    when the file cannot be read, is not valid JSON or does not have the expected structure.
    """
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, False
    except OSError as exc:
        raise StateFileError(corrupt_message(path, 'cannot read it (%s)' % (exc.strerror or exc)))
    try:
        state = json.loads(raw.decode('utf-8'))
    except UnicodeDecodeError as exc:
        raise StateFileError(corrupt_message(path, 'it is not UTF-8 text (%s)' % exc))
    except ValueError as exc:
        reason = 'it is empty' if not raw.strip() else 'it is not valid JSON (%s)' % exc
        raise StateFileError(corrupt_message(path, reason))
    errors = validate_state(state, app=app)
    if errors:
        raise StateFileError(corrupt_message(path, '; '.join(errors)))
    return state, True


def apply_record(state, active_slot, release, action='deploy', ports=None, history_size=DEFAULT_HISTORY_SIZE,
                 now=None):
    """Record that ``release`` is now live in ``active_slot``. Pure: ``state`` is not modified.

    Returns ``(new_state, changed)``. When ``active_slot`` is already active and already runs ``release``,
    nothing else is touched and no history entry is added; the result is then only changed if ``ports``
    updates a slot's port. The history is capped to the newest ``history_size`` entries when one is added.
    ``now`` may be a datetime (UTC if naive) or an ISO string; it defaults to the current time.
    """
    if isinstance(active_slot, bool) or active_slot not in SLOTS:
        raise ValueError('active_slot must be 1 or 2, got %r' % (active_slot,))
    if not isinstance(release, str) or not release.strip():
        raise ValueError('release must be a non-empty string, got %r' % (release,))
    if action not in ACTIONS:
        raise ValueError('action must be one of %s, got %r' % (', '.join(ACTIONS), action))
    if not _is_int(history_size) or history_size < 0:
        raise ValueError('history_size must be an integer >= 0, got %r' % (history_size,))
    ports = normalize_ports(ports)

    new = copy.deepcopy(state)
    slots = new['slots']
    if ports:
        for slot in SLOTS:
            slots[str(slot)]['port'] = ports[slot]

    previous_slot = state.get('active_slot')
    already_live = previous_slot == active_slot and state['slots'][str(active_slot)].get('release') == release
    if not already_live:
        previous_release = state['slots'][str(previous_slot)].get('release') if previous_slot in SLOTS else None
        slots[str(active_slot)]['release'] = release
        new['active_slot'] = active_slot
        new['next_slot'] = other_slot(active_slot)
        if isinstance(now, str):
            stamp = now
        else:
            stamp = utc_now_iso(now)
        history = list(new.get('history') or []) + [{
            'time': stamp,
            'action': action,
            'release': release,
            'slot': active_slot,
            'previous_release': previous_release,
            'previous_slot': previous_slot,
        }]
        new['history'] = history[-history_size:] if history_size else []
    return new, new != state


def dump_state(state):
    """Serialize a state the way it is written to disk (stable key order, trailing newline)."""
    return json.dumps(state, indent=2, sort_keys=True) + '\n'


def ensure_dir(directory, mode=DIR_MODE):
    """Create ``directory`` (and missing parents) if needed; a directory created here gets ``mode``.

    Returns True if the directory was created. An existing directory keeps its permissions.
    """
    if os.path.isdir(directory):
        return False
    try:
        os.makedirs(directory, mode=mode)
    except FileExistsError:
        if os.path.isdir(directory):
            return False
        raise
    os.chmod(directory, mode)  # makedirs' mode is filtered by the umask
    return True


def fsync_dir(directory):
    """fsync a directory so a rename inside it survives a crash. Best effort on file systems that refuse it."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data, mode=FILE_MODE, dir_mode=DIR_MODE, gid=None):
    """Replace ``path`` atomically with ``data`` (bytes, str, or anything else is serialized with :func:`dump_state`).

    Writes a temporary file in the same directory, fsyncs it, sets ``mode`` (and group ``gid`` if given,
    before any content is written), renames it over ``path``
    with ``os.replace`` and fsyncs the directory. Readers see either the old or the new content,
    never a partial file. The parent directory is created with ``dir_mode`` if missing.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    elif not isinstance(data, (bytes, bytearray)):
        data = dump_state(data).encode('utf-8')
    directory = os.path.dirname(os.path.abspath(path))
    ensure_dir(directory, dir_mode)
    fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            os.fchmod(handle.fileno(), mode)
            if gid is not None:
                os.fchown(handle.fileno(), -1, gid)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    fsync_dir(directory)
