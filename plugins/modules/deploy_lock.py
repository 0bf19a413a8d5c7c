#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take or release the per-app deploy lock on the target host
version_added: 0.1.0
description:
  - Takes (O(state=present)) or releases (O(state=absent)) a per-app deploy lock on the target host, so that
    two deploys of the same app cannot run at the same time. The lock is a small JSON file, by default
    C(/var/lib/baton/<app>/deploy.lock), recording the owner, the time it was taken and a random token.
  - The lock file is created atomically with C(O_CREAT|O_EXCL) and mode C(0640). A missing parent directory
    is created with mode C(0750).
  - If another deploy holds the lock, the module fails at once (it does not wait), naming the holder and
    how long it has held the lock. A lock older than O(stale_after) seconds is taken over with a warning,
    and O(force=true) takes over any lock.
  - The returned RV(token) identifies the holder. Releasing requires that token, so a deploy whose lock was
    taken over cannot release the lock of the deploy that took it over.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reports whether the lock would be acquired, taken over or released, and fails
        if it is held by another deploy, but writes nothing.
  diff_mode:
    support: none
options:
  app:
    description:
      - Name of the app. Must start with a lowercase letter and contain only lowercase letters, digits,
        V(_) and V(-), at most 32 characters.
    type: str
    required: true
  path:
    description:
      - Path of the lock file.
      - Defaults to C(/var/lib/baton/<app>/deploy.lock).
    type: path
  state:
    description:
      - V(present) acquires the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description:
      - Who holds the lock, shown to anyone who finds the lock taken, for example V(alice@controller pid 1234).
      - The module runs on the target host and cannot know the controller, so pass this explicitly.
        Defaults to C(<user>@<target host>), with the user taken from E(SUDO_USER) or E(USER).
    type: str
  token:
    description:
      - With O(state=present), the token to hold the lock with. If the lock is already held with this token,
        nothing changes. Defaults to a new random token.
      - With O(state=absent), the token returned when the lock was acquired. The lock is only released if the
        token matches. Required with O(state=absent) unless O(force=true).
    type: str
  stale_after:
    description:
      - Age in seconds after which a lock held by someone else counts as stale and is taken over, with a warning.
    type: int
    default: 3600
  read:
    description:
      - Names of small files in the lock's directory (for example V(setup.id)) to read and return in RV(files),
        with O(state=present), in the same module run that takes the lock.
      - Plain file names only. A file that cannot be read or is over 64 KiB is returned as V(null), with a
        warning.
    type: list
    elements: str
    default: []
  force:
    description:
      - With O(state=present), take over the lock whoever holds it and however old it is.
      - With O(state=absent), remove the lock whoever holds it.
      - Only use this when you are sure no other deploy of the app is running.
    type: bool
    default: false
notes:
  - The lock only protects against other deploys that use this module on the same host with the same path.
seealso:
  - module: baton.deploy.deploy_state
"""

EXAMPLES = r"""
- name: Take the deploy lock of shop
  baton.deploy.deploy_lock:
    app: shop
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    read: [setup.id]  # shop_lock.files['setup.id']: the file's text, or null
  register: shop_lock

- name: Release it at the end of the deploy
  baton.deploy.deploy_lock:
    app: shop
    state: absent
    token: "{{ shop_lock.token }}"

- name: Take over the lock of a deploy that died
  baton.deploy.deploy_lock:
    app: shop
    owner: bob@laptop
    force: true

- name: Remove a leftover lock whoever holds it
  baton.deploy.deploy_lock:
    app: shop
    state: absent
    force: true
"""

RETURN = r"""
token:
  description:
    - With O(state=present), the token that identifies the holder; pass it to O(state=absent) to release the lock.
    - With O(state=absent), the O(token) that was passed.
  returned: always
  type: str
  sample: 6f1b0d7c3a5e4f2a9b8c7d6e5f4a3b2c
