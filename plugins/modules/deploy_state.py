#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_state
short_description: Read or record which slot of a two-slot app is live
version_added: 0.1.0
description:
  - Reads or updates the per-app deploy state file on the target host, by default C(/var/lib/baton/<app>/state.json).
  - The state file is JSON and records the live (active) slot, the slot the next deploy goes to, the release
    and port of each of the two slots, and the most recent deploys, rollbacks and flip-backs.
  - With O(state=read) the file is only read. If it does not exist yet, a fresh default state is returned
    (no active slot, next deploy to slot V(1)) and RV(exists=false).
  - With O(state=record) the module records that O(release) is now live in O(active_slot). It sets that slot's
    release, makes it the active slot, makes the other slot the next slot and appends an entry to the history.
    Recording a release that is already live in the active slot changes nothing and adds no history entry.
  - The file is replaced atomically (temporary file in the same directory, fsync, rename, fsync of the directory)
    with mode C(0640). A missing parent directory is created with mode C(0750).
  - A state file that cannot be parsed makes the module fail with a message naming the file. The running slots
    are never touched by this module.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=record), the would-be state is computed and returned but nothing is written.
  diff_mode:
    support: full
    details:
      - The diff shows the state file before and after recording.
options:
  app:
    description:
      - Name of the app. Must start with a lowercase letter and contain only lowercase letters, digits,
        V(_) and V(-), at most 32 characters.
    type: str
    required: true
  path:
    description:
      - Path of the state file.
      - Defaults to C(/var/lib/baton/<app>/state.json).
    type: path
  state:
    description:
      - V(read) returns the current state without changing anything.
      - V(record) records that O(release) is now live in O(active_slot).
    type: str
    choices: [read, record]
    default: read
  active_slot:
    description:
      - The slot, V(1) or V(2), that now serves O(release).
      - Required with O(state=record).
    type: int
    choices: [1, 2]
  release:
    description:
      - The release (version, tag or directory name) now live in O(active_slot).
      - Required with O(state=record).
    type: str
  action:
    description:
      - What kind of change is recorded in the history.
    type: str
    choices: [deploy, rollback, flip-back]
    default: deploy
  ports:
    description:
      - "The ports of the two slots, as a mapping C({1: <port>, 2: <port>}). The two ports must differ."
      - With O(state=record), updates the ports stored in the state file. If omitted, the stored ports are kept.
      - With O(state=read), only used to fill in the default state returned when the file does not exist yet.
    type: dict
  history_size:
    description:
      - How many history entries to keep (newest last). Older entries are dropped when a new one is added.
    type: int
    default: 20
notes:
  - Run the module with the deploy lock held (see M(baton.deploy.deploy_lock)) so that two deploys do not record
    over each other.
  - If the state file is corrupt, inspect it and fix it by hand, or remove it and redeploy.
seealso:
  - module: baton.deploy.deploy_lock
  - module: baton.deploy.wait_drained
"""

EXAMPLES = r"""
- name: Find out which slot is live and where the next deploy goes
  baton.deploy.deploy_state:
    app: shop
  register: shop_state

- name: Show the next slot
  ansible.builtin.debug:
    msg: "Next deploy of shop goes to slot {{ shop_state.state.next_slot }}"

- name: Record that release 2026.11.02-1 is live in slot 2
  baton.deploy.deploy_state:
    app: shop
    state: record
    active_slot: 2
    release: 2026.11.02-1
    ports:
      1: 8081
      2: 8082

- name: Record a rollback to the previous release in slot 1
  baton.deploy.deploy_state:
    app: shop
    state: record
    action: rollback
    active_slot: 1
    release: "{{ shop_state.state.slots['1'].release }}"
