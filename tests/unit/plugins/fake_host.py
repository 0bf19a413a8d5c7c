# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host for the rotation engine, in memory: a clock, a process manager, a proxy and the slots' HTTP answers.

The files are real (a temporary root, state file and gate); time only moves when the code sleeps. What a
release's process does is set per release in ``FakeHost.behaviour``:

- ``ok``: ready ``warmup`` seconds after its start;
- ``crash``: exits with status 3 ``warmup`` seconds after its start (the process manager reports it);
- ``never``: runs but never answers ready;
- ``sickens``: ready, then answers 500 from ``warmup * 3`` seconds after its start;
- ``deaf``: ready on its own port, but never accepts on the shared socket (``baton_proxy: none``).

Without a proxy (``proxy='none'``), :class:`FakeSocket` plays the kernel's shared accept queue.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from ansible_collections.baton.deploy.plugins.module_utils import proxies, proxy_gate, rotation
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import (
    CRASH_LOOP,
    RUNNING,
    STOPPED,
    ProcessStatus,
)

PORTS = {1: 8001, 2: 8002}
PROXY_URL = 'https://shop.example/readyz'
SOCKET_URL = 'http://127.0.0.1:8080/readyz'


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def wall(self):
        return 1796083200.0 + self.now


class Response:
    def __init__(self, status_code, headers=None):
        self.status_code = status_code
        self.headers = CaseInsensitiveDict(headers or {})
        self.text = 'ok' if status_code == 200 else 'not ready'

    def close(self):
        pass


