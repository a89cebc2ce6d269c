"""The `request_log` table of the main store: the `RequestLogStore` port.

A batch is one statement in one short transaction: on PostgreSQL a binary COPY (asyncpg's
`copy_records_to_table`, the cheapest way in for the server; sent in autocommit, as a statement is its own
transaction there, which spares the BEGIN and COMMIT round trips), elsewhere the driver's executemany, which asyncmy
sends as one multi-row INSERT; a compiled multi-row `insert().values(...)` cost ten times the CPU
(docs/decisions/2026-12-06-request-log-batch-statements.md). A batch
refused for one bad row (an id a proxy sent twice) is stored row by row instead, so the other records are kept;
only the bad rows are counted out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import delete, insert
from sqlalchemy.exc import DataError, IntegrityError

from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import request_log
from shop.services.request_log import RequestRecord

# the columns' sizes: a longer value is cut rather than refused
_COLUMNS = tuple(c.name for c in request_log.columns)
_LIMITS = {"method": 16, "path": 1024, "route": 255, "client_ip": 45, "user_agent": 512, "user_id": 64, "pool": 32}


_FIELDS = attrgetter(*_COLUMNS)  # a record's fields are named as the table's columns
_CUTS = tuple((n, _LIMITS[c]) for n, c in enumerate(_COLUMNS) if c in _LIMITS)
_DETAILS = _COLUMNS.index("details")


def _values(record: RequestRecord) -> list[Any]:
    """The record's values in `_COLUMNS` order, over-long texts cut (built per record on a hot path: no dict)."""
    values = list(_FIELDS(record))
    for n, limit in _CUTS:
        value = values[n]
        if isinstance(value, str) and len(value) > limit:
            values[n] = value[:limit]
    return values


def _row(record: RequestRecord) -> dict[str, Any]:
    return dict(zip(_COLUMNS, _values(record), strict=True))


class SqlRequestLogStore:
    """`RequestLogStore` over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._copy = store.engine.dialect.name == "postgresql"

    async def add(self, records: Sequence[RequestRecord]) -> int:
        if not records:
            return 0
        try:
            if self._copy:
                async with self._store.one_statement() as conn:  # a COPY is atomic on its own
                    await self._copy_in(conn, records)
            else:
                async with self._store.write() as conn:
                    await conn.execute(insert(request_log), [_row(r) for r in records])
            return 0
        except (IntegrityError, DataError):
            pass
        except Exception as exc:  # asyncpg's own errors, from COPY: a bad row is handled below, the rest re-raised
            if type(exc).__module__ != "asyncpg.exceptions" or not _is_bad_row(exc):
                raise
        rejected = 0
        for record in records:
            try:
                async with self._store.write() as conn:
                    await conn.execute(insert(request_log).values(_row(record)))
            except (IntegrityError, DataError):
                rejected += 1
        return rejected

    @staticmethod
    async def _copy_in(conn: Any, records: Sequence[RequestRecord]) -> None:
        raw = (await conn.get_raw_connection()).driver_connection
        rows = []
        for record in records:
            values = _values(record)
            values[_DETAILS] = orjson.dumps(values[_DETAILS]).decode()
            rows.append(tuple(values))
        await raw.copy_records_to_table("request_log", records=rows, columns=list(_COLUMNS))

    async def purge(self, *, before: datetime) -> int:
        async with self._store.write() as conn:
            result = await conn.execute(delete(request_log).where(request_log.c.at < before))
        return int(result.rowcount or 0)


def _is_bad_row(exc: Exception) -> bool:
    """A duplicate id or a value the column refuses (SQLSTATE classes 22 and 23), not a store that is away."""
    state = str(getattr(exc, "sqlstate", "") or "")
    return state.startswith(("22", "23"))