"""

RETURN = r"""
state:
  description:
    - The deploy state after the module ran (with O(state=record) in check mode, the state that would be written).
    - With O(state=read) and a missing state file, a fresh default state.
  returned: always
  type: dict
  contains:
    version:
      description: Format version of the state file.
      type: int
      sample: 1
    app:
      description: The app name.
      type: str
      sample: shop
    active_slot:
      description: The live slot, or V(null) if nothing was recorded yet.
      type: int
      sample: 2
    next_slot:
      description: The slot the next deploy should go to (the slot that is not live).
      type: int
      sample: 1
    slots:
      description:
        - The two slots, keyed by V("1") and V("2"). Each has C(release) (string or V(null) if the slot never
          served a recorded release) and C(port) (integer, or V(null) if no ports were recorded yet).
      type: dict
      sample: {"1": {"release": "2026.11.01-3", "port": 8081}, "2": {"release": "2026.11.02-1", "port": 8082}}
    history:
      description:
        - The most recent changes, newest last. Each entry has C(time) (ISO 8601 UTC), C(action) (V(deploy),
          V(rollback) or V(flip-back)), C(release), C(slot), C(previous_release) and C(previous_slot).
      type: list
      elements: dict
      sample:
        - time: "2026-11-02T10:00:00Z"
          action: deploy
          release: 2026.11.02-1
          slot: 2
          previous_release: 2026.11.01-3
          previous_slot: 1
previous_state:
  description: The state before recording (a fresh default state if the file did not exist).
  returned: when O(state=record)
  type: dict
  sample: {"version": 1, "app": "shop", "active_slot": null, "next_slot": 1,
           "slots": {"1": {"release": null, "port": 8081}, "2": {"release": null, "port": 8082}}, "history": []}
path:
  description: The path of the state file.
  returned: always
  type: str
  sample: /var/lib/baton/shop/state.json
exists:
  description: Whether the state file existed before the module ran.
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import (
    ACTIONS,
    StateFileError,
    apply_record,
    atomic_write,
    default_path,
    default_state,
    dump_state,
    load,
    normalize_ports,
    validate_app_name,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            path=dict(type='path'),
            state=dict(type='str', choices=['read', 'record'], default='read'),
            active_slot=dict(type='int', choices=[1, 2]),
            release=dict(type='str'),
            action=dict(type='str', choices=list(ACTIONS), default='deploy'),
            ports=dict(type='dict'),
            history_size=dict(type='int', default=20),
        ),
        required_if=[('state', 'record', ('active_slot', 'release'))],
        supports_check_mode=True,
    )
    # AnsibleModule adds the file's attributes (state, owner, mode, ...) to every result that has a 'path' key,
    # which would overwrite this module's own return values of the same names.
    module.add_path_info = lambda kwargs: kwargs
    params = module.params
    app = params['app']

    error = validate_app_name(app)
    if error:
        module.fail_json(msg=error)
    if params['history_size'] < 0:
        module.fail_json(msg='history_size must be >= 0, got %d' % params['history_size'])
    if params['state'] == 'record' and not params['release'].strip():
        module.fail_json(msg='release must not be empty')
    try:
        ports = normalize_ports(params['ports'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    path = params['path'] or default_path(app)
    try:
        current, exists = load(path, app=app)
    except StateFileError as exc:
        module.fail_json(msg=str(exc), path=path, exists=True)
    if current is None:
        current = default_state(app, ports)

    if params['state'] == 'read':
        module.exit_json(changed=False, state=current, path=path, exists=exists)

    new, changed = apply_record(
        current,
        active_slot=params['active_slot'],
        release=params['release'],
        action=params['action'],
        ports=ports,
        history_size=params['history_size'],
    )
    if changed and not module.check_mode:
        try:
            atomic_write(path, dump_state(new))
        except OSError as exc:
            module.fail_json(msg='Could not write the deploy state file %s: %s' % (path, exc),
                             path=path, exists=exists, state=new, previous_state=current)

    result = dict(changed=changed, state=new, previous_state=current, path=path, exists=exists)
    if module._diff:
        result['diff'] = dict(
            before=dump_state(current) if exists else '',
            after=dump_state(new),
            before_header=path,
            after_header=path,
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
