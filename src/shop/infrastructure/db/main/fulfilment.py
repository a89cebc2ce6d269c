"""An order's shipments and refunds in the main store: written inside a unit of work under the order's row lock,
read with the order. Not on checkout's path, so through SQLAlchemy as usual (not driver_sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.fulfilment import Refund, RefundLine, RefundStatus, Shipment, ShipmentLine
from shop.infrastructure.db.main.tables import order_refunds, order_shipments
from shop.infrastructure.db.money_columns import from_minor, to_minor

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect

_SHIPMENTS = select(order_shipments).where(order_shipments.c.order_id == bindparam("order_id")) \
    .order_by(order_shipments.c.number)
_REFUNDS = select(order_refunds).where(order_refunds.c.order_id == bindparam("order_id")) \
    .order_by(order_refunds.c.number)
_INSERT_SHIPMENT = insert(order_shipments)
_INSERT_REFUND = insert(order_refunds)
_SETTLE_REFUND = update(order_refunds).where(order_refunds.c.order_id == bindparam("b_order"),
                                             order_refunds.c.number == bindparam("b_number"))


def _shipment(row: Any) -> Shipment:
    return Shipment(number=row.number, lines=tuple(ShipmentLine(int(line), int(units)) for line, units in row.lines),
                    carrier=row.carrier, tracking=row.tracking, shipped_at=row.shipped_at)


def _refund(row: Any, currency: str) -> Refund:
    return Refund(number=row.number, key=row.idempotency_key, fingerprint=row.fingerprint,
                  amount=from_minor(row.amount, currency),
                  lines=tuple(RefundLine(int(line), int(units), int(back)) for line, units, back in row.lines),
                  reason=row.reason, status=RefundStatus(row.status), created_at=row.created_at, by=row.staff_id,
                  gateway_ref=row.gateway_ref, failure=row.failure)


async def moves_of(conn: AsyncConnection, order_id: int, currency: str) -> tuple[list[Shipment], list[Refund]]:
    """The order's shipments and refunds, oldest first."""
    shipments = [_shipment(row) for row in await conn.execute(_SHIPMENTS, {"order_id": order_id})]
    refunds = [_refund(row, currency) for row in await conn.execute(_REFUNDS, {"order_id": order_id})]
    return shipments, refunds


class ShipmentRows:
    """ShipmentRepository inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def add(self, order_id: int, shipment: Shipment) -> None:
        await self._conn.execute(_INSERT_SHIPMENT, {
            "order_id": order_id, "number": shipment.number,
            "lines": [[line.line, line.quantity] for line in shipment.lines],
            "carrier": shipment.carrier, "tracking": shipment.tracking, "shipped_at": shipment.shipped_at})


class RefundRows:
    """RefundRepository inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def add(self, order_id: int, refund: Refund) -> None:
        await self._conn.execute(_INSERT_REFUND, {
            "order_id": order_id, "number": refund.number, "idempotency_key": refund.key,
            "fingerprint": refund.fingerprint, "amount": to_minor(refund.amount),
            "lines": [[line.line, line.quantity, line.restock] for line in refund.lines],
            "reason": refund.reason, "status": refund.status.value, "gateway_ref": refund.gateway_ref,
            "failure": refund.failure, "staff_id": refund.by, "created_at": refund.created_at})

    async def settle(self, order_id: int, refund: Refund) -> None:
        await self._conn.execute(_SETTLE_REFUND, {
            "b_order": order_id, "b_number": refund.number, "status": refund.status.value,
            "amount": to_minor(refund.amount), "gateway_ref": refund.gateway_ref, "failure": refund.failure})
