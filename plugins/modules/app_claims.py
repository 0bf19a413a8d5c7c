#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_claims
short_description: Record the names and ports an app uses on a host, refusing those another app holds
version_added: 0.2.0
description:
  - Several apps can share a host and its proxy. Each records its claim (proxy, proxy port, site names, slot
    ports) in C(/var/lib/baton/<app>/claims.json).
  - Before writing, the claim is compared with every other app's claim on the host. The module fails, and
    writes nothing, when another app already serves one of the names on the same proxy port (V(_), the
    catch-all site, included), uses one of the slot ports (or has it as its proxy port), runs a slot on the
    proxy port, or runs behind the other proxy (a host runs one proxy).
  - The file is replaced atomically with mode C(0644). Recording the same claim again changes nothing.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The claims are compared as usual; nothing is written.
  diff_mode:
    support: full
options:
  app:
    description: Name of the app.
    type: str
    required: true
  proxy:
    description: The proxy in front of the app's slots.
    type: str
    required: true
  proxy_port:
    description: Port the proxy serves the app's site on.
    type: int
    required: true
  names:
    description: Names of the app's site; V(_) is the catch-all site.
    type: list
    elements: str
    required: true
  slot_ports:
    description: Ports of the app's two slots.
    type: list
    elements: int
    required: true
  base_dir:
    description: Directory holding one directory per app.
    type: path
    default: /var/lib/baton
"""

EXAMPLES = r"""
- name: Claim shop.example on port 80 and the slot ports 9101/9102
  baton.deploy.app_claims:
    app: shop
    proxy: nginx
    proxy_port: 80
    names: [shop.example, www.shop.example]
    slot_ports: [9101, 9102]
"""

RETURN = r"""
claim:
  description: The claim recorded for the app.
  returned: success
  type: dict
  sample: {"app": "shop", "proxy": "nginx", "proxy_port": 80, "names": ["shop.example"], "slot_ports": [9101, 9102]}
others:
  description: The other apps' claims found on the host, by app.
  returned: always
  type: dict
conflicts:
  description: One message per conflict with another app's claim.
  returned: failure
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.app_claims import (
    CLAIMS_FILE_NAME, conflicts, dump_claim, make_claim, read_claims)
from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import atomic_write, validate_app_name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            proxy=dict(type='str', required=True),
            proxy_port=dict(type='int', required=True),
            names=dict(type='list', elements='str', required=True),
            slot_ports=dict(type='list', elements='int', required=True),
            base_dir=dict(type='path', default='/var/lib/baton'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    error = validate_app_name(p['app'])
    if error:
        module.fail_json(msg=error)
    claim = make_claim(p['app'], p['proxy'], p['proxy_port'], p['names'], p['slot_ports'])
    others, unreadable = read_claims(p['base_dir'])
    previous = others.pop(p['app'], None)
    found = conflicts(claim, others)
    if found or unreadable:
        module.fail_json(
            msg='%s cannot be set up on this host: %s. Nothing was changed; choose other names or ports for %s '
                '(or remove the other app first).' % (p['app'], '; '.join(found + ['unreadable claims: %s' % u
                                                                                   for u in unreadable]), p['app']),
            conflicts=found, others=others, claim=claim)
    changed = previous != claim
    path = os.path.join(p['base_dir'], p['app'], CLAIMS_FILE_NAME)
    if changed and not module.check_mode:
        try:
            atomic_write(path, dump_claim(claim), mode=0o644, dir_mode=0o750)
        except OSError as exc:
            module.fail_json(msg='Could not write %s: %s' % (path, exc), claim=claim, others=others)
    result = dict(changed=changed, claim=claim, others=others)
    if module._diff:
        result['diff'] = dict(before=dump_claim(previous) if previous else '', after=dump_claim(claim),
                              before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
