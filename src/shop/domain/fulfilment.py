"""Shipments and refunds of an order: which units left with which carrier, and which money (and units) went back.

Lines are named by their number on the order, 1 for the first. The rules that weigh a shipment or a refund against
the order (what is left to ship, what is left to refund) are `Order`'s; this module holds the records and the
arithmetic that needs no order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from shop.domain.discounts import round_money
from shop.domain.errors import InvalidValue
from shop.domain.money import Money
from shop.domain.pricing import Totals

CARRIER_LIMIT = 60
TRACKING_LIMIT = 100
REASON_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    line: int  # the order line's number, from 1
    quantity: int


@dataclass(frozen=True, slots=True)
class Shipment:
    number: int  # 1, 2, … within its order
    lines: tuple[ShipmentLine, ...]
    carrier: str
    tracking: str
    shipped_at: datetime


class RefundStatus(StrEnum):
    PENDING = "pending"  # recorded, its amount held against what is left, while the gateway is asked
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the gateway refused or was not reached: it counts for nothing


@dataclass(frozen=True, slots=True)
class RefundLine:
    line: int  # the order line's number, from 1
    quantity: int  # units refunded
    restock: int  # of those, units put back on the shelf


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """What staff asked to give back: an amount, lines, or both (lines at a chosen amount)."""

    amount: Money | None
    lines: tuple[RefundLine, ...] = ()
    reason: str = ""

    def fingerprint(self) -> str:
        """The request's identity: a retry under the same key must send the same one."""
        parts = [str(self.amount) if self.amount is not None else "-", self.reason,
                 *(f"{line.line}:{line.quantity}:{line.restock}" for line in self.lines)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Refund:
    number: int  # 1, 2, … within its order
    key: str  # the idempotency key it was asked with
    fingerprint: str
    amount: Money
    lines: tuple[RefundLine, ...]
    reason: str
    status: RefundStatus
    created_at: datetime
    by: str | None = None  # the staff member's id; None for the shop itself
    gateway_ref: str | None = None
    failure: str | None = None  # one short line, never a secret

    @property
    def counts(self) -> bool:
        """Whether it holds money and units: a failed refund gave nothing back."""
        return self.status is not RefundStatus.FAILED


def clean_text(value: str, field: str, *, limit: int) -> str:
    """One line of text without control characters; blank is allowed."""
    text = " ".join(value.split()) if isinstance(value, str) else ""
    if len(text) > limit:
        raise InvalidValue(field, f"at most {limit} characters")
    if any(ord(ch) < 32 for ch in text):
        raise InvalidValue(field, "must not contain control characters")
    return text


def check_lines(wanted: Sequence[tuple[int, int]], count: int) -> None:
    """Each named line exists, once, with a positive whole number of units; problems name `lines[i]`."""
    if not wanted:
        raise InvalidValue("lines", "name at least one line")
    seen: set[int] = set()
    for i, (line, quantity) in enumerate(wanted):
        if isinstance(line, bool) or not isinstance(line, int) or not 1 <= line <= count:
            raise InvalidValue(f"lines[{i}].line", f"the order has lines 1 to {count}")
        if line in seen:
            raise InvalidValue(f"lines[{i}].line", f"line {line} is named twice")
        seen.add(line)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidValue(f"lines[{i}].quantity", "must be a positive whole number")


def per_line(count: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Units per order line (index 0 for line 1) summed from (line, units) pairs."""
    units = [0] * count
    for line, quantity in pairs:
        units[line - 1] += quantity
    return units


def line_share(unit_price: Money, quantity: int, totals: Totals) -> Money:
    """What `quantity` units of a line paid: their price less their share of the discount (in proportion to the
    goods), plus tax where prices exclude it. Shipping is not part of any line. Rounded half up, once."""
    gross = unit_price.amount * quantity
    goods = totals.goods.amount
    paid = gross * (goods - totals.discount.amount) / goods if goods > 0 else Decimal(0)
    if not totals.prices_include_tax:
        paid *= 1 + totals.tax_rate
    return round_money(paid, unit_price.currency)
