# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Change one proxy configuration file, validate, apply; put the old file back on any failure.

Used by the ``baton.deploy.proxy_config`` module for the flip (rewrite the upstream so it names the
new slot) and for reloads after setup changes. Doing it in one module run, rather than a template,
a validation task, a reload task and a rescue, keeps the time between "the new slot is ready" and
"the proxy serves it" short, and keeps the restore next to the write.

How the configuration is applied is the caller's: a command (``systemctl reload nginx``) or an
HTTP POST of the validation command's output (``caddy adapt --validate`` prints the JSON that
Caddy's admin API ``/load`` takes), over TCP or a unix socket. The command runner and the HTTP poster are passed in, so the
logic is unit tested without a proxy.
"""

from __future__ import annotations

import os
import tempfile
import time


class ProxyConfigError(Exception):
    """The change could not be applied. ``restored`` says whether the old file is back in place."""

    def __init__(self, message, restored):
        super(ProxyConfigError, self).__init__(message)
        self.restored = restored


def read_bytes(path):
    """Content of ``path``, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path, data, mode):
    """Replace ``path`` with ``data`` (temp file in the same directory, fsync, rename)."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _restore(path, previous, mode):
    if previous is None:
        os.unlink(path)
    else:
        write_atomic(path, previous, mode)


def _describe(argv):
    return ' '.join(argv)


def apply_config(path, content, validate, run, apply=None, apply_url=None, apply_socket=None, post=None,
                 mode=0o644, force=False, check_mode=False, clock=time.monotonic):
    """Write ``content`` to ``path`` (if given and different), validate, apply.

    ``run(argv)`` returns ``(rc, stdout, stderr)``; ``post(url, body, unix_socket)`` returns the HTTP
    status and raises on connection errors (``apply_socket``, when given, is the unix socket to send
    the request through). Exactly one of ``apply`` (argv) and ``apply_url`` is used.
    With ``content=None`` the file is left alone and the current configuration is validated and
    applied (a reload). Nothing is run when the content is already in place, unless ``force``.

    Returns a dict: ``changed``, ``applied``, ``before``/``after`` (text, for diff mode) and
    ``elapsed``. Raises :class:`ProxyConfigError` when validation or apply fails; the previous
    file is then back in place and the message says so.
    """
    if (apply is None) == (apply_url is None):
        raise ValueError('exactly one of apply and apply_url is needed')
    start = clock()
    previous = read_bytes(path)
    new = content.encode('utf-8') if content is not None else None
    changed = new is not None and new != previous
    result = {
        'changed': changed,
        'applied': False,
        'before': (previous or b'').decode('utf-8', 'replace'),
        'after': (new if new is not None else previous or b'').decode('utf-8', 'replace'),
    }
    if check_mode or not (changed or force or new is None):
        result['elapsed'] = round(clock() - start, 3)
        return result

    if changed:
        write_atomic(path, new, mode)

    def fail(what, detail):
        if changed:
            _restore(path, previous, mode)
            state = 'The previous content of %s was restored' % path
        else:
            state = '%s was not changed' % path
        raise ProxyConfigError('%s: %s. %s and nothing was applied: the proxy still runs its previous '
                               'configuration.' % (what, detail.strip() or 'no output', state), restored=changed)

    rc, out, err = run(validate)
    if rc != 0:
        fail('validation failed (%s exited %d)' % (_describe(validate), rc), err or out)
    if apply is not None:
        rc, apply_out, apply_err = run(apply)
        if rc != 0:
            fail('applying failed (%s exited %d)' % (_describe(apply), rc), apply_err or apply_out)
    else:
        where = apply_url if apply_socket is None else '%s on %s' % (apply_url, apply_socket)
        try:
            status = post(apply_url, out, apply_socket)
        except Exception as exc:  # connection refused, permission denied, timeout, HTTP error with a body
            fail('applying failed (POST %s)' % where, str(exc))
        if status != 200:
            fail('applying failed (POST %s)' % where, 'HTTP status %s' % status)
    result['applied'] = True
    result['changed'] = True
    result['elapsed'] = round(clock() - start, 3)
    return result
