"""Vouchers: a code that takes a percentage or a fixed amount off the goods, within limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from shop.domain.errors import DomainError, InvalidValue
from shop.domain.money import Money, minor_units

_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{2,31}")


def normalize_code(raw: str, *, field: str = "code") -> str:
    """Codes are compared without case or surrounding spaces."""
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if not _CODE.fullmatch(code):
        raise InvalidValue(field, "a voucher code is 3-32 letters, digits, '-' or '_'")
    return code


class VoucherKind(StrEnum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"


class VoucherNotApplicable(DomainError):
    """The code exists (or not) but cannot be used for this order; `reason` says why, for the shopper."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"voucher {code}: {reason}")
        self.code = code
        self.reason = reason


def round_money(amount: Decimal, currency: str) -> Money:
    """Commercial rounding (half up) to the currency's minor unit, stated once for every computed amount."""
    return Money(amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP), currency)


@dataclass(frozen=True, slots=True)
class Voucher:
    code: str
    kind: VoucherKind
    value: Decimal  # a percentage (0 < v ≤ 100) or an amount in `currency`
    currency: str
    min_order: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None  # redemptions in total
    per_customer_limit: int | None = None
    times_used: int = 0
    active: bool = True

    def __post_init__(self) -> None:
        normalize_code(self.code)
        if not isinstance(self.value, Decimal) or not self.value.is_finite() or self.value <= 0:
            raise InvalidValue("value", "must be a positive decimal number")
        if self.kind is VoucherKind.PERCENTAGE and self.value > 100:
            raise InvalidValue("value", "a percentage is at most 100")
        if self.min_order is not None and self.min_order.currency != self.currency:
            raise InvalidValue("min_order", f"must be in {self.currency}")
        for name in ("usage_limit", "per_customer_limit"):
            limit = getattr(self, name)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise InvalidValue(name, "must be a whole number of 1 or more")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise InvalidValue("ends_at", "must be after starts_at")

    def check(self, goods: Money, *, now: datetime) -> None:
        """Raise VoucherNotApplicable unless the voucher can be used on `goods` at `now` (limits are counted by
        the store, atomically, when the order is placed)."""
        if not self.active:
            raise VoucherNotApplicable(self.code, "is no longer valid")
        if self.starts_at is not None and now < self.starts_at:
            raise VoucherNotApplicable(self.code, "is not valid yet")
        if self.ends_at is not None and now >= self.ends_at:
            raise VoucherNotApplicable(self.code, "has expired")
        if goods.currency != self.currency:
            raise VoucherNotApplicable(self.code, f"is for orders in {self.currency}")
        if self.min_order is not None and goods < self.min_order:
            raise VoucherNotApplicable(self.code, f"needs an order of at least {self.min_order}")
        if self.usage_limit is not None and self.times_used >= self.usage_limit:
            raise VoucherNotApplicable(self.code, "has been used up")

    def amount_off(self, goods: Money) -> Money:
        """What the voucher takes off `goods`: never more than the goods cost."""
        if self.kind is VoucherKind.PERCENTAGE:
            off = round_money(goods.amount * self.value / 100, goods.currency)
        else:
            off = Money(self.value, goods.currency)
        return min(off, goods)
