"""Buying pages: the cart, checkout and the order confirmation. Every form posts back here and redirects
(POST → 303 → GET); with htmx the same forms update only the part of the page that changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.cart import CartClosed
from shop.domain.discounts import VoucherNotApplicable
from shop.domain.errors import DomainError, InvalidValue, NotFound, OutOfStock
from shop.domain.money import minor_units
from shop.domain.orders import OrderStatus
from shop.domain.pricing import Address
from shop.services.card_payments import CardPayments
from shop.services.cart import CartService, CartView
from shop.services.checkout import CheckoutRequest, CheckoutService, ItemsUnavailable, PaymentDeclined
from shop.services.web_sessions import WebSessions
from shop.web.deps import CardPaymentsDep, CartsDep, CheckoutDep, WebSessionsDep
from shop.web.input_policy import check_form
from shop.web.storefront.rendering import Pages
from shop.web.storefront.visitor import Guest, Visitor

router = APIRouter(include_in_schema=False)
TEST_CARDS = [("tok_visa", "Visa •••• 4242 (pays)"), ("tok_mastercard", "Mastercard •••• 4444 (pays)"),
              ("tok_threeDSecure", "Visa •••• 3155 (asks the bank to confirm)"),
              ("tok_chargeDeclined", "Visa •••• 0002 (declined)")]
ADDRESS_FIELDS = ("name", "line1", "line2", "postal_code", "city", "region", "country", "phone")


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def _redirect(guest: Visitor, to: str) -> Response:
    return guest.apply(RedirectResponse(to, status_code=303))


async def _cart_view(carts: CartService, guest: Visitor) -> CartView | None:
    cart_id = guest.cart_id
    if cart_id is None:
        return None
    try:
        view = await carts.view(cart_id, customer_id=guest.user.id if guest.user else None)
    except NotFound:
        return None
    return view if view.cart.status.value == "open" else None


async def _ensure_cart(carts: CartService, sessions: WebSessions, guest: Visitor) -> str:
    view = await _cart_view(carts, guest)
    if view is not None:
        return view.cart.id
    made, _ = await carts.create(customer_id=guest.user.id if guest.user else None)
    await guest.remember(sessions, cart_id=made.cart.id)
    return made.cart.id


def _cart_page(request: Request, guest: Visitor, view: CartView | None, *, error: str | None = None,
               status: int = 200, code: str = "") -> Response:
    return _pages(request).render(guest, "cart.html", view=view, error=error, status=status, code=code)


@router.get("/cart")
async def cart_page(request: Request, guest: Guest, carts: CartsDep) -> Response:
    """The cart at today's prices."""
    return _cart_page(request, guest, await _cart_view(carts, guest))


async def _form(request: Request, guest: Visitor) -> Any:
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)  # no field of these forms runs over several lines
    return form


