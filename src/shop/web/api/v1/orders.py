"""Orders over the API: customers see their own; staff fulfil, ship, cancel and refund."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from pydantic import Field
from starlette.responses import Response

from shop.domain.users import Role
from shop.web.api.v1.money_json import OrderOut, OrderPage, order_json
from shop.web.api.v1.schemas import Problem, StrictInput
from shop.web.deps import OrdersDep
from shop.web.responses import JSON
from shop.web.security import CurrentUser, MaybeUser, Staff

router = APIRouter(prefix="/api/v1", tags=["orders"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 403, 404, 409, 422)}
Number = Annotated[str, PathParam(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9-]+$")]


class ShipIn(StrictInput):
    tracking: str | None = Field(None, max_length=100)


def _private(body: dict[str, Any]) -> Response:
    return JSON(body, headers={"Cache-Control": "no-store"})


@router.get("/orders", response_model=OrderPage, responses=_ERRORS)
async def my_orders(orders: OrdersDep, user: CurrentUser, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
    """The signed-in customer's orders, newest first."""
    found = await orders.orders_of(user.id, page=page, limit=limit)
    return _private({"items": [order_json(o) for o in found.items], "total": found.total, "page": found.page,
                     "limit": found.limit})


@router.get("/orders/{number}", response_model=OrderOut, responses=_ERRORS)
async def get_order(orders: OrdersDep, number: Number, user: MaybeUser,
                    x_order_key: Annotated[str | None, Header(max_length=100)] = None) -> Response:
    """One order: its customer's, any for staff, or a guest's with the `X-Order-Key` given at checkout."""
    order = await orders.order_for(number, customer_id=user.id if user else None,
                                             staff=bool(user and user.has_role(Role.STAFF)), access_key=x_order_key)
    return _private(order_json(order))


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
