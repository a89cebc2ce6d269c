"""The main store's ports used outside a unit of work (services/commerce_ports.py and the worker's outbox, the
staff's order search) and the catalogue, in memory over `main_store_fakes.FakeMainStore`: each call is its own
transaction, with the SQL adapters' answers."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from main_store_fakes import FakeMainStore, KeyRow, Queued

from shop.domain.cart import Cart, CartStatus
from shop.domain.catalog import Category, Offer, Page, Product, ProductQuery, ProductSummary
from shop.domain.discounts import Voucher
from shop.domain.errors import Conflict, NotFound
from shop.domain.inventory import StockLevel
from shop.domain.orders import Order, OrderStatus
from shop.services.commerce_ports import Claim
from shop.services.order_desk import OrderFilter, OrderSummary
from shop.services.outbox import OutboxJob


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
