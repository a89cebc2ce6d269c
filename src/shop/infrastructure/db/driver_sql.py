"""Writes on the hottest path (checkout) sent straight to the driver's connection on PostgreSQL.

The statements stay SQLAlchemy Core, built once and compiled by SQLAlchemy for the connection's dialect. What
is skipped is SQLAlchemy's per-call execution machinery (execution context, cursor adapter, greenlet hop), which
costs as much CPU as asyncpg's whole round trip, on each of a checkout's twenty-odd statements
(docs/decisions/2026-12-06-checkout-writes-on-the-driver.md). The statement runs on the same connection, inside
the transaction the caller's `AsyncConnection` has open, with the same bind processors (UTC datetimes, JSON)
SQLAlchemy would apply.

Only for statements whose every column value is given (no Python-side column defaults are filled in here) and
only while a transaction is open: otherwise, and on every other database, the statement goes through
SQLAlchemy as usual. SQLAlchemy never sees a failure on the driver's connection: `Store` (engines.py) throws the
connection away when one says it went away, so the pool never hands it out again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Compiled
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert, UpdateBase


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    fixed: Mapping[str, Any]  # values bound in the statement itself, e.g. the 0 of `on_hand >= 0`

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = (params[name] if name in params else self.fixed[name] for name in self.names)
        return [value if process is None else process(value)
                for value, process in zip(values, self.processors, strict=True)]


def bind_processors(compiled: Compiled) -> Mapping[str, Any]:
    """The processors SQLAlchemy itself applies to a compiled statement's bound values, by parameter name.

    The one read of SQLAlchemy's private API (`SQLCompiler._bind_processors`, a memoized mapping since 1.4);
    tests/unit/test_driver_sql.py fails if an upgrade moves or changes it."""
    processors: Mapping[str, Any] = compiled._bind_processors  # type: ignore[attr-defined]
    return processors


def _one(process: Any) -> Callable[[Any], Any] | None:
    if process is not None and not callable(process):
        raise TypeError("tuple-typed bind parameters are not supported here")
    return process  # type: ignore[no-any-return]


class DriverWrites:
    """Runs prebuilt INSERT/UPDATE statements; keep one per process (it caches the compiled SQL)."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[UpdateBase, _Compiled]] = {}
        self._returning: dict[int, tuple[Insert, UpdateBase]] = {}

    @property
    def compiled(self) -> int:
        """How many statement shapes went to a driver (0 where SQLAlchemy ran them all)."""
        return len(self._compiled)

    def _compile(self, conn: AsyncConnection, statement: UpdateBase, names: Sequence[str]) -> _Compiled:
        key = (id(statement), tuple(names))
        found = self._compiled.get(key)
        if found is not None and found[0] is statement:
            return found[1]
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(names))
        order = tuple(compiled.positiontup or ())
        processors = bind_processors(compiled)
        fixed = {name: bind.effective_value for bind, name in compiled.bind_names.items()
                 if name not in names and not bind.required}
        entry = _Compiled(sql=str(compiled), names=order, processors=tuple(_one(processors.get(n)) for n in order),
                          fixed=fixed)
        self._compiled[key] = (statement, entry)  # the statement is kept, so its id is never reused
        return entry

    async def _driver(self, conn: AsyncConnection) -> Any | None:
        """The asyncpg connection under `conn`, if this is PostgreSQL and its transaction is open."""
        if conn.dialect.driver != "asyncpg" or not conn.in_transaction():
            return None
        raw = (await conn.get_raw_connection()).driver_connection
        return raw if raw is not None and raw.is_in_transaction() else None

    async def execute(self, conn: AsyncConnection, statement: UpdateBase, params: Mapping[str, Any]) -> int:
        """Run one statement; returns the number of rows it changed."""
        raw = await self._driver(conn)
        if raw is None:
            return int((await conn.execute(statement, dict(params))).rowcount)
        compiled = self._compile(conn, statement, list(params))
        status: str = await raw.execute(compiled.sql, *compiled.arguments(params))
        return int(status.rsplit(" ", 1)[-1])

    async def returned(self, conn: AsyncConnection, statement: UpdateBase, params: Mapping[str, Any]) -> Any:
        """Run a statement that RETURNs one column; its value in the first row, None if no row matched."""
        raw = await self._driver(conn)
        if raw is None:
            return (await conn.execute(statement, dict(params))).scalar()
        compiled = self._compile(conn, statement, list(params))
        return await raw.fetchval(compiled.sql, *compiled.arguments(params))

    async def fetch_sql(self, conn: AsyncConnection, sql: str, *args: Any) -> list[Any] | None:
        """Rows of a PostgreSQL statement written for asyncpg (`$n` parameters), run in the caller's open
        transaction; None where that cannot be (another database, no transaction yet): the caller then does
        the same work its portable way."""
        raw = await self._driver(conn)
        return None if raw is None else list(await raw.fetch(sql, *args))

    async def inserted_id(self, conn: AsyncConnection, statement: Insert, params: Mapping[str, Any]) -> int:
        """Run a one-row INSERT; the primary key it was given."""
        raw = await self._driver(conn)
        if raw is None:
            result = await conn.execute(statement, dict(params))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
        returning = self._returning.get(id(statement))
        if returning is None or returning[0] is not statement:
            returning = (statement, statement.returning(*statement.table.primary_key))
            self._returning[id(statement)] = returning
        compiled = self._compile(conn, returning[1], list(params))
        return int(await raw.fetchval(compiled.sql, *compiled.arguments(params)))

    async def many(self, conn: AsyncConnection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per row (all rows with the same keys), in one round trip where possible."""
        if not rows:
            return
        raw = await self._driver(conn)
        if raw is None:
            await conn.execute(statement, [dict(row) for row in rows])
            return
        compiled = self._compile(conn, statement, list(rows[0]))
        await raw.executemany(compiled.sql, [compiled.arguments(row) for row in rows])


WRITES = DriverWrites()
