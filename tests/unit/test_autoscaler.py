"""The autoscaler and the resource controller against fake pools, a fake sampler and a fake clock: one tick a second."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shop.infrastructure.process_files import FileProcessBoard
from shop.runtime.autoscaler import Budget, Controller
from shop.runtime.resources import ProcessSample, PsutilSampler
from shop.services.process_status import PoolState, ScalingDecision, SizeRequest, WorkerBeat

PIDS = itertools.count(10_000)
ROOMY = Budget(cores=8, memory_mb=64_000, worker_memory_mb=512)


class FakePool:
    """A gunicorn master as the controller sees it; `lazy` holds the pids back until `catch_up()`, as a slow fork."""

    def __init__(self, name: str, *, workers: int = 1, min_workers: int = 1, max_workers: int = 4,
                 lazy: bool = False) -> None:
        self.name, self.min_workers, self.max_workers = name, min_workers, max_workers
        self.manual_size: int | None = None
        self.pids = [next(PIDS) for _ in range(workers)]
        self.calls: list[str] = []
        self.lazy = lazy
        self._owed = 0

    def worker_pids(self) -> list[int]:
        return list(self.pids)

    def add_worker(self) -> None:
        self.calls.append("add")
        self._owed += 1
        if not self.lazy:
            self.catch_up()

    def remove_worker(self) -> None:
        self.calls.append("remove")
        self._owed -= 1
        if not self.lazy:
            self.catch_up()

    def recycle(self, pid: int) -> None:
        self.calls.append(f"recycle {pid}")

    def catch_up(self) -> None:
        while self._owed > 0:
            self.pids.append(next(PIDS))
            self._owed -= 1
        while self._owed < 0:
            self.pids.pop(0)  # gunicorn lets the oldest go
            self._owed += 1


class FakeBoard:
    """The process board in memory; beats are kept as given (no staleness: the clock is fake)."""

    def __init__(self) -> None:
        self.beats: dict[int, WorkerBeat] = {}
        self.recorded: list[ScalingDecision] = []
        self.requests: list[SizeRequest] = []

    def beat(self, beat: WorkerBeat) -> None:
        self.beats[beat.pid] = beat

    def forget_worker(self, pid: int) -> None:
        self.beats.pop(pid, None)

    def workers(self) -> list[WorkerBeat]:
        return list(self.beats.values())

    def publish_pools(self, pools: Sequence[PoolState]) -> None:
        raise AssertionError("the controller leaves publishing pools to the supervisor")

    def pools(self) -> list[PoolState]:
        return []

    def record_decision(self, decision: ScalingDecision) -> None:
        self.recorded.append(decision)

    def decisions(self, *, limit: int = 100) -> list[ScalingDecision]:
        return self.recorded[::-1][:limit]

    def request_size(self, request: SizeRequest) -> None:
        self.requests.append(request)

    def take_size_requests(self) -> list[SizeRequest]:
        taken, self.requests = self.requests, []
        return taken


class FakeSampler:
    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}
        self.rss: dict[int, float] = {}

    def sample(self, pids: Iterable[int]) -> dict[int, ProcessSample]:
        return {pid: ProcessSample(cpu_percent=self.cpu.get(pid, 0.0), rss_mb=self.rss.get(pid, 100.0))
                for pid in pids}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


Load = Callable[[FakePool], tuple[float, float]]  # in flight per worker, CPU % per worker


class Machine:
    """The pools, the board, the sampler and the clock around one controller."""

    def __init__(self, *pools: FakePool, budget: Budget = ROOMY, board: FakeBoard | FileProcessBoard | None = None,
                 **tuning: float) -> None:
        self.pools = list(pools)
        self.board = board if board is not None else FakeBoard()
        self.sampler = FakeSampler()
        self.clock = FakeClock()
        self.controller = Controller(self.board, budget, sampler=self.sampler, clock=self.clock, **tuning)
        self.loads: dict[str, tuple[float, float]] = {}

    def load(self, pool: FakePool, *, in_flight: float = 0.0, cpu: float = 0.0) -> None:
        self.loads[pool.name] = (in_flight, cpu)

    def run(self, seconds: int) -> list[tuple[float, ScalingDecision]]:
        """Tick once a second for `seconds` ticks; the decisions with the second they were taken."""
        taken = []
        for _ in range(seconds):
            for pool in self.pools:
                in_flight, cpu = self.loads.get(pool.name, (0.0, 0.0))
                for pid in pool.pids:
                    if isinstance(self.board, FakeBoard):
                        stamp = datetime(2025, 1, 1, tzinfo=UTC)
                        self.board.beat(WorkerBeat(pid=pid, pool=pool.name, started_at=stamp, updated_at=stamp,
                                                   requests=0, in_flight=round(in_flight)))
                    self.sampler.cpu[pid] = cpu
            taken.extend((self.clock.now, d) for d in self.controller.tick(self.pools))
            self.clock.now += 1
        return taken


def test_a_pool_saturated_for_the_whole_window_gets_one_more_worker() -> None:
    catalog = FakePool("catalog", workers=2)
    machine = Machine(catalog)
    machine.load(catalog, in_flight=5)
    assert machine.run(5) == []  # 0 … 4 s: not yet a whole window
    [(at, decision)] = machine.run(1)
    assert at == 5 and catalog.calls == ["add"] and len(catalog.pids) == 3
    assert (decision.pool, decision.action, decision.from_workers, decision.to_workers) == ("catalog", "up", 2, 3)
    assert decision.reason == "in-flight 5.0/worker for 5 s ≥ 4"
    assert machine.board.decisions() == [decision]


def test_a_blip_of_load_adds_no_worker() -> None:
    catalog = FakePool("catalog")
    machine = Machine(catalog)
    machine.load(catalog, in_flight=9, cpu=100)
    machine.run(1)
    machine.load(catalog, in_flight=1, cpu=30)
    assert machine.run(30) == [] and catalog.calls == []


def test_one_quiet_heartbeat_does_not_cancel_a_saturated_window() -> None:
    catalog = FakePool("catalog", workers=2)
    machine = Machine(catalog)
    machine.load(catalog, in_flight=5)
    machine.run(2)
    machine.load(catalog, in_flight=0)  # a beat caught between requests, read on two ticks
    machine.run(2)
    machine.load(catalog, in_flight=5)
    assert [(at, d.action) for at, d in machine.run(2)] == [(5, "up")]


def test_cpu_near_what_the_workers_can_use_adds_a_worker() -> None:
    catalog = FakePool("catalog", workers=2)
    machine = Machine(catalog)
    machine.load(catalog, in_flight=1, cpu=90)
    [(_, decision)] = machine.run(6)
    assert decision.action == "up" and decision.reason == "CPU 90% of its workers' cores for 5 s ≥ 80%"


def test_an_idle_pool_shrinks_after_the_longer_window_and_stops_at_its_min() -> None:
    catalog = FakePool("catalog", workers=3, min_workers=2)
    machine = Machine(catalog)
    assert machine.run(30) == []  # idle 0 … 29 s: the short window is not enough to give workers back
    [(at, decision)] = machine.run(1)
    assert at == 30 and (decision.action, decision.to_workers) == ("down", 2)
    assert decision.reason == "idle for 30 s: in-flight ≤ 0.0/worker, CPU ≤ 0%"
    assert machine.run(120) == [] and len(catalog.pids) == 2


def test_a_cool_down_follows_each_change() -> None:
    catalog = FakePool("catalog", max_workers=8)
    machine = Machine(catalog)
    machine.load(catalog, in_flight=6)
    ups = [at for at, d in machine.run(40) if d.action == "up"]
    # the first after a 5 s window, then every 10 s cool-down (which outlasts a fresh window), never sooner
    assert ups == [5, 15, 25, 35]


def test_a_busy_pool_stops_at_its_max() -> None:
    catalog = FakePool("catalog", workers=2, max_workers=3)
    machine = Machine(catalog)
    machine.load(catalog, in_flight=8)
    machine.run(60)
    assert catalog.calls == ["add"] and len(catalog.pids) == 3


def test_a_gap_left_by_a_dying_worker_is_not_filled_by_a_signal() -> None:
    catalog = FakePool("catalog", workers=2, max_workers=4)
    catalog.manual_size = 2
    machine = Machine(catalog)
    machine.run(2)  # two ticks alike: the controller knows the pool runs 2
    catalog.pids.pop()  # crashed; gunicorn's master starts another on its own
    assert machine.run(20) == [] and catalog.calls == []
    catalog.pids.append(next(PIDS))  # the new one
    machine.run(2)
    catalog.pids.pop()  # this time the count stays at 1 (say, someone sent TTOU by hand)
    machine.run(29)
    assert catalog.calls == []
    machine.run(2)  # after 30 s the pids are believed, and the pool is brought back to the size staff set
    assert catalog.calls == ["add"]


def test_the_budget_caps_the_workers_of_all_pools_together() -> None:
    catalog = FakePool("catalog", workers=2)
    checkout = FakePool("checkout", workers=1, min_workers=1)
    machine = Machine(catalog, checkout, budget=Budget(cores=1.5, memory_mb=64_000, worker_memory_mb=512))
    assert machine.controller.worker_cap(machine.pools) == 3  # two per core, rounded down
    machine.load(catalog, in_flight=6)
    machine.load(checkout, in_flight=1)  # not idle: nothing to take from it
    assert machine.run(30) == [] and catalog.calls == [] and checkout.calls == []


def test_an_added_worker_must_fit_in_the_memory_budget() -> None:
    catalog = FakePool("catalog", workers=2)
    machine = Machine(catalog, budget=Budget(cores=8, memory_mb=1000, worker_memory_mb=512))
    for pid in catalog.pids:
        machine.sampler.rss[pid] = 400.0  # 800 MB now, 1200 MB with one more
    machine.load(catalog, in_flight=6)
    assert machine.run(30) == [] and catalog.calls == []


def test_pools_using_the_whole_machine_cpu_get_no_more_workers() -> None:
    catalog = FakePool("catalog", workers=2)
    machine = Machine(catalog, budget=Budget(cores=2, memory_mb=64_000, worker_memory_mb=512))
    machine.load(catalog, in_flight=1, cpu=98)  # busy, but a third worker would find no free core
    assert machine.run(30) == [] and catalog.calls == []


def test_a_worker_moves_from_an_idle_pool_to_a_busy_one_at_the_budget() -> None:
    catalog = FakePool("catalog", workers=2)
    checkout = FakePool("checkout", workers=2, min_workers=1)
    account = FakePool("account", workers=1, min_workers=1)  # idle too, but at its min
    machine = Machine(catalog, checkout, account, budget=Budget(cores=2.5, memory_mb=64_000, worker_memory_mb=512))
    machine.load(catalog, in_flight=5)
    decisions = machine.run(6)
    assert [(at, d.pool, d.action, d.from_workers, d.to_workers) for at, d in decisions] == [
        (5, "checkout", "move", 2, 1), (5, "catalog", "move", 2, 3)]
    assert checkout.calls == ["remove"] and catalog.calls == ["add"] and account.calls == []
    given, taken = (d.reason for _, d in decisions)
    assert given.startswith("a worker moved to catalog (in-flight 5.0/worker for 5 s ≥ 4; budget of 5 workers")
    assert taken.startswith("a worker moved from checkout, idle for 5 s")
    assert machine.run(60) == []  # checkout is at its min now: nothing more to move


def test_a_worker_over_its_memory_limit_is_recycled_once() -> None:
    catalog = FakePool("catalog", workers=3)
    machine = Machine(catalog, budget=Budget(cores=8, memory_mb=64_000, worker_memory_mb=512))
    heavy, heavier = catalog.pids[1], catalog.pids[2]
    machine.sampler.rss.update({heavy: 600.0, heavier: 700.0})
    [(_, decision)] = machine.run(1)
    assert (decision.action, decision.from_workers, decision.to_workers) == ("recycle", 3, 3)
    assert decision.reason == f"worker {heavier} uses 700 MB > 512 MB"
    assert machine.run(3) == []  # one at a time: the heavier is still finishing its requests
    catalog.pids.remove(heavier)  # gunicorn replaced it
    catalog.pids.append(next(PIDS))
    assert [d.reason for _, d in machine.run(1)] == [f"worker {heavy} uses 600 MB > 512 MB"]
    assert catalog.calls == [f"recycle {heavier}", f"recycle {heavy}"]


def test_pools_over_the_memory_budget_give_back_a_worker() -> None:
    catalog = FakePool("catalog", workers=3)
    machine = Machine(catalog, budget=Budget(cores=8, memory_mb=1000, worker_memory_mb=512))
    for pid in catalog.pids:
        machine.sampler.rss[pid] = 400.0
    machine.load(catalog, in_flight=1)
    [(_, decision)] = machine.run(2)
    assert (decision.action, decision.to_workers, decision.reason) == ("down", 2, "pools use 1200 MB > budget 1000 MB")


def test_staff_set_a_pool_size_and_hand_it_back(tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path)
    catalog = FakePool("catalog", workers=1, max_workers=4)
    machine = Machine(catalog, board=board)
    board.request_size(SizeRequest(pool="catalog", workers=3, requested_by="ada@example.com", at=datetime.now(UTC)))
    [(_, decision)] = machine.run(2)  # the set at once; the first step once two ticks showed the pool's size
    assert (decision.action, decision.from_workers, decision.to_workers) == ("set", 1, 3)
    assert decision.reason == "set to 3 by ada@example.com"
    assert catalog.manual_size == 3 and catalog.calls == ["add"]  # one step per tick
    machine.run(1)
    assert len(catalog.pids) == 3
    assert machine.run(120) == [] and catalog.calls == ["add", "add"]  # idle, but set by hand: left alone

    board.request_size(SizeRequest(pool="catalog", workers=None, requested_by="ada@example.com",
                                   at=datetime.now(UTC)))
    [(_, handed_back)] = machine.run(1)
    assert catalog.manual_size is None
    assert (handed_back.action, handed_back.reason) == ("set", "handed back to the autoscaler by ada@example.com")
    downs = machine.run(70)  # 30 s idle, then 30 s more after the change
    assert [d.action for _, d in downs] == ["down", "down"] and len(catalog.pids) == 1
    assert [d.action for d in board.decisions()] == ["down", "down", "set", "set"]


def test_a_size_request_is_clamped_to_the_pool_and_the_budget_and_says_so() -> None:
    catalog = FakePool("catalog", workers=1, max_workers=4)
    checkout = FakePool("checkout", workers=1, min_workers=1)
    machine = Machine(catalog, checkout, budget=Budget(cores=1.5, memory_mb=64_000, worker_memory_mb=512))
    stamp = datetime.now(UTC)
    machine.board.request_size(SizeRequest(pool="catalog", workers=10, requested_by="bo@example.com", at=stamp))
    machine.board.request_size(SizeRequest(pool="nowhere", workers=2, requested_by="bo@example.com", at=stamp))
    [(_, decision)] = machine.run(1)
    assert decision.to_workers == 2 and catalog.manual_size == 2
    assert decision.reason == ("set to 2 by bo@example.com: 10 asked, max 4, "
                               "the budget allows 2 (3 workers on 1.5 cores, 64000 MB)")
    machine.board.request_size(SizeRequest(pool="checkout", workers=0, requested_by="bo@example.com", at=stamp))
    [(_, floor)] = machine.run(1)
    assert (floor.to_workers, floor.reason) == (1, "set to 1 by bo@example.com: 0 asked, min 1")


def test_no_second_signal_before_gunicorn_has_done_the_first() -> None:
    catalog = FakePool("catalog", workers=1, lazy=True)
    machine = Machine(catalog)
    machine.board.request_size(SizeRequest(pool="catalog", workers=3, requested_by="ada@example.com",
                                           at=datetime.now(UTC)))
    machine.run(5)
    assert catalog.calls == ["add"]  # the pids still show one worker: the fork has not happened
    catalog.catch_up()
    machine.run(1)
    assert catalog.calls == ["add", "add"]


def test_the_psutil_sampler_measures_cpu_since_its_last_look_and_forgets_the_dead() -> None:
    sampler = PsutilSampler()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    first = sampler.sample([os.getpid(), child.pid])
    assert list(first) == [os.getpid()]  # the child is gone
    assert first[os.getpid()].cpu_percent is None and first[os.getpid()].rss_mb > 10
    spent = time.process_time()
    while time.process_time() - spent < 0.05:  # some CPU between the looks (the kernel counts in 10 ms ticks)
        pass
    second = sampler.sample([os.getpid()])[os.getpid()]
    assert second.cpu_percent is not None and second.cpu_percent > 0


@pytest.mark.parametrize("cores", [0.5, 1, 2, 4])
def test_the_worker_cap_is_two_per_core_but_never_below_the_pools_mins(cores: float) -> None:
    pools = [FakePool("catalog", min_workers=2), FakePool("checkout", min_workers=1)]
    controller = Controller(FakeBoard(), Budget(cores=cores, memory_mb=1000, worker_memory_mb=512))
    assert controller.worker_cap(pools) == max(3, int(cores * 2))
