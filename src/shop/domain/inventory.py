"""Stock per SKU: what is on hand and what is held for orders being placed."""

from __future__ import annotations

from dataclasses import dataclass

from shop.domain.errors import InvalidQuantity, InvalidValue, OutOfStock


def _whole(quantity: object) -> bool:
    return isinstance(quantity, int) and not isinstance(quantity, bool)


@dataclass(slots=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.on_hand < 0:
            raise InvalidValue("on_hand", "stock on hand cannot be negative")
        if not 0 <= self.reserved <= self.on_hand:
            raise InvalidValue("reserved", "reserved stock must lie between 0 and what is on hand")

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def in_stock(self) -> bool:
        return self.available > 0

    def reserve(self, quantity: int) -> None:
        if not _whole(quantity) or quantity <= 0:
            raise InvalidQuantity(quantity)
        if self.available < quantity:
            raise OutOfStock(self.sku, requested=quantity, available=self.available)
        self.reserved += quantity

    def release(self, quantity: int) -> None:
        if not _whole(quantity) or quantity <= 0 or quantity > self.reserved:
            raise InvalidQuantity(quantity)
        self.reserved -= quantity
