"""Checkout over the API: shipping methods, and placing an order (honouring `Idempotency-Key`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.domain.errors import DomainError
from shop.domain.orders import OrderStatus
from shop.domain.pricing import Address, ShippingKind
from shop.services.checkout import CheckoutRequest, PlacedOrder
from shop.services.idempotency import Ticket, fingerprint
from shop.web.api.v1.money_json import PlacedOrderOut, order_json
from shop.web.api.v1.schemas import VOUCHER_CODE, MoneyOut, Problem, StrictInput
from shop.web.deps import CheckoutDep, IdempotencyDep
from shop.web.problems import PROBLEM, problem_of
from shop.web.responses import JSON, money
from shop.web.security import MaybeUser

router = APIRouter(prefix="/api/v1", tags=["checkout"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 402, 404, 409, 422, 503)}


class AddressIn(StrictInput):
    name: str = Field(max_length=200)
    line1: str = Field(max_length=200)
    line2: str = Field("", max_length=200)
    city: str = Field(max_length=100)
    postal_code: str = Field(max_length=16)
    region: str = Field("", max_length=3, description="ISO 3166-2 subdivision, e.g. CA")
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2, e.g. DE")
    phone: str = Field("", max_length=32)

    def address(self) -> Address:
        return Address.of(**self.model_dump())


class PaymentIn(StrictInput):
    token: str = Field(max_length=255, description="a payment method token (test: tok_visa, tok_chargeDeclined, "
                                                   "tok_threeDSecure); never a card number")


class CheckoutIn(StrictInput):
    cart_id: str = Field(min_length=8, max_length=40)
    email: str = Field(max_length=320)
    shipping_address: AddressIn
    shipping_method: str = Field(max_length=32)
    discount_code: str | None = Field(None, pattern=VOUCHER_CODE)
    payment: PaymentIn


class WeightBandOut(BaseModel):
    up_to_grams: int
    price: MoneyOut


class ShippingMethodOut(BaseModel):
    code: str
    name: str
    kind: ShippingKind
    price: MoneyOut = Field(description="the flat price, or the first weight band's")
    bands: list[WeightBandOut]
    free_above: MoneyOut | None = Field(description="free shipping from this much in goods")
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes; empty: every country")


class ShippingMethodList(BaseModel):
    items: list[ShippingMethodOut]
    total: int


@router.get("/shipping-methods", response_model=ShippingMethodList)
async def shipping_methods(service: CheckoutDep,
                           country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None) -> Response:
    """The ways the shop ships (to `country`, when given), with their prices."""
    items = []
    for method in service.pricing.methods_for(country.upper() if country else None):
        items.append({"code": method.code, "name": method.name, "kind": method.kind.value,
                      "price": money(method.price),
                      "bands": [{"up_to_grams": grams, "price": money(price)} for grams, price in method.bands],
                      "free_above": money(method.free_above) if method.free_above else None,
                      "countries": sorted(method.countries)})
    return JSON({"items": items, "total": len(items)})


def _request(body: CheckoutIn, customer_id: str | None, ticket: Ticket | None) -> CheckoutRequest:
    return CheckoutRequest(cart_id=body.cart_id, email=body.email, address=body.shipping_address.address(),
                           shipping_method=body.shipping_method, payment_token=body.payment.token,
                           customer_id=customer_id, discount_code=body.discount_code, idempotency=ticket)


async def _answer(request: Request, work: Awaitable[PlacedOrder]) -> tuple[int, object]:
    try:
        placed = await work
    except DomainError as exc:
        return await problem_of(request, exc)
    order = order_json(placed.order)
    order["access_key"] = placed.access_key
    return (202 if placed.order.status is OrderStatus.PENDING else 201), order


_NEEDS_THE_CUSTOMER = {"model": PlacedOrderOut, "description": "Placed; the payment needs the customer (action_url)"}


@router.post("/checkout", status_code=201, response_model=PlacedOrderOut,
             responses={**_ERRORS, 202: _NEEDS_THE_CUSTOMER})
async def checkout(request: Request, body: CheckoutIn, user: MaybeUser, service: CheckoutDep,
                   idempotency: IdempotencyDep,
                   idempotency_key: Annotated[str | None, Header(pattern=r"^[!-~]{8,255}$", description="8-255 "
                                                                 "visible ASCII characters, e.g. a UUID")] = None,
                   ) -> Response:
    """Place the order for a cart and pay for it: 201 when paid, 202 when the payment needs the customer
    (`payment.action_url`), 402 when declined. With `Idempotency-Key`, a retry returns the first answer."""
    customer_id = user.id if user else None
    if idempotency_key is None:
        status, payload = await _answer(request, service.place_order(_request(body, customer_id, None)))
        replayed = False
    else:
        scope = f"checkout:{customer_id or 'guest'}"
        raw = await request.body()

        def place(ticket: Ticket) -> Awaitable[tuple[int, object]]:
            return _answer(request, service.place_order(_request(body, customer_id, ticket)))

        def resume(number: str, access_key: str) -> Awaitable[tuple[int, object]]:
            return _answer(request, service.resume(_request(body, customer_id, None), number=number,
                                                   access_key=access_key))

        outcome = await idempotency.run(scope, idempotency_key, fingerprint(raw), place, resume)
        status, payload, replayed = outcome.status, outcome.body, outcome.replayed
    headers = {"Cache-Control": "no-store"}
    if idempotency_key is not None:
        headers["Idempotent-Replayed"] = "true" if replayed else "false"
    if status >= 400:
        return Response(orjson.dumps(payload), status_code=status, media_type=PROBLEM, headers=headers)
    if isinstance(payload, dict) and payload.get("number"):
        headers["Location"] = f"/api/v1/orders/{payload['number']}"
    return JSON(payload, status_code=status, headers=headers)
