"""The stock side of an order's moves: units per SKU in the order every transaction locks them, and the in-stock
flags that follow a change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shop.domain.orders import OrderLine
from shop.domain.pricing import PricedLine
from shop.services.in_stock import InStockFlags
from shop.services.unit_of_work import CommerceUnit

STOCK_CHANGED = "stock"  # outbox job: the catalogue's in-stock flags of these SKUs follow their stock


def quantities(lines: Sequence[OrderLine] | Sequence[PricedLine]) -> list[tuple[str, int]]:
    """Units per SKU in SKU order: every transaction locks stock rows in the same order, so none deadlock."""
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return sorted(units.items())


async def stock_changed(unit: CommerceUnit, skus: Iterable[str], flags: InStockFlags | None) -> None:
    """What can be bought of these SKUs changed: the catalogue's in-stock flags follow right after the commit,
    and the worker's job makes sure they do even if this process stops first."""
    moved = sorted(set(skus))
    await unit.outbox.add(STOCK_CHANGED, {"skus": moved})
    if flags is not None:
        unit.after_commit(lambda: flags.refresh(moved))
