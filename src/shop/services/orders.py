"""Order use cases after checkout: who may see an order, what staff do with it, what gateways tell us, and the
release of stock held by orders whose payment never came."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from shop.domain.catalog import Page
from shop.domain.errors import NotFound
from shop.domain.orders import (
    GOODS_IN_HAND,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    can_move,
    check_transition,
)
from shop.domain.payments import ChargeResult, ChargeStatus, EventKind, payment_mismatch
from shop.services.checkout import CheckoutService, hash_access_key, quantities, stock_changed
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import OrderReader
from shop.services.email_delivery import queue_email
from shop.services.in_stock import InStockFlags
from shop.services.payment_gateway import PaymentGateway, SimulatedGateway
from shop.services.unit_of_work import CommerceUnit, MainUnitOfWork

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    applied: bool  # False: a replay, or an event that changes nothing
    order: str | None = None


class OrderService:
    def __init__(self, *, reader: OrderReader, units: MainUnitOfWork, checkout: CheckoutService,
                 gateways: Mapping[str, PaymentGateway], clock: Clock = utc_now,
                 flags: InStockFlags | None = None) -> None:
        self._reader = reader
        self._flags = flags
        self._units = units
        self._checkout = checkout
        self._gateways = gateways
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
            if stored and hmac.compare_digest(stored, hash_access_key(access_key)):
                return order
        raise NotFound("order", number)

    # --- staff -----------------------------------------------------------------------------------------------

    async def _move(self, number: str, wanted: OrderStatus, *, tracking: str | None = None,
                    email: str | None = None) -> Order:
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            order.move_to(wanted, at=self._clock())
            if tracking is not None:
                order.tracking = tracking
            await unit.orders.update(order_id, order)
            if email is not None:
                await queue_email(unit.outbox, self._checkout.order_email(email, order))
            return order

    async def fulfil(self, number: str) -> Order:
        """Picked and packed."""
        return await self._move(number, OrderStatus.FULFILLED)

    async def ship(self, number: str, *, tracking: str | None = None) -> Order:
        """Handed to the carrier; the customer is told, with the tracking number."""
        return await self._move(number, OrderStatus.SHIPPED, tracking=tracking, email="order-shipped")

    async def deliver(self, number: str) -> Order:
        return await self._move(number, OrderStatus.DELIVERED)

    async def cancel(self, number: str) -> Order:
        """Cancel an order not yet packed: a pending one lets its stock go, a paid one is refunded and restocked."""
        current = await self._current(number)
        check_transition(number, current.status, OrderStatus.CANCELED)
        if current.status is OrderStatus.PAID:
            await self._refund_money(current)
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            if order.status is OrderStatus.PENDING:
                await self._checkout.cancel_unpaid(unit, order_id, order,
                                                   replace(order.payment, status=PaymentStatus.CANCELED))
            else:
                check_transition(number, order.status, OrderStatus.CANCELED)
                await unit.stock.restock(quantities(order.lines))
                await stock_changed(unit, (line.sku for line in order.lines), self._flags)
                order.payment = replace(order.payment, status=PaymentStatus.REFUNDED)
                order.move_to(OrderStatus.CANCELED, at=self._clock())
                await unit.orders.update(order_id, order)
            return order

    async def refund(self, number: str) -> Order:
        """Give the whole payment back; goods not yet shipped go back on the shelf."""
        current = await self._current(number)
        check_transition(number, current.status, OrderStatus.REFUNDED)
        await self._refund_money(current)
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            if order.status is OrderStatus.REFUNDED:
                return order  # refunded meanwhile by the gateway's own event, which restocked too
            await self._mark_refunded(unit, order_id, order, order.payment)
            return order

    async def _mark_refunded(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment) -> None:
        """The money went back: goods not yet handed to the carrier go back on the shelf."""
        if order.status in GOODS_IN_HAND:
            await unit.stock.restock(quantities(order.lines))
            await stock_changed(unit, (line.sku for line in order.lines), self._flags)
        order.payment = replace(payment, status=PaymentStatus.REFUNDED)
        order.move_to(OrderStatus.REFUNDED, at=self._clock())
        await unit.orders.update(order_id, order)

    async def _current(self, number: str) -> Order:
        order = await self._reader.order(number)
        if order is None:
            raise NotFound("order", number)
        return order

    async def _refund_money(self, order: Order) -> None:
        # the key makes a retried refund (a crash after the gateway said yes) refund nothing more
        if order.payment.reference is None:
            raise NotFound("payment of order", order.number)
        await self._gateways[order.payment.provider].refund(order.payment.reference, order.totals.total,
                                                            idempotency_key=f"refund-{order.number}")

    # --- what gateways tell us -------------------------------------------------------------------------------

    async def apply_webhook(self, provider: str, body: bytes, headers: Mapping[str, str]) -> WebhookOutcome:
        """Verify and apply one gateway event, exactly once however often it is delivered."""
        gateway = self._gateways.get(provider)
        if gateway is None:
            raise NotFound("payment provider", provider)
        event = gateway.parse_webhook(body, headers, now=self._clock())
        if event.kind is EventKind.OTHER:
            return WebhookOutcome(applied=False)
        number = await self._reader.number_for_payment(provider, event.payment_ref) or event.reference
        if number is None:
            log.warning("%s event %s names no order we know", provider, event.id)
            return WebhookOutcome(applied=False)
        captured = declined = False
        async with self._units.begin() as unit:
            if not await unit.payments.first_time(provider, event.id, now=self._clock()):
                return WebhookOutcome(applied=False, order=number)
            found = await unit.orders.lock(number)
            if found is None:
                return WebhookOutcome(applied=False, order=number)
            order_id, order = found
            mismatch = payment_mismatch(event, order.totals.total) \
                if event.kind is EventKind.PAYMENT_SUCCEEDED else None
            payment = replace(order.payment, reference=order.payment.reference or event.payment_ref)
            if mismatch is not None:
                # money, but not the order's: it pays nothing (the stock stays held, as for any unpaid order, and
                # goes back when the reservation runs out), nothing is refunded by itself, and staff are told.
                # The event's payment is not made the order's: the expiry asks the gateway only about that one
                order.payment = order.payment.mismatched(mismatch)
                await unit.orders.set_payment(order_id, order.payment)
                log.warning("%s %s; order %s is not paid by it and is flagged for staff", provider, mismatch, number)
            elif event.kind is EventKind.PAYMENT_SUCCEEDED and order.status is OrderStatus.PENDING:
                await self._checkout.mark_paid(unit, order_id, order, replace(payment, status=PaymentStatus.CAPTURED))
                captured = True
            elif event.kind is EventKind.PAYMENT_SUCCEEDED and order.status is OrderStatus.CANCELED:
                # money arrived for an order already given up: it goes back (the worker refunds it)
                if not await self._checkout.refund_if_canceled(unit, order_id, order,
                                                               replace(payment, status=PaymentStatus.CAPTURED),
                                                               provider=provider, payment_ref=event.payment_ref):
                    return WebhookOutcome(applied=False, order=number)  # refunded already
            elif event.kind is EventKind.PAYMENT_FAILED and order.status is OrderStatus.PENDING:
                await self._checkout.cancel_unpaid(unit, order_id, order, replace(payment, status=PaymentStatus.FAILED),
                                                   reopen_cart=True)
                declined = True
            elif event.kind is EventKind.REFUNDED and can_move(order.status, OrderStatus.REFUNDED) \
                    and (event.amount is None or (event.amount.currency == order.currency
                                                  and event.amount >= order.totals.total)):
                # the whole payment went back (a partial refund is the gateway's business; the order stands)
                await self._mark_refunded(unit, order_id, order, payment)
            else:
                return WebhookOutcome(applied=False, order=number)
        if captured:
            self._checkout.events.payment_captured(order)
        elif declined:
            self._checkout.events.payment_declined(order)
        return WebhookOutcome(applied=True, order=number)

    async def authenticate_test_payment(self, payment_ref: str) -> WebhookOutcome:
        """The test gateway's stand-in for 3-D Secure: the customer "authenticates" and the bank's signed
        event arrives through the same path a real webhook takes."""
        gateway = self._gateways.get("test")
        number = await self._reader.number_for_payment("test", payment_ref) if gateway is not None else None
        order = await self._reader.order(number) if number is not None else None
        if gateway is None or order is None or not isinstance(gateway, SimulatedGateway):
            raise NotFound("test payment", payment_ref)
        body = gateway.event_body(event_id=f"evt_auth_{payment_ref}", kind=EventKind.PAYMENT_SUCCEEDED,
                                  payment_ref=payment_ref, reference=order.number, amount=order.totals.total)
        return await self.apply_webhook("test", body, gateway.signed_headers(body, now=self._clock()))

    async def expire_reservations(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Settle pending orders whose reservation ran out: paid after all → paid; otherwise their stock goes
        back. Run by `shop worker`. Returns how many were settled."""
        settled = 0
        for number in await self._reader.overdue(now=now or self._clock(), limit=limit):
            order = await self._reader.order(number)
            if order is None or order.status is not OrderStatus.PENDING:
                continue
            try:
                status = await self._gateway_status(order)
            except Exception:
                log.warning("could not ask %s about the payment of order %s; trying again later",
                            order.payment.provider, order.number)
                continue
            if status in (ChargeStatus.PROCESSING,):
                continue  # the bank has not decided yet: the stock stays held
            if status is ChargeStatus.SUCCEEDED:
                await self._checkout.record_charge(number, ChargeResult(ChargeStatus.SUCCEEDED,
                                                                        order.payment.reference))
            else:
                async with self._units.begin() as unit:
                    found = await unit.orders.lock(number)
                    if found is None or found[1].status is not OrderStatus.PENDING:
                        continue
                    order_id, locked = found
                    await self._checkout.cancel_unpaid(unit, order_id, locked,
                                                       replace(locked.payment, status=PaymentStatus.CANCELED))
            settled += 1
        return settled

    async def _gateway_status(self, order: Order) -> ChargeStatus | None:
        gateway = self._gateways.get(order.payment.provider)
        if gateway is None or order.payment.reference is None:
            return None
        return await gateway.status(order.payment.reference)

    async def refund_stray_payment(self, payload: Mapping[str, str]) -> None:
        """Outbox job "refund": money captured for an order that had been canceled goes back."""
        number = payload["order"]
        order = await self._reader.order(number)
        if order is None or order.payment.status is PaymentStatus.REFUNDED:
            return
        await self._gateways[payload["provider"]].refund(payload["payment_ref"], order.totals.total,
                                                         idempotency_key=f"refund-{number}")
        async with self._units.begin() as unit:
            found = await unit.orders.lock(number)
            if found is not None:
                order_id, locked = found
                await unit.orders.set_payment(order_id, replace(locked.payment, status=PaymentStatus.REFUNDED))


async def _locked(unit: CommerceUnit, number: str) -> tuple[int, Order]:
    """The order and its id, locked for the rest of the unit's transaction; NotFound if there is none."""
    found = await unit.orders.lock(number)
    if found is None:
        raise NotFound("order", number)
    return found
