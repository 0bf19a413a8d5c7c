# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rotation engine: one deploy (or rollback) of an app on a host, from the state file to the record.

One readable flow, each step with its bound and its undo next to it::

    plan     read the state file, ask the proxy which slot it serves -> next slot, release, noop?
    point    the next slot's env file and its symlink to the release
    start    (re)start the next slot's unit
    ready    poll the next slot on its own port; every poll asks the process manager first, so a
             process that exits or crash-loops fails the wait at once     undo: stop the next slot
    -------- split point: phase=prepare stops here (a before-flip hook runs), phase=finish goes on
    flip     the gate names the next slot
    verify   through the proxy (Host, SNI, HTTPS as a client) the next slot answers
    watch    the next slot stays ready for watch_seconds          undo: flip back, stop the next slot
    drain    the old slot's in-flight requests end (bounded: the rest end with the old slot)
    stop     stop the old slot
    record   write the state file
    -------- then, in the run that ends the rotation (run_to_the_end), when the play asks for them:
    prune    remove the old releases (releases.prune)
    unlock   release the deploy lock, also when the rotation failed

Every step emits an event ``{step, started, seconds, ok, detail}``. A journal next to the state file
names the step in progress, so that ``status`` reports a rotation that was interrupted (SIGKILL, lost
host) and after which step. Every step converges when run again, so a re-run after an interruption at
any step ends in the same state as an uninterrupted run: the proxy, not the state file, has the last
word on which slot is live.

