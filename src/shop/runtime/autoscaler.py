"""The autoscaler and the resource controller of `shop serve --pools`, called by the supervisor once a second.

Per pool it reads the workers' heartbeats (requests in flight) and their CPU and memory (psutil), and decides:
- up: the pool stayed saturated for `window` seconds (in flight per worker, or CPU near what its workers can use);
- down: the pool stayed idle for `idle_window` seconds; never below min, never above max;
- move: the busy pool would break the machine's budget, so a worker leaves an idle pool for it;
- recycle: one worker grew past `Budget.worker_memory_mb`; gunicorn replaces it;
- set: staff fixed the pool's size in the control panel (or handed it back to the autoscaler).

The budget's worker cap is `max(sum of the pools' min, cores × workers_per_core)`, 2 per core by default: an
async worker holds several requests while it waits on a database, so a second worker per core keeps the core
busy while the first waits, and more than that only adds memory and context switches. Each pool's min is
honoured even above the cap. Memory: an added worker must fit in `memory_mb` beside what every worker now uses
(its size estimated by its pool's mean). CPU: when the pools together use 95% of `cores`, a new worker only
takes CPU from the others, so growth comes from idle pools instead.

One signal per pool per tick, then the controller waits until the pool's workers number what it asked for
(gunicorn forks at once, but a worker told to go finishes its requests first), and each change starts the pool's
cool-down and a fresh observation window, so a decision is never made on figures from before the last one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from shop.runtime.resources import ProcessSample, PsutilSampler, ResourceSampler
from shop.services.process_status import ProcessBoard, ScalingAction, ScalingDecision, SizeRequest

log = logging.getLogger(__name__)

MACHINE_CPU_FULL = 0.95  # of the budget's cores, used by all pools together
# of a window's ticks: workers beat every 2 s, so one heartbeat caught between requests shows on two ticks; it must
# not cancel a saturated window, while a blip (one busy beat) stays far below
BUSY_SHARE = 2 / 3


@dataclass(frozen=True, slots=True)
class Budget:
    cores: float  # CPU the pools may use together (e.g. 2.0)
    memory_mb: int  # memory the pools may use together
    worker_memory_mb: int  # a worker above this is recycled


class ManagedPool(Protocol):
    name: str
    min_workers: int
    max_workers: int
    manual_size: int | None  # a staff size request sets it; None = autoscaled

    def worker_pids(self) -> list[int]: ...

    def add_worker(self) -> None: ...  # SIGTTIN to the gunicorn master

    def remove_worker(self) -> None: ...  # SIGTTOU

    def recycle(self, pid: int) -> None: ...  # SIGTERM one worker; gunicorn replaces it


@dataclass(frozen=True, slots=True)
class _Reading:
    at: float
    in_flight: float  # per worker
    cpu: float | None  # share of what the pool's workers can use (one core each, at most the budget's), 0..1
    busy: bool
    idle: bool


@dataclass(slots=True)
class _Watch:
    """What the controller remembers of one pool between ticks."""

    readings: deque[_Reading] = field(default_factory=deque)
    changed_at: float = -math.inf
    size: int | None = None  # what gunicorn's master was asked for, as far as this controller knows
    seen: int | None = None  # the worker count of the last tick, before `size` is known
    mismatch_since: float | None = None
    recycling: int | None = None
    blocked: bool = False  # "busy but at the budget" already logged for this spell


@dataclass(slots=True)
class _View:
    """One pool in one tick."""

    pool: ManagedPool
    watch: _Watch
    pids: list[int]
    size: int
    in_flight: float
    samples: dict[int, ProcessSample]
    cpu_percent: float  # summed over the workers measured
    rss_mb: float
    settled: bool

    @property
    def worker_rss_mb(self) -> float:
        return self.rss_mb / len(self.pids) if self.pids else 0.0


def _floor(pool: ManagedPool) -> int:
    return max(pool.min_workers, 1)  # gunicorn ignores TTOU at one worker


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _figure(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class Controller:
    def __init__(self, board: ProcessBoard, budget: Budget, *, sampler: ResourceSampler | None = None,
                 clock: Callable[[], float] = time.monotonic, window: float = 5.0, idle_window: float = 30.0,
                 cooldown: float = 10.0, busy_in_flight: float = 4.0, busy_cpu: float = 0.8,
                 idle_in_flight: float = 0.1, idle_cpu: float = 0.05, workers_per_core: float = 2.0,
                 settle_timeout: float = 30.0, wall_clock: Callable[[], datetime] = _utc_now) -> None:
        self.board = board
        self.budget = budget
        self._sampler = sampler if sampler is not None else PsutilSampler()
        self._clock = clock
        self._wall_clock = wall_clock
        self.window, self.idle_window, self.cooldown = window, idle_window, cooldown
        self.busy_in_flight, self.busy_cpu = busy_in_flight, busy_cpu
        self.idle_in_flight, self.idle_cpu = idle_in_flight, idle_cpu
        self.workers_per_core = workers_per_core
        self.settle_timeout = settle_timeout
        self._watches: dict[str, _Watch] = {}
        self._over_memory_logged = False

    def worker_cap(self, pools: Sequence[ManagedPool]) -> int:
        return max(sum(p.min_workers for p in pools), math.floor(self.budget.cores * self.workers_per_core))

    def tick(self, pools: Sequence[ManagedPool]) -> list[ScalingDecision]:
        """Observe every pool once and change each one's size by one worker at most; returns the decisions taken."""
        now = self._clock()
        views = self._observe(pools, now)
        decisions: list[ScalingDecision] = []
        for request in self.board.take_size_requests():
            decisions.extend(self._apply_request(request, views))
        for view in views:
            decisions.extend(self._recycle_heavy(view, now))
            if view.settled and view.pool.manual_size is not None:
                self._follow_manual(view, now)
        decisions.extend(self._relieve_memory(views, now))
        # the busiest pool first, so it is the one that gets the budget's last room
        for view in sorted(views, key=lambda v: (v.in_flight, v.cpu_percent), reverse=True):
            if self._autoscaled(view, now):
                decisions.extend(self._autoscale(view, views, now))
        return decisions

    # observing
    def _observe(self, pools: Sequence[ManagedPool], now: float) -> list[_View]:
        self._watches = {p.name: self._watches.get(p.name) or _Watch() for p in pools}
        pids = {p.name: p.worker_pids() for p in pools}
        in_flight = {beat.pid: beat.in_flight for beat in self.board.workers()}
        samples = self._sampler.sample(pid for group in pids.values() for pid in group)
        views = []
        for pool in pools:
            watch, mine = self._watches[pool.name], pids[pool.name]
            settled = self._settle(pool.name, watch, len(mine), now)
            mine_sampled = {pid: samples[pid] for pid in mine if pid in samples}
            cpu_known = [s.cpu_percent for s in mine_sampled.values() if s.cpu_percent is not None]
            view = _View(pool=pool, watch=watch, pids=mine, size=len(mine) if watch.size is None else watch.size,
                         in_flight=sum(in_flight.get(pid, 0) for pid in mine) / max(len(mine), 1),
                         samples=mine_sampled, cpu_percent=sum(cpu_known),
                         rss_mb=sum(s.rss_mb for s in mine_sampled.values()), settled=settled)
            usable = min(len(cpu_known), self.budget.cores) * 100
            cpu = view.cpu_percent / usable if cpu_known and usable > 0 else None
            busy = view.in_flight >= self.busy_in_flight or (cpu is not None and cpu >= self.busy_cpu)
            idle = view.in_flight <= self.idle_in_flight and cpu is not None and cpu <= self.idle_cpu
            watch.readings.append(_Reading(at=now, in_flight=view.in_flight, cpu=cpu, busy=busy, idle=idle))
            longest = max(self.window, self.idle_window)
            while len(watch.readings) > 2 and watch.readings[1].at <= now - longest:
                watch.readings.popleft()  # one reading older than the longest window stays: it shows coverage
            views.append(view)
        return views

    def _settle(self, name: str, watch: _Watch, count: int, now: float) -> bool:
        """Whether the pool's workers number what its master was asked for, so its size may change.

        The pids alone would mislead: a worker being recycled or restarted after a crash leaves a gap for a
        moment, a reload doubles them for a while, and a signal for such a gap would change gunicorn's count
        for good. So the size is what the controller asked for, taken from the pids only when they hold still.
        """
        if count == 0:  # the master is down or starting: the supervisor's business
            watch.mismatch_since = None
            return False
        if watch.size is None:
            watch.size = count if watch.seen == count else None  # two ticks alike: gunicorn has booted them all
            watch.seen = count
            return watch.size is not None
        if count == watch.size:
            watch.mismatch_since = None
            return True
        if watch.mismatch_since is None:
            watch.mismatch_since = now
        if now - watch.mismatch_since < self.settle_timeout:
            return False
        log.warning("pool %s has had %d workers for %s s, not the %d asked for; going by the %d", name, count,
                    _figure(self.settle_timeout), watch.size, count)
        watch.size, watch.mismatch_since = count, None
        return True

    def _sustained(self, watch: _Watch, now: float, window: float, *, busy: bool) -> list[_Reading] | None:
        """The window's readings when the pool was busy (or idle) throughout it, else None."""
        if not watch.readings or watch.readings[0].at > now - window:
            return None  # not watched that long since the last change
        recent = [r for r in watch.readings if r.at >= now - window]
        if busy:
            return recent if sum(r.busy for r in recent) >= BUSY_SHARE * len(recent) else None
        return recent if all(r.idle for r in recent) else None

    def _why_busy(self, recent: list[_Reading]) -> str:
        in_flight = sum(r.in_flight for r in recent) / len(recent)
        cpus = [r.cpu for r in recent if r.cpu is not None]
        cpu = sum(cpus) / len(cpus) if cpus else 0.0
        span = _figure(self.window)
        why = []
        if in_flight >= self.busy_in_flight or cpu < self.busy_cpu:
            why.append(f"in-flight {in_flight:.1f}/worker for {span} s ≥ {_figure(self.busy_in_flight)}")
        if cpu >= self.busy_cpu:
            why.append(f"CPU {cpu:.0%} of its workers' cores for {span} s ≥ {self.busy_cpu:.0%}")
        return ", ".join(why)

    def _why_idle(self, recent: list[_Reading], window: float) -> str:
        in_flight = max(r.in_flight for r in recent)
        cpu = max(r.cpu or 0.0 for r in recent)
        return f"idle for {_figure(window)} s: in-flight ≤ {in_flight:.1f}/worker, CPU ≤ {cpu:.0%}"

    # budget
    def _no_room(self, views: list[_View], grower: _View) -> str | None:
        """Why the budget has no room for one more worker in `grower`'s pool, or None when it has."""
        cap = self.worker_cap([v.pool for v in views])
        if sum(v.size for v in views) >= cap:
            return f"budget of {cap} workers on {_figure(self.budget.cores)} cores reached"
        rss = sum(v.rss_mb for v in views)
        if rss + grower.worker_rss_mb > self.budget.memory_mb:
            return (f"memory {rss:.0f} MB + {grower.worker_rss_mb:.0f} MB for a worker > budget "
                    f"{self.budget.memory_mb} MB")
        cpu = sum(v.cpu_percent for v in views) / 100
        if cpu >= MACHINE_CPU_FULL * self.budget.cores:
            return f"pools use {cpu:.1f} of {_figure(self.budget.cores)} cores"
        return None

    # signals and the record
    def _change(self, view: _View, delta: int, now: float) -> None:
        for _ in range(abs(delta)):
            (view.pool.add_worker if delta > 0 else view.pool.remove_worker)()
        view.rss_mb += delta * view.worker_rss_mb
        view.size += delta
        view.settled = False
        view.watch.size, view.watch.mismatch_since = view.size, now
        view.watch.changed_at = now
        view.watch.readings.clear()  # figures from before the change describe another pool
        view.watch.blocked = False

    def _record(self, view: _View, action: ScalingAction, from_workers: int, reason: str, *,
                to_workers: int | None = None) -> ScalingDecision:
        to = view.size if to_workers is None else to_workers
        decision = ScalingDecision(at=self._wall_clock(), pool=view.pool.name, action=action,
                                   from_workers=from_workers, to_workers=to, reason=reason)
        self.board.record_decision(decision)
        log.info("pool %s: %s %d → %d workers: %s", view.pool.name, action, from_workers, to, reason)
        return decision

    # staff
    def _apply_request(self, request: SizeRequest, views: list[_View]) -> list[ScalingDecision]:
        view = next((v for v in views if v.pool.name == request.pool), None)
        if view is None:
            log.warning("size request for unknown pool %r by %s ignored", request.pool, request.requested_by)
            return []
        pool, size = view.pool, view.size
        if request.workers is None:
            pool.manual_size = None
            view.watch.readings.clear()
            return [self._record(view, "set", size, f"handed back to the autoscaler by {request.requested_by}")]
        asked = request.workers
        target = min(max(asked, _floor(pool)), pool.max_workers)
        notes = []
        if target != asked:
            notes.append(f"{'min' if target > asked else 'max'} {target}")
        cap = self.worker_cap([v.pool for v in views])
        others = sum(v.size for v in views if v is not view)
        allowed = cap - others
        spare_mb = self.budget.memory_mb - sum(v.rss_mb for v in views if v is not view)
        if view.worker_rss_mb > 0:
            allowed = min(allowed, math.floor(spare_mb / view.worker_rss_mb))
        if target > max(allowed, size, _floor(pool)):
            target = max(allowed, size, _floor(pool))
            notes.append(f"the budget allows {target} ({cap} workers on {_figure(self.budget.cores)} cores, "
                         f"{self.budget.memory_mb} MB)")
        pool.manual_size = target
        view.watch.readings.clear()
        reason = f"set to {target} by {request.requested_by}"
        if notes:
            reason += f": {asked} asked, " + ", ".join(notes)
        return [self._record(view, "set", size, reason, to_workers=target)]

    def _follow_manual(self, view: _View, now: float) -> None:
        assert view.pool.manual_size is not None
        target = min(max(view.pool.manual_size, _floor(view.pool)), view.pool.max_workers)
        if view.size != target:
            log.debug("pool %s: one step towards the %d workers staff set", view.pool.name, target)
            self._change(view, 1 if target > view.size else -1, now)

    # the resource controller
    def _recycle_heavy(self, view: _View, now: float) -> list[ScalingDecision]:
        watch = view.watch
        if watch.recycling in view.pids:
            return []  # one at a time: the pool keeps its other workers while the last one is replaced
        watch.recycling = None
        rss = {pid: s.rss_mb for pid, s in view.samples.items()}
        heavy = [pid for pid, mb in rss.items() if mb > self.budget.worker_memory_mb]
        if not heavy:
            return []
        pid = max(heavy, key=rss.__getitem__)
        view.pool.recycle(pid)
        watch.recycling = pid
        return [self._record(view, "recycle", view.size,
                             f"worker {pid} uses {rss[pid]:.0f} MB > {self.budget.worker_memory_mb} MB")]

    def _relieve_memory(self, views: list[_View], now: float) -> list[ScalingDecision]:
        used = sum(v.rss_mb for v in views)
        if used <= self.budget.memory_mb:
            self._over_memory_logged = False
            return []
        shrinkable = [v for v in views if self._autoscaled(v, now) and v.size > _floor(v.pool)]
        if not shrinkable:
            if not self._over_memory_logged:
                log.warning("pools use %.0f MB > budget %d MB and every pool is at its min or set by hand",
                            used, self.budget.memory_mb)
                self._over_memory_logged = True
            return []
        view = min(shrinkable, key=lambda v: (v.in_flight, v.cpu_percent))
        size = view.size
        self._change(view, -1, now)
        return [self._record(view, "down", size, f"pools use {used:.0f} MB > budget {self.budget.memory_mb} MB")]

    # the autoscaler
    def _autoscaled(self, view: _View, now: float) -> bool:
        """Left to the autoscaler this tick: not set by hand, settled, and cooled down since its last change."""
        return (view.pool.manual_size is None and view.settled
                and now - view.watch.changed_at >= self.cooldown)

    def _autoscale(self, view: _View, views: list[_View], now: float) -> list[ScalingDecision]:
        pool, size = view.pool, view.size
        busy = self._sustained(view.watch, now, self.window, busy=True)
        if busy is not None and size < pool.max_workers:
            why = self._why_busy(busy)
            no_room = self._no_room(views, view)
            if no_room is None:
                self._change(view, 1, now)
                return [self._record(view, "up", size, why)]
            return self._move_to(view, views, now, why=why, no_room=no_room)
        idle = self._sustained(view.watch, now, self.idle_window, busy=False)
        if idle is not None and size > _floor(pool):
            self._change(view, -1, now)
            return [self._record(view, "down", size, self._why_idle(idle, self.idle_window))]
        return []

    def _move_to(self, busy: _View, views: list[_View], now: float, *, why: str,
                 no_room: str) -> list[ScalingDecision]:
        donors = [(v, idle) for v in views if v is not busy and self._autoscaled(v, now)
                  and v.size > _floor(v.pool)
                  and (idle := self._sustained(v.watch, now, self.window, busy=False)) is not None]
        if not donors:
            if not busy.watch.blocked:
                log.info("pool %s is busy (%s) but %s, and no pool is idle above its min", busy.pool.name, why,
                         no_room)
                busy.watch.blocked = True
            return []
        donor, idle = max(donors, key=lambda d: (d[0].size - _floor(d[0].pool), -d[0].in_flight))
        donor_size, busy_size = donor.size, busy.size
        self._change(donor, -1, now)
        self._change(busy, 1, now)
        return [
            self._record(donor, "move", donor_size,
                         f"a worker moved to {busy.pool.name} ({why}; {no_room}); "
                         f"{self._why_idle(idle, self.window)}"),
            self._record(busy, "move", busy_size,
                         f"a worker moved from {donor.pool.name}, {self._why_idle(idle, self.window)}; "
                         f"{why}; {no_room}"),
        ]
