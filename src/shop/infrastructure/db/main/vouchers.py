"""Vouchers in the main store: the codes staff keep, and the uses a unit of work counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.discounts import Voucher, VoucherKind, VoucherNotApplicable
from shop.domain.errors import Conflict
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import voucher_redemptions, vouchers
from shop.infrastructure.db.money_columns import from_minor, to_minor
from shop.infrastructure.db.types import utcnow

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect


def voucher_of(row: Any) -> Voucher:
    return Voucher(code=row.code, kind=VoucherKind(row.kind), value=Decimal(row.value), currency=row.currency,
                   min_order=from_minor(row.min_order, row.currency) if row.min_order is not None else None,
                   starts_at=row.starts_at, ends_at=row.ends_at, usage_limit=row.usage_limit,
                   per_customer_limit=row.per_customer_limit, times_used=row.times_used, active=bool(row.active))


_VOUCHER = select(vouchers).where(vouchers.c.code == bindparam("code"))


async def load_voucher(conn: AsyncConnection, code: str) -> Voucher | None:
    row = (await conn.execute(_VOUCHER, {"code": code})).first()
    return voucher_of(row) if row is not None else None


class VoucherRows:
    """VoucherCounter inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def get(self, code: str) -> Voucher | None:
        return await load_voucher(self._conn, code)

    async def redeem(self, voucher: Voucher, *, customer_key: str, order_id: int) -> None:
        c = vouchers.c
        counted = await self._conn.execute(
            update(vouchers).where(c.code == voucher.code, c.active.is_(True),
                                   (c.usage_limit.is_(None)) | (c.times_used < c.usage_limit))
            .values(times_used=c.times_used + 1))
        if counted.rowcount != 1:
            raise VoucherNotApplicable(voucher.code, "has been used up")
        slot = -order_id  # without a per-customer limit every order has a slot of its own
        if voucher.per_customer_limit is not None:
            r = voucher_redemptions.c
            used = (await self._conn.execute(select(func.count()).select_from(voucher_redemptions).where(
                r.voucher_code == voucher.code, r.customer_key == customer_key, r.slot > 0))).scalar_one()
            if used >= voucher.per_customer_limit:
                raise VoucherNotApplicable(voucher.code, "has already been used as often as one customer may")
            slot = used + 1
        # two orders of one customer racing for the same slot: the key lets exactly one of them have it
        taken = await self._conn.execute(self._dialect.insert_ignoring(voucher_redemptions).values(
            voucher_code=voucher.code, customer_key=customer_key, slot=slot, order_id=order_id, created_at=utcnow()))
        if taken.rowcount != 1:
            raise VoucherNotApplicable(voucher.code, "has already been used as often as one customer may")

    async def give_back(self, order_id: int) -> None:
        r = voucher_redemptions.c
        codes = (await self._conn.execute(select(r.voucher_code).where(r.order_id == order_id))).scalars().all()
        for code in codes:
            await self._conn.execute(update(vouchers).where(vouchers.c.code == code, vouchers.c.times_used > 0)
                                     .values(times_used=vouchers.c.times_used - 1))
        if codes:
            await self._conn.execute(delete(voucher_redemptions).where(r.order_id == order_id))


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
            await self._store.transaction(lambda conn: conn.execute(insert(vouchers).values(**row)))
        except IntegrityError:
            raise Conflict(f"a voucher with the code {voucher.code} exists") from None

    async def deactivate(self, code: str) -> bool:
        changed = await self._store.transaction(
            lambda conn: conn.execute(update(vouchers).where(vouchers.c.code == code).values(active=False)))
        return bool(changed.rowcount == 1)
