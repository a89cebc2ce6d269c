"""Stock levels in the main store: the levels staff set and pages read, and the reservations of a unit of work.

Stock is never oversold because every change to it is one conditional UPDATE that the database applies
atomically: `reserved = reserved + n WHERE on_hand - reserved >= n`. Two checkouts for the last unit both send it;
the row lock makes the second wait, re-check the condition against the committed row, and match nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import bindparam, insert, literal_column, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.errors import Conflict, OutOfStock
from shop.domain.inventory import StockLevel
from shop.infrastructure.db.bulk import upsert_many
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import stock_levels
from shop.infrastructure.db.types import utcnow

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect

Quantities = Sequence[tuple[str, int]]


def _upsert(backend: str) -> Any:
    """An INSERT that overwrites the level of a SKU already stored, in this database's dialect."""
    if backend in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if backend == "postgresql" else sqlite.insert
        stmt = dialect_insert(stock_levels)
        return stmt.on_conflict_do_update(index_elements=["sku"], set_={
            "on_hand": stmt.excluded.on_hand, "reserved": stmt.excluded.reserved,
            "updated_at": stmt.excluded.updated_at})
    my = mysql.insert(stock_levels)
    return my.on_duplicate_key_update(on_hand=my.inserted.on_hand, reserved=my.inserted.reserved,
                                      updated_at=my.inserted.updated_at)


_LEVELS = select(stock_levels.c.sku, stock_levels.c.on_hand, stock_levels.c.reserved).where(
    stock_levels.c.sku.in_(bindparam("skus", expanding=True)))
# ix_stock_levels_updated_at makes this a short range scan, however large the catalogue; the stamp comes back as the
# driver gives it (it is only compared with itself): converting it per row cost as much as the rest of the read
_CHANGED = select(stock_levels.c.sku, stock_levels.c.on_hand, stock_levels.c.reserved,
                  literal_column("updated_at")).where(stock_levels.c.updated_at > bindparam("since"))


