#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prune_releases
short_description: Remove old release directories of an app, never one a slot runs or rolls back to
version_added: 0.2.0
description:
  - Removes the release directories under C(<root>/releases) except the O(keep) newest (by modification time)
    and every release that must stay. These are the release of each slot in the deploy state file (what a
    rollback goes back to), the target of each C(<root>/slots/<N>) link, and O(release).
  - Removes the kept environment of each removed release (C(<env_dir>/<release>.env)) and of releases whose
    directory is gone.
  - Directories whose names start with a dot (builds in progress) are left alone.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  app:
    description:
      - Name of the app, used for the default O(path) and O(env_dir).
    type: str
    required: true
  root:
    description:
      - Root of the app's files on the host (C(baton_root)).
    type: path
    required: true
  keep:
    description:
      - How many of the newest releases to keep, besides those that must stay.
    type: int
    default: 5
  release:
    description:
      - The release just deployed; it always stays.
    type: str
  path:
    description:
      - The deploy state file.
      - Defaults to C(/var/lib/baton/<app>/state.json).
    type: path
  env_dir:
    description:
      - Where each release's environment is kept (see M(baton.deploy.slot_env)).
      - Defaults to C(/var/lib/baton/<app>/env).
    type: path
seealso:
  - module: baton.deploy.deploy_state
  - module: baton.deploy.slot_env
"""

EXAMPLES = r"""
- name: Keep the 5 newest releases of shop, and those its slots run or roll back to
  baton.deploy.prune_releases:
    app: shop
    root: /srv/shop
    keep: 5
    release: v42
"""

RETURN = r"""
removed:
  description: The releases removed (or that would be removed in check mode), sorted by name.
  returned: success
  type: list
  elements: str
  sample: [v36, v37]
pinned:
  description: The releases that stay whatever their age, sorted by name.
  returned: success
  type: list
  elements: str
  sample: [v41, v42]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import (
    DEFAULT_BASE_DIR,
    StateFileError,
    default_path,
    load,
    validate_app_name,
)
from ansible_collections.baton.deploy.plugins.module_utils.releases import prune
from ansible_collections.baton.deploy.plugins.module_utils.slot_env import ENV_DIR_NAME


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            root=dict(type='path', required=True),
            keep=dict(type='int', default=5),
            release=dict(type='str'),
            path=dict(type='path'),
            env_dir=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    error = validate_app_name(p['app'])
    if error:
        module.fail_json(msg=error)
    if p['keep'] < 0:
        module.fail_json(msg='keep must be >= 0, got %d' % p['keep'])
    try:
        state, _exists = load(p['path'] or default_path(p['app']), app=p['app'])
    except StateFileError as exc:
        module.fail_json(msg='%s No release was removed.' % exc)
    env_dir = p['env_dir'] or os.path.join(DEFAULT_BASE_DIR, p['app'], ENV_DIR_NAME)
    try:
        result = prune(p['root'], p['keep'], state, env_dir, release=p['release'], check_mode=module.check_mode)
    except OSError as exc:
        module.fail_json(msg='Could not remove the old releases of %s: %s. Fix the cause (the release directories '
                             'under %s/releases) and run the deploy again.' % (p['app'], exc, p['root']))
    result.pop('stale_envs')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
