"""The main store in memory, behind the same ports the commerce services take (services/unit_of_work.py and
services/commerce_ports.py), with the SQL adapters' rules: what a unit of work writes is kept only if its block
ends without an error, conditional writes (stock, voucher limits, `only_if`) check and write in one step, and
everything read is a copy, so a change a service makes to an object it did not store is lost as it would be.

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
from datetime import datetime, timedelta
from typing import Any

from shop.domain.cart import Cart, CartStatus
from shop.domain.catalog import Category, Offer, Page, Product, ProductQuery, ProductSummary
from shop.domain.discounts import Voucher, VoucherNotApplicable
from shop.domain.errors import Conflict, NotFound, OutOfStock
from shop.domain.inventory import StockLevel
from shop.domain.orders import Order, OrderStatus, Payment, order_number
from shop.services.commerce_ports import Claim
from shop.services.order_desk import OrderFilter, OrderSummary
from shop.services.outbox import OutboxJob
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


# --- outside a unit: each call its own transaction ---------------------------------------------------------


class FakeCarts:
    """CartRepository."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store

    async def get(self, cart_id: str) -> Cart | None:
        stored = self._store.state.carts.get(cart_id)
        return copy.deepcopy(stored) if stored is not None else None

    async def open_cart_of(self, customer_id: str) -> Cart | None:
        mine = [c for c in self._store.state.carts.values()
                if c.customer_id == customer_id and c.status is CartStatus.OPEN]
        return copy.deepcopy(max(mine, key=lambda c: c.updated_at)) if mine else None

    async def add(self, cart: Cart) -> None:
        async with self._store.transaction() as state:
            if cart.id in state.carts:
                raise Conflict(f"cart {cart.id} exists")  # the primary key refuses it
            state.carts[cart.id] = copy.deepcopy(cart)

    async def save(self, *carts: Cart) -> None:
        async with self._store.transaction() as state:
            for cart in carts:
                if cart.id not in state.carts:
                    raise NotFound("cart", cart.id)
                state.carts[cart.id] = copy.deepcopy(cart)


class FakeVoucherBook:
    """VoucherRepository with staff's `deactivate` (services.vouchers.VoucherBook)."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store

    async def get(self, code: str) -> Voucher | None:
        return self._store.state.vouchers.get(code)

    async def add(self, voucher: Voucher, *, now: datetime) -> None:
        async with self._store.transaction() as state:
            if voucher.code in state.vouchers:
                raise Conflict(f"a voucher with the code {voucher.code} exists")
            state.vouchers[voucher.code] = replace(voucher, times_used=0)

    async def all(self) -> Sequence[Voucher]:
        return list(self._store.state.vouchers.values())

    async def deactivate(self, code: str) -> bool:
        async with self._store.transaction() as state:
            stored = state.vouchers.get(code)
            if stored is None:
                return False
            state.vouchers[code] = replace(stored, active=False)
            return True


class FakeOrderReader:
    """OrderReader over what is committed."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store

    async def order(self, number: str) -> Order | None:
        order_id = self._store.state.order_id(number)
        return copy.deepcopy(self._store.state.orders[order_id]) if order_id is not None else None

    async def orders_of(self, customer_id: str, *, page: int, limit: int) -> Page[Order]:
        mine = [copy.deepcopy(order) for _, order in sorted(self._store.state.orders.items(), reverse=True)
                if order.customer_id == customer_id]
        return Page(items=mine[(page - 1) * limit:page * limit], total=len(mine), page=page, limit=limit)

    async def access_key_hash(self, number: str) -> str | None:
        order_id = self._store.state.order_id(number)
        return self._store.state.access_key_hashes.get(order_id) if order_id is not None else None

    async def number_for_payment(self, provider: str, payment_ref: str) -> str | None:
        return next((order.number for order in self._store.state.orders.values()
                     if order.payment.provider == provider and order.payment.reference == payment_ref), None)

    async def overdue(self, *, now: datetime, limit: int) -> Sequence[str]:
        due = [order for order in self._store.state.orders.values() if order.status is OrderStatus.PENDING
               and order.reservation_expires_at is not None and order.reservation_expires_at < now]
        due.sort(key=lambda order: order.reservation_expires_at or now)
        return [order.number for order in due[:limit]]


class FakeStockReader:
    """StockReader over what is committed."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store
        self.reads = 0

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        self.reads += 1
        stock = self._store.state.stock
        return {sku: copy.copy(stock[sku]) for sku in skus if sku in stock}


class FakeIdempotencyStore:
    """IdempotencyStore with the SQL store's answers; `finish_error` makes the next `finish` fail (the database
    went away after the order's commit, before its answer was stored)."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store
        self.finish_error: Exception | None = None

    async def claim(self, scope: str, key: str, fingerprint: str, *, now: datetime, lock_for: float,
                    keep_for: float) -> Claim:
        fresh = KeyRow(fingerprint, locked_until=now + timedelta(seconds=lock_for),
                       expires_at=now + timedelta(seconds=keep_for))
        async with self._store.transaction() as state:
            row = state.keys.get((scope, key))
            if row is None or row.expires_at <= now:  # a key past its keeping time is as good as new
                state.keys[(scope, key)] = fresh
                return Claim("new")
            if row.fingerprint != fingerprint:
                return Claim("mismatch")
            if row.status is not None:
                return Claim("done", status=row.status, body=copy.deepcopy(row.body))
            if row.locked_until is not None and row.locked_until > now:
                return Claim("running", locked_until=row.locked_until)
            row.locked_until = fresh.locked_until
            if row.order_number is not None:
                return Claim("resume", order_number=row.order_number, access_key=row.access_key)
            return Claim("new")

    async def finish(self, scope: str, key: str, *, status: int, body: object) -> None:
        if self.finish_error is not None:
            error, self.finish_error = self.finish_error, None
            raise error
        async with self._store.transaction() as state:
            row = state.keys.get((scope, key))
            if row is not None:
                row.status, row.body, row.locked_until = status, copy.deepcopy(body), None

    async def release(self, scope: str, key: str) -> None:
        async with self._store.transaction() as state:
            row = state.keys.get((scope, key))
            if row is None or row.status is not None:
                return
            if row.order_number is None:
                del state.keys[(scope, key)]
            else:
                row.locked_until = None

    async def purge(self, *, now: datetime) -> int:
        async with self._store.transaction() as state:
            gone = [k for k, row in state.keys.items() if row.expires_at <= now]
            for k in gone:
                del state.keys[k]
            return len(gone)