def _quantity(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise InvalidValue("quantity", "must be a whole number") from None


@router.post("/cart/add")
async def add_to_cart(request: Request, guest: Guest, carts: CartsDep, sessions: WebSessionsDep) -> Response:
    """Add a variant to the cart (from the product page)."""
    form = await _form(request, guest)
    sku = str(form.get("sku", ""))
    try:
        cart_id = await _ensure_cart(carts, sessions, guest)
        await carts.add_item(cart_id, sku=sku, quantity=_quantity(form.get("quantity", "1")),
                             customer_id=guest.user.id if guest.user else None)
    except (InvalidValue, OutOfStock) as exc:
        return _cart_page(request, guest, await _cart_view(carts, guest), error=_message(exc), status=409)
    return _redirect(guest, "/cart")


@router.post("/cart/items/{line_id}")
async def change_line(request: Request, line_id: str, guest: Guest, carts: CartsDep) -> Response:
    """Change a line's quantity, or remove it (quantity 0 or the remove button)."""
    form = await _form(request, guest)
    view = await _cart_view(carts, guest)
    if view is None:
        return _redirect(guest, "/cart")
    customer = guest.user.id if guest.user else None
    try:
        if form.get("remove") or str(form.get("quantity", "")).strip() == "0":
            await carts.remove_item(view.cart.id, line_id, customer_id=customer)
        else:
            await carts.change_item(view.cart.id, line_id, quantity=_quantity(form.get("quantity")),
                                    customer_id=customer)
    except (InvalidValue, OutOfStock, NotFound) as exc:
        return _cart_page(request, guest, await _cart_view(carts, guest), error=_message(exc), status=409)
    return _redirect(guest, "/cart")


@router.post("/cart/discount")
async def apply_code(request: Request, guest: Guest, carts: CartsDep) -> Response:
    """Apply (or, empty, remove) a voucher code."""
    form = await _form(request, guest)
    view = await _cart_view(carts, guest)
    code = str(form.get("code", "")).strip()
    if view is None:
        return _redirect(guest, "/cart")
    try:
        await carts.apply_discount(view.cart.id, code or None, customer_id=guest.user.id if guest.user else None)
    except (InvalidValue, VoucherNotApplicable) as exc:
        return _cart_page(request, guest, view, error=_message(exc), status=422, code=code)
    return _redirect(guest, "/cart")


def _message(exc: DomainError) -> str:
    if isinstance(exc, OutOfStock):
        return f"Only {exc.available} left of this item."
    if isinstance(exc, InvalidValue):
        return exc.message[:1].upper() + exc.message[1:]
    if isinstance(exc, VoucherNotApplicable):
        return f"The code {exc.code} {exc.reason}."
    return str(exc)


def _estimate(view: CartView) -> dict[str, object]:
    """What Stripe's Payment Element shows before the shop prices the order (goods less discount, in minor
    units); the PaymentIntent is made on the server for the order's own total, whatever the page said."""
    amount = view.goods - view.discount
    return {"amount": int(amount.amount.scaleb(minor_units(amount.currency))), "currency": amount.currency.lower()}


def _checkout_page(request: Request, guest: Visitor, view: CartView, checkout: CheckoutService,
                   card_payments: CardPayments, *, values: dict[str, str], errors: dict[str, str],
                   status: int = 200) -> Response:
    return _pages(request).render(guest, "checkout.html", view=view, values=values, errors=errors, status=status,
                                  methods=checkout.pricing.methods_for(None), cards=TEST_CARDS,
                                  address_fields=ADDRESS_FIELDS, card_form=card_payments.form,
                                  estimate=_estimate(view))


@router.get("/checkout")
async def checkout_page(request: Request, guest: Guest, carts: CartsDep, checkout: CheckoutDep,
                        card_payments: CardPaymentsDep) -> Response:
    """Address, shipping method, discount code and payment, on one page."""
    view = await _cart_view(carts, guest)
    if view is None or not view.lines:
        return _redirect(guest, "/cart")
    values = {"email": guest.user.email if guest.user else "", "country": "DE", "shipping_method": "standard",
              "token": "tok_visa", "discount_code": view.cart.discount_code or ""}
    return _checkout_page(request, guest, view, checkout, card_payments, values=values, errors={})


def _field(name: str) -> str:
    """The form field an API field name belongs to (`shipping_address.postal_code` → `postal_code`)."""
    return name.removeprefix("shipping_address.").replace("payment_token", "token")


@router.post("/checkout")
async def place_order(request: Request, guest: Guest, carts: CartsDep, checkout: CheckoutDep,
                      sessions: WebSessionsDep, card_payments: CardPaymentsDep) -> Response:
    """Place the order; problems come back next to the fields they concern."""
    form = await _form(request, guest)
    view = await _cart_view(carts, guest)
    if view is None or not view.lines:
        return _redirect(guest, "/cart")
    values = {k: str(v) for k, v in form.items() if k != "csrf"}
    errors: dict[str, str] = {}
    try:
        address = Address.of(**{f: values.get(f, "") for f in ADDRESS_FIELDS})
        placed = await checkout.place_order(CheckoutRequest(
            cart_id=view.cart.id, email=values.get("email", ""), address=address,
            shipping_method=values.get("shipping_method", ""), payment_token=values.get("token", ""),
            customer_id=guest.user.id if guest.user else None,
            discount_code=values.get("discount_code") or None))
    except InvalidValue as exc:
        errors[_field(exc.field)] = _message(exc)
    except VoucherNotApplicable as exc:
        errors["discount_code"] = _message(exc)
    except PaymentDeclined as exc:
        errors["token"] = f"The card was declined ({exc.reason}). Try another card."
    except (OutOfStock, ItemsUnavailable, CartClosed) as exc:
        errors["form"] = _message(exc)
    else:
        keys = dict(guest.session.order_keys) if guest.session else {}
        keys[placed.order.number] = placed.access_key
        await guest.remember(sessions, order_keys=tuple(keys.items())[-20:],
                             cart_id=None)
        if placed.order.status is OrderStatus.PENDING and placed.order.payment.action_url:
            return _redirect(guest, placed.order.payment.action_url + f"?return=/order/{placed.order.number}")
        return _redirect(guest, f"/order/{placed.order.number}")
    fresh = await _cart_view(carts, guest) or view
    return _checkout_page(request, guest, fresh, checkout, card_payments, values=values, errors=errors, status=422)


@router.get("/order/{number}")
async def order_page(request: Request, number: str, guest: Guest, card_payments: CardPaymentsDep) -> Response:
    """The order confirmation: for its customer, or the visitor who placed it as a guest. A payment waiting for
    the customer shows their next step; one they finished is settled with the gateway here."""
    step = await card_payments.next_action(number, customer_id=guest.user.id if guest.user else None,
                                           access_key=guest.order_key(number))
    return _pages(request).render(guest, "order.html", order=step.order, step=step, card_form=card_payments.form)
