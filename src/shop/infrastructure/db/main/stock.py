"""Stock levels in the main store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from shop.domain.inventory import StockLevel
from shop.infrastructure.db.bulk import upsert_many
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import stock_levels
from shop.infrastructure.db.types import utcnow


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


class SqlStock:
    """StockReader and StockWriter over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._upsert = _upsert(store.backend)

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        if not skus:
            return {}
        async with self._store.read() as conn:
            rows = await conn.execute(_LEVELS, {"skus": list(skus)})
            return {r.sku: StockLevel(r.sku, r.on_hand, r.reserved) for r in rows}

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        if not levels:
            return
        now = utcnow()
        rows = [{"sku": lv.sku, "on_hand": lv.on_hand, "reserved": lv.reserved, "updated_at": now} for lv in levels]
        async with self._store.write() as conn:
            await upsert_many(conn, stock_levels, rows, key="sku", upsert=self._upsert)
