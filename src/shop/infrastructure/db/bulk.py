"""Bulk writes: PostgreSQL's binary COPY; elsewhere the driver's executemany with values converted once per column.

SQLAlchemy's own executemany rebuilds the parameters of every row through the compiler, which costs more than
the database's work when seeding hundreds of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

COPY_FROM = 200  # below this many rows COPY's set-up costs more than it saves


def _records(table: Table, columns: list[str], rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    return [tuple(orjson.dumps(row[c]).decode() if c in as_json else row[c] for c in columns) for row in rows]


async def _copy(conn: AsyncConnection, table_name: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    # a statement through SQLAlchemy first opens the transaction that COPY then runs inside
    await conn.execute(text("SELECT 1"))
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(table_name, records=records, columns=columns)  # type: ignore[union-attr]


async def _executemany(conn: AsyncConnection, statement: Any, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    columns = list(rows[0])
    compiled = statement.compile(dialect=conn.dialect, column_keys=columns)
    order = compiled.positiontup or columns
    # the dialect's own processors (as SQLAlchemy applies them): e.g. SQLite's DATETIME formats datetimes itself,
    # where the generic type's processor would hand them to sqlite3's deprecated default adapter
    convert = [table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in order]
    records = [tuple(c(row[name]) if c else row[name] for name, c in zip(order, convert, strict=True)) for row in rows]
    await conn.exec_driver_sql(compiled.string, records)


async def insert_many(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) in the connection's transaction."""
    if not rows:
        return
    if len(rows) < COPY_FROM:
        await conn.execute(insert(table), list(rows))
        return
    if conn.dialect.name != "postgresql":
        await _executemany(conn, insert(table), table, rows)
        return
    columns = list(rows[0])
    await _copy(conn, table.name, columns, _records(table, columns, rows))


async def upsert_many(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *, key: str,
                      upsert: Any) -> None:
    """Insert rows, overwriting those whose `key` exists; `upsert` is the dialect's statement for small sets."""
    if not rows:
        return
    if len(rows) < COPY_FROM:
        await conn.execute(upsert, list(rows))
        return
    if conn.dialect.name != "postgresql":
        await _executemany(conn, upsert, table, rows)
        return
    columns = list(rows[0])
    staging = f"{table.name}_incoming"
    await conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS"))
    await _copy(conn, staging, columns, _records(table, columns, rows))
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    await conn.execute(text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "  # noqa: S608 - names from our tables
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"))
