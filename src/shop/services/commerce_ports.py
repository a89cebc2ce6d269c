"""Ports of the commerce core outside a unit of work: carts, vouchers and orders as the pages read and change
them one call at a time, idempotency keys, the catalogue's in-stock flags (the unit of work that places and moves
orders is `unit_of_work.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.domain.cart import Cart
from shop.domain.catalog import Page
from shop.domain.discounts import Voucher
from shop.domain.orders import Order


class CartRepository(Protocol):
    async def get(self, cart_id: str) -> Cart | None: ...

    async def open_cart_of(self, customer_id: str) -> Cart | None:
        """The customer's open cart, if they have one."""
        ...

    async def add(self, cart: Cart) -> None:
        """Store a new cart."""
        ...

    async def save(self, *carts: Cart) -> None:
        """Store carts that were added before as they are now (their lines replace the stored ones), all in one
        transaction; raise NotFound if one is no longer stored."""
        ...


class VoucherRepository(Protocol):
    async def get(self, code: str) -> Voucher | None: ...

    async def add(self, voucher: Voucher, *, now: datetime) -> None:
        """Store a new voucher; raise Conflict if the code exists."""
        ...

    async def all(self) -> Sequence[Voucher]: ...


class OrderReader(Protocol):
    async def order(self, number: str) -> Order | None: ...

    async def orders_of(self, customer_id: str, *, page: int, limit: int) -> Page[Order]: ...

    async def access_key_hash(self, number: str) -> str | None: ...

    async def number_for_payment(self, provider: str, payment_ref: str) -> str | None: ...

    async def overdue(self, *, now: datetime, limit: int) -> Sequence[str]:
        """Numbers of pending orders whose stock reservation has run out."""
        ...


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming an idempotency key found.

    state: "new" (claimed: run the request), "done" (finished: `status` and `body` are its answer), "running"
    (another request holds it until `locked_until`), "mismatch" (the key was used with a different request), or
    "resume" (claimed; an earlier try placed `order_number` but its answer was never stored)."""

    state: str
    status: int | None = None
    body: object = None
    locked_until: datetime | None = None
    order_number: str | None = None
    access_key: str | None = None


class IdempotencyStore(Protocol):
    """Stored responses of requests that carried an Idempotency-Key."""

    async def claim(self, scope: str, key: str, fingerprint: str, *, now: datetime, lock_for: float,
                    keep_for: float) -> Claim:
        """Claim the key for a request, locking it for `lock_for` seconds."""
        ...

    async def finish(self, scope: str, key: str, *, status: int, body: object) -> None: ...

    async def release(self, scope: str, key: str) -> None:
        """A claim whose request failed on our side: drop it so the request can run again, or, if it placed an
        order, unlock it so a retry can finish that order."""
        ...

    async def purge(self, *, now: datetime) -> int: ...


class InStockProjection(Protocol):
    """The catalogue's copy of "can this product be bought", kept so lists filter by it without the main store."""

    async def siblings(self, skus: Sequence[str]) -> dict[int, list[str]]:
        """For the products owning these SKUs: every SKU of each, by product id."""
        ...

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        """Store the flags that changed; returns how many did."""
        ...
