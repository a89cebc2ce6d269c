"""What the serving processes say about themselves: worker heartbeats, pool sizes, scaling decisions.

Written by the web workers (heartbeats) and by `shop serve`'s supervisor (pools, decisions); read by the
control panel, which may also ask the supervisor to set a pool's size by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

ScalingAction = Literal["up", "down", "set", "recycle", "move"]


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One web worker, as it last reported itself."""

    pid: int
    pool: str
    started_at: datetime
    updated_at: datetime
    requests: int  # served since the worker started
    in_flight: int


@dataclass(frozen=True, slots=True)
class PoolState:
    """One pool as the supervisor runs it."""

    name: str
    min_workers: int
    max_workers: int
    workers: int
    master_pid: int | None
    updated_at: datetime
    prefixes: tuple[str, ...] = ()
    backup: str | None = None  # the backup server's address, when the pool has one
    manual: bool = False  # size set by hand: the autoscaler leaves it alone


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    at: datetime
    pool: str
    action: ScalingAction
    from_workers: int
    to_workers: int
    reason: str


@dataclass(frozen=True, slots=True)
class SizeRequest:
    """Staff asking for a pool size; `workers=None` hands the pool back to the autoscaler."""

    pool: str
    workers: int | None
    requested_by: str
    at: datetime


class ProcessBoard(Protocol):
    """Where the serving processes of one machine post their state (files under var/run by default)."""

    def beat(self, beat: WorkerBeat) -> None: ...

    def forget_worker(self, pid: int) -> None: ...

    def workers(self) -> list[WorkerBeat]:
        """Live workers only: a beat older than a few seconds, or from a pid that is gone, is dropped."""
        ...

    def publish_pools(self, pools: Sequence[PoolState]) -> None: ...

    def pools(self) -> list[PoolState]: ...

    def record_decision(self, decision: ScalingDecision) -> None: ...

    def decisions(self, *, limit: int = 100) -> list[ScalingDecision]:
        """Newest first."""
        ...

    def request_size(self, request: SizeRequest) -> None: ...

    def take_size_requests(self) -> list[SizeRequest]:
        """The requests not yet taken, oldest first; each is returned once."""
        ...
