"""The in-stock flags follow the stock, even when a sale and a restock refresh the same product at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shop.domain.inventory import StockLevel
from shop.services.in_stock import InStockFlags


class Projection:
    def __init__(self, products: dict[int, list[str]]) -> None:
        self.products = products
        self.flags: dict[int, bool] = {}
        self.writes: list[dict[int, bool]] = []

    async def siblings(self, skus: Sequence[str]) -> dict[int, list[str]]:
        return {pid: group for pid, group in self.products.items() if set(group) & set(skus)}

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        self.writes.append(dict(flags))
        changed = {pid: flag for pid, flag in flags.items() if self.flags.get(pid) is not flag}
        self.flags.update(changed)
        return len(changed)


class Shelf:
    """Stock levels that another process changes after the n-th read."""

    def __init__(self, available: dict[str, int], *, then: dict[str, int] | None = None, after: int = 1) -> None:
        self.available = available
        self.then = then
        self.after = after
        self.reads = 0

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        self.reads += 1
        current = self.available
        if self.then is not None and self.reads > self.after:
            current = self.then
        return {sku: StockLevel(sku, current[sku]) for sku in skus if sku in current}


async def test_a_product_is_in_stock_while_any_variant_has_a_unit() -> None:
    projection = Projection({1: ["A", "B"], 2: ["C"]})
    flags = InStockFlags(projection=projection, stock=Shelf({"A": 0, "B": 2, "C": 0}))
    assert await flags.refresh(["A", "C"]) == 2
    assert projection.flags == {1: True, 2: False}


async def test_a_restock_between_reading_and_writing_is_caught_by_the_read_after_the_write() -> None:
    projection = Projection({1: ["A"]})
    # the sale read "none left"; before its write lands, a cancel puts two back (and its own refresh already ran)
    flags = InStockFlags(projection=projection, stock=Shelf({"A": 0}, then={"A": 2}, after=1))
    await flags.refresh(["A"])
    assert projection.flags == {1: True}
    assert projection.writes == [{1: False}, {1: True}]


async def test_skus_no_product_owns_change_nothing() -> None:
    projection = Projection({1: ["A"]})
    assert await InStockFlags(projection=projection, stock=Shelf({"A": 1})).refresh(["GONE"]) == 0
    assert projection.writes == []
