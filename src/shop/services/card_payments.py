"""What a storefront's payment form needs from the configured gateway: which card element to show, and — for the
buyer of an order whose payment waits for them (3-D Secure) — what their browser must do next.

The card itself never reaches the shop: the card element (Stripe's Payment Element, or the test gateway's test-card
field) turns it into a token in the browser, and the shop charges that token for the total it computed itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shop.domain.orders import Order, OrderStatus, PaymentStatus
from shop.domain.payments import ChargeResult, ChargeStatus
from shop.services.order_payments import OrderPayments
from shop.services.orders import OrderService
from shop.services.payment_gateway import GatewayUnavailable, PaymentGateway

_FINAL = (ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED, ChargeStatus.CANCELED)


@runtime_checkable
class BrowserConfirmed(Protocol):
    """A gateway whose customer authenticates through the gateway's own script in the shop's page (Stripe.js)."""

    async def client_secret(self, payment_ref: str) -> str | None:
        """What the script needs to run the challenge; None when the payment waits for nothing."""
        ...


@dataclass(frozen=True, slots=True)
class CardForm:
    """The card element a payment form loads: `test` (the shop's own test-card field) or `stripe`."""

    gateway: str
    publishable_key: str | None = None  # Stripe's pk_…, meant for browsers


@dataclass(frozen=True, slots=True)
class NextAction:
    """Where an order's payment stands for its buyer, and what their browser must do, if anything."""

    order: Order
    redirect_url: str | None = None  # a page where the customer confirms (the test gateway's bank page)
    client_secret: str | None = None  # for Stripe.js `handleNextAction`; given to the order's buyer only


class CardPayments:
    def __init__(self, *, form: CardForm, gateway: PaymentGateway, orders: OrderService,
                 payments: OrderPayments) -> None:
        self.form = form
        self._gateway = gateway
        self._orders = orders
        self._payments = payments

    async def next_action(self, number: str, *, customer_id: str | None, access_key: str | None) -> NextAction:
        """The order's payment as the gateway sees it now, and the customer's next step (404 for anyone but the
        buyer). A payment the customer finished while no webhook has come yet is settled here."""
        order = await self._orders.order_for(number, customer_id=customer_id, access_key=access_key)
        order = await self._settle(order)
        if order.status is not OrderStatus.PENDING or order.payment.status is not PaymentStatus.REQUIRES_ACTION:
            return NextAction(order)
        if order.payment.action_url:
            return NextAction(order, redirect_url=order.payment.action_url)
        if isinstance(self._gateway, BrowserConfirmed) and order.payment.reference:
            try:
                secret = await self._gateway.client_secret(order.payment.reference)
            except GatewayUnavailable:
                return NextAction(order)  # the page asks again; the webhook finishes it meanwhile
            return NextAction(order, client_secret=secret)
        return NextAction(order)

    async def _settle(self, order: Order) -> Order:
        ref = order.payment.reference
        if (order.status is not OrderStatus.PENDING or ref is None
                or order.payment.provider != self._gateway.name
                or order.payment.status not in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)):
            return order
        try:
            status = await self._gateway.status(ref)
        except (GatewayUnavailable, ValueError):
            return order
        if status not in _FINAL:
            return order
        # the gateway created this payment for this order's total (the browser never names an amount)
        return await self._payments.record_charge(order.number, ChargeResult(status, ref))
