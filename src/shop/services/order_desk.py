"""The staff's view of every order: a list filtered by state, number or customer e-mail (one order's detail and
what staff do with it are OrderService's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.domain.catalog import Page
from shop.domain.errors import InvalidValue
from shop.domain.money import Money
from shop.domain.orders import OrderStatus, PaymentStatus

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: OrderStatus | None = None
    number: str = ""  # part of the number
    email: str = ""  # part of the address, any case
    page: int = 1
    limit: int = 25


@dataclass(frozen=True, slots=True)
class OrderSummary:
    number: str
    status: OrderStatus
    email: str
    customer_id: str | None
    total: Money
    payment_status: PaymentStatus
    created_at: datetime


class OrderSearch(Protocol):
    async def find(self, wanted: OrderFilter) -> Page[OrderSummary]:
        """Orders matching every given part of the filter, newest first."""
        ...


class OrderDesk:
    def __init__(self, search: OrderSearch) -> None:
        self._search = search

    async def find(self, *, status: str = "", number: str = "", email: str = "", page: int = 1,
                   limit: int = 25) -> Page[OrderSummary]:
        """One page of orders; an unknown state is a field error, not an empty list."""
        state: OrderStatus | None = None
        if status:
            try:
                state = OrderStatus(status)
            except ValueError:
                raise InvalidValue("status", "choose one of the order states") from None
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidValue("limit", f"must be between 1 and {MAX_PAGE}")
        return await self._search.find(OrderFilter(status=state, number=number.strip().upper()[:24],
                                                   email=email.strip()[:320], page=max(1, min(page, 100_000)),
                                                   limit=limit))
