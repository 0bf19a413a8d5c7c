#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wait_drained
short_description: Wait until no established TCP connections remain to a local port
version_added: 0.1.0
description:
  - Waits until there are no ESTABLISHED TCP connections whose B(local) port is O(port), that is until the
    service listening on O(port) on the target host has no client connections left, bounded by O(timeout).
  - Used after switching the proxy to the new slot, to let the old slot finish its in-flight requests before
    it is stopped. The proxy opens one upstream connection per request, so no connection means no request.
  - Connections are read from C(/proc/net/tcp) and C(/proc/net/tcp6) (IPv4, IPv6 and IPv4-mapped IPv6).
    Connections in other states (for example LISTEN, TIME_WAIT or CLOSE_WAIT) are not counted, and neither are
    connections that only have O(port) as their remote port.
  - Not being drained by O(timeout) is not an error unless O(fail_on_timeout=true); the module then returns
    RV(drained=false) with a warning, since stopping the old slot is bounded by the timeout anyway.
  - The module never changes anything and always reports C(changed=false).
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the connections are counted once, without waiting. RV(drained) is then whether the count was
        zero.
  diff_mode:
    support: none
options:
  port:
    description:
      - The local TCP port to watch, for example the port of the old slot.
    type: int
    required: true
  timeout:
    description:
      - Maximum number of seconds to wait. V(0) counts once without waiting.
    type: float
    default: 30
  interval:
    description:
      - Seconds between two counts. Must be greater than V(0).
    type: float
    default: 0.1
  settle:
    description:
      - Seconds for which the count must stay at zero before the port counts as drained, to ride out short gaps
        between requests. V(0) means the first zero count is enough.
    type: float
    default: 0.0
  fail_on_timeout:
    description:
      - Fail if connections are still open when O(timeout) expires, instead of returning RV(drained=false)
        with a warning.
    type: bool
    default: false
  proc_paths:
    description:
      - Files to read connections from. Missing files are skipped, but at least one must be readable.
      - Only meant for testing.
    type: list
    elements: path
    default: [/proc/net/tcp, /proc/net/tcp6]
notes:
  - Linux only. Only connections in the network namespace the module runs in are seen, so run it on the host
    (or in the container) where the service listens.
  - Timing values are measured with a monotonic clock.
seealso:
  - module: ansible.builtin.wait_for
  - module: baton.deploy.wait_ready
"""

EXAMPLES = r"""
- name: Let the old slot finish its in-flight requests (at most 30 seconds)
  baton.deploy.wait_drained:
    port: 8081

- name: Require two quiet seconds in a row, give up after two minutes
  baton.deploy.wait_drained:
    port: "{{ old_slot_port }}"
    settle: 2
    timeout: 120
  register: drain

- name: Fail the deploy if the old slot does not drain
  baton.deploy.wait_drained:
    port: 8082
    timeout: 60
    fail_on_timeout: true
"""

RETURN = r"""
drained:
  description: Whether the connection count reached zero (and stayed there for O(settle) seconds) before O(timeout).
  returned: always
  type: bool
  sample: true
initial_connections:
  description: Number of established connections to O(port) at the first count.
  returned: always
  type: int
  sample: 4
max_connections:
  description: Highest number of established connections to O(port) seen.
  returned: always
  type: int
  sample: 5
remaining:
  description: Number of established connections to O(port) at the last count.
  returned: always
  type: int
  sample: 0
held:
  description:
    - Of the connections open at the first count, how many were still open at the last count, told apart
      by the client's address and port. These are the long connections (WebSockets, event streams) that
      outlived the drain; RV(remaining) also counts connections that opened during the drain, such as a
      proxy's health checks.
  returned: always
  type: int
  sample: 0
elapsed:
  description: Seconds spent, rounded to milliseconds.
  returned: always
  type: float
  sample: 1.204
attempts:
  description: Number of times the connections were counted.
  returned: always
  type: int
  sample: 13
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.baton.deploy.plugins.module_utils.drain import (
    DEFAULT_PROC_PATHS,
    ProcNetError,
    timeout_warning,
    validate_params,
    wait_drained,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type='int', required=True),
            timeout=dict(type='float', default=30),
            interval=dict(type='float', default=0.1),
            settle=dict(type='float', default=0.0),
            fail_on_timeout=dict(type='bool', default=False),
            proc_paths=dict(type='list', elements='path', default=list(DEFAULT_PROC_PATHS)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    errors = validate_params(params['port'], params['timeout'], params['interval'], params['settle'])
    if not params['proc_paths']:
        errors.append('proc_paths must not be empty')
    if errors:
        module.fail_json(msg='Invalid parameters: %s' % '; '.join(errors))

    try:
        result = wait_drained(
            params['port'],
            timeout=params['timeout'],
            interval=params['interval'],
            settle=params['settle'],
            proc_paths=params['proc_paths'],
            single=module.check_mode,
        )
    except ProcNetError as exc:
        module.fail_json(msg=str(exc))
    output = result.as_dict()

    if not result.drained and not module.check_mode:
        message = timeout_warning(params['port'], params['timeout'], result, params['settle'])
        if params['fail_on_timeout']:
            module.fail_json(msg=message.replace('stopping anyway (bounded by timeout)', 'failing because '
                                                 'fail_on_timeout is set'), changed=False, **output)
        module.warn(message)
    module.exit_json(changed=False, **output)


if __name__ == '__main__':
    main()
