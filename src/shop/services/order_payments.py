"""The money side of an order's life: paid, declined, canceled, refunded — whoever learned it (checkout's charge,
a gateway's webhook, staff, or the expiry of a reservation whose payment never came).

Every such move of an order goes through here, so stock, vouchers, the cart, the confirmation and the in-stock
flags follow it the same way whichever channel it came by.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from shop.domain.errors import NotFound
from shop.domain.fulfilment import RefundRequest
from shop.domain.orders import (
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    can_move,
    check_transition,
)
from shop.domain.payments import ChargeResult, ChargeStatus, EventKind, GatewayEvent, payment_mismatch
from shop.services.clock import Clock, utc_now
from shop.services.commerce_events import CommerceEvents, NoEvents
from shop.services.commerce_ports import OrderReader
from shop.services.email_delivery import queue_email
from shop.services.in_stock import InStockFlags
from shop.services.order_mail import OrderMail
from shop.services.order_refunds import OrderRefunds, RefundOutcome
from shop.services.order_stock import STOCK_CHANGED, quantities, stock_changed
from shop.services.payment_gateway import PaymentGateway, SimulatedGateway
from shop.services.unit_of_work import CommerceUnit, MainUnitOfWork

log = logging.getLogger(__name__)

__all__ = ["STOCK_CHANGED", "STRAY_REFUND", "OrderPayments", "WebhookOutcome", "quantities", "stock_changed"]

STRAY_REFUND = "refund"  # outbox job: money captured for an order already canceled goes back
Moved = Literal["captured", "declined", "refunded", "refunding", "flagged"]  # what a gateway's event did


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    applied: bool  # False: a replay, or an event that changes nothing
    order: str | None = None


def _charged(payment: Payment, result: ChargeResult, status: PaymentStatus) -> Payment:
    """The order's payment as the gateway's answer leaves it."""
    return replace(payment, status=status, reference=result.payment_ref or payment.reference,
                   action_url=result.action_url, decline_reason=result.decline_reason)


async def _locked(unit: CommerceUnit, number: str) -> tuple[int, Order]:
    """The order and its id, locked for the rest of the unit's transaction; NotFound if there is none."""
    found = await unit.orders.lock(number)
    if found is None:
        raise NotFound("order", number)
    return found


