"""Orders in the main store: the order rows a unit of work adds and moves, and the reads of pages and the worker."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.catalog import Page
from shop.domain.fulfilment import Refund, Shipment
from shop.domain.orders import Order, OrderLine, OrderStatus, Payment, PaymentStatus, may_have_moves, order_number
from shop.domain.pricing import Address, Totals
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.fulfilment import moves_of
from shop.infrastructure.db.main.tables import idempotency_keys, order_lines, orders
from shop.infrastructure.db.money_columns import from_minor, to_minor
from shop.infrastructure.db.types import utcnow

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect

_AMOUNTS = ("goods", "discount", "shipping", "tax", "total")
LINE_COLUMNS = ("position", "sku", "name", "product_slug", "unit_price", "quantity", "weight_grams")


def _order(row: Any, lines: Sequence[Any], moves: tuple[list[Shipment], list[Refund]]) -> Order:
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
        history=[(OrderStatus(status), datetime.fromisoformat(at)) for status, at in row.history],
        shipments=moves[0], refunds=moves[1])


async def _moves(conn: AsyncConnection, row: Any) -> tuple[list[Shipment], list[Refund]]:
    # a pending order has none: checkout's own reads of the order it is placing skip the two queries
    if not may_have_moves(OrderStatus(row.status)):
        return [], []
    return await moves_of(conn, row.id, row.currency)


_LINES = select(order_lines).where(order_lines.c.order_id == bindparam("order_id")).order_by(order_lines.c.position)
_BY_NUMBER = select(orders).where(orders.c.number == bindparam("number"))
_BY_NUMBER_LOCKED = _BY_NUMBER.with_for_update()
# statements built once: building and hashing a statement costs more CPU than the round trip itself;
# UPDATEs without .values() take their SET columns from the parameters they are given
_INSERT_ORDER = insert(orders)
_INSERT_LINES = insert(order_lines)
_UPDATE_ORDER = update(orders).where(orders.c.id == bindparam("b_id"))
_UPDATE_ORDER_IF = _UPDATE_ORDER.where(orders.c.status == bindparam("b_status"))
_ATTACH_ORDER = update(idempotency_keys).where(idempotency_keys.c.scope == bindparam("b_scope"),
                                               idempotency_keys.c.key == bindparam("b_key"))


async def _load(conn: AsyncConnection, number: str, *, lock: bool = False) -> tuple[int, Order] | None:
    row = (await conn.execute(_BY_NUMBER_LOCKED if lock else _BY_NUMBER, {"number": number})).first()
    if row is None:
        return None
    lines = (await conn.execute(_LINES, {"order_id": row.id})).all()
    return row.id, _order(row, lines, await _moves(conn, row))


def _payment_values(payment: Payment) -> dict[str, Any]:
    return {"payment_provider": payment.provider, "payment_status": payment.status.value,
            "payment_ref": payment.reference, "payment_action_url": payment.action_url,
            "decline_reason": (payment.decline_reason or "")[:100] or None,
            "payment_alert": (payment.alert or "")[:1000] or None}


def _history(order: Order) -> list[list[str]]:
    return [[status.value, at.isoformat()] for status, at in order.history]


def _address(address: Address) -> dict[str, str]:
    return {"name": address.name, "line1": address.line1, "line2": address.line2, "city": address.city,
            "postal_code": address.postal_code, "country": address.country, "region": address.region,
            "phone": address.phone}


async def insert_order_then_lines(conn: AsyncConnection, values: dict[str, Any],
                                  lines: list[dict[str, Any]]) -> int:
    """The order under a placeholder number, its number once its id is known, then its lines; its id."""
    order_id = await WRITES.inserted_id(conn, _INSERT_ORDER, values)
    await WRITES.execute(conn, _UPDATE_ORDER, {"b_id": order_id, "number": order_number(order_id)})
    await WRITES.many(conn, _INSERT_LINES, [{"order_id": order_id, **line} for line in lines])
    return order_id


class OrderRows:
    """OrderRepository inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def add(self, order: Order, *, access_key_hash: str) -> tuple[int, str]:
        values = {
            "number": "p" + secrets.token_hex(10),  # until the id is known; replaced in this transaction
            "status": order.status.value, "email": order.email,
            "customer_id": order.customer_id, "cart_id": order.cart_id, "currency": order.currency,
            **{name: to_minor(getattr(order.totals, name)) for name in _AMOUNTS},
            "tax_rate": str(order.totals.tax_rate), "prices_include_tax": order.totals.prices_include_tax,
            "shipping_address": _address(order.shipping_address), "shipping_method": order.shipping_method,
            "shipping_method_name": order.shipping_method_name, "discount_code": order.discount_code,
            "tracking": order.tracking, **_payment_values(order.payment),
            "reservation_expires_at": order.reservation_expires_at, "access_key_hash": access_key_hash,
            "history": _history(order), "created_at": order.created_at, "updated_at": utcnow(),
        }
        lines = [{"position": n, "sku": line.sku, "name": line.name[:420], "product_slug": line.product_slug,
                  "unit_price": to_minor(line.unit_price), "quantity": line.quantity,
                  "weight_grams": line.weight_grams} for n, line in enumerate(order.lines)]
        order_id = await self._dialect.insert_order(self._conn, values, lines)
        return order_id, order_number(order_id)

    async def lock(self, number: str) -> tuple[int, Order] | None:
        return await _load(self._conn, number, lock=True)

    async def update(self, order_id: int, order: Order, *, only_if: OrderStatus | None = None) -> bool:
        values = {"b_id": order_id, "status": order.status.value, "cart_id": order.cart_id,
                  "tracking": order.tracking, "reservation_expires_at": order.reservation_expires_at,
                  "history": _history(order), "updated_at": utcnow(), **_payment_values(order.payment)}
        if only_if is None:
            return await WRITES.execute(self._conn, _UPDATE_ORDER, values) == 1
        return await WRITES.execute(self._conn, _UPDATE_ORDER_IF, {**values, "b_status": only_if.value}) == 1

    async def set_payment(self, order_id: int, payment: Payment) -> None:
        await WRITES.execute(self._conn, _UPDATE_ORDER, {"b_id": order_id, "updated_at": utcnow(),
                                                         **_payment_values(payment)})

    async def attach_to_key(self, scope: str, key: str, *, number: str, access_key: str) -> None:
        await WRITES.execute(self._conn, _ATTACH_ORDER, {"b_scope": scope, "b_key": key, "order_number": number,
                                                         "order_access_key": access_key})


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
                found.append(_order(row, (await conn.execute(_LINES, {"order_id": row.id})).all(),
                                    await _moves(conn, row)))
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
