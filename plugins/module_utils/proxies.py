# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxies in front of an app's two slots, as the rotation engine (:mod:`rotation`) sees them.

A proxy answers four questions: which slot does it serve (:meth:`GateProxy.live_slot`), route to a
slot (``flip``), does a client now reach that slot (``verify``), and have the old slot's in-flight
requests ended (``drain``). nginx and Caddy both pick the slot from the gate (:mod:`proxy_gate`) on
every request and open one upstream connection per request, so they share :class:`GateProxy` and
differ in where the gate lives. :class:`SharedSocket` is the mode without a proxy (``baton_proxy: none``):
both slots share one listening socket that systemd holds. :data:`PROXIES` maps ``baton_proxy`` to the
class: adding a proxy means adding a class (and its templates and setup tasks in roles/proxy).

The checks go through the proxy as a client does: to 127.0.0.1, with the site's name as Host and,
for an https:// URL, as SNI. Routing is checked, not the certificate (both slots share it). Which slot
answered is read from the ``X-Baton-Upstream`` header that the site adds for requests from the host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.baton.deploy.plugins.module_utils import drain, proxy_gate, readiness, shared_socket
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import RUNNING

UPSTREAM_HEADER = 'X-Baton-Upstream'
CONNECT_TO = '127.0.0.1'
# Any answer will do when asking which slot serves: only the header counts.
ANY_ANSWER = (200, 404, 500, 502, 503, 504)
ASK_TIMEOUT = 2.0
VERIFY_PASSES = 3
VERIFY_INTERVAL = 0.05
VERIFY_TIMEOUT = 15.0


class GateProxy:
    """A proxy that routes an app's traffic by its gate directory (:mod:`proxy_gate`).

    ``probe`` is a ``rotation.Probe`` (HTTP checks and clocks); ``probe_url`` the app's site as a
    client reaches it (``https://shop.example/readyz``); ``counter(port)`` counts the connections to a
    local port (default: ``drain.count_established``, from /proc/net/tcp).
    """

    name = None
    GATE_DIR = None  # where the setup puts an app's gate, with %s for the app
    # How the rotation's summary line and messages say it (docs/quickstart.md explains the line).
    SERVED = 'served through the proxy'
    NOT_SERVED = 'the proxy did not route to it'
    BACK_TO = 'The proxy was flipped back to'

    def __init__(self, app, ports, probe_url, probe, gate_dir=None, verify_timeout=VERIFY_TIMEOUT, counter=None,
                 processes=None):
        self.ports = ports
        self.probe_url = probe_url
        self.probe = probe
        self.location = gate_dir or self.GATE_DIR % app
        self.verify_timeout = verify_timeout
        self.counter = counter

    def live_slot(self):
        """``(slot, how it is known)``: the slot that answered through the proxy, else the gate, else None."""
        result = self.probe.wait_ready(self.probe_url, connect_to=CONNECT_TO, validate_certs=False,
                                       status_codes=ANY_ANSWER, passes=1, interval=ASK_TIMEOUT,
                                       timeout=ASK_TIMEOUT, request_timeout=ASK_TIMEOUT)
        # e.g. "127.0.0.1:8002" -> 8002 -> slot 2
        port = result.last_headers.get(UPSTREAM_HEADER.lower(), '').rpartition(':')[2]
        for slot, slot_port in self.ports.items():
            if port == str(slot_port):
                return slot, 'the proxy answered from it'
        gate = proxy_gate.read_gate(self.location)
        if gate is not None:
            return gate, 'the gate names it (the proxy did not say: %s)' % (result.last_error or 'no header')
        return None, None

    def flip(self, slot):
        """Route to ``slot``: one atomic file operation, no reload. Returns what was done."""
        proxy_gate.set_gate(self.location, slot)
        return '%s routes to slot %d' % (self.location, slot)

    def verify(self, slot):
        """Wait until the proxy serves ``slot`` (3 answers in a row); a ``readiness.ReadinessResult``."""
        expected = {UPSTREAM_HEADER: r'^127\.0\.0\.1:%d$' % self.ports[slot]}
        return self.probe.wait_ready(self.probe_url, connect_to=CONNECT_TO, validate_certs=False,
                                     expected_headers=expected, passes=VERIFY_PASSES, interval=VERIFY_INTERVAL,
                                     timeout=self.verify_timeout)

    def drain(self, port, timeout):
        """Wait (at most ``timeout`` s) until no request is in flight to ``port``; a ``drain.DrainResult``."""
        return drain.wait_drained(port, timeout=timeout, counter=self.counter, clock=self.probe.clock,
                                  sleep=self.probe.sleep)


