#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rotate
short_description: Rotate an app to a release on its other slot, from the state file to the record, in one run
version_added: 0.4.0
description:
  - Runs a whole rotation of a Baton app on the host, each step with its bound and its undo. B(plan) reads the state
    file and asks the proxy which slot it serves (the proxy has the last word, the state file may lag behind it after
    an interrupted deploy); B(point) writes the next slot's environment and links it to the release; B(start)
    restarts its unit; B(ready) polls it on its own port, and asks the process manager on every poll, so a process that
    exits or crash-loops fails the deploy at once, with its exit status and the last 20 lines of its log; B(flip) sets
    the proxy's gate; B(verify) checks through the proxy, as a client (Host, SNI and HTTPS), that the next slot answers;
    B(watch) checks that it stays ready; B(drain) waits, bounded, for the old slot's in-flight requests; B(stop) stops
    the old slot; B(record) writes the state file.
  - A failure before the flip stops the next slot and leaves the proxy and the old slot untouched. A failure of the
    verify or the watch flips the proxy back to the old slot, which kept running, and stops the next slot. The message
    says what happened, the state the host is in now, and what to do.
  - Every step is returned as an event with its time, on success and on failure. A journal next to the state file names
    the step in progress until the rotation ends; a run that finds one reports it in RV(interrupted). Every step
    converges when run again, so a run after an interruption at any step (SIGKILL, lost connection) finishes the job.
  - When the release already serves on the live slot (and O(force) is not set), nothing is done.
  - With O(phase=prepare) the rotation stops once the next slot is ready, so that a before-flip hook can run;
    O(phase=finish) then checks it is still ready and goes on from the flip.
author:
  - Baton maintainers (@baton-deploy)
extends_documentation_fragment:
  - baton.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Works out the plan (which slot, which release, whether it is a no-op) and changes nothing; the proxy is asked
        which slot it serves. On a host with no deploy yet, the plan says so. A release that is not built yet is
        reported in the plan instead of failing.
  diff_mode:
    support: full
    details:
      - The proxy's route before and after (slot, port, release), under the gate's path.
