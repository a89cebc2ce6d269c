"""The order desk: who may see an order, and the moves of an order's goods (packed, shipped in one parcel or
several, delivered). What happens to its money (paid, declined, canceled, refunded in full or in part) is
`OrderPayments`'; staff reach it through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shop.domain.catalog import Page
from shop.domain.errors import Conflict, NotFound
from shop.domain.fulfilment import RefundRequest, Shipment
from shop.domain.orders import Order, OrderStatus, access_key_matches, check_transition
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import OrderReader
from shop.services.email_delivery import queue_email
from shop.services.order_mail import OrderMail
from shop.services.order_payments import OrderPayments
from shop.services.order_refunds import RefundOutcome
from shop.services.unit_of_work import MainUnitOfWork


class OrderService:
    def __init__(self, *, reader: OrderReader, units: MainUnitOfWork, payments: OrderPayments, mail: OrderMail,
                 clock: Clock = utc_now) -> None:
        self._reader = reader
        self._units = units
        self._payments = payments
        self._mail = mail
        self._clock = clock

    # --- reading ---------------------------------------------------------------------------------------------

    async def orders_of(self, customer_id: str, *, page: int = 1, limit: int = 20) -> Page[Order]:
        """The customer's orders, newest first."""
        return await self._reader.orders_of(customer_id, page=page, limit=limit)

    async def order_for(self, number: str, *, customer_id: str | None = None, staff: bool = False,
                        access_key: str | None = None) -> Order:
        """An order its customer, staff, or a guest holding its access key may see; 404 for everyone else."""
        order = await self._reader.order(number) if len(number) <= 24 else None
        if order is None:
            raise NotFound("order", number)
        if staff or (customer_id is not None and order.customer_id == customer_id):
            return order
        if access_key:
            stored = await self._reader.access_key_hash(number)
            if stored and access_key_matches(stored, access_key):
                return order
        raise NotFound("order", number)

    # --- staff -----------------------------------------------------------------------------------------------

    async def _move(self, number: str, wanted: OrderStatus, *, tracking: str | None = None,
                    email: str | None = None) -> Order:
        async with self._units.begin() as unit:
            found = await unit.orders.lock(number)
            if found is None:
                raise NotFound("order", number)
            order_id, order = found
            order.move_to(wanted, at=self._clock())
            if tracking is not None:
                order.tracking = tracking
            await unit.orders.update(order_id, order)
            if email is not None:
                await queue_email(unit.outbox, self._mail.render(email, order))
            return order

    async def fulfil(self, number: str) -> Order:
        """Picked and packed."""
        return await self._move(number, OrderStatus.FULFILLED)

    async def ship(self, number: str, *, tracking: str | None = None, carrier: str = "") -> Order:
        """Everything still owed handed to the carrier in one parcel; the customer is told, with the tracking
        number."""
        return (await self._ship(number, None, carrier=carrier, tracking=tracking)).order

    async def ship_lines(self, number: str, lines: Sequence[tuple[int, int]], *, carrier: str = "",
                         tracking: str | None = None) -> ShipmentOutcome:
        """A parcel of some lines (line number, units) handed to the carrier; the customer is told."""
        return await self._ship(number, lines, carrier=carrier, tracking=tracking)

    async def _ship(self, number: str, lines: Sequence[tuple[int, int]] | None, *, carrier: str,
                    tracking: str | None) -> ShipmentOutcome:
        # the stock of these units was taken when the order was paid: a parcel records which of them left
        async with self._units.begin() as unit:
            found = await unit.orders.lock(number)
            if found is None:
                raise NotFound("order", number)
            order_id, order = found
            if lines is None:
                check_transition(number, order.status, OrderStatus.SHIPPED)
                lines = order.everything_left()
                if not lines:
                    raise Conflict(f"order {number} has nothing left to ship")
            shipment, after = order.plan_shipment(lines, carrier=carrier, tracking=tracking or "", at=self._clock())
            await unit.shipments.add(order_id, shipment)
            order.shipments.append(shipment)
            if after is not order.status:
                order.move_to(after, at=self._clock())
            if shipment.tracking:
                order.tracking = shipment.tracking
            await unit.orders.update(order_id, order)
            await queue_email(unit.outbox, self._mail.render("order-shipped", order, shipment=shipment))
            return ShipmentOutcome(order, shipment)

    async def deliver(self, number: str) -> Order:
        return await self._move(number, OrderStatus.DELIVERED)

    async def cancel(self, number: str) -> Order:
        """Cancel an order not yet packed: a pending one lets its stock go, a paid one is refunded and restocked."""
        return await self._payments.cancel(number)

    async def refund(self, number: str) -> Order:
        """Give all the money left back; goods not yet shipped go back on the shelf."""
        return await self._payments.refund(number)

    async def refund_part(self, number: str, request: RefundRequest, *, key: str,
                          by: str | None = None) -> RefundOutcome:
        """Give back an amount or lines of a paid order, once per key; restocking the units chosen."""
        return await self._payments.refund_part(number, request, key=key, by=by)


@dataclass(frozen=True, slots=True)
class ShipmentOutcome:
    order: Order
    shipment: Shipment
