"""Money: an exact decimal amount in one currency. Never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from shop.domain.errors import CurrencyMismatch, InvalidValue

# ISO 4217 minor units where they differ from two.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


_CURRENCY = re.compile(r"[A-Z]{3}")


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def parse_amount(raw: str | int | Decimal, *, field: str = "amount") -> Decimal:
    """Read a decimal amount from text or an exact number; floats are refused."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InvalidValue(field, "must be a decimal number written as text, e.g. '19.99'")
    try:
        value = Decimal(raw.strip()) if isinstance(raw, str) else Decimal(raw)
    except InvalidOperation:
        raise InvalidValue(field, f"{raw!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidValue(field, "must be a finite number")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise InvalidValue("amount", f"money needs a Decimal, got {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise InvalidValue("amount", "must be a finite number")
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise InvalidValue("currency", f"{self.currency!r} is not an ISO 4217 code")
        exponent = Decimal(1).scaleb(-minor_units(self.currency))
        try:
            rounded = self.amount.quantize(exponent, rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise InvalidValue("amount", "is too large") from None
        object.__setattr__(self, "amount", rounded)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(parse_amount(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            raise InvalidValue("factor", "money is multiplied by a whole number or a Decimal only")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
