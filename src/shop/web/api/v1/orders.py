"""Orders over the API: customers see their own; staff fulfil, ship (whole or in parcels), cancel and refund (whole,
or by amount or lines, once per Idempotency-Key)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.domain.errors import InvalidValue
from shop.domain.fulfilment import Refund, RefundLine, RefundRequest, RefundStatus, Shipment
from shop.domain.money import Money, minor_units
from shop.domain.orders import Order
from shop.domain.users import Role
from shop.web.api.v1.money_json import OrderOut, OrderPage, order_json
from shop.web.api.v1.schemas import MoneyOut, Problem, StrictInput
from shop.web.deps import OrdersDep
from shop.web.responses import JSON, iso, money
from shop.web.security import CurrentUser, MaybeUser, Staff

router = APIRouter(prefix="/api/v1", tags=["orders"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 403, 404, 409, 422)}
Number = Annotated[str, PathParam(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9-]+$")]


class ShipIn(StrictInput):
    tracking: str | None = Field(None, max_length=100)


class ShipmentLineIn(StrictInput):
    line: int = Field(ge=1, le=10_000, description="the order line's number, 1 for the first item")
    quantity: int = Field(ge=1, le=1_000_000)


class ShipmentIn(StrictInput):
    lines: list[ShipmentLineIn] = Field(min_length=1, max_length=200)
    carrier: str = Field("", max_length=60)
    tracking: str | None = Field(None, max_length=100)


class RefundLineIn(StrictInput):
    line: int = Field(ge=1, le=10_000, description="the order line's number, 1 for the first item")
    quantity: int = Field(ge=1, le=1_000_000)
    restock: bool = Field(False, description="put these units back on the shelf")


class RefundIn(StrictInput):
    amount: str | None = Field(None, max_length=24, pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$", examples=["12.50"],
                               description="the money to give back, in the order's currency; without it, the lines' "
                                           "share of what was paid")
    lines: list[RefundLineIn] = Field(default_factory=list, max_length=200)
    reason: str = Field("", max_length=500)


class FulfilmentLineOut(BaseModel):
    line: int
    sku: str
    ordered: int
    shipped: int
    refunded: int
    left_to_ship: int


class ShipmentLineOut(BaseModel):
    line: int
    quantity: int


class ShipmentOut(BaseModel):
    number: int
    lines: list[ShipmentLineOut]
    carrier: str
    tracking: str
    shipped_at: datetime | None


class RefundLineOut(BaseModel):
    line: int
    quantity: int
    restocked: int


class RefundOut(BaseModel):
    number: int
    amount: MoneyOut
    lines: list[RefundLineOut]
    reason: str
    status: RefundStatus
    created_at: datetime | None
    failure: str | None


class OrderDetailOut(OrderOut):
    fulfilment: list[FulfilmentLineOut] = Field(description="per line: units ordered, shipped, refunded, owed")
    shipments: list[ShipmentOut]
    refunds: list[RefundOut]
    refunded: MoneyOut = Field(description="money given back, or being given back")
    refundable: MoneyOut = Field(description="money that may still be refunded")


class RefundResultOut(BaseModel):
    refund: RefundOut
    order: OrderDetailOut


def _shipment_json(shipment: Shipment) -> dict[str, Any]:
    return {"number": shipment.number, "lines": [{"line": s.line, "quantity": s.quantity} for s in shipment.lines],
            "carrier": shipment.carrier, "tracking": shipment.tracking, "shipped_at": iso(shipment.shipped_at)}


def _refund_json(refund: Refund) -> dict[str, Any]:
    return {"number": refund.number, "amount": money(refund.amount),
            "lines": [{"line": r.line, "quantity": r.quantity, "restocked": r.restock} for r in refund.lines],
            "reason": refund.reason, "status": refund.status.value, "created_at": iso(refund.created_at),
            "failure": refund.failure}


def detail_json(order: Order) -> dict[str, Any]:
    """An order with its parcels and refunds (the list of orders leaves them out)."""
    body = order_json(order)
    body["fulfilment"] = [
        {"line": n, "sku": line.sku, "ordered": line.quantity, "shipped": shipped, "refunded": refunded,
         "left_to_ship": left}
        for n, (line, shipped, refunded, left) in enumerate(zip(order.lines, order.shipped_units(),
                                                                order.refunded_units(), order.left_to_ship(),
                                                                strict=True), start=1)]
    body["shipments"] = [_shipment_json(shipment) for shipment in order.shipments]
    body["refunds"] = [_refund_json(refund) for refund in order.refunds]
    body["refunded"], body["refundable"] = money(order.refunded), money(order.refundable)
    return body


def _amount(text: str, currency: str) -> Money:
    """The amount exactly as written: more decimals than the currency has are refused, not rounded away."""
    amount = Money.of(text, currency)
    if amount.amount != Decimal(text):
        raise InvalidValue("amount", f"{currency} has {minor_units(currency)} decimal places")
    return amount


def _private(body: dict[str, Any], *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSON(body, status_code=status_code, headers={"Cache-Control": "no-store", **(headers or {})})


@router.get("/orders", response_model=OrderPage, responses=_ERRORS)
async def my_orders(orders: OrdersDep, user: CurrentUser, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
    """The signed-in customer's orders, newest first."""
    found = await orders.orders_of(user.id, page=page, limit=limit)
    return _private({"items": [order_json(o) for o in found.items], "total": found.total, "page": found.page,
                     "limit": found.limit})


