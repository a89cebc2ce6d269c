"""The one read of SQLAlchemy's private API (`driver_sql.bind_processors`): if an upgrade moves or changes
`SQLCompiler._bind_processors`, these fail here rather than checkout writing unconverted values on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects.postgresql import asyncpg

from shop.infrastructure.db.driver_sql import bind_processors
from shop.infrastructure.db.main.tables import outbox, stock_levels

DIALECT = asyncpg.dialect()
BERLIN = timezone(timedelta(hours=1))


def test_the_processors_are_sqlalchemys_own_for_each_bound_column_by_name() -> None:
    compiled = insert(outbox).compile(dialect=DIALECT,
                                      column_keys=["kind", "payload", "created_at", "available_at", "attempts"])
    processors = bind_processors(compiled)
    assert {"payload", "created_at", "available_at"} <= set(processors)
    payload = {"skus": ["A-1"], "n": 2}
    public = outbox.c.payload.type.bind_processor(DIALECT)
    assert public is not None
    assert processors["payload"](payload) == public(payload)
    assert json.loads(processors["payload"](payload)) == payload


def test_a_utc_column_is_converted_to_utc_by_its_processor() -> None:
    compiled = update(stock_levels).where(stock_levels.c.sku == bindparam("b_sku")).values(
        updated_at=bindparam("b_now")).compile(dialect=DIALECT, column_keys=["b_sku", "b_now"])
    processors = bind_processors(compiled)
    converted = processors["b_now"](datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN))
    assert converted == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert converted.utcoffset() == timedelta(0)
    assert processors.get("b_sku") is None  # a plain string is bound as it is
