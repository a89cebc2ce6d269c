"""The outbox table of the main store: the `Outbox` and `OutboxWriter` ports.

Enqueueing happens on the caller's connection, inside the caller's `Store.write()` block:

    async with main.write() as conn:
        await conn.execute(...)                            # the change itself
        await queue_email(outbox.within(conn), email)      # committed, or rolled back, with it

`SqlOutbox.within(conn)` is the service-level `OutboxWriter` a unit of work hands to use cases; it opens no
connection or transaction of its own, so the job exists exactly when the caller's transaction commits.

Claiming: PostgreSQL and MariaDB lock due rows with `SELECT … FOR UPDATE SKIP LOCKED` (concurrent workers skip
each other's rows instead of waiting) and lease them in the same short transaction. SQLite has one writer at a
time, so a single `UPDATE … WHERE id IN (SELECT … LIMIT n)` is already atomic. Outcomes are written only while
the row still carries the claim's token, so a worker whose lease ran out cannot overwrite a newer claim.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import outbox
from shop.infrastructure.db.types import utcnow
from shop.services.outbox import OutboxJob, short_error

_INSERT = insert(outbox)  # built once: building a statement costs more CPU than sending it
_COLUMNS = (outbox.c.id, outbox.c.kind, outbox.c.payload, outbox.c.attempts)


def _due(kind: str, now: datetime) -> Any:
    return and_(outbox.c.kind == kind, outbox.c.sent_at.is_(None), outbox.c.dead_at.is_(None),
                outbox.c.available_at <= now)


def _job(row: Any, *, attempts: int, until: datetime, token: str) -> OutboxJob:
    return OutboxJob(id=row.id, kind=row.kind, payload=row.payload, attempts=attempts, claimed_until=until,
                     token=token)


async def enqueue(conn: AsyncConnection, kind: str, payload: Mapping[str, Any], *, now: datetime,
                  available_at: datetime | None = None) -> int:
    """Insert one job on `conn`, in whatever transaction `conn` is in; returns its id."""
    return await WRITES.inserted_id(conn, _INSERT, {"kind": kind, "payload": dict(payload), "created_at": now,
                                                    "available_at": available_at or now, "attempts": 0})


class OutboxTransaction:
    """`OutboxWriter` on a connection the caller owns: adds to the caller's open transaction."""

    def __init__(self, conn: AsyncConnection, clock: Callable[[], datetime]) -> None:
        self.conn = conn
        self._clock = clock

    async def add(self, kind: str, payload: Mapping[str, Any], *, available_at: datetime | None = None) -> int:
        return await enqueue(self.conn, kind, payload, now=self._clock(), available_at=available_at)


class SqlOutbox:
    """The worker's `Outbox` over the main store, and the way to an `OutboxWriter` inside a transaction."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock

    def within(self, conn: AsyncConnection) -> OutboxTransaction:
        """The outbox inside the caller's transaction on `conn`, a connection of the main store."""
        if conn.engine.url != self._store.engine.url:
            # e.g. a users-store connection while users live elsewhere: the job would not share its transaction
            raise ValueError("the outbox lives in the main store; enqueue on a connection of the main store")
        return OutboxTransaction(conn, self._clock)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OutboxTransaction]:
        """A transaction of its own, for callers whose only write is the job."""
        async with self._store.write() as conn:
            yield self.within(conn)

    async def claim_due(self, kind: str, *, now: datetime, limit: int, lease: timedelta) -> Sequence[OutboxJob]:
        until = now + lease
        token = secrets.token_hex(16)
        lease_values = {"attempts": outbox.c.attempts + 1, "claimed_until": until, "available_at": until,
                        "claim_token": token}
        due = select(*_COLUMNS).where(_due(kind, now)).order_by(outbox.c.available_at, outbox.c.id).limit(limit)
        # (MariaDB runs at READ COMMITTED, so the claim's scan locks no gaps that would make enqueues wait)
        async with self._store.write() as conn:
            if self._store.backend == "sqlite":
                ids = select(outbox.c.id).where(_due(kind, now)).order_by(
                    outbox.c.available_at, outbox.c.id).limit(limit)
                await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(**lease_values))
                rows = (await conn.execute(
                    select(*_COLUMNS).where(outbox.c.claim_token == token).order_by(outbox.c.id))).all()
                return [_job(r, attempts=r.attempts, until=until, token=token) for r in rows]
            rows = (await conn.execute(due.with_for_update(skip_locked=True))).all()
            if rows:
                await conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(**lease_values))
        return [_job(r, attempts=r.attempts + 1, until=until, token=token) for r in rows]

    async def _finish(self, job: OutboxJob, **values: Any) -> None:
        async with self._store.one_statement() as conn:  # PostgreSQL: no BEGIN/COMMIT round trips
            await conn.execute(update(outbox).where(outbox.c.id == job.id, outbox.c.claim_token == job.token)
                               .values(claimed_until=None, claim_token=None, **values))

    async def mark_sent(self, job: OutboxJob, *, now: datetime) -> None:
        await self._finish(job, sent_at=now)

    async def mark_failed(self, job: OutboxJob, *, error: str, retry_at: datetime) -> None:
        await self._finish(job, available_at=retry_at, last_error=short_error(error))

    async def mark_dead(self, job: OutboxJob, *, error: str, now: datetime) -> None:
        await self._finish(job, dead_at=now, last_error=short_error(error))

    async def release(self, job: OutboxJob, *, now: datetime) -> None:
        await self._finish(job, available_at=now, attempts=outbox.c.attempts - 1)

    async def purge(self, *, sent_before: datetime, dead_before: datetime) -> int:
        async with self._store.write() as conn:
            sent = await conn.execute(delete(outbox).where(outbox.c.sent_at < sent_before))
            dead = await conn.execute(delete(outbox).where(outbox.c.dead_at < dead_before))
        return int((sent.rowcount or 0) + (dead.rowcount or 0))
