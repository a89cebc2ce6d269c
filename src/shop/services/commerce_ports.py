"""Ports of the commerce core: carts, vouchers, orders and the main-store unit of work that places them.

Stock, orders, vouchers and the outbox share the main store, so placing an order is one transaction: the
`MainUnitOfWork` hands out a `CommerceUnit` bound to one open transaction, committed when the block ends without
an error and rolled back otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.domain.cart import Cart
from shop.domain.catalog import Offer, Page
from shop.domain.discounts import Voucher
from shop.domain.orders import Order, OrderStatus, Payment
from shop.services.outbox import OutboxWriter


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


class CommerceUnit(Protocol):
    """The main store inside one open transaction."""

    @property
    def carts(self) -> CartRepository: ...

    @property
    def outbox(self) -> OutboxWriter:
        """The outbox inside this transaction: what is added leaves only if the transaction commits."""
        ...

    def after_commit(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` once this unit's transaction has committed (never if it rolled back). Its failure is
        logged, not raised: the transaction stands, so what it does must also be left for the worker to do."""
        ...

    async def set_cart_status(self, cart: Cart) -> None:
        """Store a cart's new status alone (its lines have not changed)."""
        ...

    async def lock_cart(self, cart_id: str) -> Cart | None:
        """The cart, locked until the transaction ends, so two checkouts of one cart queue up."""
        ...

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        """The catalogue's offers for these SKUs (as `CatalogReader.offers`), read on this transaction's
        connection when the catalogue shares the main database, so a unit never holds two connections of one
        pool at once."""
        ...

    async def voucher(self, code: str) -> Voucher | None:
        """The voucher with this (normalized) code, read inside this transaction."""
        ...

    async def reserve(self, quantities: Sequence[tuple[str, int]]) -> Sequence[str]:
        """Hold units of each SKU; raise OutOfStock (and hold nothing) if any is short. Returns the SKUs that have
        none left to sell now: their in-stock flags follow."""
        ...

    async def take(self, quantities: Sequence[tuple[str, int]]) -> None:
        """Turn held units into sold ones: they leave both the reserved count and the shelf."""
        ...

    async def release(self, quantities: Sequence[tuple[str, int]]) -> None:
        """Give held units back."""
        ...

    async def restock(self, quantities: Sequence[tuple[str, int]]) -> None:
        """Put sold units back on the shelf (a paid order canceled before it shipped)."""
        ...

    async def redeem(self, voucher: Voucher, *, customer_key: str, order_id: int) -> None:
        """Count one use of the voucher; raise VoucherNotApplicable if its total or per-customer limit is
        reached — checked and counted atomically, so concurrent orders cannot exceed a limit."""
        ...

    async def give_back(self, order_id: int) -> None:
        """Undo the voucher use of an order that will not be paid."""
        ...

    async def add_order(self, order: Order, *, access_key_hash: str) -> tuple[int, str]:
        """Store a new order (its number is chosen here); returns its id and number."""
        ...

    async def lock_order(self, number: str) -> tuple[int, Order] | None:
        """The order and its id, locked until the transaction ends."""
        ...

    async def update_order(self, order_id: int, order: Order, *, only_if: OrderStatus | None = None) -> bool:
        """Store the order's status, payment, tracking, reservation and history; with `only_if`, only if the
        stored order has that status (checked and written atomically). True if it was stored."""
        ...

    async def set_payment(self, order_id: int, payment: Payment) -> None: ...

    async def first_time(self, provider: str, event_id: str, *, now: datetime) -> bool:
        """Record a gateway event as applied; False if it already was (a replay)."""
        ...

    async def attach_order(self, scope: str, key: str, *, number: str, access_key: str) -> None:
        """Tie the order placed in this transaction to the idempotency key its request claimed."""
        ...


class MainUnitOfWork(Protocol):
    def begin(self) -> AbstractAsyncContextManager[CommerceUnit]: ...


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
