"""The products' in-stock flags on SQL: the catalogue's copy of whether any variant can be bought, which the
list filters on; kept by `InStockFlags` from the stock levels in the main store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, update

from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.posts.tables import NEXT_VERSION, products, variants


class SqlInStockProjection:
    """InStockProjection over the posts store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def siblings(self, skus: Sequence[str]) -> dict[int, list[str]]:
        """For the products owning these SKUs: every SKU of each, by product id."""
        if not skus:
            return {}
        async with self._store.read() as conn:
            owners = select(variants.c.product_id).where(variants.c.sku.in_(list(dict.fromkeys(skus))))
            rows = await conn.execute(select(variants.c.product_id, variants.c.sku)
                                      .where(variants.c.product_id.in_(owners)))
            found: dict[int, list[str]] = {}
            for row in rows:
                found.setdefault(row.product_id, []).append(row.sku)
            return found

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        """Store each product's in-stock flag where it changed; the catalogue version moves only if one did."""
        changed = 0
        async with self._store.write() as conn:
            for product_id, flag in flags.items():
                result = await conn.execute(update(products).where(products.c.id == product_id,
                                                                   products.c.in_stock != flag)
                                            .values(in_stock=flag))
                changed += result.rowcount or 0
            if changed:
                await conn.execute(NEXT_VERSION)
        return changed
