"""The main store's unit of work and the repositories it hands out.

Stock, orders, vouchers and the outbox share the main store, so placing an order is one transaction: each
`MainUnitOfWork.begin()` is a `CommerceUnit` bound to one open transaction, committed when the block ends without
an error and rolled back otherwise. Its repositories (`unit.carts`, `unit.orders`, `unit.shipments`,
`unit.refunds`, `unit.stock`, `unit.vouchers`, `unit.payments`, `unit.outbox`) all write inside that transaction;
`unit.catalog` reads the catalogue's offers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from shop.domain.cart import Cart
from shop.domain.catalog import Offer
from shop.domain.discounts import Voucher
from shop.domain.fulfilment import Refund, Shipment
from shop.domain.orders import Order, OrderStatus, Payment
from shop.services.outbox import OutboxWriter

Quantities = Sequence[tuple[str, int]]  # units per SKU, in SKU order (see `order_payments.quantities`)


class OfferSource(Protocol):
    """The catalogue's offers (name, price, weight, published) of SKUs, as checkout prices them."""

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]: ...


class LockedCarts(Protocol):
    async def lock(self, cart_id: str) -> Cart | None:
        """The cart, locked until the transaction ends, so two checkouts of one cart queue up."""
        ...

    async def set_status(self, cart: Cart) -> None:
        """Store a cart's new status alone (its lines have not changed)."""
        ...


class OrderRepository(Protocol):
    async def add(self, order: Order, *, access_key_hash: str) -> tuple[int, str]:
        """Store a new order (its number is chosen here); returns its id and number."""
        ...

    async def lock(self, number: str) -> tuple[int, Order] | None:
        """The order and its id, locked until the transaction ends."""
        ...

    async def update(self, order_id: int, order: Order, *, only_if: OrderStatus | None = None) -> bool:
        """Store the order's status, payment, tracking, reservation and history; with `only_if`, only if the
        stored order has that status (checked and written atomically). True if it was stored."""
        ...

    async def set_payment(self, order_id: int, payment: Payment) -> None: ...

    async def attach_to_key(self, scope: str, key: str, *, number: str, access_key: str) -> None:
        """Tie the order placed in this transaction to the idempotency key its request claimed."""
        ...


class ShipmentRepository(Protocol):
    async def add(self, order_id: int, shipment: Shipment) -> None:
        """Record a parcel of the order (read back with the order as `order.shipments`)."""
        ...


class RefundRepository(Protocol):
    async def add(self, order_id: int, refund: Refund) -> None:
        """Record a refund of the order (read back with the order as `order.refunds`); its key is the order's
        only refund of that key."""
        ...

    async def settle(self, order_id: int, refund: Refund) -> None:
        """Store what became of the refund of this number: its status, amount, gateway reference, failure."""
        ...


class StockRepository(Protocol):
    async def reserve(self, quantities: Quantities) -> Sequence[str]:
        """Hold units of each SKU; raise OutOfStock (and hold nothing) if any is short. Returns the SKUs that have
        none left to sell now: their in-stock flags follow."""
        ...

    async def take(self, quantities: Quantities) -> None:
        """Turn held units into sold ones: they leave both the reserved count and the shelf."""
        ...

    async def release(self, quantities: Quantities) -> None:
        """Give held units back."""
        ...

    async def restock(self, quantities: Quantities) -> None:
        """Put sold units back on the shelf (a paid order canceled before it shipped)."""
        ...


class VoucherCounter(Protocol):
    async def get(self, code: str) -> Voucher | None:
        """The voucher with this (normalized) code, read inside this transaction."""
        ...

    async def redeem(self, voucher: Voucher, *, customer_key: str, order_id: int) -> None:
        """Count one use of the voucher; raise VoucherNotApplicable if its total or per-customer limit is
        reached — checked and counted atomically, so concurrent orders cannot exceed a limit."""
        ...

    async def give_back(self, order_id: int) -> None:
        """Undo the voucher use of an order that will not be paid."""
        ...


class PaymentEventLog(Protocol):
    async def first_time(self, provider: str, event_id: str, *, now: datetime) -> bool:
        """Record a gateway event as applied; False if it already was (a replay)."""
        ...


class CommerceUnit(Protocol):
    """The main store inside one open transaction."""

    @property
    def carts(self) -> LockedCarts: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def shipments(self) -> ShipmentRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def stock(self) -> StockRepository: ...

    @property
    def vouchers(self) -> VoucherCounter: ...

    @property
    def payments(self) -> PaymentEventLog: ...

    @property
    def outbox(self) -> OutboxWriter:
        """What is added leaves only if the transaction commits."""
        ...

    @property
    def catalog(self) -> OfferSource:
        """The catalogue's offers, read on this transaction's connection when the catalogue shares the main
        database, so a unit never holds two connections of one pool at once."""
        ...

    def after_commit(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` once this unit's transaction has committed (never if it rolled back). Its failure is
        logged, not raised: the transaction stands, so what it does must also be left for the worker to do."""
        ...


class MainUnitOfWork(Protocol):
    def begin(self) -> AbstractAsyncContextManager[CommerceUnit]: ...
