# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The gate: the file that tells the proxy which slot is live, without a configuration change.

An app's site lists both slots, in two upstream groups (nginx) or two ``reverse_proxy`` handlers
(Caddy): each one has its own slot first and the other slot as a backup. On every request the
proxy stats ``<gate dir>/slot1``: when it exists the slot 1 group serves, otherwise the slot 2
group. A flip therefore creates or removes one file. The proxy's configuration is not reloaded,
so no client connection is closed (a reload closes idle keep-alive connections, and a client
that never resends a POST loses the one it was writing at that moment).

Creating the file (``O_CREAT | O_EXCL``) and removing it are each one atomic directory
operation: a request sees either the old or the new slot, never neither.
"""

from __future__ import annotations

import errno
import os

SLOT1_FILE_NAME = 'slot1'
SLOTS = (1, 2)


class GateError(Exception):
    """The gate could not be read or changed."""


def slot_file(gate_dir):
    return os.path.join(gate_dir, SLOT1_FILE_NAME)


def read_gate(gate_dir):
    """The live slot the gate names (1 or 2), or None when the gate directory does not exist."""
    if not os.path.isdir(gate_dir):
        return None
    return 1 if os.path.lexists(slot_file(gate_dir)) else 2


def validate_slot(slot):
    """Error message for a slot that is not 1 or 2, else None."""
    if slot not in SLOTS:
        return 'slot must be 1 or 2, got %r' % (slot,)
    return None


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plan(gate_dir, slot, initial=False):
    """What set_gate would do: (changed, previous slot or None, create the directory?).

    With ``initial`` an existing gate is left as it is: the setup names the recorded active slot
    when it creates the gate, and only the rotation moves it afterwards.
    """
    previous = read_gate(gate_dir)
    if previous is None:
        return True, None, True
    if initial:
        return False, previous, False
    return previous != slot, previous, False


def set_gate(gate_dir, slot, initial=False, dir_mode=0o755, check_mode=False):
    """Make the gate name ``slot``. Returns a dict: changed, slot (now live), previous."""
    error = validate_slot(slot)
    if error:
        raise GateError(error)
    changed, previous, create_dir = plan(gate_dir, slot, initial=initial)
    live = previous if (initial and previous is not None) else slot
    if not changed or check_mode:
        return dict(changed=changed, slot=live, previous=previous)
    try:
        if create_dir:
            os.makedirs(gate_dir, mode=dir_mode)
            os.chmod(gate_dir, dir_mode)
        path = slot_file(gate_dir)
        if slot == 1:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            else:
                os.close(fd)
        else:
            try:
                os.unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        _fsync_dir(gate_dir)
    except OSError as exc:
        raise GateError('could not set the gate %s to slot %s: %s' % (gate_dir, slot, exc))
    return dict(changed=True, slot=live, previous=previous)