class SqlStock:
    """StockReader, StockWriter and StockChanges over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._upsert = _upsert(store.backend)

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        if not skus:
            return {}
        async with self._store.read() as conn:
            rows = await conn.execute(_LEVELS, {"skus": list(skus)})
            return {r.sku: StockLevel(r.sku, r.on_hand, r.reserved) for r in rows}

    async def changed_since(self, since: datetime) -> list[tuple[str, Hashable]]:
        async with self._store.read() as conn:
            rows = await conn.execute(_CHANGED, {"since": since})
            return [(sku, (on_hand, reserved, stamp)) for sku, on_hand, reserved, stamp in rows]

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        if not levels:
            return
        now = utcnow()
        rows = [{"sku": lv.sku, "on_hand": lv.on_hand, "reserved": lv.reserved, "updated_at": now} for lv in levels]
        async with self._store.write() as conn:
            await upsert_many(conn, stock_levels, rows, key="sku", upsert=self._upsert)

    async def set_on_hand(self, sku: str, on_hand: int) -> StockLevel:
        c = stock_levels.c
        for _ in range(2):
            try:
                async with self._store.write() as conn:
                    # one conditional UPDATE: a checkout reserving meanwhile either comes first (and may make
                    # this match nothing) or waits for it; the reserved count is never written from a stale read
                    changed = await conn.execute(update(stock_levels).where(c.sku == sku, c.reserved <= on_hand)
                                                 .values(on_hand=on_hand, updated_at=utcnow()))
                    if changed.rowcount == 1:
                        return StockLevel(sku, on_hand, int((await conn.execute(
                            select(c.reserved).where(c.sku == sku))).scalar_one()))
                    row = (await conn.execute(select(c.on_hand, c.reserved).where(c.sku == sku))).first()
                    if row is not None:
                        return StockLevel(sku, row.on_hand, row.reserved)
                    await conn.execute(insert(stock_levels).values(sku=sku, on_hand=on_hand, reserved=0,
                                                                   updated_at=utcnow()))
                    return StockLevel(sku, on_hand, 0)
            except IntegrityError:  # the first level of this SKU was stored meanwhile: update that one
                continue
        raise RuntimeError(f"stock of {sku} kept changing while it was being set")


def _stock_statement(guard: Any, **values: Any) -> Any:
    return update(stock_levels).where(stock_levels.c.sku == bindparam("b_sku"), guard).values(
        updated_at=bindparam("b_now"), **values)


_s = stock_levels.c
_n: Any = bindparam("b_n")
# statements built once: building and hashing a statement costs more CPU than the round trip itself
_STOCK = {
    "reserve": _stock_statement(_s.on_hand - _s.reserved >= _n, reserved=_s.reserved + _n),
    "take": _stock_statement(_s.reserved >= _n, on_hand=_s.on_hand - _n, reserved=_s.reserved - _n),
    "release": _stock_statement(_s.reserved >= _n, reserved=_s.reserved - _n),
    "restock": _stock_statement(_s.on_hand >= 0, on_hand=_s.on_hand + _n),
}
_RESERVE_RETURNING = _STOCK["reserve"].returning(_s.on_hand - _s.reserved)
_AVAILABLE = select(_s.on_hand - _s.reserved).where(_s.sku == bindparam("b_sku"))
_LEFT = select(_s.sku, _s.on_hand - _s.reserved).where(_s.sku.in_(bindparam("skus", expanding=True)))


def short(sku: str, units: int, what: str) -> Conflict:
    return Conflict(f"stock of {sku} does not hold the {units} units this order counts on ({what})")


async def out_of_stock(conn: AsyncConnection, sku: str, units: int) -> NoReturn:
    level = (await conn.execute(_AVAILABLE, {"b_sku": sku})).scalar()
    raise OutOfStock(sku, requested=units, available=max(0, level or 0))


async def change_stock(conn: AsyncConnection, what: str, quantities: Quantities) -> None:
    """One conditional UPDATE per SKU (`what`: take, release or restock); Conflict if a row does not hold it."""
    statement = _STOCK[what]
    now = utcnow()
    for sku, units in quantities:
        if await WRITES.execute(conn, statement, {"b_sku": sku, "b_n": units, "b_now": now}) != 1:
            raise short(sku, units, what)


async def reserve_returning(conn: AsyncConnection, quantities: Quantities) -> list[str]:
    """Reserve SKU by SKU, each UPDATE … RETURNING telling what is left; the SKUs with none left."""
    now = utcnow()
    sold_out = []
    for sku, units in quantities:
        remaining = await WRITES.returned(conn, _RESERVE_RETURNING, {"b_sku": sku, "b_n": units, "b_now": now})
        if remaining is None:  # the whole transaction rolls back: nothing stays held
            await out_of_stock(conn, sku, units)
        if remaining <= 0:
            sold_out.append(sku)
    return sold_out


async def reserve_then_read(conn: AsyncConnection, quantities: Quantities) -> list[str]:
    """Reserve SKU by SKU where UPDATE cannot RETURN, then one read of the rows this transaction now holds
    tells what is left (cheaper than refreshing flags after each sale); the SKUs with none left."""
    now = utcnow()
    for sku, units in quantities:
        if await WRITES.execute(conn, _STOCK["reserve"], {"b_sku": sku, "b_n": units, "b_now": now}) != 1:
            await out_of_stock(conn, sku, units)
    found = await conn.execute(_LEFT, {"skus": [sku for sku, _ in quantities]})
    return [sku for sku, available in found if available <= 0]


class StockRows:
    """StockRepository inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def reserve(self, quantities: Quantities) -> Sequence[str]:
        return await self._dialect.reserve(self._conn, quantities)

    async def take(self, quantities: Quantities) -> None:
        await self._dialect.take(self._conn, quantities)

    async def release(self, quantities: Quantities) -> None:
        await change_stock(self._conn, "release", quantities)

    async def restock(self, quantities: Quantities) -> None:
        await change_stock(self._conn, "restock", quantities)
