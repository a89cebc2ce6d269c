"""A transaction the database refuses because of a concurrent one (a deadlock) is reported as StoreBusy — a
retryable 503 at the edge — never as an unexplained error; a unit run by `Store.transaction` that was a deadlock's
victim is first run again, on a fresh transaction."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.inventory import StockLevel
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.main.tables import stock_levels
from shop.infrastructure.db.types import utcnow
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


async def test_a_deadlocked_unit_is_run_again_and_both_units_take_effect_exactly_once(
        backend: str, databases: Databases) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): its transactions wait, they never deadlock")
    main = databases.store("main")
    await SqlStock(main).set_levels([StockLevel("RT-A", 5), StockLevel("RT-B", 5)])
    both_hold_one = asyncio.Barrier(2)
    attempts: Counter[str] = Counter()

    def crosswise(first: str, second: str, units: int) -> Callable[[AsyncConnection], Awaitable[str]]:
        async def unit(conn: AsyncConnection) -> str:
            attempts[first] += 1
            await conn.execute(update(stock_levels).where(stock_levels.c.sku == first)
                               .values(on_hand=stock_levels.c.on_hand + units))
            if attempts[first] == 1:  # only the first attempts meet; a second one just runs
                await both_hold_one.wait()
            await conn.execute(update(stock_levels).where(stock_levels.c.sku == second)
                               .values(on_hand=stock_levels.c.on_hand + units))
            return first

        return unit

    outcomes = await asyncio.gather(main.transaction(crosswise("RT-A", "RT-B", 1)),
                                    main.transaction(crosswise("RT-B", "RT-A", 10)), return_exceptions=True)
    assert outcomes == ["RT-A", "RT-B"]
    assert sorted(attempts.values()) == [1, 2]  # the deadlock's victim ran twice
    levels = await SqlStock(main).levels(["RT-A", "RT-B"])
    assert (levels["RT-A"].on_hand, levels["RT-B"].on_hand) == (16, 16)  # each unit counted once


class _DriverError(Exception):
    """What a MySQL driver raises: the server's error number first."""


def _refused(number: int) -> OperationalError:
    return OperationalError("UPDATE …", {}, _DriverError(number, "refused"))


@pytest.mark.parametrize(("number", "tries"), [(1213, 3), (1205, 1)], ids=["deadlock", "lock-wait-timeout"])
async def test_a_unit_is_tried_again_only_after_a_deadlock_and_at_most_three_times(
        databases: Databases, number: int, tries: int) -> None:
    main = databases.store("main")
    calls = 0

    async def unit(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        raise _refused(number)

    with pytest.raises(StoreBusy):
        await main.transaction(unit)
    assert calls == tries


async def test_a_unit_that_breaks_a_rule_of_the_database_is_not_tried_again(databases: Databases) -> None:
    main = databases.store("main")
    await SqlStock(main).set_levels([StockLevel("RT-C", 5)])
    calls = 0

    async def unit(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        await conn.execute(insert(stock_levels).values(sku="RT-C", on_hand=1, reserved=0, updated_at=utcnow()))

    with pytest.raises(IntegrityError):
        await main.transaction(unit)
    assert calls == 1