class FakeHost:
    def __init__(self, root, warmup=1.0):
        self.root = str(root)
        self.clock = Clock()
        self.warmup = warmup
        self.behaviour = {}
        self.units = {}          # unit -> (release, started at) while it runs
        self.calls = []          # ('start' | 'stop', unit)
        self.fail = set()        # ('start' | 'stop', unit) that raise
        self.proxy_down = False  # nothing answers through the proxy
        self.proxy_stuck = None  # the proxy keeps serving this slot whatever the gate says
        self.connections = {}    # port -> counts returned one after the other by the drain counter
        self.gate_dir = os.path.join(self.root, 'shop.gate')
        self.socket = FakeSocket(self)
        self.state_path = os.path.join(self.root, 'state', 'state.json')
        for directory in ('releases', 'slots'):
            os.makedirs(os.path.join(self.root, 'app', directory), exist_ok=True)

    # --- the host's files --------------------------------------------------------------------------

    def build(self, release, behaviour='ok'):
        path = os.path.join(self.root, 'app', 'releases', release)
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, '.baton-release'), 'w').close()
        self.behaviour[release] = behaviour

    def slot_release(self, slot):
        link = os.path.join(self.root, 'app', 'slots', str(slot))
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    # --- the process manager -----------------------------------------------------------------------

    @staticmethod
    def unit_name(app, slot):
        return 'baton-%s@%s.service' % (app, slot)

    def start(self, unit):
        self.calls.append(('start', unit))
        if ('start', unit) in self.fail:
            raise RuntimeError('Job for %s failed' % unit)
        self.units[unit] = (self.slot_release(int(unit.split('@')[1].split('.')[0])), self.clock.now)

    def stop(self, unit):
        self.calls.append(('stop', unit))
        if ('stop', unit) in self.fail:
            raise RuntimeError('Job for %s timed out' % unit)
        self.units.pop(unit, None)

    def status(self, unit):
        if unit not in self.units:
            return ProcessStatus(STOPPED, detail='inactive/dead')
        if self._crashed(unit):
            return ProcessStatus(CRASH_LOOP, exit_status=3, restarts=2, detail='activating/auto-restart')
        return ProcessStatus(RUNNING, detail='active/running')

    def log_tail(self, unit, lines):
        log = ['%s line %d' % (unit, number) for number in range(1, 31)]
        return '\n'.join(log[-lines:])

    def slot_of(self, unit):
        return int(unit.split('@')[1].split('.')[0])

    def _crashed(self, unit):
        release, started = self.units[unit]
        return self.behaviour[release] == 'crash' and self.clock.now - started >= self.warmup

    def running(self):
        return sorted(unit for unit in self.units if not self._crashed(unit))

    # --- HTTP: the slots on their ports, the proxy on 443 --------------------------------------------

    def answers(self, slot):
        unit = self.unit_name('shop', slot)
        if unit not in self.units or self._crashed(unit):
            return None
        release, started = self.units[unit]
        age = self.clock.now - started
        behaviour = self.behaviour[release]
        if behaviour == 'never' or age < self.warmup:
            return 503
        if behaviour == 'sickens' and age >= self.warmup * 3:
            return 500
        return 200

    def request(self, method, url, headers=None, **_kwargs):
        port = urlsplit(url).port or 443
        if port in PORTS.values():
            slot = [s for s, p in PORTS.items() if p == port][0]
            status = self.answers(slot)
            if status is None:
                raise ConnectionRefusedError(111, 'Connection refused')
            return Response(status)
        if self.proxy_down:
            raise ConnectionRefusedError(111, 'Connection refused')
        slot = self.proxy_stuck or proxy_gate.read_gate(self.gate_dir) or 1
        if self.answers(slot) is None:  # the other slot is the backup
            slot = 3 - slot
        status = self.answers(slot)
        if status is None:
            return Response(502)
        return Response(status, {'X-Baton-Upstream': '127.0.0.1:%d' % PORTS[slot]})

    def close(self):
        pass

    def count(self, port):
        counts = self.connections.get(port) or [0]
        return counts.pop(0) if len(counts) > 1 else counts[0]

    # --- the engine, wired to this host ---------------------------------------------------------------

    def rotation(self, release=None, action='deploy', check_mode=False, proxy='nginx', **settings):
        probe = rotation.Probe(session=self, clock=self.clock, sleep=self.clock.sleep, wall_clock=self.clock.wall)
        settings.setdefault('ready_timeout', 30)
        config = rotation.Settings('shop', os.path.join(self.root, 'app'), PORTS, release=release, action=action,
                                   state_path=self.state_path, **settings)
        extra = dict(connections=self.socket) if proxy == 'none' else {}
        front = proxies.proxy(proxy, 'shop', config.ports, SOCKET_URL if proxy == 'none' else PROXY_URL, probe,
                              gate_dir=self.gate_dir, counter=self.count, processes=self, **extra)
        return rotation.Rotation(config, front, self, probe, check_mode=check_mode)

    def deploy(self, release, phase='all', **kwargs):
        return self.rotation(release, **kwargs).run(phase)


class FakeSocket:
    """The shared socket of the mode without a proxy: each connection goes to the next slot that accepts.

    A slot accepts once it answers ready on its own port (and unless its release is ``deaf``); the slots that
    accept take the connections in turn, the longest running first, as the kernel hands them to whichever
    process calls accept() first. ``held[unit]`` is what :meth:`count` says.
    """

    def __init__(self, host):
        self.host = host
        self.turn = 0
        self.probes = []   # (port, path, unit)
        self.held = {}

    def accepting(self):
        host = self.host
        units = sorted(host.units, key=lambda unit: host.units[unit][1])
        return [unit for unit in units if host.answers(host.slot_of(unit)) == 200
                and host.behaviour[host.units[unit][0]] != 'deaf']

    def probe(self, port, path, unit):
        self.probes.append((port, path, unit))
        accepting = self.accepting()
        if not accepting:
            return False, None, 'not accepted within 1 s'
        chosen = accepting[self.turn % len(accepting)]
        self.turn += 1
        self.host.clock.sleep(0.002)
        status = self.host.answers(self.host.slot_of(chosen))
        who = chosen if chosen == unit else 'another process'
        return chosen == unit, status, 'accepted by %s, answered %s' % (who, status)

    def count(self, port, unit):
        return self.held.get(unit, 0)
