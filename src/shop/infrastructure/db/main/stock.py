"""Stock levels in the main store."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal_column, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError

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

