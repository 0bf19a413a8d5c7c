#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: proxy_config
short_description: Change a proxy configuration file, validate it and apply it, or put the old one back
version_added: 0.1.0
description:
  - Writes O(content) to O(path) atomically, runs the O(validate) command, then applies the configuration, either
    with the O(apply) command (for example C(systemctl reload nginx)) or by POSTing the output of O(validate) to
    O(apply_url) (for example C(caddy adapt --validate) to Caddy's admin API C(/load)), over TCP or over the unix
    socket O(apply_socket).
  - If validation or applying fails, the previous content of O(path) is restored and the module fails with a message
    that says what failed and that the proxy still runs its previous configuration.
  - Without O(content) the file is left alone and the current configuration is validated and applied (a reload).
  - When O(content) is already in place nothing is run and C(changed=false), unless O(force=true).
  - One module run instead of a template, a validation, a reload and a rescue; the rotation uses it for the flip, so
    that the proxy serves the new slot as soon as possible after it is ready.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written, validated or applied; C(changed) says whether O(content) differs.
  diff_mode:
    support: full
options:
  path:
    description:
      - The configuration file to change (its directory must exist).
    type: path
    required: true
  content:
    description:
      - The new content of O(path). Omit it to validate and apply the configuration as it is.
    type: str
  mode:
    description:
      - Permissions of O(path) when it is written.
    type: raw
    default: '0644'
  validate:
    description:
      - Command (a list of arguments, no shell) that checks the whole configuration and exits non-zero when it is
        invalid. With O(apply_url), its standard output is the configuration that is POSTed.
    type: list
    elements: str
    required: true
  apply:
    description:
      - Command (a list of arguments, no shell) that makes the proxy use the configuration without a restart.
      - Exactly one of O(apply) and O(apply_url) is required.
    type: list
    elements: str
  apply_url:
    description:
      - URL to which the output of O(validate) is POSTed as C(application/json), for example
        V(http://localhost/load) with O(apply_socket) for Caddy's admin socket. Anything but HTTP 200 is a failure.
    type: str
  apply_socket:
    description:
      - Unix socket to send the POST to O(apply_url) through, instead of connecting to the URL's host (as
        C(curl --unix-socket)). Only the URL's path is used; the C(Host) header is then empty, as Caddy's admin
        API requires on a unix socket. A socket that only root can open keeps other local users, the app
        included, away from the proxy's configuration.
    type: path
  force:
    description:
      - Validate and apply even when O(content) is already in place.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Point nginx at slot 2 (nginx -t, then reload; restored on failure)
  baton.deploy.proxy_config:
    path: /etc/nginx/baton/shop.upstream.conf
    content: |
      upstream baton_shop {
          server 127.0.0.1:8002 max_fails=0;
      }
    validate: [nginx, -t]
    apply: [systemctl, reload, nginx]

- name: Point Caddy at slot 1 through its admin API (a unix socket only root and caddy can open)
  baton.deploy.proxy_config:
    path: /etc/caddy/baton/shop.upstream
    content: "to 127.0.0.1:8001\n"
    validate: [caddy, adapt, --config, /etc/caddy/Caddyfile, --adapter, caddyfile, --validate]
    apply_url: http://localhost/load
    apply_socket: /run/caddy-admin/admin.sock

- name: Reload nginx after a site change
  baton.deploy.proxy_config:
    path: /etc/nginx/sites-enabled/baton-shop.conf
    validate: [nginx, -t]
    apply: [systemctl, reload, nginx]
"""

RETURN = r"""
applied:
  description: Whether the configuration was validated and applied in this run.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds the module took to write, validate and apply.
  returned: always
  type: float
  sample: 0.084
"""

from urllib.error import HTTPError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.baton.deploy.plugins.module_utils.proxy_config import (
    ProxyConfigError,
    apply_config,
)


def post_json(url, body, unix_socket=None):
    headers = {'Content-Type': 'application/json'}
    if unix_socket is not None:
        headers['Host'] = ''  # no Internet host behind a unix socket (RFC 7230 5.4); Caddy refuses any other
    try:
        response = open_url(url, data=body, method='POST', headers=headers, timeout=30, follow_redirects='none',
                            unix_socket=unix_socket)
    except HTTPError as exc:  # the proxy's own explanation is in the body (Caddy: {"error": "..."})
        raise RuntimeError('HTTP %d: %s' % (exc.code, exc.read().decode('utf-8', 'replace').strip()[:2000]))
    return response.status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            content=dict(type='str'),
            mode=dict(type='raw', default='0644'),
            validate=dict(type='list', elements='str', required=True),
            apply=dict(type='list', elements='str'),
            apply_url=dict(type='str'),
            apply_socket=dict(type='path'),
            force=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('apply', 'apply_url')],
        required_one_of=[('apply', 'apply_url')],
        required_by={'apply_socket': 'apply_url'},
        supports_check_mode=True,
    )
    p = module.params
    if not p['validate'] or (p['apply'] is not None and not p['apply']):
        module.fail_json(msg='validate and apply must be non-empty commands')
    try:
        mode = int(str(p['mode']), 8)
    except ValueError:
        module.fail_json(msg='mode must be an octal string such as 0644, got %r' % p['mode'])

    def run(argv):
        return module.run_command(argv)

    try:
        result = apply_config(p['path'], p['content'], p['validate'], run, apply=p['apply'],
                              apply_url=p['apply_url'], apply_socket=p['apply_socket'], post=post_json, mode=mode, force=p['force'],
                              check_mode=module.check_mode)
    except ProxyConfigError as exc:
        module.fail_json(msg=str(exc), restored=exc.restored)
    except OSError as exc:
        module.fail_json(msg='cannot write %s: %s' % (p['path'], exc))
    output = {'changed': result['changed'], 'applied': result['applied'], 'elapsed': result['elapsed']}
    if module._diff:
        output['diff'] = {'before': result['before'], 'after': result['after'],
                          'before_header': p['path'], 'after_header': p['path']}
    module.exit_json(**output)


if __name__ == '__main__':
    main()
