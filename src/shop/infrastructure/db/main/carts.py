"""Carts and vouchers in the main store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.cart import Cart, CartLine, CartStatus
from shop.domain.discounts import Voucher, VoucherKind
from shop.domain.errors import Conflict
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import cart_lines, carts, vouchers
from shop.infrastructure.db.money_columns import from_minor, to_minor


def _cart(row: Any, lines: list[CartLine]) -> Cart:
    return Cart(id=row.id, customer_id=row.customer_id, created_at=row.created_at, updated_at=row.updated_at,
                lines=lines, discount_code=row.discount_code, status=CartStatus(row.status))


_CART = select(carts).where(carts.c.id == bindparam("cart_id"))
_CART_LOCKED = _CART.with_for_update()
_LINES = select(cart_lines).where(cart_lines.c.cart_id == bindparam("cart_id")).order_by(cart_lines.c.position)
# the cart and its lines in one round trip (a cart without lines is one row whose line columns are NULL)
_JOINED = (select(carts, cart_lines.c.id.label("line_id"), cart_lines.c.sku, cart_lines.c.quantity)
           .select_from(carts.outerjoin(cart_lines, cart_lines.c.cart_id == carts.c.id))
           .where(carts.c.id == bindparam("cart_id")).order_by(cart_lines.c.position))
# PostgreSQL locks only the cart's row of the join; MariaDB would also lock index gaps around the lines
# (REPEATABLE READ), so there the cart is locked alone and its lines read after
_JOINED_LOCKED_PG = _JOINED.with_for_update(of=carts)
_SET_STATUS = update(carts).where(carts.c.id == bindparam("b_id"))


async def load_cart(conn: AsyncConnection, cart_id: str, *, lock: bool = False) -> Cart | None:
    key = {"cart_id": cart_id}
    if lock and conn.dialect.name != "postgresql":
        row = (await conn.execute(_CART_LOCKED, key)).first()
        if row is None:
            return None
        return _cart(row, [CartLine(line.id, line.sku, line.quantity) for line in await conn.execute(_LINES, key)])
    rows = (await conn.execute(_JOINED_LOCKED_PG if lock else _JOINED, key)).all()
    if not rows:
        return None
    return _cart(rows[0], [CartLine(row.line_id, row.sku, row.quantity) for row in rows if row.line_id is not None])


async def store_cart(conn: AsyncConnection, cart: Cart) -> None:
    values = {"customer_id": cart.customer_id, "status": cart.status.value, "discount_code": cart.discount_code,
              "updated_at": cart.updated_at}
    changed = await conn.execute(update(carts).where(carts.c.id == cart.id).values(**values))
    if changed.rowcount == 0:
        await conn.execute(insert(carts).values(id=cart.id, created_at=cart.created_at, **values))
    await conn.execute(delete(cart_lines).where(cart_lines.c.cart_id == cart.id))
    if cart.lines:
        await conn.execute(insert(cart_lines), [
            {"cart_id": cart.id, "id": line.id, "sku": line.sku, "quantity": line.quantity, "position": n}
            for n, line in enumerate(cart.lines)])


class CartRows:
    """CartRepository on a connection inside someone else's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def set_status(self, cart: Cart) -> None:
        """Store only a changed status (ordered, open again): the lines are as they were."""
        await WRITES.execute(self._conn, _SET_STATUS, {"b_id": cart.id, "status": cart.status.value,
                                                       "updated_at": cart.updated_at})

    async def get(self, cart_id: str) -> Cart | None:
        return await load_cart(self._conn, cart_id)

    async def open_cart_of(self, customer_id: str) -> Cart | None:
        return await _open_cart_of(self._conn, customer_id)

    async def save(self, cart: Cart) -> None:
        await store_cart(self._conn, cart)


async def _open_cart_of(conn: AsyncConnection, customer_id: str) -> Cart | None:
    cart_id = (await conn.execute(
        select(carts.c.id).where(carts.c.customer_id == customer_id, carts.c.status == CartStatus.OPEN.value)
        .order_by(carts.c.updated_at.desc()).limit(1))).scalar()
    return await load_cart(conn, cart_id) if cart_id is not None else None


class SqlCarts:
    """CartRepository over the main store, each call its own transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, cart_id: str) -> Cart | None:
        async with self._store.read() as conn:
            return await load_cart(conn, cart_id)

    async def open_cart_of(self, customer_id: str) -> Cart | None:
        async with self._store.read() as conn:
            return await _open_cart_of(conn, customer_id)

    async def save(self, cart: Cart) -> None:
        async with self._store.write() as conn:
            await store_cart(conn, cart)


def voucher_of(row: Any) -> Voucher:
    return Voucher(code=row.code, kind=VoucherKind(row.kind), value=Decimal(row.value), currency=row.currency,
                   min_order=from_minor(row.min_order, row.currency) if row.min_order is not None else None,
                   starts_at=row.starts_at, ends_at=row.ends_at, usage_limit=row.usage_limit,
                   per_customer_limit=row.per_customer_limit, times_used=row.times_used, active=bool(row.active))


_VOUCHER = select(vouchers).where(vouchers.c.code == bindparam("code"))


async def load_voucher(conn: AsyncConnection, code: str) -> Voucher | None:
    row = (await conn.execute(_VOUCHER, {"code": code})).first()
    return voucher_of(row) if row is not None else None


class SqlVouchers:
    """VoucherRepository over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, code: str) -> Voucher | None:
        async with self._store.read() as conn:
            return await load_voucher(conn, code)

    async def all(self) -> Sequence[Voucher]:
        async with self._store.read() as conn:
            rows = (await conn.execute(select(vouchers).order_by(vouchers.c.created_at, vouchers.c.code))).all()
        return [voucher_of(row) for row in rows]

    async def add(self, voucher: Voucher, *, now: datetime) -> None:
        row = {"code": voucher.code, "kind": voucher.kind.value, "value": str(voucher.value),
               "currency": voucher.currency,
               "min_order": to_minor(voucher.min_order) if voucher.min_order is not None else None,
               "starts_at": voucher.starts_at, "ends_at": voucher.ends_at, "usage_limit": voucher.usage_limit,
               "per_customer_limit": voucher.per_customer_limit, "times_used": 0, "active": voucher.active,
               "created_at": now}
        try:
            async with self._store.write() as conn:
                await conn.execute(insert(vouchers).values(**row))
        except IntegrityError:
            raise Conflict(f"a voucher with the code {voucher.code} exists") from None

    async def deactivate(self, code: str) -> bool:
        async with self._store.write() as conn:
            changed = await conn.execute(update(vouchers).where(vouchers.c.code == code).values(active=False))
        return bool(changed.rowcount == 1)
