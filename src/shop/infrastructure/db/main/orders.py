"""Orders, stock reservations and voucher counts in the main store: the unit of work that places an order.

Stock is never oversold because every change to it is one conditional UPDATE that the database applies
atomically: `reserved = reserved + n WHERE on_hand - reserved >= n`. Two checkouts for the last unit both send it;
the row lock makes the second wait, re-check the condition against the committed row, and match nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import ARRAY, String, and_, bindparam, cast, delete, func, insert, literal_column, select, true, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.cart import Cart
from shop.domain.catalog import Offer, Page
from shop.domain.discounts import Voucher, VoucherNotApplicable
from shop.domain.errors import Conflict, OutOfStock
from shop.domain.orders import ORDER_NUMBER_BASE, Order, OrderLine, OrderStatus, Payment, PaymentStatus, order_number
from shop.domain.pricing import Address, Totals
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.carts import CartRows, load_cart, load_voucher
from shop.infrastructure.db.main.outbox import OutboxTransaction
from shop.infrastructure.db.main.tables import (
    idempotency_keys,
    order_lines,
    orders,
    payment_events,
    stock_levels,
    voucher_redemptions,
    vouchers,
)
from shop.infrastructure.db.money_columns import from_minor, to_minor
from shop.infrastructure.db.posts.catalog import SqlCatalog
from shop.infrastructure.db.types import utcnow

log = logging.getLogger(__name__)
_AMOUNTS = ("goods", "discount", "shipping", "tax", "total")


def insert_ignoring_duplicates(backend: str, table: Any) -> Any:
    """An INSERT that does nothing when the key exists (rowcount 0), leaving the transaction usable."""
    if backend == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if backend == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return mysql.insert(table).prefix_with("IGNORE")


def _order(row: Any, lines: Sequence[Any]) -> Order:
    currency = row.currency
    money = {name: from_minor(getattr(row, name), currency) for name in _AMOUNTS}
    totals = Totals(**money, tax_rate=Decimal(row.tax_rate), prices_include_tax=bool(row.prices_include_tax))
    payment = Payment(provider=row.payment_provider, status=PaymentStatus(row.payment_status), amount=money["total"],
                      reference=row.payment_ref, action_url=row.payment_action_url, decline_reason=row.decline_reason,
                      alert=row.payment_alert)
    return Order(
        number=row.number, status=OrderStatus(row.status), email=row.email, customer_id=row.customer_id,
        lines=[OrderLine(sku=line.sku, name=line.name, product_slug=line.product_slug,
                         unit_price=from_minor(line.unit_price, currency), quantity=line.quantity,
                         weight_grams=line.weight_grams) for line in lines],
        shipping_address=Address(**row.shipping_address), shipping_method=row.shipping_method,
        shipping_method_name=row.shipping_method_name, totals=totals, payment=payment, created_at=row.created_at,
        discount_code=row.discount_code, cart_id=row.cart_id, tracking=row.tracking,
        reservation_expires_at=row.reservation_expires_at,
        history=[(OrderStatus(status), datetime.fromisoformat(at)) for status, at in row.history])


_LINES = select(order_lines).where(order_lines.c.order_id == bindparam("order_id")).order_by(order_lines.c.position)
_BY_NUMBER = select(orders).where(orders.c.number == bindparam("number"))
_BY_NUMBER_LOCKED = _BY_NUMBER.with_for_update()
# statements built once: building and hashing a statement costs more CPU than the round trip itself;
# UPDATEs without .values() take their SET columns from the parameters they are given
_INSERT_ORDER = insert(orders)
_INSERT_LINES = insert(order_lines)
_UPDATE_ORDER = update(orders).where(orders.c.id == bindparam("b_id"))
# PostgreSQL: take the id from the table's sequence and write the number made from it (as `order_number`
# makes it) in the same INSERT, instead of a placeholder number and an UPDATE once the id is known
_NEW_ID = select(literal_column("nextval(pg_get_serial_sequence('orders', 'id'))").label("id")).cte("new_order")
_GIVEN = [column for column in orders.c if column.name not in ("id", "number")]
_PLACED = insert(orders).from_select(
    ["id", "number", *[column.name for column in _GIVEN]],
    select(_NEW_ID.c.id, cast(_NEW_ID.c.id + ORDER_NUMBER_BASE, String),
           *[bindparam(column.name, type_=column.type) for column in _GIVEN]),
).returning(orders.c.id).cte("placed")
# … and its lines in the same statement, one array per column (`line_sku` = [sku of line 0, of line 1, …])
_LINE_COLUMNS = ("position", "sku", "name", "product_slug", "unit_price", "quantity", "weight_grams")
_LINES_GIVEN = func.unnest(*[bindparam(f"line_{name}", type_=ARRAY(order_lines.c[name].type))
                             for name in _LINE_COLUMNS]).table_valued(*_LINE_COLUMNS).render_derived(name="given")
_INSERT_ORDER_AND_LINES_PG = insert(order_lines).from_select(
    ["order_id", *_LINE_COLUMNS],
    select(_PLACED.c.id, *[_LINES_GIVEN.c[name] for name in _LINE_COLUMNS]).select_from(
        _PLACED.join(_LINES_GIVEN, true())),
).add_cte(_PLACED).returning(order_lines.c.order_id)
_UPDATE_ORDER_IF = _UPDATE_ORDER.where(orders.c.status == bindparam("b_status"))
_ATTACH_ORDER = update(idempotency_keys).where(idempotency_keys.c.scope == bindparam("b_scope"),
                                               idempotency_keys.c.key == bindparam("b_key"))


async def _load(conn: AsyncConnection, number: str, *, lock: bool = False) -> tuple[int, Order] | None:
    row = (await conn.execute(_BY_NUMBER_LOCKED if lock else _BY_NUMBER, {"number": number})).first()
    if row is None:
        return None
    lines = (await conn.execute(_LINES, {"order_id": row.id})).all()
    return row.id, _order(row, lines)


def _payment_values(payment: Payment) -> dict[str, Any]:
    return {"payment_provider": payment.provider, "payment_status": payment.status.value,
            "payment_ref": payment.reference, "payment_action_url": payment.action_url,
            "decline_reason": (payment.decline_reason or "")[:100] or None,
            "payment_alert": (payment.alert or "")[:1000] or None}


def _history(order: Order) -> list[list[str]]:
    return [[status.value, at.isoformat()] for status, at in order.history]


def _stock_statement(guard: Any, **values: Any) -> Any:
    return update(stock_levels).where(stock_levels.c.sku == bindparam("b_sku"), guard).values(
        updated_at=bindparam("b_now"), **values)


_s = stock_levels.c
_n: Any = bindparam("b_n")
_STOCK = {
    "reserve": _stock_statement(_s.on_hand - _s.reserved >= _n, reserved=_s.reserved + _n),
    "take": _stock_statement(_s.reserved >= _n, on_hand=_s.on_hand - _n, reserved=_s.reserved - _n),
    "release": _stock_statement(_s.reserved >= _n, reserved=_s.reserved - _n),
    "restock": _stock_statement(_s.on_hand >= 0, on_hand=_s.on_hand + _n),
}
_RESERVE_RETURNING = _STOCK["reserve"].returning(_s.on_hand - _s.reserved)
_AVAILABLE = select(_s.on_hand - _s.reserved).where(_s.sku == bindparam("b_sku"))
_LEFT = select(_s.sku, _s.on_hand - _s.reserved).where(_s.sku.in_(bindparam("skus", expanding=True)))


# PostgreSQL: the stock of several SKUs changed by one statement. The InitPlan (the count) runs before any row
# is updated and locks the rows in SKU order, as the one-row statements do one after another, so two
# transactions never lock the same rows in opposite orders (EXPLAIN shows it as the plan's One-Time Filter).
_LOCKED_IN_SKU_ORDER = """(SELECT count(*) FROM (SELECT sku FROM stock_levels WHERE sku = ANY($1::varchar[])
                             ORDER BY sku FOR UPDATE) AS locked) >= 0"""
_PG_RESERVE_MANY = f"""UPDATE stock_levels AS s SET reserved = s.reserved + q.n, updated_at = $3
FROM unnest($1::varchar[], $2::int[]) AS q(sku, n)
WHERE s.sku = q.sku AND s.on_hand - s.reserved >= q.n AND {_LOCKED_IN_SKU_ORDER}
RETURNING s.sku, s.on_hand - s.reserved"""  # noqa: S608 - constant SQL, no input in it
_PG_TAKE_MANY = f"""UPDATE stock_levels AS s
SET on_hand = s.on_hand - q.n, reserved = s.reserved - q.n, updated_at = $3
FROM unnest($1::varchar[], $2::int[]) AS q(sku, n)
WHERE s.sku = q.sku AND s.reserved >= q.n AND {_LOCKED_IN_SKU_ORDER}
RETURNING s.sku, s.on_hand"""  # noqa: S608 - constant SQL, no input in it


async def _pg_many(conn: AsyncConnection, sql: str, quantities: Sequence[tuple[str, int]]) -> list[Any] | None:
    """Rows of one of the statements above, or None off PostgreSQL (the caller goes SKU by SKU)."""
    if conn.dialect.name != "postgresql":
        return None
    return await WRITES.fetch_sql(conn, sql, [sku for sku, _ in quantities], [units for _, units in quantities],
                                  utcnow())


def _short(sku: str, units: int, what: str) -> Conflict:
    return Conflict(f"stock of {sku} does not hold the {units} units this order counts on ({what})")


class SqlCommerceUnit:
    """CommerceUnit on one open main-store transaction."""

    def __init__(self, conn: AsyncConnection, backend: str, catalog: SqlCatalog) -> None:
        self.conn = conn
        self.backend = backend
        self._catalog = catalog
        self.carts = CartRows(conn)
        self.outbox = OutboxTransaction(conn, utcnow)
        self.committed: list[Callable[[], Awaitable[object]]] = []

    def after_commit(self, action: Callable[[], Awaitable[object]]) -> None:
        self.committed.append(action)

    async def set_cart_status(self, cart: Cart) -> None:
        await self.carts.set_status(cart)

    async def lock_cart(self, cart_id: str) -> Cart | None:
        return await load_cart(self.conn, cart_id, lock=True)

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        if self._catalog.shares_pool_with(self.conn):
            return await self._catalog.offers_on(self.conn, skus)
        return await self._catalog.offers(skus)  # another database: its own pool, so no wait on ourselves

    async def voucher(self, code: str) -> Voucher | None:
        return await load_voucher(self.conn, code)

    async def _stock(self, quantities: Sequence[tuple[str, int]], what: str) -> None:
        statement = _STOCK[what]
        now = utcnow()
        for sku, units in quantities:
            if await WRITES.execute(self.conn, statement, {"b_sku": sku, "b_n": units, "b_now": now}) == 1:
                continue
            raise _short(sku, units, what)

    async def reserve(self, quantities: Sequence[tuple[str, int]]) -> Sequence[str]:
        if len(quantities) > 1:
            rows = await _pg_many(self.conn, _PG_RESERVE_MANY, quantities)
            if rows is not None:  # PostgreSQL: every SKU in one statement
                left = {sku: units for sku, units in rows}
                for sku, units in quantities:
                    if sku not in left:  # the whole transaction rolls back: nothing stays held
                        await self._out_of_stock(sku, units)
                return [sku for sku, units in left.items() if units <= 0]
        # where UPDATE … RETURNING exists the reservation tells what is left; MariaDB's UPDATE cannot, so there
        # one read of the rows this transaction now holds tells it (cheaper than refreshing flags after each sale)
        returning = self.conn.dialect.update_returning
        now = utcnow()
        sold_out = []
        for sku, units in quantities:
            params = {"b_sku": sku, "b_n": units, "b_now": now}
            if returning:
                remaining = await WRITES.returned(self.conn, _RESERVE_RETURNING, params)
                reserved = remaining is not None
            else:
                remaining = None
                reserved = await WRITES.execute(self.conn, _STOCK["reserve"], params) == 1
            if not reserved:
                await self._out_of_stock(sku, units)
            if remaining is not None and remaining <= 0:
                sold_out.append(sku)
        if not returning:
            found = await self.conn.execute(_LEFT, {"skus": [sku for sku, _ in quantities]})
            sold_out = [sku for sku, available in found if available <= 0]
        return sold_out

    async def _out_of_stock(self, sku: str, units: int) -> NoReturn:
        level = (await self.conn.execute(_AVAILABLE, {"b_sku": sku})).scalar()
        raise OutOfStock(sku, requested=units, available=max(0, level or 0))

    async def take(self, quantities: Sequence[tuple[str, int]]) -> None:
        if len(quantities) > 1:
            rows = await _pg_many(self.conn, _PG_TAKE_MANY, quantities)
            if rows is not None:
                taken = {sku for sku, _ in rows}
                for sku, units in quantities:
                    if sku not in taken:
                        raise _short(sku, units, "take")
                return
        await self._stock(quantities, "take")

    async def release(self, quantities: Sequence[tuple[str, int]]) -> None:
        await self._stock(quantities, "release")

    async def restock(self, quantities: Sequence[tuple[str, int]]) -> None:
        await self._stock(quantities, "restock")

    async def redeem(self, voucher: Voucher, *, customer_key: str, order_id: int) -> None:
        c = vouchers.c
        counted = await self.conn.execute(
            update(vouchers).where(c.code == voucher.code, c.active.is_(True),
                                   (c.usage_limit.is_(None)) | (c.times_used < c.usage_limit))
            .values(times_used=c.times_used + 1))
        if counted.rowcount != 1:
            raise VoucherNotApplicable(voucher.code, "has been used up")
        slot = -order_id  # without a per-customer limit every order has a slot of its own
        if voucher.per_customer_limit is not None:
            r = voucher_redemptions.c
            used = (await self.conn.execute(select(func.count()).select_from(voucher_redemptions).where(
                r.voucher_code == voucher.code, r.customer_key == customer_key, r.slot > 0))).scalar_one()
            if used >= voucher.per_customer_limit:
                raise VoucherNotApplicable(voucher.code, "has already been used as often as one customer may")
            slot = used + 1
        # two orders of one customer racing for the same slot: the key lets exactly one of them have it
        taken = await self.conn.execute(insert_ignoring_duplicates(self.backend, voucher_redemptions).values(
            voucher_code=voucher.code, customer_key=customer_key, slot=slot, order_id=order_id, created_at=utcnow()))
        if taken.rowcount != 1:
            raise VoucherNotApplicable(voucher.code, "has already been used as often as one customer may")

    async def give_back(self, order_id: int) -> None:
        r = voucher_redemptions.c
        codes = (await self.conn.execute(select(r.voucher_code).where(r.order_id == order_id))).scalars().all()
        for code in codes:
            await self.conn.execute(update(vouchers).where(vouchers.c.code == code, vouchers.c.times_used > 0)
                                    .values(times_used=vouchers.c.times_used - 1))
        if codes:
            await self.conn.execute(delete(voucher_redemptions).where(r.order_id == order_id))

    async def add_order(self, order: Order, *, access_key_hash: str) -> tuple[int, str]:
        now = utcnow()
        placeholder = "p" + secrets.token_hex(10)  # until the id is known; replaced in this transaction
        values = {
            "number": placeholder, "status": order.status.value, "email": order.email,
            "customer_id": order.customer_id, "cart_id": order.cart_id, "currency": order.currency,
            **{name: to_minor(getattr(order.totals, name)) for name in _AMOUNTS},
            "tax_rate": str(order.totals.tax_rate), "prices_include_tax": order.totals.prices_include_tax,
            "shipping_address": _address(order.shipping_address), "shipping_method": order.shipping_method,
            "shipping_method_name": order.shipping_method_name, "discount_code": order.discount_code,
            "tracking": order.tracking, **_payment_values(order.payment),
            "reservation_expires_at": order.reservation_expires_at, "access_key_hash": access_key_hash,
            "history": _history(order), "created_at": order.created_at, "updated_at": now,
        }
        lines = [{"position": n, "sku": line.sku, "name": line.name[:420], "product_slug": line.product_slug,
                  "unit_price": to_minor(line.unit_price), "quantity": line.quantity,
                  "weight_grams": line.weight_grams} for n, line in enumerate(order.lines)]
        if self.backend == "postgresql" and lines:  # the order, its number and its lines in one statement
            del values["number"]
            columns = {f"line_{name}": [line[name] for line in lines] for name in _LINE_COLUMNS}
            order_id = int(await WRITES.returned(self.conn, _INSERT_ORDER_AND_LINES_PG, values | columns))
            return order_id, order_number(order_id)
        order_id = await WRITES.inserted_id(self.conn, _INSERT_ORDER, values)
        number = order_number(order_id)
        await WRITES.execute(self.conn, _UPDATE_ORDER, {"b_id": order_id, "number": number})
        await WRITES.many(self.conn, _INSERT_LINES, [{"order_id": order_id, **line} for line in lines])
        return order_id, number

    async def lock_order(self, number: str) -> tuple[int, Order] | None:
        return await _load(self.conn, number, lock=True)

    async def update_order(self, order_id: int, order: Order, *, only_if: OrderStatus | None = None) -> bool:
        values = {"b_id": order_id, "status": order.status.value, "cart_id": order.cart_id,
                  "tracking": order.tracking, "reservation_expires_at": order.reservation_expires_at,
                  "history": _history(order), "updated_at": utcnow(), **_payment_values(order.payment)}
        if only_if is None:
            return await WRITES.execute(self.conn, _UPDATE_ORDER, values) == 1
        return await WRITES.execute(self.conn, _UPDATE_ORDER_IF, {**values, "b_status": only_if.value}) == 1

    async def set_payment(self, order_id: int, payment: Payment) -> None:
        await WRITES.execute(self.conn, _UPDATE_ORDER, {"b_id": order_id, "updated_at": utcnow(),
                                                **_payment_values(payment)})

    async def attach_order(self, scope: str, key: str, *, number: str, access_key: str) -> None:
        await WRITES.execute(self.conn, _ATTACH_ORDER, {"b_scope": scope, "b_key": key, "order_number": number,
                                                        "order_access_key": access_key})

    async def first_time(self, provider: str, event_id: str, *, now: datetime) -> bool:
        result = await self.conn.execute(insert_ignoring_duplicates(self.backend, payment_events).values(
            provider=provider, event_id=event_id[:255], received_at=now))
        return bool(result.rowcount == 1)


def _address(address: Address) -> dict[str, str]:
    return {"name": address.name, "line1": address.line1, "line2": address.line2, "city": address.city,
            "postal_code": address.postal_code, "country": address.country, "region": address.region,
            "phone": address.phone}


class SqlMainUnitOfWork:
    """MainUnitOfWork: each `begin()` is one main-store transaction, committed unless the block raises."""

    def __init__(self, store: Store, *, catalog: SqlCatalog) -> None:
        self._store = store
        self._catalog = catalog

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlCommerceUnit]:
        async with self._store.write() as conn:
            unit = SqlCommerceUnit(conn, self._store.backend, self._catalog)
            yield unit
        for action in unit.committed:  # only reached once the block ended without an error and committed
            try:
                await action()
            except Exception as exc:  # the worker's outbox job does it later
                log.warning("after-commit work failed (%s: %s); the worker will do it", type(exc).__name__, exc)


class SqlOrders:
    """OrderReader over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def order(self, number: str) -> Order | None:
        async with self._store.read() as conn:
            found = await _load(conn, number)
        return found[1] if found else None

    async def orders_of(self, customer_id: str, *, page: int, limit: int) -> Page[Order]:
        async with self._store.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(orders)
                                        .where(orders.c.customer_id == customer_id))).scalar_one()
            rows = (await conn.execute(select(orders).where(orders.c.customer_id == customer_id)
                                       .order_by(orders.c.id.desc()).limit(limit).offset((page - 1) * limit))).all()
            found = []
            for row in rows:
                found.append(_order(row, (await conn.execute(_LINES, {"order_id": row.id})).all()))
        return Page(items=found, total=total, page=page, limit=limit)

    async def access_key_hash(self, number: str) -> str | None:
        async with self._store.read() as conn:
            value = (await conn.execute(select(orders.c.access_key_hash).where(orders.c.number == number))).scalar()
        return str(value) if value is not None else None

    async def number_for_payment(self, provider: str, payment_ref: str) -> str | None:
        async with self._store.read() as conn:
            value = (await conn.execute(select(orders.c.number).where(
                orders.c.payment_provider == provider, orders.c.payment_ref == payment_ref))).scalar()
        return str(value) if value is not None else None

    async def overdue(self, *, now: datetime, limit: int) -> Sequence[str]:
        async with self._store.read() as conn:
            rows = await conn.execute(select(orders.c.number).where(and_(
                orders.c.status == OrderStatus.PENDING.value, orders.c.reservation_expires_at < now))
                .order_by(orders.c.reservation_expires_at).limit(limit))
            return [str(n) for n in rows.scalars()]
