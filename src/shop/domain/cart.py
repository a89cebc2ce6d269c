"""Carts: what a shopper means to buy. A cart holds SKUs and quantities only; prices come from the catalogue
every time the cart is shown or checked out, so a client can never set what it pays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shop.domain.catalog import check_sku
from shop.domain.errors import Conflict, InvalidValue, NotFound

MAX_LINE_QUANTITY = 99
MAX_LINES = 50


def check_quantity(quantity: object, *, field: str = "quantity") -> int:
    """A quantity a cart line may hold: a whole number from 1 to MAX_LINE_QUANTITY."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise InvalidValue(field, f"must be a whole number from 1 to {MAX_LINE_QUANTITY}")
    return quantity


class CartStatus(StrEnum):
    OPEN = "open"
    ORDERED = "ordered"  # checked out: kept for the record, never changed again
    MERGED = "merged"  # a guest cart folded into a customer's cart at sign-in


class CartClosed(Conflict):
    def __init__(self, cart_id: str, status: CartStatus) -> None:
        super().__init__(f"cart {cart_id} is {status.value}; start a new cart")
        self.cart_id = cart_id


@dataclass(slots=True)
class CartLine:
    id: str
    sku: str
    quantity: int


@dataclass(slots=True)
class Cart:
    id: str
    customer_id: str | None
    created_at: datetime
    updated_at: datetime
    lines: list[CartLine] = field(default_factory=list)
    discount_code: str | None = None
    status: CartStatus = CartStatus.OPEN

    def _open(self) -> None:
        if self.status is not CartStatus.OPEN:
            raise CartClosed(self.id, self.status)

    def line(self, line_id: str) -> CartLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise NotFound("cart item", line_id)

    def add(self, sku: str, quantity: int, *, new_line_id: str) -> CartLine:
        """Add units of a SKU; a SKU already in the cart gets its quantity raised instead of a second line."""
        self._open()
        check_sku(sku)
        check_quantity(quantity)
        for line in self.lines:
            if line.sku == sku:
                line.quantity = check_quantity(line.quantity + quantity)
                return line
        if len(self.lines) >= MAX_LINES:
            raise InvalidValue("sku", f"a cart holds at most {MAX_LINES} different items")
        line = CartLine(new_line_id, sku, quantity)
        self.lines.append(line)
        return line

    def set_quantity(self, line_id: str, quantity: int) -> CartLine:
        self._open()
        line = self.line(line_id)
        line.quantity = check_quantity(quantity)
        return line

    def remove(self, line_id: str) -> None:
        self._open()
        self.lines.remove(self.line(line_id))

    def set_discount(self, code: str | None) -> None:
        self._open()
        self.discount_code = code

    def absorb(self, other: Cart, *, new_line_id: Callable[[], str]) -> None:
        """Fold another (guest) cart into this one: quantities of the same SKU add up, capped at the limit."""
        self._open()
        other._open()
        for theirs in other.lines:
            mine = next((line for line in self.lines if line.sku == theirs.sku), None)
            if mine is not None:
                mine.quantity = min(MAX_LINE_QUANTITY, mine.quantity + theirs.quantity)
            elif len(self.lines) < MAX_LINES:
                self.lines.append(CartLine(new_line_id(), theirs.sku, theirs.quantity))
        if self.discount_code is None:
            self.discount_code = other.discount_code
        other.status = CartStatus.MERGED

    def close(self) -> None:
        """The cart became an order."""
        self._open()
        self.status = CartStatus.ORDERED

    def reopen(self) -> None:
        """The order it became was not paid (a declined card): the shopper may try again."""
        if self.status is CartStatus.ORDERED:
            self.status = CartStatus.OPEN

    @property
    def empty(self) -> bool:
        return not self.lines
