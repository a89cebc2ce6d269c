"""Carts in the main store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.cart import Cart, CartLine, CartStatus
from shop.domain.errors import NotFound
from shop.infrastructure.db.driver_sql import WRITES
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import cart_lines, carts

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect


def _cart(row: Any, lines: list[CartLine]) -> Cart:
    return Cart(id=row.id, customer_id=row.customer_id, created_at=row.created_at, updated_at=row.updated_at,
                lines=lines, discount_code=row.discount_code, status=CartStatus(row.status))


_CART_LOCKED = select(carts).where(carts.c.id == bindparam("cart_id")).with_for_update()
_LINES = select(cart_lines).where(cart_lines.c.cart_id == bindparam("cart_id")).order_by(cart_lines.c.position)
# the cart and its lines in one round trip (a cart without lines is one row whose line columns are NULL)
_JOINED = (select(carts, cart_lines.c.id.label("line_id"), cart_lines.c.sku, cart_lines.c.quantity)
           .select_from(carts.outerjoin(cart_lines, cart_lines.c.cart_id == carts.c.id))
           .where(carts.c.id == bindparam("cart_id")).order_by(cart_lines.c.position))
# FOR UPDATE OF: only the cart's row of the join is locked (PostgreSQL; MariaDB has no OF and would lock the
# lines too, so there the cart is locked alone and its lines read after: `lock_cart_then_lines`)
_JOINED_LOCKING_CART = _JOINED.with_for_update(of=carts)
_SET_STATUS = update(carts).where(carts.c.id == bindparam("b_id"))


async def load_cart(conn: AsyncConnection, cart_id: str, *, locking: bool = False) -> Cart | None:
    """The cart with its lines, in one round trip; `locking`: its row locked (a database with FOR UPDATE OF)."""
    rows = (await conn.execute(_JOINED_LOCKING_CART if locking else _JOINED, {"cart_id": cart_id})).all()
    if not rows:
        return None
    return _cart(rows[0], [CartLine(row.line_id, row.sku, row.quantity) for row in rows if row.line_id is not None])


async def lock_cart_then_lines(conn: AsyncConnection, cart_id: str) -> Cart | None:
    """The cart's row locked alone, then its lines read."""
    key = {"cart_id": cart_id}
    row = (await conn.execute(_CART_LOCKED, key)).first()
    if row is None:
        return None
    return _cart(row, [CartLine(line.id, line.sku, line.quantity) for line in await conn.execute(_LINES, key)])


_INSERT_CART = insert(carts)
_INSERT_LINES = insert(cart_lines)
_UPDATE_CART = update(carts).where(carts.c.id == bindparam("b_id"))
_STORED_LINES = select(cart_lines.c.id, cart_lines.c.sku, cart_lines.c.quantity, cart_lines.c.position).where(
    cart_lines.c.cart_id == bindparam("cart_id"))
_UPDATE_LINE = update(cart_lines).where(cart_lines.c.cart_id == bindparam("b_cart_id"),
                                        cart_lines.c.id == bindparam("b_id"))
_DELETE_LINES = delete(cart_lines).where(cart_lines.c.cart_id == bindparam("b_cart_id"),
                                         cart_lines.c.id.in_(bindparam("b_ids", expanding=True)))


def _cart_values(cart: Cart) -> dict[str, Any]:
    return {"customer_id": cart.customer_id, "status": cart.status.value, "discount_code": cart.discount_code,
            "updated_at": cart.updated_at}


def _line_rows(cart: Cart, lines: Sequence[CartLine], *, after: int) -> list[dict[str, Any]]:
    return [{"cart_id": cart.id, "id": line.id, "sku": line.sku, "quantity": line.quantity, "position": after + n}
            for n, line in enumerate(lines, start=1)]


async def insert_cart(conn: AsyncConnection, cart: Cart) -> None:
    """A new cart, inserted without looking for it first: on MariaDB a search for a row that is not there (an
    UPDATE matching nothing) may lock the gap where it would go, and two carts made at once would deadlock."""
    await conn.execute(_INSERT_CART, {"id": cart.id, "created_at": cart.created_at, **_cart_values(cart)})
    if cart.lines:
        await conn.execute(_INSERT_LINES, _line_rows(cart, cart.lines, after=-1))


async def store_cart(conn: AsyncConnection, cart: Cart) -> None:
    """A stored cart as it is now: its row, then only the lines that changed, each by its key (no statement
    searches a range of lines, so none locks more than the rows it changes)."""
    if await WRITES.execute(conn, _UPDATE_CART, {"b_id": cart.id, **_cart_values(cart)}) != 1:
        raise NotFound("cart", cart.id)
    # the cart's row is locked now: no other save of this cart changes its lines until this one commits
    stored = {row.id: row for row in await conn.execute(_STORED_LINES, {"cart_id": cart.id})}
    kept = {line.id for line in cart.lines}
    gone = [line_id for line_id in stored if line_id not in kept]
    if gone:
        await conn.execute(_DELETE_LINES, {"b_cart_id": cart.id, "b_ids": gone})
    changed = [{"b_cart_id": cart.id, "b_id": line.id, "sku": line.sku, "quantity": line.quantity}
               for line in cart.lines
               if line.id in stored and (stored[line.id].sku, stored[line.id].quantity) != (line.sku, line.quantity)]
    if changed:
        await conn.execute(_UPDATE_LINE, changed)
    # lines are only ever added at the end of a cart, so the new ones go after the last stored position
    new = [line for line in cart.lines if line.id not in stored]
    if new:
        await conn.execute(_INSERT_LINES, _line_rows(cart, new, after=max(
            (row.position for row in stored.values()), default=-1)))


async def store_carts(conn: AsyncConnection, carts_now: Sequence[Cart]) -> None:
    # in the order of their ids, so two saves of the same carts lock their rows in the same order
    for cart in sorted(carts_now, key=lambda cart: cart.id):
        await store_cart(conn, cart)


class CartRows:
    """LockedCarts inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def lock(self, cart_id: str) -> Cart | None:
        return await self._dialect.lock_cart(self._conn, cart_id)

    async def set_status(self, cart: Cart) -> None:
        await WRITES.execute(self._conn, _SET_STATUS, {"b_id": cart.id, "status": cart.status.value,
                                                       "updated_at": cart.updated_at})


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

    async def add(self, cart: Cart) -> None:
        await self._store.transaction(lambda conn: insert_cart(conn, cart))

    async def save(self, *carts_now: Cart) -> None:
        await self._store.transaction(lambda conn: store_carts(conn, carts_now))
