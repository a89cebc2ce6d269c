"""Carts over the API: guests hold a cart by its unguessable id; a signed-in customer's cart is theirs alone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import Field
from starlette.responses import Response

from shop.web.api.v1.money_json import CartOut, cart_json
from shop.web.api.v1.schemas import VOUCHER_CODE, Problem, StrictInput
from shop.web.deps import CartsDep
from shop.web.responses import JSON
from shop.web.security import MaybeUser

router = APIRouter(prefix="/api/v1", tags=["cart"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 404, 409, 422)}
CartId = Annotated[str, PathParam(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
LineId = Annotated[str, PathParam(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9]+$")]


class NewCart(StrictInput):
    merge_from: str | None = Field(None, max_length=40, description="a guest cart to fold into the customer's")


class ItemIn(StrictInput):
    sku: str = Field(min_length=1, max_length=64, examples=["TEE-BLK-M"])
    quantity: int = Field(1, ge=1, le=99)


class QuantityIn(StrictInput):
    quantity: int = Field(ge=1, le=99)


class DiscountIn(StrictInput):
    code: str | None = Field(pattern=VOUCHER_CODE, description="a voucher code; null takes the code off")


# OpenAPI links: which answer's values the next call takes (stateful tests and clients follow them)
_CART_LINKS = {name: {"operationRef": f"#/paths/~1api~1v1~1carts~1{{cart_id}}{path}/{method}",
                      "parameters": {"cart_id": "$response.body#/id"}}
               for name, path, method in (("GetCart", "", "get"), ("AddItem", "~1items", "post"),
                                          ("SetDiscount", "~1discount", "post"))}
_LINE_LINKS = {name: {"operationRef": f"#/paths/~1api~1v1~1carts~1{{cart_id}}~1items~1{{item_id}}/{method}",
                      "parameters": {"cart_id": "$response.body#/id", "item_id": "$response.body#/items/0/id"}}
               for name, method in (("ChangeItem", "patch"), ("RemoveItem", "delete"))}


def _no_store(body: dict[str, Any], status: int = 200) -> Response:
    return JSON(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.post("/carts", status_code=201, response_model=CartOut,
             responses={**_ERRORS, 200: {"model": CartOut, "description": "The customer's open cart",
                                         "links": _CART_LINKS}, 201: {"links": _CART_LINKS}})
async def create_cart(carts: CartsDep, user: MaybeUser, body: NewCart | None = None) -> Response:
    """A new cart; a signed-in customer gets their open cart (with `merge_from` folded in)."""
    if user is not None and body is not None and body.merge_from:
        return _no_store(cart_json(await carts.merge(body.merge_from, customer_id=user.id)))
    view, made = await carts.create(customer_id=user.id if user else None)
    return _no_store(cart_json(view), 201 if made else 200)


@router.get("/carts/{cart_id}", response_model=CartOut, responses=_ERRORS)
async def get_cart(carts: CartsDep, cart_id: CartId, user: MaybeUser) -> Response:
    """The cart at today's prices."""
    return _no_store(cart_json(await carts.view(cart_id, customer_id=user.id if user else None)))


@router.post("/carts/{cart_id}/items", status_code=201, response_model=CartOut,
             responses={**_ERRORS, 201: {"links": _LINE_LINKS}})
async def add_item(carts: CartsDep, cart_id: CartId, body: ItemIn, user: MaybeUser) -> Response:
    """Add units of a SKU (a SKU already in the cart has its quantity raised)."""
    view = await carts.add_item(cart_id, sku=body.sku, quantity=body.quantity,
                                          customer_id=user.id if user else None)
    return _no_store(cart_json(view), 201)


@router.patch("/carts/{cart_id}/items/{item_id}", response_model=CartOut, responses=_ERRORS)
async def change_item(carts: CartsDep, cart_id: CartId, item_id: LineId, body: QuantityIn,
                      user: MaybeUser) -> Response:
    """Set a line's quantity."""
    view = await carts.change_item(cart_id, item_id, quantity=body.quantity,
                                             customer_id=user.id if user else None)
    return _no_store(cart_json(view))


@router.delete("/carts/{cart_id}/items/{item_id}", response_model=CartOut, responses=_ERRORS)
async def remove_item(carts: CartsDep, cart_id: CartId, item_id: LineId, user: MaybeUser) -> Response:
    """Take a line out of the cart."""
    view = await carts.remove_item(cart_id, item_id, customer_id=user.id if user else None)
    return _no_store(cart_json(view))


@router.post("/carts/{cart_id}/discount", response_model=CartOut, responses=_ERRORS)
async def set_discount(carts: CartsDep, cart_id: CartId, body: DiscountIn, user: MaybeUser) -> Response:
    """Apply a voucher code (or take it off with null)."""
    view = await carts.apply_discount(cart_id, body.code, customer_id=user.id if user else None)
    return _no_store(cart_json(view))