class Nginx(GateProxy):
    name = 'nginx'
    GATE_DIR = '/etc/nginx/baton/%s.gate'


class Caddy(GateProxy):
    name = 'caddy'
    GATE_DIR = '/etc/caddy/baton/%s.gate'


class SharedSocket:
    """No proxy (``baton_proxy: none``): both slots accept on one listening socket that systemd holds.

    The socket unit ``baton-<app>.socket`` passes it to both slots' units (``Sockets=``). A slot accepts on it
    by itself once ready and stops accepting at SIGTERM (the app's contract, docs/socket-mode.md): there is one
    accept queue, so a connection waits for whichever slot accepts it and none is refused. The flip is therefore
    nothing to do; what is checked is that the next slot really accepts (:meth:`verify`), and the old slot drains
    as it stops (:meth:`drain`). ``processes`` is the process manager (systemd: it has ``pids``);
    ``connections`` a ``shared_socket.Connections`` (default: this host's).
    """

    name = 'none'
    SERVED = 'accepting on the shared socket'
    NOT_SERVED = 'it did not accept on the shared socket'
    BACK_TO = 'Only the shared socket\'s old slot accepts again:'

    def __init__(self, app, ports, probe_url, probe, gate_dir=None, verify_timeout=VERIFY_TIMEOUT, counter=None,
                 processes=None, connections=None):
        self.app = app
        self.ports = ports
        self.probe_url = probe_url
        self.probe = probe
        self.verify_timeout = verify_timeout
        self.processes = processes
        self.location = 'baton-%s.socket' % app
        url = urlsplit(probe_url)
        self.port = url.port or 80
        self.path = url.path or '/'
        if url.query:
            self.path += '?' + url.query
        self.connections = connections or shared_socket.Connections(
            processes.pids, clock=probe.clock, sleep=probe.sleep)

    def _unit(self, slot):
        return self.processes.unit_name(self.app, slot)

    def live_slot(self):
        """``(slot, how it is known)``: the one slot whose process runs, else None (the state file decides)."""
        running = [slot for slot in sorted(self.ports) if self.processes.status(self._unit(slot)).state == RUNNING]
        if len(running) == 1:
            return running[0], 'only its process runs (it accepts on %s)' % self.location
        return None, None

    def flip(self, slot):
        """Nothing to do: a ready slot accepts on the shared socket by itself (and the old one until it stops)."""
        return 'slot %d accepts on %s by itself once ready: nothing to flip' % (slot, self.location)

    def verify(self, slot):
        """Wait until a connection to the shared socket is accepted by ``slot`` and answers ready there.

        The kernel gives each connection to whichever slot accepts first, so a few connections may go to the old
        slot before one reaches the new one. A ``readiness.ReadinessResult``.
        """
        clock = self.probe.clock
        start = clock()
        attempts, error, wrong_answer = 0, None, None
        unit = self._unit(slot)
        while True:
            attempts += 1
            mine, status, detail = self.connections.probe(self.port, self.path, unit)
            if mine and status == 200:
                elapsed = round(clock() - start, 3)
                return readiness.ReadinessResult(ready=True, elapsed=elapsed, attempts=attempts, passes=1,
                                                 last_status=status, first_pass_elapsed=elapsed)
            if mine:  # the worst news is kept: the next slot itself answered wrong
                wrong_answer = 'slot %d accepted a connection but answered %s on %s' % (slot, status, self.path)
            error = wrong_answer or detail
            if clock() - start >= self.verify_timeout:
                return readiness.ReadinessResult(ready=False, elapsed=round(clock() - start, 3), attempts=attempts,
                                                 last_status=status, last_error=error)
            self.probe.sleep(VERIFY_INTERVAL)

    def drain(self, port, timeout):
        """The old slot drains as it stops (SIGTERM: it stops accepting at once, its in-flight requests end):
        stop it here, bounded by its unit's stop timeout (the drain bound plus a grace). A ``drain.DrainResult``."""
        slot = [number for number, slot_port in self.ports.items() if slot_port == port][0]
        unit = self._unit(slot)
        held = self.connections.count(self.port, unit)
        start = self.probe.clock()
        self.processes.stop(unit)
        return drain.DrainResult(drained=True, initial_connections=held, max_connections=held,
                                 elapsed=round(self.probe.clock() - start, 3))


PROXIES = {cls.name: cls for cls in (Nginx, Caddy, SharedSocket)}


def proxy(name, *args, **kwargs):
    """The proxy called ``name`` (a key of :data:`PROXIES`)."""
    try:
        cls = PROXIES[name]
    except KeyError:
        raise ValueError('unknown proxy %r, expected one of %s' % (name, ', '.join(sorted(PROXIES))))
    return cls(*args, **kwargs)
