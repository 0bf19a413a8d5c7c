#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: watch_ready
short_description: Check that an HTTP endpoint stays ready for a while
version_added: 0.1.0
description:
  - Checks O(url) every O(interval) seconds for O(duration) seconds and fails as soon as O(failures) checks in a row
    did not answer one of O(status_codes) (connection refused, timeout, 5xx, ...).
  - The counterpart of M(baton.deploy.wait_ready) after the flip; a release that was ready and then crashes or turns
    unhealthy within the watch window is caught while the old slot still runs, so the rotation can flip back.
  - The module never changes anything and always reports C(changed=false).
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Watches in check mode too (it only reads).
  diff_mode:
    support: none
requirements:
  - requests (on the target host)
options:
  url:
    description:
      - The URL to check, for example the new slot's V(http://127.0.0.1:8002/readyz).
    type: str
    required: true
  duration:
    description:
      - Seconds to watch.
    type: float
    required: true
  failures:
    description:
      - How many failed checks in a row make the endpoint unhealthy. V(1) fails on the first bad answer.
    type: int
    default: 2
  interval:
    description:
      - Seconds between checks.
    type: float
    default: 0.5
  status_codes:
    description:
      - HTTP statuses that count as healthy.
    type: list
    elements: int
    default: [200]
  request_timeout:
    description:
      - Timeout of each request in seconds. Default V(min(2, 4 * interval)).
    type: float
  headers:
    description:
      - Request headers.
    type: dict
  validate_certs:
    description:
      - Verify TLS certificates for V(https://) URLs.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The new slot must stay ready for 30 s after the flip
  baton.deploy.watch_ready:
    url: http://127.0.0.1:8002/readyz
    duration: 30
"""

RETURN = r"""
healthy:
  description: Whether the endpoint stayed healthy for the whole O(duration).
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds the watch ran (less than O(duration) when it found a failure).
  returned: always
  type: float
  sample: 30.012
attempts:
  description: Number of checks made.
  returned: always
  type: int
  sample: 61
failed_after:
  description: Seconds into the watch at which the failing run of checks started, or V(null) when healthy.
  returned: always
  type: float
  sample: 4.51
last_status:
  description: HTTP status of the last check, or V(null) when it got no response.
  returned: always
  type: int
  sample: 503
last_error:
  description: Why the last check failed, or V(null) when it passed.
  returned: always
  type: str
  sample: connection refused
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.baton.deploy.plugins.module_utils.readiness import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    watch,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            duration=dict(type='float', required=True),
            failures=dict(type='int', default=2),
            interval=dict(type='float', default=0.5),
            status_codes=dict(type='list', elements='int', default=[200]),
            request_timeout=dict(type='float'),
            headers=dict(type='dict'),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
    p = module.params
    try:
        result = watch(p['url'], p['duration'], failures=p['failures'], status_codes=p['status_codes'],
                       interval=p['interval'], request_timeout=p['request_timeout'], headers=p['headers'],
                       validate_certs=p['validate_certs'])
    except ValueError as exc:
        module.fail_json(msg='Invalid parameters: %s' % exc)
    output = result.as_dict()
    if not result.healthy:
        module.fail_json(msg='%s failed %d check%s in a row %gs into the %gs watch, last result: %s.'
                         % (p['url'], p['failures'], '' if p['failures'] == 1 else 's', result.failed_after,
                            p['duration'], result.last_error), changed=False, **output)
    module.exit_json(changed=False, **output)


if __name__ == '__main__':
    main()
