"""A transaction the database refuses because of a concurrent one (a deadlock) is reported as StoreBusy — a
retryable 503 at the edge — never as an unexplained error."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from shop.domain.inventory import StockLevel
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.main.tables import stock_levels
from shop.services.ports import StoreBusy


async def test_a_deadlock_comes_back_as_store_busy(backend: str, databases: Databases) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): its transactions wait, they never deadlock")
    main = databases.store("main")
    await SqlStock(main).set_levels([StockLevel("DL-A", 5), StockLevel("DL-B", 5)])
    both_hold_one = asyncio.Barrier(2)

    async def crosswise(first: str, second: str) -> None:
        async with main.write() as conn:
            await conn.execute(update(stock_levels).where(stock_levels.c.sku == first).values(on_hand=4))
            await both_hold_one.wait()
            await conn.execute(update(stock_levels).where(stock_levels.c.sku == second).values(on_hand=4))

    outcomes = await asyncio.gather(crosswise("DL-A", "DL-B"), crosswise("DL-B", "DL-A"), return_exceptions=True)
    assert sum(isinstance(o, StoreBusy) for o in outcomes) == 1, outcomes
    assert sum(o is None for o in outcomes) == 1
