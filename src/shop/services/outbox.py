"""The transactional outbox: side effects (e-mail today; SMS and webhooks later) written as rows in the main
store, in the same transaction as the change that causes them, and delivered afterwards by `shop worker`.

Two ports, because the two sides meet the outbox at different moments:

- `OutboxWriter` is the outbox *inside a unit of work*. It has no connection of its own: whatever it adds is
  committed or rolled back together with the caller's other writes, so an order that rolls back never sends
  its confirmation. The infrastructure hands one out bound to the caller's open transaction (see
  `shop.infrastructure.db.main.outbox.SqlOutbox.within`); a unit of work exposes it as `uow.outbox`.
- `Outbox` is the worker's side: claim what is due under a lease, then record how each delivery went.

Delivery is at least once: a worker that sends and then cannot record it (crash, lost database) leaves the
row to be sent again once its lease runs out. Rows are never deleted; a row given up on is marked dead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutboxJob:
    """One claimed row. `attempts` counts this attempt; `token` proves the claim is still ours."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    claimed_until: datetime
    token: str


class OutboxWriter(Protocol):
    """Adds to the outbox inside the caller's transaction."""

    async def add(self, kind: str, payload: Mapping[str, Any], *, available_at: datetime | None = None) -> int:
        """Queue one job (JSON-ready `payload`), due now or at `available_at`; returns its id."""
        ...


class Outbox(Protocol):
    """Claims due jobs and records the outcome of each; every method runs its own short transaction."""

    async def claim_due(self, kind: str, *, now: datetime, limit: int, lease: timedelta) -> Sequence[OutboxJob]:
        """Up to `limit` due jobs of `kind`, each leased to the caller until `now + lease`.

        Two callers never hold the same job at once: a job is due again only when its lease has run out.
        """
        ...

    async def mark_sent(self, job: OutboxJob, *, now: datetime) -> None: ...

    async def mark_failed(self, job: OutboxJob, *, error: str, retry_at: datetime) -> None:
        """Record a failed attempt; the job is due again at `retry_at`."""
        ...

    async def mark_dead(self, job: OutboxJob, *, error: str, now: datetime) -> None:
        """Give up on a job: it is kept, with its last error, and never claimed again."""
        ...

    async def release(self, job: OutboxJob, *, now: datetime) -> None:
        """Hand back a job that was claimed but not attempted; the attempt does not count."""
        ...

    async def purge(self, *, sent_before: datetime, dead_before: datetime) -> int:
        """Delete delivered jobs (their payloads hold e-mail bodies and links) and long-dead ones."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off: `base × 2^(attempts-1)`, capped, shortened by up to `jitter` so that jobs
    which failed together do not all come back in the same second; after `max_attempts` the job is dead."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 10
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("retry policy: need 0 < base <= cap")
        if self.max_attempts < 1:
            raise ValueError("retry policy: max_attempts must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("retry policy: jitter is a fraction in [0, 1)")

    def delay(self, attempts: int, *, rand: Callable[[], float] = random.random) -> timedelta:
        """How long to wait after the `attempts`-th failed attempt (1 for the first)."""
        exponent = min(max(attempts, 1) - 1, 32)  # 2^32 × base is past any cap; avoids huge numbers
        delay: timedelta = min(self.cap, self.base * (2 ** exponent))
        return delay * (1.0 - self.jitter * rand())

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def short_error(message: str, limit: int = 300) -> str:
    """One line of at most `limit` characters, what an outbox row keeps as its last error."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
