#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wait_ready
short_description: Wait until an HTTP endpoint answers correctly several times in a row
version_added: 0.1.0
description:
  - Polls O(url) until it has answered correctly O(passes) times B(in a row), or fails once O(timeout) seconds have passed.
  - An attempt passes when the response status is in O(status_codes), the body matches O(body_regex) (if set),
    and every header in O(expected_headers) is present and matches its regular expression (if set).
  - Any failed attempt (unexpected status, connection error, a single request timing out, body or header mismatch)
    resets the count of consecutive passes to zero, so a flapping endpoint is not reported as ready.
  - Redirects are not followed. Add the redirect status (for example V(301) or V(302)) to O(status_codes) to accept it.
  - The module never changes anything and always reports C(changed=false).
author:
  - Baton maintainers (@baton-deploy)
requirements:
  - requests
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only sends HTTP requests and never changes anything, so in check mode it polls exactly as it
        does normally and returns real results.
  diff_mode:
    support: none
options:
  url:
    description:
      - Absolute V(http://) or V(https://) URL to poll.
    type: str
    required: true
  status_codes:
    description:
      - HTTP status codes that count as a pass. Each must be between V(100) and V(599).
    type: list
    elements: int
    default: [200]
  body_regex:
    description:
      - If set, the response body must match this Python regular expression (C(re.search), so it may match anywhere
        in the body) for the attempt to pass.
      - Cannot be used with O(method=HEAD).
    type: str
  expected_headers:
    description:
      - Response headers that must be present for the attempt to pass, as a mapping of header name to a Python
        regular expression that the header value must match (C(re.search)).
      - Header names are matched case-insensitively. Use V(.*) or V("") to only require that the header exists.
    type: dict
  passes:
    description:
      - How many consecutive passing attempts are needed before the endpoint counts as ready. Must be at least V(1).
    type: int
    default: 3
  interval:
    description:
      - Seconds to sleep between attempts. Must be greater than V(0) and at most V(60).
      - The last sleep is shortened so polling stops at O(timeout).
    type: float
    default: 0.2
  timeout:
    description:
      - Overall deadline in seconds. If the endpoint is not ready by then, the module fails. Must be greater than V(0).
    type: float
    default: 60
  request_timeout:
    description:
      - Timeout in seconds for a single request. A request that times out counts as a failed attempt.
      - Defaults to the smaller of V(2) and O(timeout).
      - No new attempt starts after O(timeout), but an attempt already running may take up to O(request_timeout)
        seconds, so the module can run for up to O(timeout) + O(request_timeout) seconds.
    type: float
  headers:
    description:
      - Extra request headers to send, for example V(Host) when polling a proxy for a particular virtual host.
    type: dict
  method:
    description:
      - HTTP method to use.
    type: str
    choices: [GET, HEAD]
    default: GET
  validate_certs:
    description:
      - Whether to verify TLS certificates for V(https://) URLs.
      - Set to V(false) only for endpoints with self-signed certificates you trust.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authorities to verify the server's certificate against, instead of the
        system's, for example a private or test ACME CA.
      - Only used when O(validate_certs=true).
    type: path
  connect_to:
    description:
      - Connect to this address (an IP address or host name, no port) instead of the host named in O(url),
        like C(curl --resolve). The host in O(url) still names the site, as it would for a client that resolves
        it to this address. It is sent as the V(Host) header, unless O(headers) has one, and on V(https://)
        as the TLS server name (SNI) and the name the certificate must match.
      - For example O(url=https://shop.example/healthz) with O(connect_to=127.0.0.1) checks the proxy on this
        host for the site C(shop.example) over HTTPS, before or without any DNS record.
    type: str
  process_manager:
    description:
      - The process manager that runs the process behind O(url). With O(unit), the module asks it before every
        attempt whether that process still runs, and fails at once (within O(interval)) when it exited, was killed,
        or crash-loops (it exited and is being restarted, or the manager gave up restarting it), instead of
        polling until O(timeout).
      - A process that is still starting is not a failure.
      - The failure message then names the exit status (or signal) and ends with the last O(log_lines) lines of
        the process's log (C(journalctl -u) for V(systemd), C(supervisorctl tail) for V(supervisor)).
    type: str
    choices: [systemd, supervisor]
  unit:
    description:
      - The systemd unit (for example V(baton-shop@2.service)) or supervisor program (for example V(baton-shop-2))
        to watch while polling.
      - Required with O(process_manager).
    type: str
  log_lines:
    description:
      - How many of the last lines of the unit's log the failure message quotes when the process exited.
    type: int
    default: 20
notes:
  - Polling happens from the host the module runs on. Use C(delegate_to) to poll from somewhere else,
    for example from the controller through a load balancer.
  - Timing values are measured with a monotonic clock, so they are not affected by wall-clock changes.
seealso:
  - module: ansible.builtin.uri
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Wait for the new instance to answer its health check three times in a row
  baton.deploy.wait_ready:
    url: http://127.0.0.1:8081/healthz

- name: Require a JSON body saying the app is up, give it two minutes
  baton.deploy.wait_ready:
    url: http://127.0.0.1:8082/status
    body_regex: '"status":\s*"ok"'
    passes: 5
    interval: 0.5
    timeout: 120

- name: Check that the proxy now routes to the new release
  baton.deploy.wait_ready:
    url: https://127.0.0.1/healthz
    headers:
      Host: app.example.com
    expected_headers:
      X-App-Release: '^2026\.11\.'
    validate_certs: false
  register: proxy_ready

- name: Check the site shop.example over HTTPS on the proxy of this host (SNI and Host shop.example)
  baton.deploy.wait_ready:
    url: https://shop.example/healthz
    connect_to: 127.0.0.1
    ca_path: /etc/ssl/private-ca.pem

- name: Wait for slot 2 of shop, failing at once if its process exits or crash-loops
  baton.deploy.wait_ready:
    url: http://127.0.0.1:8002/readyz
    timeout: 60
    process_manager: systemd
    unit: baton-shop@2.service

- name: Accept a redirect from the landing page using HEAD requests
  baton.deploy.wait_ready:
    url: http://127.0.0.1:8081/
    method: HEAD
    status_codes: [200, 301, 302]
"""

RETURN = r"""
ready:
  description: Whether the endpoint passed O(passes) consecutive attempts before the deadline.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds spent polling, rounded to milliseconds.
  returned: always
  type: float
  sample: 1.234
attempts:
  description: Number of requests made.
  returned: always
  type: int
  sample: 7
passes:
  description: Number of consecutive passing attempts at the end of polling (the final streak).
  returned: always
  type: int
  sample: 3
last_status:
  description: HTTP status code of the last attempt, or V(null) if the last attempt got no response.
  returned: always
  type: int
  sample: 200
last_error:
  description:
    - Why the last attempt failed, or V(null) if it passed.
    - For example V(connection refused), V(status 503), V(request timed out after 2s),
      V(body did not match ...), V(header X-App-Release missing).
  returned: always
  type: str
  sample: status 503
first_pass_elapsed:
  description:
    - Seconds after the start of polling at which the first pass of the final streak of passes was seen,
      or V(null) if the last attempt failed.
    - When RV(ready=true), this is roughly when the endpoint became healthy.
  returned: always
  type: float
  sample: 0.812
last_headers:
  description:
    - Response headers of the last attempt, with lower-case names, or an empty dictionary if the last attempt
      got no response.
  returned: always
  type: dict
  sample: {"content-type": "text/plain", "x-baton-upstream": "127.0.0.1:8002"}
started_at:
  description:
    - Wall-clock time (seconds since the epoch, on the target) at which polling started.
    - With RV(elapsed) and RV(first_pass_elapsed) it places several checks on one time line, for example
      how long after the new slot was confirmed ready the proxy first served it.
  returned: always
  type: float
  sample: 1795787531.216
process:
  description:
    - Why the wait stopped before O(timeout) because the watched process (O(process_manager), O(unit)) is gone,
      or V(null) when it was not watched or still ran.
  returned: always
  type: dict
  contains:
    unit:
      description: The unit or program watched.
      type: str
    state:
      description: V(exited), V(crash-loop), V(stopped) or V(unknown) (no such unit).
      type: str
    exit_status:
      description: Exit status of the process's last exit, or V(null) when it was killed or the manager does not say.
      type: int
    signal:
      description: Name of the signal that killed it (V(SIGKILL)), or V(null).
      type: str
    restarts:
      description: Automatic restarts since the unit was started (systemd), or V(null).
      type: int
    detail:
      description: The process manager's own words for the state.
      type: str
    reason:
      description: One sentence saying what happened to the process.
      type: str
    log_tail:
      description: The last O(log_lines) lines of the process's log.
      type: str
  sample:
    unit: baton-shop@2.service
    state: crash-loop
    exit_status: 3
    signal: null
    restarts: 0
    detail: activating/auto-restart, result exit-code
    reason: the process of baton-shop@2.service exited with status 3 (crash loop; activating/auto-restart, result exit-code)
    log_tail: "Traceback (most recent call last):\n..."
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.baton.deploy.plugins.module_utils.process_managers import ProcessWatch, process_manager
from ansible_collections.baton.deploy.plugins.module_utils.readiness import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    validate_params,
    wait_ready,
)


def _log_quote(tail):
    count = len(tail.splitlines())
    if not count:
        return 'Its log is empty.'
    return 'Last %s of its log:\n%s' % ('line' if count == 1 else '%d lines' % count, tail)


def failure_message(url, timeout, result, required_passes):
    """Build the message used when the endpoint is not ready in time, or its process is gone."""
    if result.process is not None:
        tail = result.process.get('log_tail') or ''
        return (
            '%s was not ready: %s, %gs after polling started (%d attempt%s). %s'
            % (url, result.process['reason'], result.elapsed, result.attempts, '' if result.attempts == 1 else 's',
               _log_quote(tail))
        )
    if result.last_error is not None:
        last = result.last_error
    else:
        last = 'status %s (passed)' % result.last_status
    return (
        '%s was not ready after %gs: %d attempt%s, %d of %d required consecutive passes, last result: %s. '
        'Check the application\'s logs to see why it is not answering as expected.'
        % (url, timeout, result.attempts, '' if result.attempts == 1 else 's', result.passes, required_passes, last)
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            status_codes=dict(type='list', elements='int', default=[200]),
            body_regex=dict(type='str'),
            expected_headers=dict(type='dict'),
            passes=dict(type='int', default=3, no_log=False),
            interval=dict(type='float', default=0.2),
            timeout=dict(type='float', default=60),
            request_timeout=dict(type='float'),
            headers=dict(type='dict'),
            method=dict(type='str', choices=['GET', 'HEAD'], default='GET'),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
            connect_to=dict(type='str'),
            process_manager=dict(type='str', choices=['systemd', 'supervisor']),
            unit=dict(type='str'),
            log_lines=dict(type='int', default=20),
        ),
        required_together=[('process_manager', 'unit')],
        supports_check_mode=True,
    )

    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)

    params = module.params
    options = dict(
        url=params['url'],
        status_codes=params['status_codes'],
        body_regex=params['body_regex'],
        expected_headers=params['expected_headers'],
        passes=params['passes'],
        interval=params['interval'],
        timeout=params['timeout'],
        request_timeout=params['request_timeout'],
        method=params['method'],
        connect_to=params['connect_to'],
    )
    errors = validate_params(**options)
    if params['log_lines'] < 0:
        errors.append('log_lines must be >= 0, got %d' % params['log_lines'])
    if errors:
        module.fail_json(msg='Invalid parameters: %s' % '; '.join(errors))

    watch = None
    if params['process_manager'] is not None:
        manager = process_manager(params['process_manager'], module.run_command)
        watch = ProcessWatch(manager, params['unit'], params['log_lines'])

    result = wait_ready(
        process_watch=watch,
        headers=params['headers'],
        validate_certs=params['validate_certs'],
        ca_path=params['ca_path'],
        **options
    )
    output = result.as_dict()

    if not result.ready:
        module.fail_json(msg=failure_message(params['url'], params['timeout'], result, params['passes']),
                         changed=False, **output)
    module.exit_json(changed=False, **output)


if __name__ == '__main__':
    main()
