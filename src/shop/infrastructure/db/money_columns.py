"""Money in and out of integer minor-unit columns."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from shop.domain.money import Money, minor_units


def to_minor(money: Money) -> int:
    return int(money.amount.scaleb(minor_units(money.currency)))


_known: dict[tuple[int, str], Money] = {}


def from_minor(amount: int, currency: str) -> Money:
    """Money from minor units; Money is immutable and prices repeat, so each one is built once."""
    key = (amount, currency)
    money = _known.get(key)
    if money is None:
        if len(_known) >= 50_000:
            _known.clear()
        money = _known[key] = Money(Decimal(amount).scaleb(-minor_units(currency)), currency)
    return money


def bound_to_minor(amount: Decimal, currency: str, *, upper: bool) -> int:
    """A price bound in minor units: a lower bound rounds up, an upper bound rounds down."""
    scaled = amount.scaleb(minor_units(currency))
    return int(scaled.to_integral_value(rounding=ROUND_FLOOR if upper else ROUND_CEILING))
