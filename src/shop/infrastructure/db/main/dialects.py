"""The statements that differ between the databases the main store runs on, one class per database family.

`bootstrap.py` picks one for the main store's engine (`dialect_for`); the repositories of a unit of work call it
for the few operations each database does its own way, and nothing else in this package asks which database
it is on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import ARRAY, String, Table, bindparam, cast, func, insert, literal_column, select, true
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from shop.domain.cart import Cart
from shop.domain.orders import ORDER_NUMBER_BASE
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.main.carts import load_cart, lock_cart_then_lines
from shop.infrastructure.db.main.orders import LINE_COLUMNS, insert_order_then_lines
from shop.infrastructure.db.main.stock import change_stock, out_of_stock, reserve_returning, reserve_then_read, short
from shop.infrastructure.db.main.tables import order_lines, orders
from shop.infrastructure.db.types import utcnow

Quantities = Sequence[tuple[str, int]]


class MainDialect(Protocol):
    def insert_ignoring(self, table: Table) -> Insert:
        """An INSERT that does nothing when the key exists (rowcount 0), leaving the transaction usable."""
        ...

    async def lock_cart(self, conn: AsyncConnection, cart_id: str) -> Cart | None:
        """The cart and its lines, its row (and only its row) locked until the transaction ends."""
        ...

    async def reserve(self, conn: AsyncConnection, quantities: Quantities) -> list[str]:
        """Hold the units (OutOfStock naming the first short SKU otherwise); the SKUs with none left."""
        ...

    async def take(self, conn: AsyncConnection, quantities: Quantities) -> None:
        """Held units sold (Conflict if a row does not hold them)."""
        ...

    async def insert_order(self, conn: AsyncConnection, values: dict[str, Any], lines: list[dict[str, Any]]) -> int:
        """Insert an order row (`values`, its number a placeholder) and its lines; its id, its number made from
        the id (`order_number`)."""
        ...


# PostgreSQL: the stock of several SKUs changed by one statement. The InitPlan (the count) runs before any row
# is updated and locks the rows in SKU order, as the one-row statements do one after another, so two
# transactions never lock the same rows in opposite orders (EXPLAIN shows it as the plan's One-Time Filter).
_LOCKED_IN_SKU_ORDER = """(SELECT count(*) FROM (SELECT sku FROM stock_levels WHERE sku = ANY($1::varchar[])
                             ORDER BY sku FOR UPDATE) AS locked) >= 0"""
_PG_RESERVE_MANY = f"""UPDATE stock_levels AS s SET reserved = s.reserved + q.n, updated_at = $3
FROM unnest($1::varchar[], $2::int[]) AS q(sku, n)
WHERE s.sku = q.sku AND s.on_hand - s.reserved >= q.n AND {_LOCKED_IN_SKU_ORDER}
RETURNING s.sku, s.on_hand - s.reserved"""  # noqa: S608 - constant SQL, no input in it
_PG_TAKE_MANY = f"""UPDATE stock_levels AS s
SET on_hand = s.on_hand - q.n, reserved = s.reserved - q.n, updated_at = $3
FROM unnest($1::varchar[], $2::int[]) AS q(sku, n)
WHERE s.sku = q.sku AND s.reserved >= q.n AND {_LOCKED_IN_SKU_ORDER}
RETURNING s.sku, s.on_hand"""  # noqa: S608 - constant SQL, no input in it

# PostgreSQL: take the id from the table's sequence and write the number made from it (as `order_number`
# makes it) in the same INSERT, instead of a placeholder number and an UPDATE once the id is known …
_NEW_ID = select(literal_column("nextval(pg_get_serial_sequence('orders', 'id'))").label("id")).cte("new_order")
_GIVEN = [column for column in orders.c if column.name not in ("id", "number")]
_PLACED = insert(orders).from_select(
    ["id", "number", *[column.name for column in _GIVEN]],
    select(_NEW_ID.c.id, cast(_NEW_ID.c.id + ORDER_NUMBER_BASE, String),
           *[bindparam(column.name, type_=column.type) for column in _GIVEN]),
).returning(orders.c.id).cte("placed")
# … and its lines in the same statement, one array per column (`line_sku` = [sku of line 0, of line 1, …])
_LINES_GIVEN = func.unnest(*[bindparam(f"line_{name}", type_=ARRAY(order_lines.c[name].type))
                             for name in LINE_COLUMNS]).table_valued(*LINE_COLUMNS).render_derived(name="given")
_INSERT_ORDER_AND_LINES = insert(order_lines).from_select(
    ["order_id", *LINE_COLUMNS],
    select(_PLACED.c.id, *[_LINES_GIVEN.c[name] for name in LINE_COLUMNS]).select_from(
        _PLACED.join(_LINES_GIVEN, true())),
).add_cte(_PLACED).returning(order_lines.c.order_id)


async def _many(conn: AsyncConnection, sql: str, quantities: Quantities) -> list[Any] | None:
    """Rows of one of the statements above; None where the driver's connection is not at hand (the caller goes
    SKU by SKU)."""
    return await WRITES.fetch_sql(conn, sql, [sku for sku, _ in quantities], [units for _, units in quantities],
                                  utcnow())


class PostgreSql:
    def insert_ignoring(self, table: Table) -> Insert:
        return postgresql.insert(table).on_conflict_do_nothing()

    async def lock_cart(self, conn: AsyncConnection, cart_id: str) -> Cart | None:
        return await load_cart(conn, cart_id, locking=True)  # FOR UPDATE OF: the lines stay unlocked

    async def reserve(self, conn: AsyncConnection, quantities: Quantities) -> list[str]:
        rows = await _many(conn, _PG_RESERVE_MANY, quantities) if len(quantities) > 1 else None
        if rows is None:
            return await reserve_returning(conn, quantities)
        left = {sku: units for sku, units in rows}
        for sku, units in quantities:
            if sku not in left:  # the whole transaction rolls back: nothing stays held
                await out_of_stock(conn, sku, units)
        return [sku for sku, units in left.items() if units <= 0]

    async def take(self, conn: AsyncConnection, quantities: Quantities) -> None:
        rows = await _many(conn, _PG_TAKE_MANY, quantities) if len(quantities) > 1 else None
        if rows is None:
            await change_stock(conn, "take", quantities)
            return
        taken = {sku for sku, _ in rows}
        for sku, units in quantities:
            if sku not in taken:
                raise short(sku, units, "take")

    async def insert_order(self, conn: AsyncConnection, values: dict[str, Any], lines: list[dict[str, Any]]) -> int:
        if not lines:
            return await insert_order_then_lines(conn, values, lines)
        columns = {f"line_{name}": [line[name] for line in lines] for name in LINE_COLUMNS}
        given = {name: value for name, value in values.items() if name != "number"}
        return int(await WRITES.returned(conn, _INSERT_ORDER_AND_LINES, given | columns))


class MariaDb:
    def insert_ignoring(self, table: Table) -> Insert:
        return mysql.insert(table).prefix_with("IGNORE")

    async def lock_cart(self, conn: AsyncConnection, cart_id: str) -> Cart | None:
        return await lock_cart_then_lines(conn, cart_id)  # no FOR UPDATE OF: a join would lock the lines too

    async def reserve(self, conn: AsyncConnection, quantities: Quantities) -> list[str]:
        return await reserve_then_read(conn, quantities)  # MariaDB's UPDATE cannot RETURN

    async def take(self, conn: AsyncConnection, quantities: Quantities) -> None:
        await change_stock(conn, "take", quantities)

    async def insert_order(self, conn: AsyncConnection, values: dict[str, Any], lines: list[dict[str, Any]]) -> int:
        return await insert_order_then_lines(conn, values, lines)


class Sqlite:
    def __init__(self) -> None:
        # UPDATE … RETURNING came with SQLite 3.35
        self._reserve = reserve_returning if sqlite3.sqlite_version_info >= (3, 35) else reserve_then_read

    def insert_ignoring(self, table: Table) -> Insert:
        return sqlite.insert(table).on_conflict_do_nothing()

    async def lock_cart(self, conn: AsyncConnection, cart_id: str) -> Cart | None:
        return await lock_cart_then_lines(conn, cart_id)  # one writer at a time: the write lock is the lock

    async def reserve(self, conn: AsyncConnection, quantities: Quantities) -> list[str]:
        return await self._reserve(conn, quantities)

    async def take(self, conn: AsyncConnection, quantities: Quantities) -> None:
        await change_stock(conn, "take", quantities)

    async def insert_order(self, conn: AsyncConnection, values: dict[str, Any], lines: list[dict[str, Any]]) -> int:
        return await insert_order_then_lines(conn, values, lines)


_FAMILIES: dict[str, type[PostgreSql | MariaDb | Sqlite]] = {
    "postgresql": PostgreSql, "mysql": MariaDb, "mariadb": MariaDb, "sqlite": Sqlite}


def dialect_for(backend: str) -> MainDialect:
    """The statements of the database family `backend` (a SQLAlchemy dialect name) belongs to."""
    return _FAMILIES[backend]()
