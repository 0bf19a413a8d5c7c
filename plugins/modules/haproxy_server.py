#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_server
short_description: Drain a server of an HAProxy backend, or make it ready again, through the runtime API
version_added: 0.2.0
description:
  - Sets the administrative state of one server of an HAProxy backend with the runtime API command
    C(set server BACKEND/SERVER state STATE), sent to HAProxy's local C(stats socket) (a unix socket that
    must be declared with C(level admin)).
  - With O(state=drain) (or V(maint)) and O(wait=true), then waits until the server has no current session
    left (the C(scur) column of C(show stat); in HTTP mode a session is a request being served), bounded by
    O(timeout). Not being drained by then returns RV(drained=false) with a warning, unless
    O(fail_on_timeout=true).
  - With O(state=ready) and O(wait=true), then waits until the server is operationally up (its health check
    passes), bounded by O(timeout), and fails otherwise, since a host that HAProxy does not consider up
    does not take its share of the traffic.
  - Run it on the load balancer host (for example with C(delegate_to)); it needs permission to use the socket
    (root, or a member of the socket's group).
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the current state is read and C(changed) says whether it would change; nothing is sent
        and nothing is waited for.
  diff_mode:
    support: none
options:
  backend:
    description:
      - Name of the HAProxy backend.
    type: str
    required: true
  server:
    description:
      - Name of the server in O(backend).
    type: str
    required: true
  state:
    description:
      - V(drain) stops sending new requests to the server (health checks go on); V(maint) also stops the
        health checks; V(ready) takes it back into the rotation.
    type: str
    required: true
    choices: [ready, drain, maint]
  socket:
    description:
      - Path of HAProxy's runtime API unix socket on the host the module runs on.
    type: path
    default: /run/haproxy/admin.sock
  wait:
    description:
      - Wait for the effect of the new state (no sessions left, or up), bounded by O(timeout).
    type: bool
    default: true
  timeout:
    description:
      - Maximum number of seconds to wait.
    type: float
    default: 30
  interval:
    description:
      - Seconds between two reads of the server's status. Must be greater than V(0).
    type: float
    default: 0.2
  fail_on_timeout:
    description:
      - With O(state=drain) or O(state=maint), fail if sessions are still open when O(timeout) expires instead
        of returning RV(drained=false) with a warning. O(state=ready) always fails when the server is not up in
        time.
    type: bool
    default: false
notes:
  - The state is not persisted across an HAProxy reload or restart unless HAProxy is configured with a
    C(server-state-file); a reload brings drained servers back to ready (their health checks still apply).
seealso:
  - name: HAProxy management guide, runtime API
    description: The C(set server) and C(show servers state) commands.
    link: https://docs.haproxy.org/2.6/management.html#9.3
  - module: baton.deploy.wait_drained
"""

EXAMPLES = r"""
- name: Take web2 out of the load balancer and let its requests finish (at most 30 s)
  baton.deploy.haproxy_server:
    backend: shop
    server: web2
    state: drain
  delegate_to: lb1

- name: Put it back once its health check passes
  baton.deploy.haproxy_server:
    backend: shop
    server: web2
    state: ready
    timeout: 20
  delegate_to: lb1
"""

RETURN = r"""
previous_state:
  description: Administrative state before the change.
  returned: always
  type: str
  sample: ready
state:
  description: Administrative state at the end (in check mode, the state it would have).
  returned: always
  type: str
  sample: drain
operational:
  description: Operational state at the end, from the health checks (V(stopped), V(starting), V(running), V(stopping)).
  returned: always
  type: str
  sample: running
check:
  description: Last health check status (the C(check_status) column of C(show stat), e.g. C(L7OK), C(L4CON)).
  returned: always
  type: str
  sample: L7OK
initial_sessions:
  description: Current sessions of the server before the change.
  returned: always
  type: int
  sample: 4
sessions:
  description: Current sessions of the server at the end.
  returned: always
  type: int
  sample: 0
drained:
  description: Whether the sessions reached 0 before O(timeout).
  returned: when O(state) is V(drain) or V(maint) and not in check mode
  type: bool
  sample: true
up:
  description: Whether the server was up before O(timeout).
  returned: when O(state=ready) and not in check mode
  type: bool
  sample: true
elapsed:
  description: Seconds spent, rounded to milliseconds.
  returned: always
  type: float
  sample: 1.204
attempts:
  description: Number of times the server's status was read.
  returned: always
  type: int
  sample: 7
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.haproxy import (
    STATES,
    HAProxyError,
    RuntimeAPI,
    set_server_state,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type='str', required=True),
            server=dict(type='str', required=True),
            state=dict(type='str', required=True, choices=list(STATES)),
            socket=dict(type='path', default='/run/haproxy/admin.sock'),
            wait=dict(type='bool', default=True),
            timeout=dict(type='float', default=30),
            interval=dict(type='float', default=0.2),
            fail_on_timeout=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p['interval'] <= 0 or p['timeout'] < 0:
        module.fail_json(msg='Invalid parameters: interval must be > 0 and timeout >= 0 seconds')
    name = '%s/%s' % (p['backend'], p['server'])
    try:
        result = set_server_state(RuntimeAPI(p['socket']), p['backend'], p['server'], p['state'], wait=p['wait'],
                                  timeout=p['timeout'], interval=p['interval'], check_mode=module.check_mode)
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))

    if p['state'] == 'ready' and result.get('up') is False and p['wait']:
        module.fail_json(msg='HAProxy server %s is ready but not up after %g s: its health check does not pass '
                             '(last check: %s, state %s). It receives no traffic.'
                             % (name, p['timeout'], result['check'] or 'none', result['operational']), **result)
    if result.get('drained') is False and p['wait']:
        message = ('HAProxy server %s still has %d session(s) after %g s in state %s'
                   % (name, result['sessions'], p['timeout'], p['state']))
        if p['fail_on_timeout']:
            module.fail_json(msg=message, **result)
        module.warn(message + '; going on (bounded by timeout)')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