owner:
  description:
    - With O(state=present), the owner of the lock (the holder's recorded owner if it was already held with O(token)).
    - With O(state=absent), the owner of the released lock, or V(null) if there was no lock.
  returned: always
  type: str
  sample: alice@controller pid 1234
acquired:
  description: Whether the lock is held with RV(token) after the module ran (or would be, in check mode).
  returned: always
  type: bool
  sample: true
took_over:
  description: Whether a lock held by someone else was taken over because it was stale or O(force=true).
  returned: always
  type: bool
  sample: false
previous_holder:
  description:
    - The lock that was taken over or released, with C(owner), C(time), C(timestamp), C(token) and, when known,
      C(app) and C(host). V(null) if there was none.
  returned: always
  type: dict
  sample: {"owner": "bob@laptop pid 999", "time": "2026-11-02T09:00:00Z", "timestamp": 1793610000.0,
           "token": "0a1b2c3d", "app": "shop", "host": "web1"}
released:
  description: Whether the lock was removed (or would be, in check mode).
  returned: when O(state=absent)
  type: bool
  sample: true
path:
  description: The path of the lock file.
  returned: always
  type: str
  sample: /var/lib/baton/shop/deploy.lock
files:
  description:
    - With O(state=present), the text of each file named in O(read), by name; V(null) for a file that does not
      exist. Read once the lock is held (or would be, in check mode).
  returned: with O(state=present), when the lock is acquired
  type: dict
  sample: {"setup.id": "3f2a9c0e5b7d1a4f6e8c2b0a9d7f5e3c1b2a4d6f\n"}
holder:
  description: The current holder of the lock (same keys as RV(previous_holder)), when the module fails because
    someone else holds it.
  returned: on failure, when the lock is held by someone else
  type: dict
  sample: {"owner": "bob@laptop pid 999", "time": "2026-11-02T09:00:00Z", "timestamp": 1793610000.0,
           "token": "0a1b2c3d", "app": "shop", "host": "web1"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.deploy_lock import (
    DEFAULT_STALE_AFTER,
    LockError,
    acquire,
    default_lock_path,
    default_owner,
    read_beside,
    release,
    validate_read_names,
    validate_token,
)
from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import validate_app_name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            path=dict(type='path'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            owner=dict(type='str'),
            token=dict(type='str', no_log=False),
            stale_after=dict(type='int', default=DEFAULT_STALE_AFTER),
            force=dict(type='bool', default=False),
            read=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    # AnsibleModule adds the file's attributes (state, owner, mode, ...) to every result that has a 'path' key,
    # which would overwrite this module's own return values of the same names.
    module.add_path_info = lambda kwargs: kwargs
    params = module.params
    app = params['app']
    error = validate_app_name(app) or validate_token(params['token']) or validate_read_names(params['read'])
    if error:
        module.fail_json(msg=error)
    if params['stale_after'] < 0:
        module.fail_json(msg='stale_after must be >= 0 seconds, got %d' % params['stale_after'])
    path = params['path'] or default_lock_path(app)

    try:
        if params['state'] == 'present':
            owner = params['owner'] or default_owner()
            result = acquire(path, app, owner, token=params['token'], stale_after=params['stale_after'],
                             force=params['force'], check_mode=module.check_mode)
            result['files'], unread = read_beside(path, params['read'])
            result['warnings'].extend(unread)
        else:
            if params['token'] is None and not params['force']:
                module.fail_json(msg='state=absent needs the token returned when the lock was acquired, '
                                     'or force=true to remove the lock whoever holds it', path=path)
            result = release(path, app, token=params['token'], force=params['force'], check_mode=module.check_mode)
    except LockError as exc:
        module.fail_json(msg=str(exc), path=path, acquired=False, took_over=False, holder=exc.holder)
    except OSError as exc:
        module.fail_json(msg='Could not %s the deploy lock %s: %s'
                             % ('acquire' if params['state'] == 'present' else 'release', path, exc), path=path)

    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
