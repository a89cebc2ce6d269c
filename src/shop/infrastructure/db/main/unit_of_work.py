"""The main store's unit of work: one transaction, and the repositories that write inside it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.carts import CartRows
from shop.infrastructure.db.main.dialects import MainDialect
from shop.infrastructure.db.main.fulfilment import RefundRows, ShipmentRows
from shop.infrastructure.db.main.orders import OrderRows
from shop.infrastructure.db.main.outbox import OutboxTransaction
from shop.infrastructure.db.main.payments import PaymentEventRows
from shop.infrastructure.db.main.stock import StockRows
from shop.infrastructure.db.main.vouchers import VoucherRows
from shop.infrastructure.db.types import utcnow
from shop.services.unit_of_work import OfferSource

log = logging.getLogger(__name__)

# the catalogue's offers read on a connection of the unit (where the catalogue shares the main database)
OffersOn = Callable[[AsyncConnection], OfferSource]


class SqlCommerceUnit:
    """CommerceUnit on one open main-store transaction."""

    __slots__ = ("carts", "catalog", "committed", "conn", "orders", "outbox", "payments", "refunds", "shipments",
                 "stock", "vouchers")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect, catalog: OfferSource) -> None:
        self.conn = conn
        self.carts = CartRows(conn, dialect)
        self.orders = OrderRows(conn, dialect)
        self.shipments = ShipmentRows(conn, dialect)
        self.refunds = RefundRows(conn, dialect)
        self.stock = StockRows(conn, dialect)
        self.vouchers = VoucherRows(conn, dialect)
        self.payments = PaymentEventRows(conn, dialect)
        self.outbox = OutboxTransaction(conn, utcnow)
        self.catalog = catalog
        self.committed: list[Callable[[], Awaitable[object]]] = []

    def after_commit(self, action: Callable[[], Awaitable[object]]) -> None:
        self.committed.append(action)


class SqlMainUnitOfWork:
    """MainUnitOfWork: each `begin()` is one main-store transaction, committed unless the block raises.

    `offers`: the catalogue's offers, read on their own connection; `offers_on`, where the catalogue lives in
    the main database, reads them on the unit's connection instead, so a unit never holds two connections of
    one pool at once (and never waits for a second while holding the first)."""

    def __init__(self, store: Store, *, dialect: MainDialect, offers: OfferSource,
                 offers_on: OffersOn | None = None) -> None:
        self._store = store
        self._dialect = dialect
        self._offers = offers
        self._offers_on = offers_on

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlCommerceUnit]:
        async with self._store.write() as conn:
            unit = SqlCommerceUnit(conn, self._dialect,
                                   self._offers if self._offers_on is None else self._offers_on(conn))
            yield unit
        for action in unit.committed:  # only reached once the block ended without an error and committed
            try:
                await action()
            except Exception as exc:  # the worker's outbox job does it later
                log.warning("after-commit work failed (%s: %s); the worker will do it", type(exc).__name__, exc)
