"""Figures the metrics read from the databases: connections in use per store, outbox jobs waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from shop.infrastructure.db.engines import Databases, Store
from shop.infrastructure.db.main.tables import outbox


def pool_usage(databases: Databases) -> Callable[[], dict[str, int]]:
    """Checked-out connections per SQL store, from the engines' pools (no query; engines not yet used show 0)."""

    def read() -> dict[str, int]:
        usage: dict[str, int] = {}
        for store in databases.urls:  # the SQL stores (one on MongoDB has no pool of ours)
            checked_out = getattr(databases.engine(store).pool, "checkedout", None)
            usage[store] = int(checked_out()) if checked_out is not None else 0
        return usage

    return read


def outbox_depth(main: Store) -> Callable[[], Awaitable[dict[str, int]]]:
    """Jobs neither delivered nor given up on, per kind: one grouped count over the outbox's due index."""
    query = (select(outbox.c.kind, func.count()).where(outbox.c.sent_at.is_(None), outbox.c.dead_at.is_(None))
             .group_by(outbox.c.kind))

    async def read() -> dict[str, int]:
        async with main.read() as conn:
            return {kind: int(count) for kind, count in await conn.execute(query)}

    return read