class OrderPayments:
    def __init__(self, *, units: MainUnitOfWork, reader: OrderReader, gateways: Mapping[str, PaymentGateway],
                 mail: OrderMail, clock: Clock = utc_now, events: CommerceEvents | None = None,
                 flags: InStockFlags | None = None) -> None:
        self._units = units
        self._reader = reader
        self._gateways = gateways
        self._mail = mail
        self._clock = clock
        self.events: CommerceEvents = events if events is not None else NoEvents()
        self._flags = flags
        self._refunds = OrderRefunds(units=units, gateways=gateways, mail=mail, clock=clock, flags=flags)

    # --- what the gateway answered a charge ------------------------------------------------------------------

    async def record_charge(self, number: str, result: ChargeResult, *,
                            placed: tuple[int, Order] | None = None) -> Order:
        """Apply what the gateway said about an order's payment. `placed`: the order (and id) as this process
        just stored it: a successful charge then pays it without reading it back, by an update conditional on
        its status still being pending; if something moved it on meanwhile, the order is read under lock as
        usual."""
        if placed is not None and result.status is ChargeStatus.SUCCEEDED:
            order_id, order = placed
            async with self._units.begin() as unit:
                paid = await self._mark_paid(unit, order_id, order,
                                             _charged(order.payment, result, PaymentStatus.CAPTURED), if_pending=True)
            if paid:
                self.events.payment_captured(order)
                return order
        captured = declined = False
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            if order.status is not OrderStatus.PENDING:  # a webhook, staff or the expiry got here first
                if result.status is ChargeStatus.SUCCEEDED and result.payment_ref:
                    await self._refund_if_canceled(unit, order_id, order,
                                                   _charged(order.payment, result, PaymentStatus.CAPTURED),
                                                   provider=order.payment.provider, payment_ref=result.payment_ref)
                return order
            if result.status is ChargeStatus.SUCCEEDED:
                await self._mark_paid(unit, order_id, order, _charged(order.payment, result, PaymentStatus.CAPTURED))
                captured = True
            elif result.status in (ChargeStatus.DECLINED, ChargeStatus.CANCELED):
                await self._cancel_unpaid(unit, order_id, order,
                                          _charged(order.payment, result, PaymentStatus.FAILED), reopen_cart=True)
                declined = True
            else:
                status = PaymentStatus.REQUIRES_ACTION if result.status is ChargeStatus.REQUIRES_ACTION \
                    else PaymentStatus.PENDING
                order.payment = _charged(order.payment, result, status)
                await unit.orders.set_payment(order_id, order.payment)
        if captured:
            self.events.payment_captured(order)
        elif declined:
            self.events.payment_declined(order)
        return order

    # --- what a gateway tells us on its own ------------------------------------------------------------------

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
        async with self._units.begin() as unit:
            if not await unit.payments.first_time(provider, event.id, now=self._clock()):
                return WebhookOutcome(applied=False, order=number)
            found = await unit.orders.lock(number)
            if found is None:
                return WebhookOutcome(applied=False, order=number)
            moved = await self._apply_event(unit, *found, provider=provider, event=event)
        if moved == "captured":
            self.events.payment_captured(found[1])
        elif moved == "declined":
            self.events.payment_declined(found[1])
        return WebhookOutcome(applied=moved is not None, order=number)

    async def _apply_event(self, unit: CommerceUnit, order_id: int, order: Order, *, provider: str,
                           event: GatewayEvent) -> Moved | None:
        """Move the order as the event says; how, or None if the event changes nothing."""
        number = order.number
        mismatch = payment_mismatch(event, order.totals.total) if event.kind is EventKind.PAYMENT_SUCCEEDED else None
        payment = replace(order.payment, reference=order.payment.reference or event.payment_ref)
        if mismatch is not None:
            # money, but not the order's: it pays nothing (the stock stays held, as for any unpaid order, and
            # goes back when the reservation runs out), nothing is refunded by itself, and staff are told.
            # The event's payment is not made the order's: the expiry asks the gateway only about that one
            order.payment = order.payment.mismatched(mismatch)
            await unit.orders.set_payment(order_id, order.payment)
            log.warning("%s %s; order %s is not paid by it and is flagged for staff", provider, mismatch, number)
            return "flagged"
        if event.kind is EventKind.PAYMENT_SUCCEEDED and order.status is OrderStatus.PENDING:
            await self._mark_paid(unit, order_id, order, replace(payment, status=PaymentStatus.CAPTURED))
            return "captured"
        if event.kind is EventKind.PAYMENT_SUCCEEDED and order.status is OrderStatus.CANCELED:
            # money arrived for an order already given up: it goes back (the worker refunds it); None if it had
            if await self._refund_if_canceled(unit, order_id, order, replace(payment, status=PaymentStatus.CAPTURED),
                                              provider=provider, payment_ref=event.payment_ref):
                return "refunding"
            return None
        if event.kind is EventKind.PAYMENT_FAILED and order.status is OrderStatus.PENDING:
            await self._cancel_unpaid(unit, order_id, order, replace(payment, status=PaymentStatus.FAILED),
                                      reopen_cart=True)
            return "declined"
        if event.kind is EventKind.REFUNDED and can_move(order.status, OrderStatus.REFUNDED) \
                and (event.amount is None or (event.amount.currency == order.currency
                                              and event.amount >= order.totals.total)):
            # the whole payment went back (a partial refund is the gateway's business; the order stands)
            await self._mark_refunded(unit, order_id, order, payment)
            return "refunded"
        return None

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

    # --- staff -----------------------------------------------------------------------------------------------

    async def cancel(self, number: str) -> Order:
        """Cancel an order not yet packed: a pending one lets its stock go, a paid one is refunded and restocked."""
        current = await self._current(number)
        check_transition(number, current.status, OrderStatus.CANCELED)
        if current.status is OrderStatus.PAID:
            await self._refund_money(current)
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            if order.status is OrderStatus.PENDING:
                await self._cancel_unpaid(unit, order_id, order, replace(order.payment, status=PaymentStatus.CANCELED))
            else:
                check_transition(number, order.status, OrderStatus.CANCELED)
                back = order.in_hand()  # a partial refund may have restocked some already
                if back:
                    await unit.stock.restock(back)
                    await stock_changed(unit, (sku for sku, _ in back), self._flags)
                order.payment = replace(order.payment, status=PaymentStatus.REFUNDED)
                order.move_to(OrderStatus.CANCELED, at=self._clock())
                await unit.orders.update(order_id, order)
            return order

    async def refund(self, number: str) -> Order:
        """Give all the money left back; goods not yet shipped go back on the shelf."""
        current = await self._current(number)
        check_transition(number, current.status, OrderStatus.REFUNDED)
        return await self._refunds.refund_whole(number)

    async def refund_part(self, number: str, request: RefundRequest, *, key: str,
                          by: str | None = None) -> RefundOutcome:
        """Give back an amount or lines of a paid order, once per key; restocking the units chosen."""
        return await self._refunds.refund(number, request, key=key, by=by)

    async def _current(self, number: str) -> Order:
        order = await self._reader.order(number)
        if order is None:
            raise NotFound("order", number)
        return order

    async def _refund_money(self, order: Order) -> None:
        # the key makes a retried refund (a crash after the gateway said yes) refund nothing more
        if order.payment.reference is None:
            raise NotFound("payment of order", order.number)
        if order.refundable.amount > 0:  # what partial refunds left
            await self._gateways[order.payment.provider].refund(order.payment.reference, order.refundable,
                                                                idempotency_key=f"refund-{order.number}")

    # --- the worker ------------------------------------------------------------------------------------------

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
                await self.record_charge(number, ChargeResult(ChargeStatus.SUCCEEDED, order.payment.reference))
            else:
                async with self._units.begin() as unit:
                    found = await unit.orders.lock(number)
                    if found is None or found[1].status is not OrderStatus.PENDING:
                        continue
                    order_id, locked = found
                    await self._cancel_unpaid(unit, order_id, locked,
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

    # --- the transitions, inside the caller's unit -----------------------------------------------------------

    async def _mark_paid(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment, *,
                         if_pending: bool = False) -> bool:
        """A pending order's money is captured: its reserved stock is sold and the confirmation goes out.

        With `if_pending` the order was not read under lock: it is paid only if the store still has it pending
        (checked by the update itself); if not, False with nothing changed, and `order` is stale. The mail is
        rendered before any row is touched and the stock comes last, so the stock rows are held briefly."""
        order.payment = payment
        order.reservation_expires_at = None
        order.move_to(OrderStatus.PAID, at=self._clock())
        confirmation = self._mail.render("order-confirmation", order)
        if not await unit.orders.update(order_id, order, only_if=OrderStatus.PENDING if if_pending else None):
            return False
        await queue_email(unit.outbox, confirmation)
        await unit.stock.take(quantities(order.lines))
        return True

    async def _refund_if_canceled(self, unit: CommerceUnit, order_id: int, order: Order, captured: Payment, *,
                                  provider: str, payment_ref: str) -> bool:
        """Money was captured for this order (`captured`): if it had been canceled (and not refunded), record
        the capture and have the worker give the money back. False, with nothing changed, for any other order."""
        if order.status is not OrderStatus.CANCELED or order.payment.status is PaymentStatus.REFUNDED:
            return False
        order.payment = captured
        await unit.orders.set_payment(order_id, order.payment)
        await unit.outbox.add(STRAY_REFUND, {"order": order.number, "provider": provider, "payment_ref": payment_ref})
        return True

    async def _cancel_unpaid(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment, *,
                             reopen_cart: bool = False) -> None:
        """A pending order will not be paid: its voucher and stock go back (in that order, as checkout
        takes them: voucher rows before stock rows)."""
        await unit.vouchers.give_back(order_id)
        await unit.stock.release(quantities(order.lines))
        await stock_changed(unit, (line.sku for line in order.lines), self._flags)
        order.payment = payment
        order.reservation_expires_at = None
        order.move_to(OrderStatus.CANCELED, at=self._clock())
        if reopen_cart and order.cart_id is not None:
            cart = await unit.carts.lock(order.cart_id)
            if cart is not None:
                cart.reopen()
                cart.updated_at = self._clock()
                await unit.carts.set_status(cart)
            order.cart_id = None  # the cart may become another order
        await unit.orders.update(order_id, order)

    async def _mark_refunded(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment) -> None:
        """The money went back: goods not yet handed to the carrier (nor restocked by a partial refund) go back on
        the shelf."""
        back = order.in_hand()
        if back:
            await unit.stock.restock(back)
            await stock_changed(unit, (sku for sku, _ in back), self._flags)
        order.payment = replace(payment, status=PaymentStatus.REFUNDED)
        order.move_to(OrderStatus.REFUNDED, at=self._clock())
        await unit.orders.update(order_id, order)
