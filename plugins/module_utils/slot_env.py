# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Environment files of the app's slots and releases, used by ``baton.deploy.slot_env``.

A slot's env file (``<root>/slots/<N>.env``) holds the app's environment (``baton_env``) followed by
what Baton sets itself (``PORT``, ``BATON_SLOT``, ``BATON_RELEASE``)::

    DATABASE_URL="postgres://..."
    PORT=8002
    BATON_SLOT=2
    BATON_RELEASE=v42

Values are JSON strings: ``EnvironmentFile=`` (systemd) and ``baton-exec`` (supervisor) both read them
the same way, since control characters, the only values they would read differently, are refused.

A release's env file (``/var/lib/baton/<app>/env/<release>.env``) holds the app's environment the
release last ran with while it was live. It is kept from the live slot's env file each time another slot
is pointed at a release, so it is always the environment of a release that served, never that of a deploy
that failed. A rollback starts the previous release with it (:func:`choose_env`).

Everything here except :func:`read_file` and :func:`write_slot_env` is pure.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import atomic_write

# What Baton sets after the app's own environment (later lines win, so these cannot be overridden).
BATON_KEYS = ('PORT', 'BATON_SLOT', 'BATON_RELEASE')
ENV_KEY_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
RELEASE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$')
# C0 and C1 control characters and DEL: a newline would start a new line of the file, and the two
# readers decode the others differently.
CONTROL_RE = re.compile('[\x00-\x1f\x7f-\x9f]')
ENV_DIR_NAME = 'env'


class EnvFileError(Exception):
    """An env file that cannot be read back."""


def env_problems(env):
    """Why ``env`` (the app's environment) cannot be written to an env file; empty list if it can.

    The messages name the keys, never the values (they may be secrets).
    """
    if not isinstance(env, dict):
        return ['the environment must be a mapping of names to values, got a %s' % type(env).__name__]
    problems = []
    for key in sorted(env, key=str):
        if not isinstance(key, str) or not ENV_KEY_RE.match(key):
            problems.append('the name %s is not a valid environment variable name '
                            '([A-Za-z_][A-Za-z0-9_]*)' % json.dumps(str(key)))
            continue
        value = env[key]
        if isinstance(value, (dict, list)):
            problems.append('the value of %s is a %s, not a string' % (key, type(value).__name__))
        elif CONTROL_RE.search(_text(value)):
            problems.append('the value of %s contains a newline or another control character' % key)
    return problems


def _text(value):
    # As Jinja's ``string`` filter, which earlier versions used: true -> "True", 8080 -> "8080".
    return str(value)


def render(env, slot=None, port=None, release=None):
    """The text of an env file: ``env`` sorted by name, then, for a slot, PORT, BATON_SLOT and BATON_RELEASE.

    Raises ValueError (naming keys only) if ``env`` cannot be written.
    """
    problems = env_problems(env)
    if problems:
        raise ValueError('; '.join(problems))
    if slot is None:
        lines = ['# Environment release %s last ran with while live (baton_env), kept for a rollback.' % release]
    else:
        lines = ['# Environment of slot %s (release %s): baton_env, then what Baton sets.' % (slot, release),
                 '# Each slot has its own file, so a deploy that fails never changes what the live slot starts with.']
    lines += ['%s=%s' % (key, json.dumps(_text(env[key]), ensure_ascii=False)) for key in sorted(env)]
    if slot is not None:
        lines += ['PORT=%d' % int(port), 'BATON_SLOT=%d' % int(slot), 'BATON_RELEASE=%s' % release]
    return '\n'.join(lines) + '\n'


def parse(text, name='env file'):
    """KEY=VALUE lines (a value in double quotes is a JSON string) -> dict, as ``baton-exec`` reads them."""
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        key, sep, value = line.partition('=')
        if not sep or not key:
            raise EnvFileError('%s:%d: expected KEY=VALUE' % (name, number))
        try:
            env[key] = json.loads(value) if value.startswith('"') else value
        except ValueError:
            raise EnvFileError('%s:%d: the value of %s is not a valid JSON string' % (name, number, key))
    return env


def split(env):
    """Split a slot's parsed env file into (the app's environment, the release it was written for)."""
    app_env = dict((key, value) for key, value in env.items() if key not in BATON_KEYS)
    release = env.get('BATON_RELEASE')
    return app_env, (release if isinstance(release, str) and RELEASE_RE.match(release) else None)


def release_env_path(env_dir, release):
    """Where the environment of ``release`` is kept."""
    if not isinstance(release, str) or not RELEASE_RE.match(release):
        raise ValueError('not a release id: %r' % (release,))
    return os.path.join(env_dir, release + '.env')


def choose_env(release, given=None, stored=None, slot_file=None):
    """The app's environment to start ``release`` with, and where it comes from.

    ``given`` is the environment passed to this run (None when a rollback restores); ``stored`` the
    text of the release's kept env file (None if there is none); ``slot_file`` the text of the slot's
    current env file (None if there is none). Returns ``(env, source)`` with source ``given``,
    ``stored`` (the release's kept environment) or ``slot`` (the slot's own file, still written for
    this release: a host set up before environments were kept per release).
    Raises EnvFileError when there is nothing to restore.
    """
    if given is not None:
        return dict(given), 'given'
    if stored is not None:
        return split(parse(stored, 'the kept environment of release %s' % release))[0], 'stored'
    if slot_file is not None:
        app_env, written_for = split(parse(slot_file, 'the slot env file'))
        if written_for == release:
            return app_env, 'slot'
    raise EnvFileError(
        'No environment is kept on this host for release %s (it was never live with this version of '
        'baton.deploy, or a deploy that failed has since written the slot\'s env file). Give the release its '
        'environment with -e \'{"baton_env": {...}}\'' % release)


def kept_env(slot_file):
    """What to keep from the live slot's env file: ``(release, text of the release's env file)``.

    ``(None, None)`` when the file does not name a valid release.
    """
    app_env, release = split(parse(slot_file, 'the live slot env file'))
    if release is None:
        return None, None
    return release, render(app_env, release=release)


def read_file(path):
    """The text of ``path``, or None if it does not exist."""
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_slot_env(root, env_dir, slot, release, port, gid=None, env=None, keep_slot=None):
    """Point ``slot``'s env file at ``release``: the rotation's use of this file, in one call.

    First keeps the environment the live slot ``keep_slot`` runs with as that of its release, then
    writes the slot's file with ``env``, or (``env`` None, a rollback) with the environment kept for
    ``release``. A file is written (atomically, 0640, group ``gid``) only when its text changes.
    Returns where the environment came from (see :func:`choose_env`). Raises EnvFileError or
    ValueError (naming keys, never values).
    """
    def write_if_changed(path, text):
        if read_file(path) != text:
            atomic_write(path, text, mode=0o640, gid=gid)

    path = os.path.join(root, 'slots', '%d.env' % slot)
    if keep_slot is not None and keep_slot != slot:
        live = read_file(os.path.join(root, 'slots', '%d.env' % keep_slot))
        if live is not None:
            kept_release, text = kept_env(live)
            if kept_release is not None:
                write_if_changed(release_env_path(env_dir, kept_release), text)
    restore = env is None
    env, source = choose_env(
        release,
        given=env,
        stored=read_file(release_env_path(env_dir, release)) if restore else None,
        slot_file=read_file(path) if restore else None,
    )
    write_if_changed(path, render(env, slot=slot, port=port, release=release))
    return source
