#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: proxy_gate
short_description: Route an app's traffic to slot 1 or slot 2 by a file the proxy checks on every request
version_added: 0.3.0
description:
  - An app's proxy site lists both slots, in two groups (nginx upstreams, Caddy C(reverse_proxy) handlers), each
    with its own slot first and the other slot as a backup. The proxy picks the group on every request from the
    gate directory O(path) - C(slot1) exists means slot 1, otherwise slot 2.
  - This module creates or removes C(slot1), each one atomic directory operation, and syncs the directory. The
    proxy's configuration does not change and is not reloaded, so no client connection is closed by a flip.
  - With O(initial=true) an existing gate is left alone; the directory is created naming O(slot) only when it
    does not exist yet (the setup does this with the slot the deploy state records).
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is created or removed; C(changed) says whether the gate would move.
  diff_mode:
    support: full
options:
  path:
    description:
      - The app's gate directory, for example C(/etc/nginx/baton/shop.gate). Its parent must exist.
    type: path
    required: true
  slot:
    description:
      - The slot that must serve the app's traffic.
    type: int
    required: true
    choices: [1, 2]
  initial:
    description:
      - Create the gate naming O(slot) only if it does not exist; never move an existing gate.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Route shop's traffic to slot 2
  baton.deploy.proxy_gate:
    path: /etc/nginx/baton/shop.gate
    slot: 2

- name: Create the gate at setup, naming the recorded active slot (an existing gate is kept)
  baton.deploy.proxy_gate:
    path: /etc/caddy/baton/shop.gate
    slot: 1
    initial: true
"""

RETURN = r"""
slot:
  description: The slot the gate names after this run.
  returned: success
  type: int
  sample: 2
previous:
  description: The slot the gate named before this run, or null when the gate did not exist.
  returned: success
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.proxy_gate import GateError, set_gate


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            slot=dict(type='int', required=True, choices=[1, 2]),
            initial=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = set_gate(p['path'], p['slot'], initial=p['initial'], check_mode=module.check_mode)
    except GateError as exc:
        module.fail_json(msg='%s. The proxy still routes to the slot it did before.' % exc)
    if module._diff:
        result['diff'] = dict(before='slot %s\n' % result['previous'] if result['previous'] else '',
                              after='slot %s\n' % result['slot'], before_header=p['path'], after_header=p['path'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
