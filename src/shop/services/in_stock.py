"""The catalogue's in-stock flags follow the stock: "can any variant of this product be bought now".

The flags live with the catalogue (lists filter and count by them without the main store), the stock in the main
store, so no one transaction covers both. Whoever moves stock in a way that may flip a flag refreshes the flags
right after committing (every worker then sees the catalogue version move, within the response cache's bound),
and leaves an outbox job that does the same, in case it dies first. Two refreshes of one product racing (a sale of
the last unit against a restock) could write in the wrong order, so a refresh reads the stock again after writing
and writes once more if the flag it wrote is already out of date: the last writer always wrote what it saw last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shop.domain.inventory import StockLevel
from shop.services.commerce_ports import InStockProjection
from shop.services.ports import StockReader

_ATTEMPTS = 3


def _flags(products: Mapping[int, list[str]], levels: Mapping[str, StockLevel]) -> dict[int, bool]:
    return {pid: any(levels[s].available > 0 for s in group if s in levels) for pid, group in products.items()}


class InStockFlags:
    def __init__(self, *, projection: InStockProjection, stock: StockReader) -> None:
        self._projection = projection
        self._stock = stock

    async def refresh(self, skus: Iterable[str]) -> int:
        """Recompute the flags of the products owning `skus` from their stock; returns how many changed."""
        products = await self._projection.siblings(sorted(set(skus)))
        every = sorted({sku for group in products.values() for sku in group})
        if not every:
            return 0
        flags = _flags(products, await self._stock.levels(every))
        changed = 0
        for _ in range(_ATTEMPTS):
            changed += await self._projection.set_in_stock(flags)
            now = _flags(products, await self._stock.levels(every))
            if now == flags:
                break
            flags = now
        return changed
