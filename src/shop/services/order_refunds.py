"""Refunds of a paid order by amount or by lines, any number of them up to what was paid, each once per key.

A refund is recorded pending under the order's row lock before the gateway is asked, so two staff refunding the
same order at once queue up on that lock and the second sees the first's amount held: the refunds never add up
to more than was captured. The gateway is asked outside any transaction, with a key of its own per refund, so a
retry (of the request, or after a crash between the gateway's yes and our record) refunds nothing more.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shop.domain.errors import InvalidValue, NotFound
from shop.domain.fulfilment import Refund, RefundRequest, RefundStatus
from shop.domain.orders import Order, OrderStatus, PaymentStatus, RefundRefused, can_move
from shop.services.clock import Clock, utc_now
from shop.services.email_delivery import queue_email
from shop.services.in_stock import InStockFlags
from shop.services.order_mail import OrderMail
from shop.services.order_stock import stock_changed
from shop.services.payment_gateway import GatewayUnavailable, PaymentConfigurationError, PaymentGateway
from shop.services.unit_of_work import CommerceUnit, MainUnitOfWork

log = logging.getLogger(__name__)

WHOLE = "whole"  # the key of the refund of a whole order (staff's "refund" move)


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    order: Order
    refund: Refund
    replayed: bool  # the key had been used: this is its first refund, answered again


def gateway_key(number: str, key: str) -> str:
    """The key the gateway sees: the whole order's refund keeps the key it always had (a cancellation and the
    worker's stray refund use it too, so the money goes back once between them)."""
    if key == WHOLE:
        return f"refund-{number}"
    return f"refund-{number}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


async def _locked(unit: CommerceUnit, number: str) -> tuple[int, Order]:
    found = await unit.orders.lock(number)
    if found is None:
        raise NotFound("order", number)
    return found