Everything that touches the world is injected: the proxy (:mod:`proxies`), the process manager (an
object with the methods of ``process_managers.ProcessManager``: unit_name, start, stop, status,
log_tail), the HTTP probe with its clocks (:class:`Probe`) and the paths (:class:`Settings`), so every
branch is unit tested with fakes.
"""

from __future__ import annotations

import datetime
import json
import os
import time

from ansible_collections.baton.deploy.plugins.module_utils import deploy_lock, deploy_state, readiness, releases, slot_env
from ansible_collections.baton.deploy.plugins.module_utils.process_managers import DEFAULT_LOG_LINES, ProcessWatch

JOURNAL_FILE_NAME = 'rotation.json'
PREPARED = 'prepared'
PHASES = ('all', 'prepare', 'finish')
# Failed checks in a row that end the watch window (one failed check followed by a pass is tolerated).
WATCH_FAILURES = 2
# The steps of a rotation, in order ('flip-back' and 'stop-next' are the undo of a failed one).
STEPS = ('point', 'start', 'ready', 'flip', 'verify', 'watch', 'drain', 'stop', 'record')


class RotationError(Exception):
    """The rotation failed: the message says what happened, the state of the host, and what to do."""


class _StepFailed(Exception):
    """A step failed; its undo decides what the rotation says."""


class Probe:
    """The HTTP checks of a rotation, with their clocks (``readiness.wait_ready`` and ``watch``).

    ``session`` is None on a host (each check opens its own, with SNI when needed) and a fake in tests.
    """

    def __init__(self, session=None, clock=time.monotonic, sleep=time.sleep, wall_clock=time.time):
        self.session = session
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock

    def wait_ready(self, url, **options):
        return readiness.wait_ready(url, session=self.session, clock=self.clock, sleep=self.sleep,
                                    wall_clock=self.wall_clock, **options)

    def watch(self, url, duration, **options):
        return readiness.watch(url, duration, session=self.session, clock=self.clock, sleep=self.sleep, **options)


class Settings:
    """What one rotation is asked to do, with every bound named and defaulted here."""

    def __init__(self, app, root, ports, release=None, action='deploy', env=None, restore_env=False, gid=None,
                 force=False, ready_path='/readyz', ready_passes=3, ready_interval=0.2, ready_timeout=120.0,
                 watch_seconds=0.0, drain_timeout=30.0, state_path=None, env_dir=None):
        self.app = app
        self.root = root
        self.ports = deploy_state.normalize_ports(ports)
        self.release = release
        self.action = action
        self.env = env
        self.restore_env = restore_env
        self.gid = gid
        self.force = force
        self.ready_path = ready_path
        self.ready_passes = ready_passes
        self.ready_interval = ready_interval
        self.ready_timeout = ready_timeout
        self.watch_seconds = watch_seconds
        self.drain_timeout = drain_timeout
        self.state_path = state_path or deploy_state.default_path(app)
        self.env_dir = env_dir or os.path.join(os.path.dirname(self.state_path), slot_env.ENV_DIR_NAME)

    @property
    def journal_path(self):
        return os.path.join(os.path.dirname(self.state_path), JOURNAL_FILE_NAME)

    @property
    def lock_path(self):
        """The deploy lock (baton.deploy.deploy_lock), next to the state file."""
        return os.path.join(os.path.dirname(self.state_path), deploy_lock.LOCK_FILE_NAME)

    def slot_url(self, slot):
        return 'http://127.0.0.1:%d%s' % (self.ports[slot], self.ready_path)


class Plan:
    """What a rotation will do, worked out from the state file and the proxy; changes nothing."""

    def __init__(self, settings, state, deployed, live_slot, live_source, release_built):
        self.app = settings.app
        self.action = settings.action
        self.release = settings.release
        self.state = state
        self.deployed = deployed
        self.live_slot = live_slot
        self.live_source = live_source
        self.old_slot = live_slot
        self.old_release = state['slots'][str(live_slot)]['release'] if live_slot else None
        self.next_slot = deploy_state.other_slot(live_slot) if live_slot else 1
        self.release_built = release_built
        self.noop = (not settings.force and live_slot is not None and live_slot == state['active_slot']
                     and self.old_release == settings.release)

    def describe(self):
        if self.noop:
            return ('%s: release %s is already live on slot %d: nothing to do.'
                    % (self.app, self.release, self.live_slot))
        if not self.deployed:
            where = 'nothing is deployed on this host yet (no state file), so this is the first deploy'
        elif self.old_slot is None:
            where = 'no slot is live yet'
        else:
            where = 'slot %d (release %s) is live, as %s' % (self.old_slot, self.old_release, self.live_source)
        text = '%s: %s of release %s to slot %d; %s.' % (self.app, self.action, self.release, self.next_slot, where)
        if not self.release_built:
            text += ' Release %s is not built on this host yet (the build creates it).' % self.release
        return text

    def as_dict(self):
        return dict(app=self.app, action=self.action, release=self.release, next_slot=self.next_slot,
                    old_slot=self.old_slot, old_release=self.old_release, live_source=self.live_source,
                    deployed=self.deployed, release_built=self.release_built, noop=self.noop,
                    summary=self.describe())


class Journal:
    """The rotation in progress, in a file next to the state file; gone once the rotation ends cleanly."""

    def __init__(self, path, wall_clock=time.time):
        self.path = path
        self.wall_clock = wall_clock
        self.entry = None

    def read(self):
        """The journal left on the host, or None. An unreadable journal is reported, never fatal."""
        text = slot_env.read_file(self.path)
        if text is None:
            return None
        try:
            entry = json.loads(text)
        except ValueError:
            return {'step': 'unknown', 'error': 'the journal %s is not valid JSON' % self.path}
        return entry if isinstance(entry, dict) else {'step': 'unknown'}

    def begin(self, plan):
        self.entry = dict(app=plan.app, action=plan.action, release=plan.release, slot=plan.next_slot,
                          old_slot=plan.old_slot, started=self._now(), step=None, done=[])

    def resume(self, entry):
        self.entry = dict(entry)

    def step(self, name):
        if self.entry['step'] not in (None, PREPARED) + tuple(self.entry['done']):
            self.entry['done'].append(self.entry['step'])
        self.entry.update(step=name, updated=self._now())
        deploy_state.atomic_write(self.path, json.dumps(self.entry, sort_keys=True) + '\n')

    def clear(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _now(self):
        return deploy_state.utc_now_iso(datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc))


def _sentence(exc):
    return str(exc).rstrip('.')


def run_to_the_end(engine, phase='all', keep_releases=None, lock_token=None):
    """One run of the rotate module: ``engine.run(phase)`` and, in the run that ends the rotation (phase ``all`` or
    ``finish``), what a deploy would otherwise spend a module run on each: the old releases pruned (with
    ``keep_releases``, after a rotation that worked) and the deploy lock held with ``lock_token`` released, whether
    the rotation worked or not (not in check mode).

    Returns ``(result, error)``: ``error`` is None or the message of the failure; ``result`` has at least the events,
    plus ``pruned`` and ``unlocked`` (the token released) when they were done, so that the play skips its own
    tasks for them. An unexpected exception goes through with the lock held: the play's own unlock releases it.
    """
    ends = phase != 'prepare'
    result, error = dict(events=engine.events), None
    try:
        result = engine.run(phase)
        if keep_releases is not None and ends:
            result['pruned'] = engine.prune(keep_releases, result['state'], result['plan']['release'])
            result['changed'] = result['changed'] or result['pruned']['changed']
    except RotationError as exc:
        error = str(exc)
    if lock_token is not None and ends and not engine.check_mode:
        unlock_error = engine.unlock(lock_token)
        if unlock_error:
            error = '%s %s' % (error, unlock_error) if error else unlock_error
        else:
            result['unlocked'] = lock_token
    return result, error


def describe_journal(entry):
    """What ``status`` says about a journal left on the host (None when there is none)."""
    if entry is None:
        return None
    if entry.get('step') == PREPARED:
        return ('Release %s was started on slot %s and found ready (%s started %s); the proxy still serves slot %s. '
                'The before-flip hook and the flip have not run: run the deploy again to finish it.'
                % (entry.get('release'), entry.get('slot'), entry.get('action'), entry.get('started'),
                   entry.get('old_slot')))
    done = entry.get('done') or []
    return ('A %s of release %s to slot %s (from slot %s), started %s, was interrupted during the step %s (%s). '
            'Run it again: it converges from any step (with baton_deploy_force_unlock=true if its lock was left).'
            % (entry.get('action', 'rotation'), entry.get('release'), entry.get('slot'), entry.get('old_slot'),
               entry.get('started'), entry.get('step'),
               'after %s' % ', '.join(done) if done else 'the first step'))


class Rotation:
    """One rotation of an app on this host. :meth:`run` returns a result dict or raises :class:`RotationError`.

    ``proxy`` is a :mod:`proxies` class instance, ``processes`` a ``process_managers.ProcessManager``, ``probe`` a
    :class:`Probe`. With ``check_mode`` only the plan is worked out (the proxy is asked, nothing changes).
    """

    def __init__(self, settings, proxy, processes, probe, check_mode=False):
        self.settings = settings
        self.proxy = proxy
        self.processes = processes
        self.probe = probe
        self.check_mode = check_mode
        self.journal = Journal(settings.journal_path, probe.wall_clock)
        self.events = []
        self.recorded = None
        # What the summary line says (the figures docs/quickstart.md explains and make bench reads).
        # ready: (seconds, checks, clock when ready); routed: clock of the first answer through the proxy;
        # drained: (connections, seconds, still open at the bound).
        self.figures = {}

    # --- the flow ---------------------------------------------------------------------------------

    def run(self, phase='all'):
        """Rotate; ``phase`` ``prepare`` stops once the next slot is ready, ``finish`` goes on from there."""
        if phase not in PHASES:
            raise ValueError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
        interrupted = self.journal.read()
        started = self.probe.clock()
        plan = self.plan()
        if self.check_mode or plan.noop:
            if plan.noop and not self.check_mode:
                self.journal.clear()  # left by a run killed after its record: the record is the truth
            return self._result(plan, changed=not plan.noop, interrupted=interrupted)
        if phase == 'finish':
            self._resume(plan, interrupted)
        else:
            self.journal.begin(plan)
            try:
                self._step('point', self._point, plan)
            except _StepFailed as exc:
                self.journal.clear()
                raise RotationError('Release %s could not be put on slot %d: %s. The proxy and the live slot are '
                                    'untouched; fix the cause and deploy again.'
                                    % (plan.release, plan.next_slot, _sentence(exc)))
            self._start(plan)
            if phase == 'prepare':
                self.journal.step(PREPARED)
                return self._result(plan, changed=True, interrupted=interrupted)
        self._switch(plan)
        if plan.old_slot is not None:
            self._step('drain', self._drain, plan)
            self._step('stop', self._stop_old, plan)
        self._step('record', self._record, plan)
        self.journal.clear()
        result = self._result(plan, changed=True, interrupted=interrupted, state=self.recorded)
        result['summary'] = self.summary(plan, self.probe.clock() - started)
        return result

    def summary(self, plan, seconds):
        """The one line a rotation ends with, as docs/quickstart.md explains it."""
        ready, checks, ready_at = self.figures['ready']
        drained, drain_seconds, held = self.figures.get('drained', (0, 0, 0))
        line = ('%s: release %s active on slot %d (port %d); ready after %s s (%d checks), %s '
                '%s s later; drained %d in-flight connection(s) of slot %s in %s s'
                % (plan.app, plan.release, plan.next_slot, self.settings.ports[plan.next_slot], ready, checks,
                   self.proxy.SERVED, round(self.figures['routed'] - ready_at, 2), drained, plan.old_slot or '-',
                   drain_seconds))
        if held:
            line += (', %d long connection(s) still open at the drain bound (%g s) ended with the old slot'
                     % (held, self.settings.drain_timeout))
        return line + '; rotation took %s s.' % round(seconds, 2)

    def status(self):
        """What the host runs: the state file, the slot the proxy serves, and an interrupted rotation. Changes nothing."""
        state, deployed = self._load_state()
        live_slot, source = self.proxy.live_slot()
        return dict(changed=False, state=state, deployed=deployed, live_slot=live_slot, live_source=source,
                    interrupted=describe_journal(self.journal.read()))

    def _load_state(self):
        settings = self.settings
        try:
            state, deployed = deploy_state.load(settings.state_path, app=settings.app)
        except deploy_state.StateFileError as exc:
            raise RotationError(str(exc))
        if not deployed:
            state = deploy_state.default_state(settings.app, settings.ports)
        return state, deployed

    def plan(self):
        settings = self.settings
        state, deployed = self._load_state()
        if settings.action == 'rollback' and settings.release is None:
            settings.release = self._previous_release(state)
        if state['active_slot'] is None:
            # Nothing recorded yet: the first rotation goes to slot 1. The proxy is not asked: the setup's gate
            # names slot 1 while no slot runs, and its answer (a 502, maybe naming the slots it tried) says nothing.
            live_slot, source = None, None
        else:
            live_slot, source = self.proxy.live_slot()
        if live_slot is None:
            live_slot, source = state['active_slot'], 'the state file records'
        plan = Plan(settings, state, deployed, live_slot, source, os.path.exists(self._release_marker()))
        if not plan.release_built and not plan.noop and not self.check_mode:
            raise RotationError(
                'Release %s is not on this host (%s). Nothing was changed. Deploy it with playbooks/deploy.yml '
                '(which builds it) first.' % (settings.release, self._release_dir()))
        return plan

    def _start(self, plan):
        """Start the next slot and wait until it is ready; else stop it and fail, nothing routed to it."""
        try:
            self._step('start', self._start_next, plan)
            self._step('ready', self._wait_ready, plan)
        except _StepFailed as exc:
            self._not_ready(plan, 'did not become ready: %s' % _sentence(exc))

    def _not_ready(self, plan, what):
        """Stop the next slot, which is not ready: nothing was routed to it."""
        undo = self._undo('stop-next', self._stop_next, plan)
        if undo is None:
            self.journal.clear()
        old = ('slot %d (release %s) are untouched and still serve traffic' % (plan.old_slot, plan.old_release)
               if plan.old_slot else 'are untouched; no release served before, so the app is still not serving')
        raise RotationError('Release %s on slot %d %s. %s; the proxy and %s. %s'
                            % (plan.release, plan.next_slot, what, 'It was stopped' if undo is None else
                               'Stopping it failed too (%s)' % undo, old, self._log_advice(plan.next_slot)))

    def _switch(self, plan):
        """Flip to the next slot and confirm it in service; else put the old slot back in front."""
        try:
            self._step('flip', self._flip, plan)
            self._step('verify', self._verify, plan)
            if self.settings.watch_seconds > 0:
                self._step('watch', self._watch, plan)
        except _StepFailed as exc:
            problems = []
            if plan.old_slot is not None:
                problems.append(self._undo('flip-back', self._flip_back, plan))
            problems.append(self._undo('stop-next', self._stop_next, plan))
            problems = [problem for problem in problems if problem]
            if problems:
                now = ('Undoing it failed: %s. The proxy may still route to slot %d; run the deploy again, or a '
                       'rollback, once the cause is fixed.' % ('; '.join(problems), plan.next_slot))
            elif plan.old_slot is not None:
                now = ('%s slot %d (release %s), which kept running, and slot %d was stopped; the state file still '
                       'records slot %d as active.'
                       % (self.proxy.BACK_TO, plan.old_slot, plan.old_release, plan.next_slot, plan.old_slot))
            else:
                now = ('There was no previous slot to go back to: slot %d was stopped, so the app is down until a '
                       'release that stays ready is deployed.' % plan.next_slot)
            if not problems:
                self.journal.clear()
            # The log's last lines come last: the advice must not end up after them.
            raise RotationError('Release %s on slot %d was ready, but after the flip %s. %s Fix the release and '
                                'deploy again. %s' % (plan.release, plan.next_slot, _sentence(exc), now,
                                                      self._log_advice(plan.next_slot)))

    def _resume(self, plan, entry):
        """phase=finish: the prepare run must have left this very rotation ready, and it must still be."""
        if (entry is None or entry.get('step') != PREPARED or entry.get('release') != plan.release
                or entry.get('slot') != plan.next_slot):
            raise RotationError(
                'There is no prepared rotation of release %s to slot %d to finish on this host (journal: %s). '
                'Nothing was changed. Run the rotation with phase=prepare first.'
                % (plan.release, plan.next_slot, describe_journal(entry) or 'none'))
        self.journal.resume(entry)
        try:
            self._step('ready', self._wait_ready, plan)
        except _StepFailed as exc:
            self._not_ready(plan, 'was ready before the before-flip hook, but not after it: %s' % _sentence(exc))

    # --- the steps (each returns the detail of its event, raises _StepFailed on failure) -------------

    def _point(self, plan):
        settings = self.settings
        slot = plan.next_slot
        restore = settings.restore_env and settings.action == 'rollback'
        try:
            source = slot_env.write_slot_env(
                settings.root, settings.env_dir, slot, settings.release, settings.ports[slot], settings.gid,
                env=None if restore else (settings.env or {}), keep_slot=plan.old_slot)
        except (slot_env.EnvFileError, ValueError) as exc:
            raise _StepFailed('%s. Slot %d was not changed.' % (exc, slot))
        link = os.path.join(settings.root, 'slots', str(slot))
        tmp = '%s.%d.tmp' % (link, os.getpid())
        os.symlink(self._release_dir(), tmp)
        os.replace(tmp, link)
        return 'slot %d -> %s (environment: %s)' % (slot, self._release_dir(), source)

    def _start_next(self, plan):
        unit = self._unit(plan.next_slot)
        self.processes.start(unit)
        return 'started %s' % unit

    def _wait_ready(self, plan):
        settings = self.settings
        url = settings.slot_url(plan.next_slot)
        result = self.probe.wait_ready(url, process_watch=ProcessWatch(self.processes, self._unit(plan.next_slot)),
                                       passes=settings.ready_passes, interval=settings.ready_interval,
                                       timeout=settings.ready_timeout)
        if result.process is not None:
            raise _StepFailed(result.process['reason'])
        if not result.ready:
            raise _StepFailed('%s was not ready after %g s (%d attempts, last result: %s)'
                              % (url, settings.ready_timeout, result.attempts, result.last_error))
        self.figures['ready'] = (result.elapsed, result.attempts, self.probe.clock())
        return '%s ready after %.3f s (%d checks)' % (url, result.elapsed, result.attempts)

    def _flip(self, plan):
        return self._set_gate(plan.next_slot)

    def _flip_back(self, plan):
        return self._set_gate(plan.old_slot)

    def _set_gate(self, slot):
        try:
            return self.proxy.flip(slot)
        except Exception as exc:
            raise _StepFailed('%s could not be set to slot %d: %s' % (self.proxy.location, slot, exc))

    def _verify(self, plan):
        start = self.probe.clock()
        result = self.proxy.verify(plan.next_slot)
        if not result.ready:
            raise _StepFailed('%s: %s (%d checks, last result: %s)'
                              % (self.proxy.NOT_SERVED, self.proxy.probe_url, result.attempts, result.last_error))
        self.figures['routed'] = start + result.first_pass_elapsed
        return '%s: slot %d, for %s (first answer from it %.3f s after the flip)' % (
            self.proxy.SERVED, plan.next_slot, self.proxy.probe_url, result.first_pass_elapsed)

    def _watch(self, plan):
        settings = self.settings
        result = self.probe.watch(settings.slot_url(plan.next_slot), settings.watch_seconds, failures=WATCH_FAILURES)
        if not result.healthy:
            raise _StepFailed('it failed %d checks in a row %g s into the %g s watch (last result: %s)'
                              % (WATCH_FAILURES, result.failed_after, settings.watch_seconds, result.last_error))
        return 'stayed ready for %g s (%d checks)' % (settings.watch_seconds, result.attempts)

    def _drain(self, plan):
        port = self.settings.ports[plan.old_slot]
        try:
            result = self.proxy.drain(port, self.settings.drain_timeout)
        except Exception as exc:
            raise RotationError(
                'Release %s serves on slot %d, but the old slot %d could not be drained: '
                '%s. Slot %d still runs and the state file still records it as active; fix the cause and run the '
                'deploy again (it converges).' % (plan.release, plan.next_slot, plan.old_slot, exc, plan.old_slot))
        # held: the connections open since the flip that outlived the bound (a health check of the old
        # slot that happens to be open at the last count is not one); 0 once the slot drained.
        held = result.held
        self.figures['drained'] = (result.initial_connections, result.elapsed, held)
        detail = 'drained %d in-flight connection(s) of slot %d in %g s' % (
            result.initial_connections, plan.old_slot, result.elapsed)
        if held:
            detail += ('; %d long connection(s) still open at the drain bound (%g s) end with the old slot'
                       % (held, self.settings.drain_timeout))
        return detail

    def _stop_old(self, plan):
        unit = self._unit(plan.old_slot)
        try:
            self.processes.stop(unit)
        except Exception as exc:
            raise RotationError(
                'Release %s serves on slot %d, but stopping the old slot %d (%s) failed: %s. The state file still '
                'records slot %d as active. Stop %s by hand, or run the deploy again (it converges).'
                % (plan.release, plan.next_slot, plan.old_slot, unit, exc, plan.old_slot, unit))
        return 'stopped %s' % unit

    def _stop_next(self, plan):
        unit = self._unit(plan.next_slot)
        self.processes.stop(unit)
        return 'stopped %s' % unit

    def _record(self, plan):
        settings = self.settings
        state, _changed = deploy_state.apply_record(
            plan.state, plan.next_slot, plan.release, action=settings.action, ports=settings.ports,
            now=datetime.datetime.fromtimestamp(self.probe.wall_clock(), datetime.timezone.utc))
        try:
            deploy_state.atomic_write(settings.state_path, state)
        except OSError as exc:
            raise RotationError(
                'Release %s serves on slot %d and the old slot was stopped, but the state file %s could not be '
                'written: %s. Fix the cause and run the deploy again: it finds the proxy on slot %d and converges.'
                % (plan.release, plan.next_slot, settings.state_path, exc, plan.next_slot))
        self.recorded = state
        return 'slot %d active with release %s (%s)' % (plan.next_slot, plan.release, settings.state_path)

    # --- after the rotation: what the play would otherwise need a module run each for ----------------

    def prune(self, keep, state, release):
        """Remove the old releases (all but ``keep`` and those a slot runs or rolls back to); in check mode, say
        which. Returns what :func:`releases.prune` returns; raises :class:`RotationError`."""
        settings = self.settings
        started, start = self.probe.wall_clock(), self.probe.clock()
        try:
            pruned = releases.prune(settings.root, keep, state, settings.env_dir, release=release,
                                    check_mode=self.check_mode)
        except (OSError, ValueError) as exc:
            self._event('prune', started, start, False, str(exc))
            raise RotationError(
                'Release %s is live on slot %s and recorded, but the old releases under %s could not be removed: '
                '%s. Fix the cause; the next deploy removes them.'
                % (release, (state or {}).get('active_slot'), os.path.join(settings.root, 'releases'), _sentence(exc)))
        done = 'would remove' if self.check_mode else 'removed'
        self._event('prune', started, start, True, '%s %s' % (done, ', '.join(pruned['removed']) or 'no release'))
        return pruned

    def unlock(self, token):
        """Release the deploy lock held with ``token``. Returns None, or why it was not released."""
        path = self.settings.lock_path
        started, start = self.probe.wall_clock(), self.probe.clock()
        try:
            released = deploy_lock.release(path, self.settings.app, token=token)['released']
        except (deploy_lock.LockError, OSError) as exc:
            self._event('unlock', started, start, False, str(exc))
            return 'The deploy lock was not released: %s' % _sentence(exc)
        self._event('unlock', started, start, True, '%s %s' % ('released' if released else 'no lock held at', path))
        return None

    # --- helpers ----------------------------------------------------------------------------------

    def _step(self, name, action, plan):
        """Run one step: journal it, time it, emit its event. A failure is raised as _StepFailed."""
        self.journal.step(name)
        started, start = self.probe.wall_clock(), self.probe.clock()
        try:
            outcome = action(plan)
        except (_StepFailed, RotationError) as exc:
            self._event(name, started, start, False, str(exc))
            raise
        except Exception as exc:  # an unexpected error of a step is a failed step: its undo must run
            self._event(name, started, start, False, str(exc))
            raise _StepFailed('%s: %s' % (name, exc))
        self._event(name, started, start, True, outcome)

    def _undo(self, name, action, plan):
        """Run an undo step; returns None, or what went wrong (the rotation fails anyway)."""
        try:
            self._step(name, action, plan)
        except (_StepFailed, RotationError) as exc:
            return '%s: %s' % (name, exc)
        return None

    def _event(self, name, started, start, ok, detail):
        self.events.append(dict(step=name, started=round(started, 3), seconds=round(self.probe.clock() - start, 3),
                                ok=ok, detail=detail))

    def _result(self, plan, changed, interrupted, state=None):
        return dict(changed=changed, plan=plan.as_dict(), events=self.events, state=state or plan.state,
                    interrupted=describe_journal(interrupted), diff=self.diff(plan))

    def diff(self, plan):
        """The gate's change, as the proxy sees it (before: the live slot, after: the next one)."""
        def routes(slot, release):
            if slot is None:
                return ''
            return 'slot %d -> 127.0.0.1:%d (release %s)\n' % (slot, self.settings.ports[slot], release)

        after = routes(plan.old_slot, plan.old_release) if plan.noop else routes(plan.next_slot, plan.release)
        return dict(before=routes(plan.old_slot, plan.old_release), after=after,
                    before_header=self.proxy.location, after_header=self.proxy.location)

    def _previous_release(self, state):
        previous = state['slots'][str(state['next_slot'])]['release'] if state['active_slot'] else None
        if previous is None:
            raise RotationError('%s has no previous release on this host (state: active slot %s, other slot empty). '
                                'Nothing was changed.' % (self.settings.app, state['active_slot']))
        return previous

    def _unit(self, slot):
        return self.processes.unit_name(self.settings.app, slot)

    def _release_dir(self):
        return os.path.join(self.settings.root, 'releases', self.settings.release)

    def _release_marker(self):
        return os.path.join(self._release_dir(), '.baton-release')

    def _log_advice(self, slot):
        unit = self._unit(slot)
        try:
            tail = self.processes.log_tail(unit, DEFAULT_LOG_LINES).rstrip('\n')
        except Exception as exc:  # the advice must never hide the failure it explains
            tail, unit = '', '%s (its log could not be read: %s)' % (unit, exc)
        if not tail:
            return 'Check the app\'s logs (%s).' % unit
        return 'The last lines of the log of %s:\n%s' % (unit, tail)
