"""Writes sent on the driver's connection (PostgreSQL) behave exactly as SQLAlchemy's would: inside the caller's
transaction, with the same conversions, the values bound in the statement itself, and the same row counts; on
the other databases, and outside a transaction, they go through SQLAlchemy."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, update

from shop.domain.errors import OutOfStock
from shop.domain.inventory import StockLevel
from shop.infrastructure.db.driver_sql import DriverWrites
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.dialects import dialect_for
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.main.tables import outbox, stock_levels
from shop.infrastructure.db.main.unit_of_work import SqlMainUnitOfWork
from shop.infrastructure.db.posts import dialects as posts_dialects
from shop.infrastructure.db.posts.reads import SqlCatalogReader
from shop.services.ports import StoreUnavailable

AT = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)
_s = stock_levels.c
TAKE = update(stock_levels).where(_s.sku == bindparam("b_sku"), _s.on_hand >= 2).values(
    on_hand=_s.on_hand - bindparam("b_n"), updated_at=bindparam("b_now"))
ADD = insert(stock_levels)
JOB = insert(outbox)


def _offers(databases: Databases) -> SqlCatalogReader:
    posts = databases.store("posts")
    return SqlCatalogReader(posts, search=posts_dialects.dialect_for(posts.backend), currency="EUR")


async def test_writes_land_in_the_callers_transaction_with_sqlalchemys_conversions(backend: str,
                                                                                  databases: Databases) -> None:
    main = databases.store("main")
    writes = DriverWrites()
    async with main.write() as conn:
        await conn.execute(select(1))  # the transaction has begun on the database
        await writes.many(conn, ADD, [{"sku": "DW-A", "on_hand": 5, "reserved": 0, "updated_at": AT},
                                      {"sku": "DW-B", "on_hand": 1, "reserved": 0, "updated_at": AT}])
        later = AT + timedelta(hours=1)
        assert await writes.execute(conn, TAKE, {"b_sku": "DW-A", "b_n": 3, "b_now": later}) == 1
        # the guard's own bound value (on_hand >= 2) is applied: DW-B has 1
        assert await writes.execute(conn, TAKE, {"b_sku": "DW-B", "b_n": 1, "b_now": later}) == 0
        job = await writes.inserted_id(conn, JOB, {"kind": "test", "payload": {"skus": ["DW-A"], "n": 1},
                                                   "created_at": AT, "available_at": AT, "attempts": 0})
        assert job > 0
        second = await writes.inserted_id(conn, JOB, {"kind": "test", "payload": {}, "created_at": AT,
                                                      "available_at": AT, "attempts": 0})
        assert second > job
    async with main.read() as conn:
        rows = {r.sku: r for r in (await conn.execute(select(stock_levels).where(_s.sku.in_(["DW-A", "DW-B"]))))}
        payload = (await conn.execute(select(outbox.c.payload, outbox.c.created_at)
                                      .where(outbox.c.id == job))).one()
    assert (rows["DW-A"].on_hand, rows["DW-A"].updated_at) == (2, AT + timedelta(hours=1))
    assert (rows["DW-B"].on_hand, rows["DW-B"].updated_at) == (1, AT)
    assert payload.payload == {"skus": ["DW-A"], "n": 1}
    assert payload.created_at == AT
    # on PostgreSQL the statements after the transaction began went to asyncpg itself (ADD, TAKE, JOB RETURNING)
    assert writes.compiled == (3 if backend == "postgresql" else 0)


async def test_a_rolled_back_transaction_takes_its_driver_writes_with_it(databases: Databases) -> None:
    main = databases.store("main")
    writes = DriverWrites()
    async with main.write() as conn:
        await writes.many(conn, ADD, [{"sku": "DW-R", "on_hand": 5, "reserved": 0, "updated_at": AT}])

    class Undo(Exception):
        pass

    try:
        async with main.write() as conn:
            await conn.execute(select(1))
            assert await writes.execute(conn, TAKE, {"b_sku": "DW-R", "b_n": 4, "b_now": AT}) == 1
            raise Undo
    except Undo:
        pass
    async with main.read() as conn:
        assert (await conn.execute(select(_s.on_hand).where(_s.sku == "DW-R"))).scalar_one() == 5


async def test_reserving_and_taking_many_skus_at_once_never_deadlocks_and_counts_every_unit(
        databases: Databases) -> None:
    """60 transactions reserve (and half of them then take) overlapping sets of SKUs at the same time. On
    PostgreSQL a set goes in one statement whose rows are locked in SKU order, as the one-row statements do:
    no transaction may die of a deadlock (it would come back as StoreBusy), and every unit is counted."""
    main = databases.store("main")
    skus = [f"DW-M{n}" for n in range(5)]
    await SqlStock(main).set_levels([StockLevel(sku, 1000) for sku in skus])
    units = SqlMainUnitOfWork(main, dialect=dialect_for(main.backend),
                              offers=_offers(databases))
    rng = random.Random(7)
    plans = [sorted(rng.sample(skus, rng.randint(2, 5))) for _ in range(60)]

    async def one(n: int, wanted: list[str]) -> None:
        async with units.begin() as unit:
            await unit.conn.execute(select(1))
            await unit.stock.reserve([(sku, 1 + n % 3) for sku in wanted])
            await asyncio.sleep(0)
            if n % 2 == 0:
                await unit.stock.take([(sku, 1 + n % 3) for sku in wanted])

    outcomes = await asyncio.gather(*(one(n, plan) for n, plan in enumerate(plans)), return_exceptions=True)
    assert [o for o in outcomes if o is not None] == []
    async with main.read() as conn:
        levels = {r.sku: (r.on_hand, r.reserved) for r in await conn.execute(
            select(stock_levels).where(_s.sku.in_(skus)))}
    for sku in skus:
        taken = sum(1 + n % 3 for n, plan in enumerate(plans) if sku in plan and n % 2 == 0)
        held = sum(1 + n % 3 for n, plan in enumerate(plans) if sku in plan and n % 2 == 1)
        assert levels[sku] == (1000 - taken, held), sku


async def test_a_short_sku_among_many_holds_nothing_and_names_the_first_short_one(databases: Databases) -> None:
    main = databases.store("main")
    await SqlStock(main).set_levels([StockLevel("DW-S1", 5), StockLevel("DW-S2", 1), StockLevel("DW-S3", 0)])
    units = SqlMainUnitOfWork(main, dialect=dialect_for(main.backend),
                              offers=_offers(databases))

    async def reserve(wanted: list[tuple[str, int]]) -> Sequence[str]:
        async with units.begin() as unit:
            await unit.conn.execute(select(1))
            return await unit.stock.reserve(wanted)

    with pytest.raises(OutOfStock) as short:
        await reserve([("DW-S1", 2), ("DW-S2", 2), ("DW-S3", 1)])
    assert (short.value.sku, short.value.available) == ("DW-S2", 1)
    assert sorted(await reserve([("DW-S1", 5), ("DW-S2", 1)])) == ["DW-S1", "DW-S2"]  # both sold out now
    async with main.read() as conn:
        levels = {r.sku: r.reserved for r in await conn.execute(select(stock_levels).where(_s.sku.like("DW-S%")))}
    assert levels == {"DW-S1": 5, "DW-S2": 1, "DW-S3": 0}


async def test_a_connection_cut_under_a_write_is_answered_503_and_never_handed_out_again(
        backend: str, databases: Databases) -> None:
    """The server kills the connection mid-transaction (a restart, pg_terminate_backend, KILL): the write fails as
    StoreUnavailable, and the pool never gives that connection to anyone again — on PostgreSQL the write went to
    the driver's connection, which SQLAlchemy never saw fail."""
    if backend == "sqlite":
        pytest.skip("SQLite has no server to cut a connection")
    main = databases.store("main")
    writes = DriverWrites()
    kill = "SELECT pg_terminate_backend({})" if backend == "postgresql" else "KILL CONNECTION {}"
    whoami = "SELECT pg_backend_pid()" if backend == "postgresql" else "SELECT CONNECTION_ID()"
    async with main.write() as conn:
        await writes.many(conn, ADD, [{"sku": "DW-CUT", "on_hand": 5, "reserved": 0, "updated_at": AT}])

    killed: list[int] = []

    async def cut_mid_transaction() -> None:
        async with main.write() as conn:
            killed.append(int((await conn.exec_driver_sql(whoami)).scalar_one()))
            async with main.read() as other:
                await other.exec_driver_sql(kill.format(killed[0]))
            await asyncio.sleep(0.2)
            await writes.execute(conn, TAKE, {"b_sku": "DW-CUT", "b_n": 1, "b_now": AT})

    with pytest.raises(StoreUnavailable):
        await cut_mid_transaction()
    victim = killed[0]
    # every connection handed out now works: the cut one is gone, whatever the pool held
    for _ in range(main.engine.pool.size() + 2):
        async with main.write() as conn:
            await writes.execute(conn, TAKE, {"b_sku": "DW-CUT", "b_n": 1, "b_now": AT})
            assert (await conn.exec_driver_sql(whoami)).scalar_one() != victim
