"""The main store in memory and its unit of work, behind the ports the commerce services take inside a unit
(services/unit_of_work.py), with the SQL adapters' rules: what a unit writes is kept only if its block ends without
an error, conditional writes (stock, voucher limits, `only_if`) check and write in one step, and everything read is
a copy, so a change a service makes to an object it did not store is lost as it would be. The ports used outside a
unit are in commerce_fakes.py.

Units are serialized (one open at a time, as if each locked everything it touched): races, locks and dialects are
the real databases' tests' business; these fakes prove the rules.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shop.domain.cart import Cart
from shop.domain.discounts import Voucher, VoucherNotApplicable
from shop.domain.errors import Conflict, OutOfStock
from shop.domain.fulfilment import Refund, Shipment
from shop.domain.inventory import StockLevel
from shop.domain.orders import Order, OrderStatus, Payment, order_number
from shop.services.unit_of_work import OfferSource, Quantities

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Queued:
    """One outbox row; None for `available_at`: due at once."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    available_at: datetime | None
    attempts: int = 0
    token: str | None = None
    sent_at: datetime | None = None
    dead_at: datetime | None = None
    last_error: str | None = None


@dataclass(slots=True)
class Redemption:
    code: str
    customer_key: str
    slot: int  # 1..limit for a voucher with a per-customer limit; -order id otherwise
    order_id: int


@dataclass(slots=True)
class KeyRow:
    """One idempotency key, as the SQL table keeps it."""

    fingerprint: str
    locked_until: datetime | None
    expires_at: datetime
    status: int | None = None
    body: object = None
    order_number: str | None = None
    access_key: str | None = None


@dataclass(slots=True)
class MainState:
    """Every table of the main store the commerce core writes."""

    carts: dict[str, Cart] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    access_key_hashes: dict[int, str] = field(default_factory=dict)
    stock: dict[str, StockLevel] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    redemptions: list[Redemption] = field(default_factory=list)
    payment_events: set[tuple[str, str]] = field(default_factory=set)
    outbox: list[Queued] = field(default_factory=list)
    keys: dict[tuple[str, str], KeyRow] = field(default_factory=dict)
    next_order_id: int = 1

    def order_id(self, number: str) -> int | None:
        return next((order_id for order_id, order in self.orders.items() if order.number == number), None)


class FakeMainStore:
    """The main store: its committed state, and the one lock every write takes."""

    def __init__(self) -> None:
        self.state = MainState()
        self.commits = 0
        self.rollbacks = 0
        self.fail_next_commit: Exception | None = None  # the store goes away as the next transaction commits
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MainState]:
        """A copy of the committed state to change; it becomes the committed state only if the block ends
        without an error."""
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise AssertionError("a transaction was begun inside another one of the same task")
        async with self._lock:
            self._holder = task
            try:
                working = copy.deepcopy(self.state)
                try:
                    yield working
                except BaseException:
                    self.rollbacks += 1
                    raise
                if self.fail_next_commit is not None:
                    error, self.fail_next_commit = self.fail_next_commit, None
                    self.rollbacks += 1
                    raise error
                self.state = working
                self.commits += 1
            finally:
                self._holder = None

    # --- for tests: set the store up, look into it ---------------------------------------------------------

    def set_stock(self, sku: str, on_hand: int, reserved: int = 0) -> None:
        self.state.stock[sku] = StockLevel(sku, on_hand, reserved)

    def level(self, sku: str) -> tuple[int, int]:
        """(on hand, reserved) of a SKU as committed."""
        stored = self.state.stock[sku]
        return stored.on_hand, stored.reserved

    def add_voucher(self, voucher: Voucher) -> None:
        self.state.vouchers[voucher.code] = voucher

    def times_used(self, code: str) -> int:
        return self.state.vouchers[code].times_used

    def order(self, number: str) -> Order:
        order_id = self.state.order_id(number)
        assert order_id is not None, f"no order {number}"
        return copy.deepcopy(self.state.orders[order_id])

    def cart(self, cart_id: str) -> Cart:
        return copy.deepcopy(self.state.carts[cart_id])

    def queued(self, kind: str) -> list[Mapping[str, Any]]:
        """The payloads of the committed outbox rows of `kind`, oldest first."""
        return [row.payload for row in self.state.outbox if row.kind == kind]