class FakeShelf:
    """The catalogue (a CatalogReader, and the unit's OfferSource) over products the test puts on it."""

    def __init__(self) -> None:
        self.rows: dict[str, Product] = {}
        self.offer_reads = 0

    def put(self, product: Product) -> None:
        self.rows[product.slug] = product

    async def categories(self) -> Sequence[Category]:
        return []

    async def products(self, query: ProductQuery, *, category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        listed = [ProductSummary(slug=p.slug, title=p.title, price_from=min(v.price for v in p.variants), image=None,
                                 in_stock=True, category_id=p.category_id)
                  for p in self.rows.values() if p.published and p.variants
                  and (category_ids is None or p.category_id in category_ids)]
        return Page(items=listed[query.offset:query.offset + query.limit], total=len(listed), page=query.page,
                    limit=query.limit)

    async def product(self, slug: str) -> Product | None:
        return self.rows.get(slug)

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        self.offer_reads += 1
        wanted = set(skus)
        return {v.sku: Offer(sku=v.sku, product_slug=p.slug, product_title=p.title, variant_title=v.title,
                             price=v.price, weight_grams=v.weight_grams, published=p.published,
                             options=dict(v.options))
                for p in self.rows.values() for v in p.variants if v.sku in wanted}

    async def version(self) -> int:
        return 1

    async def count_products(self) -> int:
        return len(self.rows)


class FakeOutbox:
    """The worker's Outbox over the main store's outbox rows: claims lease due rows, outcomes need the claim."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store

    async def claim_due(self, kind: str, *, now: datetime, limit: int, lease: timedelta) -> Sequence[OutboxJob]:
        async with self._store.transaction() as state:
            due = [row for row in state.outbox if row.kind == kind and row.sent_at is None and row.dead_at is None
                   and (row.available_at is None or row.available_at <= now)][:limit]
            for row in due:
                row.attempts += 1
                row.available_at = now + lease
                row.token = f"claim-{row.id}-{row.attempts}"
            return [OutboxJob(row.id, row.kind, copy.deepcopy(row.payload), row.attempts, now + lease,
                              row.token or "") for row in due]

    @asynccontextmanager
    async def _held(self, job: OutboxJob) -> AsyncIterator[Queued | None]:
        """The job's row, if this claim still holds it (the SQL update matches nothing otherwise)."""
        async with self._store.transaction() as state:
            row = next((row for row in state.outbox if row.id == job.id and row.token == job.token), None)
            if row is not None:
                row.token = None
            yield row

    async def mark_sent(self, job: OutboxJob, *, now: datetime) -> None:
        async with self._held(job) as row:
            if row is not None:
                row.sent_at = now

    async def mark_failed(self, job: OutboxJob, *, error: str, retry_at: datetime) -> None:
        async with self._held(job) as row:
            if row is not None:
                row.available_at, row.last_error = retry_at, error

    async def mark_dead(self, job: OutboxJob, *, error: str, now: datetime) -> None:
        async with self._held(job) as row:
            if row is not None:
                row.dead_at, row.last_error = now, error

    async def release(self, job: OutboxJob, *, now: datetime) -> None:
        async with self._held(job) as row:
            if row is not None:
                row.available_at, row.attempts = now, row.attempts - 1

    async def purge(self, *, sent_before: datetime, dead_before: datetime) -> int:
        async with self._store.transaction() as state:
            kept = [row for row in state.outbox if not (row.sent_at is not None and row.sent_at < sent_before)
                    and not (row.dead_at is not None and row.dead_at < dead_before)]
            gone = len(state.outbox) - len(kept)
            state.outbox[:] = kept
            return gone


class FakeOrderSearch:
    """OrderSearch over what is committed; remembers the filters it was asked."""

    def __init__(self, store: FakeMainStore) -> None:
        self._store = store
        self.asked: list[OrderFilter] = []

    async def find(self, wanted: OrderFilter) -> Page[OrderSummary]:
        self.asked.append(wanted)
        found = [OrderSummary(number=o.number, status=o.status, email=o.email, customer_id=o.customer_id,
                              total=o.totals.total, payment_status=o.payment.status, created_at=o.created_at)
                 for _, o in sorted(self._store.state.orders.items(), reverse=True)
                 if (wanted.status is None or o.status is wanted.status) and wanted.number in o.number
                 and wanted.email.lower() in o.email.lower()]
        start = (wanted.page - 1) * wanted.limit
        return Page(items=found[start:start + wanted.limit], total=len(found), page=wanted.page, limit=wanted.limit)