options:
  app:
    description: The app's name, as in C(baton_app).
    type: str
    required: true
  action:
    description:
      - V(deploy) rotates to O(release). V(rollback) rotates to the release the other slot last ran (from the state file),
        without a build; it fails, changing nothing, when there is none.
      - V(status) changes nothing and returns the state, the slot the proxy serves and RV(interrupted).
    type: str
    choices: [deploy, rollback, status]
    default: deploy
  release:
    description: The release to rotate to, built under O(root)C(/releases/). Required with O(action=deploy).
    type: str
  phase:
    description:
      - V(all) runs the whole rotation. V(prepare) stops once the next slot is ready, before the flip; V(finish) goes on
        from there, after a before-flip hook, and fails, changing nothing, when no prepared rotation of O(release) is
        found.
    type: str
    choices: [all, prepare, finish]
    default: all
  root:
    description: The app's root directory (C(baton_root)), with C(releases/) and C(slots/).
    type: path
    required: true
  ports:
    description: "The ports of the two slots, as a mapping C({1: <port>, 2: <port>})."
    type: dict
    required: true
  process_manager:
    description: What runs the slots.
    type: str
    choices: [systemd, supervisor]
    required: true
  proxy:
    description:
      - The proxy in front of the slots.
      - V(none) is the mode without a proxy (O(process_manager=systemd) only). Both slots accept on one listening
        socket that systemd holds (C(baton-<app>.socket)). There is no flip, since a ready slot accepts by itself.
        B(verify) checks that connections to the socket are accepted by the next slot's processes, and B(drain) stops
        the old slot, which stops accepting at SIGTERM and finishes its in-flight requests.
    type: str
    choices: [nginx, caddy, none]
    required: true
  probe_url:
    description:
      - The app's site as a client reaches it, for example C(https://shop.example/readyz). The requests are sent to
        127.0.0.1 with the URL's host as Host header and, for https, as SNI; the certificate is not checked (both slots
        share it). The site must add the C(X-Baton-Upstream) header for requests from the host.
      - With O(proxy=none), the shared socket's readiness URL on this host, for example C(http://127.0.0.1:8080/readyz).
    type: str
    required: true
  gate_dir:
    description: The app's gate directory. Defaults to where the proxy role puts it for O(proxy).
    type: path
  env:
    description:
      - The app's environment for the next slot (C(baton_env)). Never returned nor logged.
      - Ignored by a rollback with O(restore_env=true).
    type: dict
    default: {}
  restore_env:
    description: With O(action=rollback), start the previous release with the environment it last ran with while live.
    type: bool
    default: false
  group:
    description: The group that reads the slot's env file (the app's group). Defaults to O(app).
    type: str
  force:
    description: Rotate even when O(release) already serves on the live slot (it is restarted on the other slot).
    type: bool
    default: false
  ready_path:
    description: The readiness path of the app, on each slot's own port.
    type: str
    default: /readyz
  ready_passes:
    description: Consecutive successful checks that make the next slot ready.
    type: int
    default: 3
  ready_interval:
    description: Seconds between readiness checks (and process manager checks).
    type: float
    default: 0.2
  ready_timeout:
    description: Seconds the next slot has to become ready.
    type: float
    default: 120
  verify_timeout:
    description: Seconds the proxy has to route to the next slot after the flip.
    type: float
    default: 15
  watch_seconds:
    description: Seconds after the flip during which the next slot must stay ready (two failed checks in a row flip back). V(0) = no watch.
    type: float
    default: 0
  drain_timeout:
    description: Bound, in seconds, of the wait for the old slot's in-flight requests; the rest end with the old slot.
    type: float
    default: 30
  state_path:
    description:
      - The deploy state file. The journal (C(rotation.json)), the kept environments (C(env/)) and the deploy lock
        (C(deploy.lock)) are next to it.
    type: path
  keep_releases:
    description:
      - After a rotation that worked (or found nothing to do), remove the old releases as M(baton.deploy.prune_releases)
        does with O(baton.deploy.prune_releases#module:keep=keep_releases), in this same run; RV(pruned) says what was
        removed. In check mode, RV(pruned) says what would be.
      - Ignored with O(phase=prepare). Not set, nothing is pruned.
    type: int
  lock_token:
    description:
      - The token of the deploy lock the play took (M(baton.deploy.deploy_lock)). At the end of the rotation, whether it
        worked or failed, this run releases the lock, and RV(unlocked) returns the token, so that the play needs no
        module run of its own for it.
      - Ignored with O(phase=prepare) and in check mode. When the run dies (SIGKILL, lost connection) the lock stays
        held, and the play's own release of it runs.
    type: str
notes:
  - The deploy lock (M(baton.deploy.deploy_lock)) is not taken here; the play holds it around the build and the rotation,
    and may hand it to this module to release (O(lock_token)).
seealso:
  - module: baton.deploy.deploy_state
  - module: baton.deploy.proxy_gate
  - module: baton.deploy.wait_ready
"""

EXAMPLES = r"""
- name: Rotate shop to release v42
  baton.deploy.rotate:
    app: shop
    release: v42
    root: /srv/shop
    ports: {1: 8001, 2: 8002}
    process_manager: systemd
    proxy: nginx
    probe_url: https://shop.example/readyz
    env: "{{ shop_env }}"
    watch_seconds: 10
  register: shop_rotation

- name: Roll shop back to the previous release, with the environment it ran with
  baton.deploy.rotate:
    app: shop
    action: rollback
    restore_env: true
    root: /srv/shop
    ports: {1: 8001, 2: 8002}
    process_manager: supervisor
    proxy: caddy
    probe_url: http://localhost/readyz

- name: Start v42 and wait until ready, before a hook that needs it (migrations)
  baton.deploy.rotate:
    app: shop
    release: v42
    phase: prepare
    root: /srv/shop
    ports: {1: 8001, 2: 8002}
    process_manager: systemd
    proxy: nginx
    probe_url: https://shop.example/readyz

- name: Flip to v42 and finish the rotation
  baton.deploy.rotate:
    app: shop
    release: v42
    phase: finish
    root: /srv/shop
    ports: {1: 8001, 2: 8002}
    process_manager: systemd
    proxy: nginx
    probe_url: https://shop.example/readyz
"""

RETURN = r"""
plan:
  description: What the rotation does (or would do, in check mode).
  returned: unless O(action=status)
  type: dict
  contains:
    release:
      description: The release rotated to.
      type: str
      sample: v42
    next_slot:
      description: The slot the release goes to.
      type: int
      sample: 2
    old_slot:
      description: The slot that served before, or null.
      type: int
      sample: 1
    old_release:
      description: The release of RV(plan.old_slot), or null.
      type: str
      sample: v41
    live_source:
      description: How the live slot is known (the proxy's answer, the gate, or the state file).
      type: str
      sample: the proxy answered from it
    deployed:
      description: Whether the host had a state file (false on a host with no deploy yet).
      type: bool
      sample: true
    release_built:
      description: Whether the release is on the host.
      type: bool
      sample: true
    noop:
      description: Whether the release already serves on the live slot, so nothing is done.
      type: bool
      sample: false
    summary:
      description: The plan in one sentence.
      type: str
      sample: "shop: deploy of release v42 to slot 2; slot 1 (release v41) is live, as the proxy answered from it."
events:
  description:
    - The steps run, in order, each with its start (epoch seconds), duration, outcome and detail; also on failure.
      V(flip-back) and V(stop-next) are the undo of a failed step.
  returned: unless O(action=status)
  type: list
  elements: dict
  sample:
    - {step: ready, started: 1796084201.5, seconds: 7.4, ok: true, detail: "http://127.0.0.1:8002/readyz ready after 7.400 s (38 checks)"}
    - {step: flip, started: 1796084208.9, seconds: 0.0, ok: true, detail: "/etc/nginx/baton/shop.gate routes to slot 2"}
summary:
  description:
    - The line a rotation ends with, with the figures the docs explain (ready after, served through the proxy later,
      drained, rotation took).
  returned: when a rotation finished
  type: str
  sample: >-
    shop: release v42 active on slot 2 (port 8002); ready after 3.2 s (17 checks), served through the proxy 0.05 s
    later; drained 3 in-flight connection(s) of slot 1 in 0.6 s; rotation took 4.1 s.
state:
  description: The deploy state after the run (as before it when nothing was recorded).
  returned: success
  type: dict
  sample: {"active_slot": 2, "next_slot": 1, "slots": {"1": {"release": "v41", "port": 8001}, "2": {"release": "v42", "port": 8002}}}
live_slot:
  description: The slot the proxy serves (or, when it does not answer, the gate names), or null.
  returned: with O(action=status)
  type: int
  sample: 2
live_source:
  description: How RV(live_slot) is known.
  returned: with O(action=status)
  type: str
  sample: the proxy answered from it
deployed:
  description: Whether the host has a state file.
  returned: with O(action=status)
  type: bool
  sample: true
pruned:
  description: With O(keep_releases), the releases removed (or that would be, in check mode) and those that stay whatever their age.
  returned: with O(keep_releases), when the rotation ended without error
  type: dict
  contains:
    removed:
      description: The releases removed, sorted by name.
      type: list
      elements: str
      sample: [v36, v37]
    pinned:
      description: The releases that stay whatever their age (each slot's, and O(release)), sorted by name.
      type: list
      elements: str
      sample: [v41, v42]
  sample: {"changed": true, "removed": ["v36"], "pinned": ["v41", "v42"], "stale_envs": ["v36.env"]}
unlocked:
  description: With O(lock_token), the token of the deploy lock this run released (also on failure).
  returned: when the lock was released
  type: str
  sample: 3f2a9c0e5b7d1a4f
interrupted:
  description: What the journal left by an interrupted rotation said when this run started, or null.
  returned: always
  type: str
  sample: >-
    A deploy of release v42 to slot 2 (from slot 1), started 2026-11-30T21:00:00Z, was interrupted during the step drain
    (after point, start, ready, flip, verify). Run it again: it converges from any step.
"""

import grp

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.baton.deploy.plugins.module_utils import proxies
from ansible_collections.baton.deploy.plugins.module_utils.deploy_lock import validate_token
from ansible_collections.baton.deploy.plugins.module_utils.deploy_state import validate_app_name
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import process_manager
from ansible_collections.baton.deploy.plugins.module_utils.readiness import HAS_REQUESTS, REQUESTS_IMPORT_ERROR
from ansible_collections.baton.deploy.plugins.module_utils.rotation import Probe, Rotation, Settings, run_to_the_end


def build(module, env):
    """The rotation the parameters ask for, on this host."""
    p = module.params
    gid = None
    if not module.check_mode:
        try:
            gid = grp.getgrnam(p['group'] or p['app']).gr_gid
        except KeyError:
            module.fail_json(msg='There is no group %r on the host. Nothing was changed.' % (p['group'] or p['app']))
    try:
        settings = Settings(
            p['app'], p['root'], p['ports'], release=p['release'], action=p['action'], env=env,
            restore_env=p['restore_env'], gid=gid, force=p['force'], ready_path=p['ready_path'],
            ready_passes=p['ready_passes'], ready_interval=p['ready_interval'], ready_timeout=p['ready_timeout'],
            watch_seconds=p['watch_seconds'], drain_timeout=p['drain_timeout'], state_path=p['state_path'])
    except ValueError as exc:
        module.fail_json(msg='Invalid parameters: %s. Nothing was changed.' % exc)
    if p['proxy'] == 'none' and p['process_manager'] != 'systemd':
        module.fail_json(msg='proxy=none needs process_manager=systemd: the two slots share a socket that systemd holds '
                             'and passes to them, and %s cannot pass a socket. Nothing was changed.'
                             % p['process_manager'])
    probe = Probe()
    processes = process_manager(p['process_manager'], module.run_command)
    proxy = proxies.proxy(p['proxy'], p['app'], settings.ports, p['probe_url'], probe, gate_dir=p['gate_dir'],
                          verify_timeout=p['verify_timeout'], processes=processes)
    return Rotation(settings, proxy, processes, probe, check_mode=module.check_mode)


# What the invocation shows of each value of the app's environment.
NOT_RETURNED = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


def keep_env_out_of_the_result(module):
    """The app's environment holds secrets: it goes to the slot's env file only, and the invocation shows its
    names, not its values. Ansible would also mask each value of a no_log option wherever it occurs in the result,
    and values such as "1" or "0.5" occur in the figures, the summary and the release names (v1 -> v********):
    they are kept out of the result instead. Returns the environment."""
    env = module.params['env']
    module.no_log_values.difference_update(to_native(value, nonstring='simplerepr') for value in env.values())
    module.params['env'] = dict.fromkeys(env, NOT_RETURNED)
    return env


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app=dict(type='str', required=True),
            action=dict(type='str', choices=['deploy', 'rollback', 'status'], default='deploy'),
            release=dict(type='str'),
            phase=dict(type='str', choices=['all', 'prepare', 'finish'], default='all'),
            root=dict(type='path', required=True),
            ports=dict(type='dict', required=True),
            process_manager=dict(type='str', choices=['systemd', 'supervisor'], required=True),
            proxy=dict(type='str', choices=sorted(proxies.PROXIES), required=True),
            probe_url=dict(type='str', required=True),
            gate_dir=dict(type='path'),
            env=dict(type='dict', default={}, no_log=True),
            restore_env=dict(type='bool', default=False),
            group=dict(type='str'),
            force=dict(type='bool', default=False),
            ready_path=dict(type='str', default='/readyz'),
            ready_passes=dict(type='int', default=3, no_log=False),
            ready_interval=dict(type='float', default=0.2),
            ready_timeout=dict(type='float', default=120),
            verify_timeout=dict(type='float', default=15),
            watch_seconds=dict(type='float', default=0),
            drain_timeout=dict(type='float', default=30),
            state_path=dict(type='path'),
            keep_releases=dict(type='int'),
            lock_token=dict(type='str', no_log=False),
        ),
        required_if=[('action', 'deploy', ('release',))],
        supports_check_mode=True,
    )
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
    env = keep_env_out_of_the_result(module)
    error = validate_app_name(module.params['app'])
    if error:
        module.fail_json(msg=error)
    p = module.params
    if p['keep_releases'] is not None and p['keep_releases'] < 0:
        module.fail_json(msg='keep_releases must be >= 0, got %d. Nothing was changed.' % p['keep_releases'])
    error = validate_token(p['lock_token'])
    if error:
        module.fail_json(msg='%s. Nothing was changed.' % error.rstrip('.'))
    engine = build(module, env)
    if p['action'] == 'status':
        module.exit_json(**engine.status())
    result, error = run_to_the_end(engine, p['phase'], keep_releases=p['keep_releases'], lock_token=p['lock_token'])
    if error:
        result.pop('diff', None)
        # Releasing the lock is not a change to the host (as in the play's own unlock task).
        result.update(changed=any(event['step'] != 'unlock' for event in engine.events))
        module.fail_json(msg=error, **result)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