# --- inside a unit of work ---------------------------------------------------------------------------------


class FakeLockedCarts:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def lock(self, cart_id: str) -> Cart | None:
        stored = self._state.carts.get(cart_id)
        return copy.deepcopy(stored) if stored is not None else None

    async def set_status(self, cart: Cart) -> None:
        stored = self._state.carts[cart.id]
        stored.status = cart.status
        stored.updated_at = cart.updated_at


class FakeOrderRepository:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def add(self, order: Order, *, access_key_hash: str) -> tuple[int, str]:
        order_id = self._state.next_order_id
        self._state.next_order_id += 1
        number = order_number(order_id)
        self._state.orders[order_id] = replace(copy.deepcopy(order), number=number)
        self._state.access_key_hashes[order_id] = access_key_hash
        return order_id, number

    async def lock(self, number: str) -> tuple[int, Order] | None:
        order_id = self._state.order_id(number)
        if order_id is None:
            return None
        return order_id, copy.deepcopy(self._state.orders[order_id])

    async def update(self, order_id: int, order: Order, *, only_if: OrderStatus | None = None) -> bool:
        stored = self._state.orders.get(order_id)
        if stored is None or (only_if is not None and stored.status is not only_if):
            return False
        # the columns the SQL update writes; lines, totals and the address never change after the order is placed
        self._state.orders[order_id] = replace(
            stored, status=order.status, cart_id=order.cart_id, tracking=order.tracking,
            reservation_expires_at=order.reservation_expires_at, history=list(order.history), payment=order.payment)
        return True

    async def set_payment(self, order_id: int, payment: Payment) -> None:
        stored = self._state.orders[order_id]
        self._state.orders[order_id] = replace(stored, payment=payment)

    async def attach_to_key(self, scope: str, key: str, *, number: str, access_key: str) -> None:
        row = self._state.keys.get((scope, key))
        if row is not None:
            row.order_number, row.access_key = number, access_key


class FakeShipmentRepository:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def add(self, order_id: int, shipment: Shipment) -> None:
        stored = self._state.orders[order_id]
        if any(kept.number == shipment.number for kept in stored.shipments):
            raise Conflict(f"order {stored.number} already has shipment {shipment.number}")  # the primary key
        stored.shipments.append(shipment)


class FakeRefundRepository:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def add(self, order_id: int, refund: Refund) -> None:
        stored = self._state.orders[order_id]
        if any(kept.number == refund.number or kept.key == refund.key for kept in stored.refunds):
            raise Conflict(f"order {stored.number} already has that refund")  # the unique keys
        stored.refunds.append(refund)

    async def settle(self, order_id: int, refund: Refund) -> None:
        stored = self._state.orders[order_id]
        stored.refunds = [replace(kept, status=refund.status, amount=refund.amount, gateway_ref=refund.gateway_ref,
                                  failure=refund.failure) if kept.number == refund.number else kept
                          for kept in stored.refunds]


def _short(sku: str, units: int, what: str) -> Conflict:
    return Conflict(f"stock of {sku} does not hold the {units} units this order counts on ({what})")


class FakeStockRepository:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def reserve(self, quantities: Quantities) -> Sequence[str]:
        sold_out = []
        for sku, units in quantities:
            level = self._state.stock.get(sku)
            available = level.available if level is not None else 0
            if level is None or available < units:
                raise OutOfStock(sku, requested=units, available=max(0, available))
            level.reserved += units
            if level.available <= 0:
                sold_out.append(sku)
        return sold_out

    def _held(self, sku: str, units: int, what: str) -> StockLevel:
        level = self._state.stock.get(sku)
        if level is None or level.reserved < units:
            raise _short(sku, units, what)
        return level

    async def take(self, quantities: Quantities) -> None:
        for sku, units in quantities:
            level = self._held(sku, units, "take")
            level.on_hand -= units
            level.reserved -= units

    async def release(self, quantities: Quantities) -> None:
        for sku, units in quantities:
            self._held(sku, units, "release").reserved -= units

    async def restock(self, quantities: Quantities) -> None:
        for sku, units in quantities:
            level = self._state.stock.get(sku)
            if level is None:
                raise _short(sku, units, "restock")
            level.on_hand += units


