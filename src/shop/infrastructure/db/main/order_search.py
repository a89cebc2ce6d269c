"""Every order for staff, filtered, from the main store: only the columns a list shows, never the lines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from shop.domain.catalog import Page
from shop.domain.orders import OrderStatus, PaymentStatus
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import orders
from shop.infrastructure.db.money_columns import from_minor
from shop.services.order_desk import OrderFilter, OrderSummary

_COLUMNS = (orders.c.number, orders.c.status, orders.c.email, orders.c.customer_id, orders.c.total,
            orders.c.currency, orders.c.payment_status, orders.c.created_at)


class SqlOrderSearch:
    """OrderSearch over the main store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def find(self, wanted: OrderFilter) -> Page[OrderSummary]:
        where: list[ColumnElement[Any]] = []
        if wanted.status is not None:
            where.append(orders.c.status == wanted.status.value)
        if wanted.number:
            where.append(orders.c.number.contains(wanted.number, autoescape=True))
        if wanted.email:
            # addresses keep the case they were typed in; PostgreSQL's LIKE would not ignore it
            where.append(func.lower(orders.c.email).contains(wanted.email.lower(), autoescape=True))
        async with self._store.read() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(orders).where(*where)) or 0)
            rows = await conn.execute(select(*_COLUMNS).where(*where).order_by(orders.c.id.desc())
                                      .limit(wanted.limit).offset((wanted.page - 1) * wanted.limit))
            items = [OrderSummary(number=r.number, status=OrderStatus(r.status), email=r.email,
                                  customer_id=r.customer_id, total=from_minor(r.total, r.currency),
                                  payment_status=PaymentStatus(r.payment_status), created_at=r.created_at)
                     for r in rows]
        return Page(items=items, total=total, page=wanted.page, limit=wanted.limit)