@router.get("/orders/{number}", response_model=OrderDetailOut, responses=_ERRORS)
async def get_order(orders: OrdersDep, number: Number, user: MaybeUser,
                    x_order_key: Annotated[str | None, Header(max_length=100)] = None) -> Response:
    """One order: its customer's, any for staff, or a guest's with the `X-Order-Key` given at checkout."""
    order = await orders.order_for(number, customer_id=user.id if user else None,
                                             staff=bool(user and user.has_role(Role.STAFF)), access_key=x_order_key)
    return _private(detail_json(order))


@router.post("/orders/{number}/fulfil", response_model=OrderOut, responses=_ERRORS)
async def fulfil(orders: OrdersDep, number: Number, _: Staff) -> Response:
    """Mark a paid order picked and packed."""
    return _private(order_json(await orders.fulfil(number)))


@router.post("/orders/{number}/ship", response_model=OrderOut, responses=_ERRORS)
async def ship(orders: OrdersDep, number: Number, _: Staff, body: ShipIn | None = None) -> Response:
    """Hand a fulfilled order to the carrier; the customer gets an e-mail with the tracking number."""
    return _private(order_json(await orders.ship(number, tracking=body.tracking if body else None)))


@router.post("/orders/{number}/deliver", response_model=OrderOut, responses=_ERRORS)
async def deliver(orders: OrdersDep, number: Number, _: Staff) -> Response:
    """Mark a shipped order delivered."""
    return _private(order_json(await orders.deliver(number)))


@router.post("/orders/{number}/cancel", response_model=OrderOut, responses=_ERRORS)
async def cancel(orders: OrdersDep, number: Number, _: Staff) -> Response:
    """Cancel an order not yet packed: stock goes back, a paid order is refunded."""
    return _private(order_json(await orders.cancel(number)))


@router.post("/orders/{number}/refund", response_model=OrderOut, responses=_ERRORS)
async def refund(orders: OrdersDep, number: Number, _: Staff) -> Response:
    """Refund a paid order in full; goods not yet shipped go back into stock."""
    return _private(order_json(await orders.refund(number)))


@router.post("/orders/{number}/shipments", status_code=201, response_model=OrderDetailOut, responses=_ERRORS)
async def ship_lines(orders: OrdersDep, number: Number, _: Staff, body: ShipmentIn) -> Response:
    """Hand some lines (or units of them) of a fulfilled order to a carrier; the customer gets an e-mail."""
    done = await orders.ship_lines(number, [(line.line, line.quantity) for line in body.lines],
                                   carrier=body.carrier, tracking=body.tracking)
    return _private(detail_json(done.order), status_code=201)


@router.post("/orders/{number}/refunds", status_code=201, response_model=RefundResultOut,
             responses={**_ERRORS, 200: {"model": RefundResultOut, "description": "The key's first refund, again"}})
async def refund_part(orders: OrdersDep, number: Number, user: Staff, body: RefundIn,
                      idempotency_key: Annotated[str | None, Header(pattern=r"^[!-~]{8,200}$", description="8-200 "
                                                                    "visible ASCII characters, e.g. a UUID")] = None,
                      ) -> Response:
    """Refund an amount or lines of a paid order through its payment gateway, restocking the lines marked so. With
    `Idempotency-Key`, a retry answers with the first refund (200); the key with another body is a 422."""
    order = await orders.order_for(number, staff=True)
    request = RefundRequest(
        amount=_amount(body.amount, order.currency) if body.amount is not None else None,
        lines=tuple(RefundLine(line.line, line.quantity, line.quantity if line.restock else 0) for line in body.lines),
        reason=body.reason)
    done = await orders.refund_part(number, request, key=f"api:{idempotency_key or uuid.uuid4().hex}", by=user.id)
    headers = {"Idempotent-Replayed": "true" if done.replayed else "false"} if idempotency_key else {}
    return _private({"refund": _refund_json(done.refund), "order": detail_json(done.order)},
                    status_code=200 if done.replayed else 201, headers=headers)