class FakeVoucherCounter:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def get(self, code: str) -> Voucher | None:
        return self._state.vouchers.get(code)  # frozen: no copy needed

    async def redeem(self, voucher: Voucher, *, customer_key: str, order_id: int) -> None:
        stored = self._state.vouchers.get(voucher.code)
        if stored is None or not stored.active or (
                stored.usage_limit is not None and stored.times_used >= stored.usage_limit):
            raise VoucherNotApplicable(voucher.code, "has been used up")
        self._state.vouchers[voucher.code] = replace(stored, times_used=stored.times_used + 1)
        slot = -order_id
        if voucher.per_customer_limit is not None:
            used = sum(1 for r in self._state.redemptions
                       if r.code == voucher.code and r.customer_key == customer_key and r.slot > 0)
            if used >= voucher.per_customer_limit:
                raise VoucherNotApplicable(voucher.code, "has already been used as often as one customer may")
            slot = used + 1
        self._state.redemptions.append(Redemption(voucher.code, customer_key, slot, order_id))

    async def give_back(self, order_id: int) -> None:
        for redemption in [r for r in self._state.redemptions if r.order_id == order_id]:
            stored = self._state.vouchers[redemption.code]
            if stored.times_used > 0:
                self._state.vouchers[redemption.code] = replace(stored, times_used=stored.times_used - 1)
            self._state.redemptions.remove(redemption)


class FakePaymentEventLog:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def first_time(self, provider: str, event_id: str, *, now: datetime) -> bool:
        if (provider, event_id) in self._state.payment_events:
            return False
        self._state.payment_events.add((provider, event_id))
        return True


class FakeOutboxWriter:
    def __init__(self, state: MainState) -> None:
        self._state = state

    async def add(self, kind: str, payload: Mapping[str, Any], *, available_at: datetime | None = None) -> int:
        row_id = max((row.id for row in self._state.outbox), default=0) + 1
        self._state.outbox.append(Queued(row_id, kind, copy.deepcopy(dict(payload)), available_at))
        return row_id


class FakeCommerceUnit:
    """CommerceUnit over a working copy of the main store's state."""

    def __init__(self, state: MainState, catalog: OfferSource) -> None:
        self.carts = FakeLockedCarts(state)
        self.orders = FakeOrderRepository(state)
        self.shipments = FakeShipmentRepository(state)
        self.refunds = FakeRefundRepository(state)
        self.stock = FakeStockRepository(state)
        self.vouchers = FakeVoucherCounter(state)
        self.payments = FakePaymentEventLog(state)
        self.outbox = FakeOutboxWriter(state)
        self.catalog = catalog
        self.committed: list[Callable[[], Awaitable[object]]] = []

    def after_commit(self, action: Callable[[], Awaitable[object]]) -> None:
        self.committed.append(action)


class FakeMainUnitOfWork:
    """MainUnitOfWork: each `begin()` a transaction of the fake main store; after-commit actions run once it
    committed (and never after a rollback), their failures logged, not raised, as the SQL unit does."""

    def __init__(self, store: FakeMainStore, catalog: OfferSource) -> None:
        self._store = store
        self._catalog = catalog
        self.after_commit_failures: list[Exception] = []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeCommerceUnit]:
        async with self._store.transaction() as state:
            unit = FakeCommerceUnit(state, self._catalog)
            yield unit
        for action in unit.committed:
            try:
                await action()
            except Exception as exc:
                self.after_commit_failures.append(exc)
                log.warning("after-commit work failed (%s)", exc)
