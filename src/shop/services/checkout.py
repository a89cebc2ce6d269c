"""Checkout: price the cart, reserve its stock and create the order in one transaction, then take the payment.

The order exists before any money moves, so "paid but no order" cannot happen: a payment always has an order
to land on, and an order whose payment outcome was missed is reconciled with the gateway before its stock is
released (see `OrderService.expire_reservations`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from shop.domain.cart import CartClosed, CartStatus
from shop.domain.discounts import Voucher, VoucherNotApplicable, normalize_code
from shop.domain.errors import Conflict, DomainError, InvalidValue, NotFound
from shop.domain.messages import Email
from shop.domain.money import Money
from shop.domain.orders import Order, OrderLine, OrderStatus, Payment, PaymentStatus
from shop.domain.payments import ChargeRequest, ChargeResult, ChargeStatus, check_token
from shop.domain.pricing import Address, PricedLine, ShippingMethod, TaxTable, Totals, price_order
from shop.domain.users import normalize_email
from shop.services.cart import priced_lines
from shop.services.clock import Clock, utc_now
from shop.services.commerce_events import CommerceEvents, NoEvents
from shop.services.email_delivery import MailTemplates, queue_email
from shop.services.idempotency import Ticket
from shop.services.in_stock import InStockFlags
from shop.services.payment_gateway import GatewayUnavailable, PaymentGateway
from shop.services.unit_of_work import CommerceUnit, MainUnitOfWork

STOCK_CHANGED = "stock"
STRAY_REFUND = "refund"  # outbox job: money captured for an order already canceled goes back


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


def hash_access_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def customer_key(customer_id: str | None, email_key: str) -> str:
    """Whom a per-customer voucher limit counts: the account, or the e-mail address of a guest."""
    return f"user:{customer_id}" if customer_id else f"email:{email_key}"


def quantities(lines: Sequence[OrderLine] | Sequence[PricedLine]) -> list[tuple[str, int]]:
    """Units per SKU in SKU order: every transaction locks stock rows in the same order, so none deadlock."""
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return sorted(units.items())


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
    def __init__(self, *, units: MainUnitOfWork, gateway: PaymentGateway, pricing: Pricing, templates: MailTemplates,
                 public_url: str, reservation: timedelta = timedelta(minutes=15), clock: Clock = utc_now,
                 events: CommerceEvents | None = None, flags: InStockFlags | None = None) -> None:
        self._units = units
        self._flags = flags
        self.events: CommerceEvents = events if events is not None else NoEvents()
        self._gateway = gateway
        self.pricing = pricing
        self._templates = templates
        self._public_url = public_url.rstrip("/")
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
        placed = await self.record_charge(order.number, result, placed=(order_id, order))
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
            order = await self.record_charge(number, result)
        if order.status is OrderStatus.CANCELED:
            if order.payment.status is PaymentStatus.FAILED:
                raise PaymentDeclined(number, order.payment.decline_reason or "declined")
            raise Conflict(f"order {number} was canceled before it was paid")
        return PlacedOrder(order=order, access_key=access_key)

    async def record_charge(self, number: str, result: ChargeResult, *,
                            placed: tuple[int, Order] | None = None) -> Order:
        """Apply what the gateway said about an order's payment. `placed`: the order (and id) as this process
        just stored it: a successful charge then pays it without reading it back, by an update conditional on
        its status still being pending; if something moved it on meanwhile, the order is read under lock as
        usual."""
        if placed is not None and result.status is ChargeStatus.SUCCEEDED:
            order_id, order = placed
            async with self._units.begin() as unit:
                paid = await self.mark_paid(unit, order_id, order,
                                            _charged(order.payment, result, PaymentStatus.CAPTURED), if_pending=True)
            if paid:
                self.events.payment_captured(order)
                return order
        captured = declined = False
        async with self._units.begin() as unit:
            found = await unit.orders.lock(number)
            if found is None:
                raise NotFound("order", number)
            order_id, order = found
            if order.status is not OrderStatus.PENDING:  # a webhook, staff or the expiry got here first
                if result.status is ChargeStatus.SUCCEEDED and result.payment_ref:
                    await self.refund_if_canceled(unit, order_id, order,
                                                  _charged(order.payment, result, PaymentStatus.CAPTURED),
                                                  provider=self._gateway.name, payment_ref=result.payment_ref)
                return order
            if result.status is ChargeStatus.SUCCEEDED:
                await self.mark_paid(unit, order_id, order, _charged(order.payment, result, PaymentStatus.CAPTURED))
                captured = True
            elif result.status in (ChargeStatus.DECLINED, ChargeStatus.CANCELED):
                await self.cancel_unpaid(unit, order_id, order, _charged(order.payment, result, PaymentStatus.FAILED),
                                         reopen_cart=True)
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

    async def mark_paid(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment, *,
                        if_pending: bool = False) -> bool:
        """A pending order's money is captured: its reserved stock is sold and the confirmation goes out.

        With `if_pending` the order was not read under lock: it is paid only if the store still has it pending
        (checked by the update itself); if not, False with nothing changed, and `order` is stale. The mail is
        rendered before any row is touched and the stock comes last, so the stock rows are held briefly."""
        order.payment = payment
        order.reservation_expires_at = None
        order.move_to(OrderStatus.PAID, at=self._clock())
        confirmation = self.order_email("order-confirmation", order)
        if not await unit.orders.update(order_id, order, only_if=OrderStatus.PENDING if if_pending else None):
            return False
        await queue_email(unit.outbox, confirmation)
        await unit.stock.take(quantities(order.lines))
        return True

    async def refund_if_canceled(self, unit: CommerceUnit, order_id: int, order: Order, captured: Payment, *,
                                 provider: str, payment_ref: str) -> bool:
        """Money was captured for this order (`captured`): if it had been canceled (and not refunded), record
        the capture and have the worker give the money back. False, with nothing changed, for any other order."""
        if order.status is not OrderStatus.CANCELED or order.payment.status is PaymentStatus.REFUNDED:
            return False
        order.payment = captured
        await unit.orders.set_payment(order_id, order.payment)
        await unit.outbox.add(STRAY_REFUND, {"order": order.number, "provider": provider, "payment_ref": payment_ref})
        return True

    async def cancel_unpaid(self, unit: CommerceUnit, order_id: int, order: Order, payment: Payment, *,
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

    def order_email(self, template: str, order: Order) -> Email:
        return self._templates.render(template, to=order.email, order=order_view(order),
                                      link=f"{self._public_url}/account/orders/{order.number}")


def _charged(payment: Payment, result: ChargeResult, status: PaymentStatus) -> Payment:
    """The order's payment as the gateway's answer leaves it."""
    return replace(payment, status=status, reference=result.payment_ref or payment.reference,
                   action_url=result.action_url, decline_reason=result.decline_reason)


async def stock_changed(unit: CommerceUnit, skus: Iterable[str], flags: InStockFlags | None) -> None:
    """What can be bought of these SKUs changed: the catalogue's in-stock flags follow right after the commit,
    and the worker's job makes sure they do even if this process stops first."""
    moved = sorted(set(skus))
    await unit.outbox.add(STOCK_CHANGED, {"skus": moved})
    if flags is not None:
        unit.after_commit(lambda: flags.refresh(moved))


def order_view(order: Order) -> Mapping[str, object]:
    """What e-mail templates see of an order: plain values, money as text."""
    totals = order.totals
    return {
        "number": order.number, "status": order.status.value, "tracking": order.tracking or "",
        "lines": [{"name": line.name, "sku": line.sku, "quantity": line.quantity, "unit_price": str(line.unit_price),
                   "total": str(line.total)} for line in order.lines],
        "goods": str(totals.goods), "discount": str(totals.discount), "has_discount": totals.discount.amount > 0,
        "discount_code": order.discount_code or "", "shipping": str(totals.shipping),
        "tax": str(totals.tax), "total": str(totals.total), "prices_include_tax": totals.prices_include_tax,
        "address": order.shipping_address, "shipping_method": order.shipping_method_name,
    }
