"""Voucher administration: staff create codes; checkout counts their use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.domain.discounts import Voucher, VoucherKind, normalize_code
from shop.domain.errors import InvalidValue, NotFound
from shop.domain.money import Money, parse_amount
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import VoucherRepository

MAX_AMOUNT = 1_000_000_000


class VoucherBook(VoucherRepository, Protocol):
    async def deactivate(self, code: str) -> bool:
        """Stop the voucher being used from now on; False if there is no such code."""
        ...


@dataclass(frozen=True, slots=True)
class VoucherDraft:
    code: str
    kind: str
    value: str
    min_order: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None


class Vouchers:
    def __init__(self, *, repository: VoucherBook, currency: str, clock: Clock = utc_now) -> None:
        self._repository = repository
        self._currency = currency
        self._clock = clock

    async def create(self, draft: VoucherDraft) -> Voucher:
        """Store a new voucher; a taken code is a conflict."""
        for name in ("starts_at", "ends_at"):
            moment = getattr(draft, name)
            if moment is not None and moment.tzinfo is None:
                raise InvalidValue(name, "give a time zone, e.g. 2026-12-01T00:00:00Z")
        if draft.kind not in {k.value for k in VoucherKind}:
            raise InvalidValue("kind", "choose percentage or fixed")
        voucher = Voucher(
            code=normalize_code(draft.code), kind=VoucherKind(draft.kind),
            value=parse_amount(draft.value, field="value"), currency=self._currency,
            min_order=Money(parse_amount(draft.min_order, field="min_order"), self._currency)
            if draft.min_order is not None else None,
            starts_at=draft.starts_at, ends_at=draft.ends_at, usage_limit=draft.usage_limit,
            per_customer_limit=draft.per_customer_limit)
        for name, amount in (("value", voucher.value), ("min_order", voucher.min_order.amount if voucher.min_order
                                                          else None)):
            if amount is not None and amount > MAX_AMOUNT:  # stored as minor units in a 64-bit integer
                raise InvalidValue(name, f"must be at most {MAX_AMOUNT}")
        if voucher.kind is VoucherKind.FIXED and Money(voucher.value, self._currency).amount != voucher.value:
            raise InvalidValue("value", f"more decimals than {self._currency} has")
        await self._repository.add(voucher, now=self._clock())
        return voucher

    async def all(self) -> Sequence[Voucher]:
        return await self._repository.all()

    async def deactivate(self, code: str) -> None:
        """End a voucher: from now on it takes nothing off (orders that used it keep their discount)."""
        if not await self._repository.deactivate(normalize_code(code)):
            raise NotFound("voucher", code)
