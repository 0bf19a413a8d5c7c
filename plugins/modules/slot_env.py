#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: slot_env
short_description: Write the environment file of an app slot, and keep each release's environment
version_added: 0.2.0
description:
  - Writes C(<root>/slots/<slot>.env), the environment a slot of the app starts with, with mode C(0640),
    owner C(root) and group O(group). It holds the app's environment (O(env)), then C(PORT), C(BATON_SLOT) and
    C(BATON_RELEASE). Values are written as JSON strings, which systemd's C(EnvironmentFile=) and Baton's
    supervisor launcher read alike.
  - First, with O(keep_slot), keeps the environment of the live slot as the environment of the release it
    runs, in C(<env_dir>/<release>.env) (mode C(0640), owner C(root), group O(group)). As only a slot that is
    not live is ever pointed at a new release, this is always the environment a release ran with while it
    served, never that of a deploy that failed.
  - With O(restore=true) the slot gets the kept environment of O(release) instead of O(env) (a rollback). A
    host set up by an earlier version keeps no environment per release; the slot's own file is then used if it
    was written for O(release). If there is neither, the module fails and changes nothing.
  - Environment values never appear in the module's result; errors name keys, not values.
  - Files are replaced atomically.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details:
      - The files hold secrets, so no diff is shown.
options:
  app:
    description:
      - Name of the app, used for the default O(env_dir).
    type: str
    required: true
  root:
    description:
      - Root of the app's files on the host (C(baton_root)); the slot's env file is C(<root>/slots/<slot>.env).
    type: path
    required: true
  slot:
    description:
      - The slot whose env file is written.
    type: int
    choices: [1, 2]
    required: true
  release:
    description:
      - The release the slot is pointed at.
    type: str
    required: true
  port:
    description:
      - The slot's port, written as C(PORT).
    type: int
    required: true
  group:
    description:
      - Group of the files written (the app's group, so the app can read its own environment).
    type: str
    required: true
  env:
    description:
      - The app's environment (names and string values). Names must be valid environment variable names, and
        values must not contain newlines or other control characters.
      - Required unless O(restore=true), and not allowed with it.
    type: dict
  restore:
    description:
      - Write the environment O(release) last ran with while live, instead of O(env).
    type: bool
    default: false
  keep_slot:
    description:
      - The live slot. Its env file is kept as the environment of the release it names before anything else
        is written. Omit it when no slot is live.
    type: int
    choices: [1, 2]
  env_dir:
    description:
      - Where each release's environment is kept.
      - Defaults to C(/var/lib/baton/<app>/env).
    type: path
notes:
  - Run the module with the deploy lock held (see M(baton.deploy.deploy_lock)).
  - M(baton.deploy.prune_releases) removes a release's kept environment with the release.
seealso:
  - module: baton.deploy.deploy_state
  - module: baton.deploy.prune_releases
"""

EXAMPLES = r"""
- name: Point slot 2 at release v42 with the environment of this deploy (slot 1 is live)
  baton.deploy.slot_env:
    app: shop
    root: /srv/shop
    slot: 2
    release: v42
    port: 8002
    group: shop
    env: "{{ shop_env }}"
    keep_slot: 1
  no_log: true

- name: Roll back slot 1 to release v41 with the environment it last ran with
  baton.deploy.slot_env:
    app: shop
    root: /srv/shop
    slot: 1
    release: v41
    port: 8001
    group: shop
    restore: true
    keep_slot: 2
"""

RETURN = r"""
path:
  description: The slot's env file.
  returned: always
  type: str
  sample: /srv/shop/slots/2.env
source:
  description:
    - Where the slot's environment came from. V(given) is O(env), V(stored) the release's kept environment,
      V(slot) the slot's own file (a host set up by an earlier version).
  returned: success
  type: str
  sample: stored
kept_release:
  description: The release whose environment was kept from the live slot (O(keep_slot)), or V(null).
  returned: success
  type: str
  sample: v41
"""

import grp
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import (
    DEFAULT_BASE_DIR,
    atomic_write,
    validate_app_name,
)
from ansible_collections.baton.deploy.plugins.module_utils.slot_env import (
    ENV_DIR_NAME,
    RELEASE_RE,
    EnvFileError,
    choose_env,
    kept_env,
    read_file,
    release_env_path,
    render,
)


def write_if_changed(module, path, text, gid):
    if read_file(path) == text:
        return False
    if not module.check_mode:
        atomic_write(path, text, mode=0o640, gid=gid)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            root=dict(type='path', required=True),
            slot=dict(type='int', required=True, choices=[1, 2]),
            release=dict(type='str', required=True),
            port=dict(type='int', required=True),
            group=dict(type='str', required=True),
            env=dict(type='dict', no_log=True),
            restore=dict(type='bool', default=False),
            keep_slot=dict(type='int', choices=[1, 2]),
            env_dir=dict(type='path'),
        ),
        required_if=[('restore', False, ('env',))],
        supports_check_mode=True,
    )
    module.add_path_info = lambda kwargs: kwargs  # 'path' is this module's own return value
    p = module.params
    error = validate_app_name(p['app'])
    if error:
        module.fail_json(msg=error)
    if p['restore'] and p['env'] is not None:
        module.fail_json(msg='env and restore=true exclude each other: a restore writes the kept environment')
    if not RELEASE_RE.match(p['release']):
        module.fail_json(msg='release must match [A-Za-z0-9][A-Za-z0-9._+-]*, got %r' % p['release'])
    try:
        gid = grp.getgrnam(p['group']).gr_gid
    except KeyError:
        module.fail_json(msg='There is no group %r on the host. Nothing was changed.' % p['group'])
    env_dir = p['env_dir'] or os.path.join(DEFAULT_BASE_DIR, p['app'], ENV_DIR_NAME)
    path = os.path.join(p['root'], 'slots', '%d.env' % p['slot'])
    changed = False
    kept_release = None
    try:
        if p['keep_slot'] is not None and p['keep_slot'] != p['slot']:
            live = read_file(os.path.join(p['root'], 'slots', '%d.env' % p['keep_slot']))
            if live is not None:
                kept_release, text = kept_env(live)
                if kept_release is not None:
                    changed |= write_if_changed(module, release_env_path(env_dir, kept_release), text, gid)
        env, source = choose_env(
            p['release'],
            given=None if p['restore'] else p['env'],
            stored=read_file(release_env_path(env_dir, p['release'])) if p['restore'] else None,
            slot_file=read_file(path) if p['restore'] else None,
        )
        text = render(env, slot=p['slot'], port=p['port'], release=p['release'])
    except (EnvFileError, ValueError) as exc:
        module.fail_json(msg='%s. Slot %d was not changed.' % (exc, p['slot']), path=path)
    changed |= write_if_changed(module, path, text, gid)
    module.exit_json(changed=changed, path=path, source=source, kept_release=kept_release)


if __name__ == '__main__':
    main()
