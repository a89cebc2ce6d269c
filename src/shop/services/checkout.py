"""Checkout: price the cart, reserve its stock and create the order in one transaction, then take the payment.

The order exists before any money moves, so "paid but no order" cannot happen: a payment always has an order
to land on, and an order whose payment outcome was missed is reconciled with the gateway before its stock is
released (see `OrderPayments.expire_reservations`). What the gateway answers moves the order through
`OrderPayments`, as a webhook or staff would.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from shop.domain.cart import CartClosed, CartStatus
from shop.domain.discounts import Voucher, VoucherNotApplicable, normalize_code
from shop.domain.errors import Conflict, DomainError, InvalidValue, NotFound
from shop.domain.money import Money
from shop.domain.orders import Order, OrderLine, OrderStatus, Payment, PaymentStatus, hash_access_key
from shop.domain.payments import ChargeRequest, check_token
from shop.domain.pricing import Address, PricedLine, ShippingMethod, TaxTable, Totals, price_order
from shop.domain.users import normalize_email
from shop.services.cart import priced_lines
from shop.services.clock import Clock, utc_now
from shop.services.commerce_events import CommerceEvents, NoEvents
from shop.services.idempotency import Ticket
from shop.services.in_stock import InStockFlags
from shop.services.order_payments import OrderPayments, quantities, stock_changed
from shop.services.payment_gateway import GatewayUnavailable, PaymentGateway
from shop.services.unit_of_work import CommerceUnit, MainUnitOfWork


class PaymentDeclined(DomainError):
    """The card was refused; the order is canceled and the cart open again for another try."""

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(f"the payment for order {number} was declined ({reason}); try another card")
        self.number = number
        self.reason = reason


class ItemsUnavailable(Conflict):
    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__(f"no longer for sale: {', '.join(skus)}; remove them from the cart")
        self.skus = list(skus)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    cart_id: str
    email: str
    address: Address
    shipping_method: str
    payment_token: str
    customer_id: str | None = None
    discount_code: str | None = None  # overrides the cart's code when given
    idempotency: Ticket | None = None  # the key the request runs under: the order is tied to it


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    access_key: str  # lets a guest see this order; shown once


def customer_key(customer_id: str | None, email_key: str) -> str:
    """Whom a per-customer voucher limit counts: the account, or the e-mail address of a guest."""
    return f"user:{customer_id}" if customer_id else f"email:{email_key}"


class Pricing:
    """Shipping methods and tax rules of the shop, and the totals they give a set of lines."""

    def __init__(self, *, methods: Sequence[ShippingMethod], taxes: TaxTable, currency: str) -> None:
        self.methods = {m.code: m for m in methods}
        self.taxes = taxes
        self.currency = currency

    def methods_for(self, country: str | None) -> list[ShippingMethod]:
        return [m for m in self.methods.values() if country is None or m.ships_to(country)]

    def method(self, code: str, address: Address) -> ShippingMethod:
        method = self.methods.get(code)
        if method is None:
            raise InvalidValue("shipping_method", f"unknown shipping method {code!r}; see /api/v1/shipping-methods")
        if not method.ships_to(address.country):
            raise InvalidValue("shipping_method", f"{method.name} does not ship to {address.country}")
        return method

    def totals(self, lines: Sequence[PricedLine], *, discount: Money, method: ShippingMethod,
               address: Address) -> Totals:
        goods = sum((line.total for line in lines), Money.zero(self.currency))
        weight = sum(line.weight_grams * line.quantity for line in lines)
        shipping = method.cost(goods - discount, weight)
        return price_order(lines, currency=self.currency, discount=discount, shipping=shipping,
                           tax_rate=self.taxes.rate_for(address), prices_include_tax=self.taxes.prices_include_tax)


class CheckoutService:
    """Places orders; what happens to their money afterwards is `payments`'."""

    def __init__(self, *, units: MainUnitOfWork, gateway: PaymentGateway, pricing: Pricing, payments: OrderPayments,
                 reservation: timedelta = timedelta(minutes=15), clock: Clock = utc_now,
                 events: CommerceEvents | None = None, flags: InStockFlags | None = None) -> None:
        self._units = units
        self._flags = flags
        self.events: CommerceEvents = events if events is not None else NoEvents()
        self._gateway = gateway
        self.pricing = pricing
        self.payments = payments
        self._reservation = reservation
        self._clock = clock

    async def _voucher(self, unit: CommerceUnit, code: str | None, goods: Money) -> tuple[Voucher | None, Money]:
        if code is None:
            return None, Money.zero(goods.currency)
        normalized = normalize_code(code, field="discount_code")
        voucher = await unit.vouchers.get(normalized)
        if voucher is None:
            raise VoucherNotApplicable(normalized, "does not exist")
        voucher.check(goods, now=self._clock())
        return voucher, voucher.amount_off(goods)

    async def place_order(self, request: CheckoutRequest) -> PlacedOrder:
        """Place an order for the cart and pay for it; raises PaymentDeclined if the card is refused.

        The cart is locked first and priced as locked, all on the transaction's one connection (the catalogue
        too, where it shares the main database): no second connection is held while the first waits, and what
        is charged is exactly what was reserved."""
        token = check_token(request.payment_token)
        email, email_key = normalize_email(request.email)
        access_key = secrets.token_urlsafe(18)
        async with self._units.begin() as unit:
            cart = await unit.carts.lock(request.cart_id)
            if cart is None or (cart.customer_id is not None and cart.customer_id != request.customer_id):
                raise NotFound("cart", request.cart_id)
            if cart.empty:
                raise InvalidValue("cart_id", "the cart is empty")
            offers = await unit.catalog.offers([line.sku for line in cart.lines])
            lines, gone = priced_lines(cart, offers)
            if gone:
                raise ItemsUnavailable([cart.line(line_id).sku for line_id in gone])
            method = self.pricing.method(request.shipping_method, request.address)
            goods = sum((line.total for line in lines), Money.zero(self.pricing.currency))
            voucher, discount = await self._voucher(unit, request.discount_code or cart.discount_code, goods)
            if cart.status is not CartStatus.OPEN:
                raise CartClosed(cart.id, cart.status)
            totals = self.pricing.totals(lines, discount=discount, method=method, address=request.address)
            now = self._clock()
            order = Order(
                number="", status=OrderStatus.PENDING, email=email, customer_id=request.customer_id,
                lines=[OrderLine(sku=line.sku, name=line.name, product_slug=line.product_slug,
                                 unit_price=line.unit_price, quantity=line.quantity, weight_grams=line.weight_grams)
                       for line in lines],
                shipping_address=request.address, shipping_method=method.code, shipping_method_name=method.name,
                totals=totals, payment=Payment(provider=self._gateway.name, status=PaymentStatus.PENDING,
                                               amount=totals.total),
                created_at=now, discount_code=voucher.code if voucher else None, cart_id=cart.id,
                reservation_expires_at=now + self._reservation, history=[(OrderStatus.PENDING, now)])
            cart.close()
            order_id, number = await unit.orders.add(order, access_key_hash=hash_access_key(access_key))
            order.number = number
            if request.idempotency is not None:
                await unit.orders.attach_to_key(request.idempotency.scope, request.idempotency.key, number=number,
                                        access_key=access_key)
            if voucher is not None:
                await unit.vouchers.redeem(voucher, customer_key=customer_key(request.customer_id, email_key),
                                  order_id=order_id)
            cart.updated_at = now
            await unit.carts.set_status(cart)
            # stock last: its rows are the ones every checkout wants, so they are held only for the reservation
            # and the commit. Orders, vouchers and stock are locked in that order everywhere (a declined
            # order's cart is reopened after its stock, but a checkout never waits for stock while holding a
            # cart that is not open), so these transactions cannot wait on each other in a circle.
            sold_out = await unit.stock.reserve(quantities(order.lines))
            if sold_out:  # the in-stock flags change only when the last unit is held
                await stock_changed(unit, sold_out, self._flags)

        try:
            result = await self._gateway.charge(ChargeRequest(reference=order.number, amount=totals.total,
                                                              token=token, idempotency_key=f"order-{order.number}",
                                                              email=email))
        except GatewayUnavailable:
            # the outcome is unknown: the order stays pending and is reconciled when its reservation runs out
            self.events.order_placed(order)
            return PlacedOrder(order=order, access_key=access_key)
        placed = await self.payments.record_charge(order.number, result, placed=(order_id, order))
        self.events.order_placed(placed)
        if placed.status is OrderStatus.CANCELED:
            raise PaymentDeclined(order.number, result.decline_reason or "declined")
        return PlacedOrder(order=placed, access_key=access_key)

    async def resume(self, request: CheckoutRequest, *, number: str, access_key: str) -> PlacedOrder:
        """Finish the order an earlier try of this same request placed, whose answer was lost: a charge whose
        outcome never reached the order is asked for again under the same gateway key (so never taken twice)."""
        token = check_token(request.payment_token)
        async with self._units.begin() as unit:
            found = await unit.orders.lock(number)
        if found is None:
            raise NotFound("order", number)
        order = found[1]
        if order.status is OrderStatus.PENDING and order.payment.status is PaymentStatus.PENDING:
            result = await self._gateway.charge(ChargeRequest(
                reference=number, amount=order.totals.total, token=token, idempotency_key=f"order-{number}",
                email=order.email))
            order = await self.payments.record_charge(number, result)
        if order.status is OrderStatus.CANCELED:
            if order.payment.status is PaymentStatus.FAILED:
                raise PaymentDeclined(number, order.payment.decline_reason or "declined")
            raise Conflict(f"order {number} was canceled before it was paid")
        return PlacedOrder(order=order, access_key=access_key)