class OrderRefunds:
    def __init__(self, *, units: MainUnitOfWork, gateways: Mapping[str, PaymentGateway], mail: OrderMail,
                 clock: Clock = utc_now, flags: InStockFlags | None = None) -> None:
        self._units = units
        self._gateways = gateways
        self._mail = mail
        self._clock = clock
        self._flags = flags

    async def refund(self, number: str, request: RefundRequest, *, key: str, by: str | None = None) -> RefundOutcome:
        """Give back an amount or lines of a paid order through its gateway; the same key again answers with the
        first refund, and with a different request is refused."""
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise InvalidValue("Idempotency-Key", "1-255 characters")
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            earlier = order.refund_by_key(key)
            if earlier is not None and earlier.fingerprint != request.fingerprint():
                raise InvalidValue("Idempotency-Key", f"was already used for refund {earlier.number} of order "
                                                      f"{number}, with a different request")
            if earlier is not None and earlier.status is RefundStatus.SUCCEEDED:
                return RefundOutcome(order, earlier, replayed=True)
            pending = await self._hold(unit, order_id, order, earlier, request, key=key, by=by)
        resumed = earlier is not None and earlier.status is RefundStatus.PENDING
        return await self._ask_gateway(number, order, pending, replayed=resumed)

    async def refund_whole(self, number: str) -> Order:
        """Give back all the money left; every unit still on our shelf goes back on it."""
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            earlier = order.refund_by_key(WHOLE)
            if earlier is not None and earlier.status is RefundStatus.SUCCEEDED:
                return order
            # a whole refund still pending (a crash, or an answer lost) is finished as it was asked
            request = order.whole_refund() if earlier is None or earlier.status is RefundStatus.FAILED \
                else RefundRequest(amount=earlier.amount, lines=earlier.lines, reason=earlier.reason)
            key = WHOLE if earlier is None or earlier.status is RefundStatus.PENDING \
                else f"{WHOLE}-{len(order.refunds) + 1}"
            pending = await self._hold(unit, order_id, order, order.refund_by_key(key), request, key=key, by=None)
        return (await self._ask_gateway(number, order, pending, replayed=False)).order

    async def _hold(self, unit: CommerceUnit, order_id: int, order: Order, earlier: Refund | None,
                    request: RefundRequest, *, key: str, by: str | None) -> Refund:
        """Record the refund pending (or a failed one of this key pending again), checked against what is left."""
        if earlier is not None and earlier.status is RefundStatus.PENDING:
            return earlier  # asked before, its answer never recorded: ask again under the same gateway key
        if earlier is not None:  # failed before: it held nothing, so it is checked again like a new one
            again = order.plan_refund(request, key=key, by=by, at=self._clock())
            pending = replace(again, number=earlier.number)
            order.settle(pending)
            await unit.refunds.settle(order_id, pending)
            return pending
        pending = order.plan_refund(request, key=key, by=by, at=self._clock())
        order.refunds.append(pending)
        await unit.refunds.add(order_id, pending)
        return pending

    async def _ask_gateway(self, number: str, order: Order, pending: Refund, *, replayed: bool) -> RefundOutcome:
        gateway = self._gateways.get(order.payment.provider)
        if gateway is None or order.payment.reference is None:
            await self._failed(number, pending, "no payment to refund at the gateway")
            raise RefundRefused(number, "has no payment the gateway knows of")
        try:
            result = await gateway.refund(order.payment.reference, pending.amount,
                                          idempotency_key=gateway_key(number, pending.key))
        except (GatewayUnavailable, PaymentConfigurationError) as exc:
            await self._failed(number, pending, f"{type(exc).__name__}: {exc}")
            raise
        except ValueError as exc:  # the gateway refused this payment's refund
            await self._failed(number, pending, str(exc))
            raise RefundRefused(number, f"could not be refunded: {str(exc)[:200]}") from None
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            current = order.refund_by_key(pending.key)
            if current is None or current.status is RefundStatus.SUCCEEDED:
                return RefundOutcome(order, current or pending, replayed=True)  # a retry of the key got here first
            done = replace(current, status=RefundStatus.SUCCEEDED, gateway_ref=result.refund_ref, failure=None)
            await self._settled(unit, order_id, order, done)
        return RefundOutcome(order, done, replayed=replayed)

    async def _settled(self, unit: CommerceUnit, order_id: int, order: Order, done: Refund) -> None:
        """The gateway gave the money back: the units chosen go back on the shelf, the payment (and, once all of
        it is back, the order) says so, and the customer is told."""
        order.settle(done)
        await unit.refunds.settle(order_id, done)
        restock: dict[str, int] = {}
        for line in done.lines:
            if line.restock:
                sku = order.lines[line.line - 1].sku
                restock[sku] = restock.get(sku, 0) + line.restock
        if restock:
            await unit.stock.restock(sorted(restock.items()))
            await stock_changed(unit, restock, self._flags)
        if order.status is OrderStatus.PARTLY_SHIPPED and not any(order.left_to_ship()):
            order.move_to(OrderStatus.SHIPPED, at=self._clock())  # the units still owed were refunded instead
        if order.refunded >= order.captured:
            order.payment = replace(order.payment, status=PaymentStatus.REFUNDED)
            if can_move(order.status, OrderStatus.REFUNDED):
                order.move_to(OrderStatus.REFUNDED, at=self._clock())
        elif order.payment.status is not PaymentStatus.REFUNDED:
            order.payment = replace(order.payment, status=PaymentStatus.PARTLY_REFUNDED)
        await unit.orders.update(order_id, order)
        await queue_email(unit.outbox, self._mail.render("order-refunded", order, refund=done))

    async def _failed(self, number: str, pending: Refund, why: str) -> None:
        """The gateway did not refund: the refund holds nothing any more (a retry of its key tries again)."""
        log.warning("refund %s of order %s failed: %s", pending.number, number, why[:200])
        async with self._units.begin() as unit:
            order_id, order = await _locked(unit, number)
            current = order.refund_by_key(pending.key)
            if current is not None and current.status is RefundStatus.PENDING:
                await unit.refunds.settle(order_id, replace(current, status=RefundStatus.FAILED, failure=why[:300]))
