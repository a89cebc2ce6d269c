"""JSON shapes of carts and orders: money as a decimal string with its currency. The models document the shapes;
the hot routes (cart, checkout) write them with orjson from the dicts below, and the OpenAPI contract test
(tests/e2e/test_openapi_contract.py) checks that every body sent matches its model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shop.domain.cart import CartStatus
from shop.domain.orders import Order, OrderStatus, PaymentStatus
from shop.services.cart import CartView
from shop.web.api.v1.schemas import MoneyOut
from shop.web.responses import iso, money


def cart_json(view: CartView) -> dict[str, Any]:
    cart = view.cart
    gone = {line.id: line.sku for line in cart.lines if line.id in set(view.unavailable)}
    return {
        "id": cart.id, "status": cart.status.value, "owned": cart.customer_id is not None,
        "items": [{"id": line.line_id, "sku": line.sku, "name": line.name, "product_slug": line.product_slug,
                   "quantity": line.quantity, "unit_price": money(line.unit_price), "total": money(line.total),
                   "available": view.stock.get(line.sku, 0)} for line in view.lines],
        "unavailable_items": [{"id": line_id, "sku": sku} for line_id, sku in gone.items()],
        "item_count": sum(line.quantity for line in view.lines),
        "discount_code": cart.discount_code, "discount_problem": view.discount_problem,
        "goods": money(view.goods), "discount": money(view.discount), "subtotal": money(view.subtotal),
        "updated_at": iso(cart.updated_at),
    }


def order_json(order: Order) -> dict[str, Any]:
    totals, payment, address = order.totals, order.payment, order.shipping_address
    return {
        "number": order.number, "status": order.status.value, "email": order.email,
        "created_at": iso(order.created_at),
        "items": [{"sku": line.sku, "name": line.name, "product_slug": line.product_slug,
                   "quantity": line.quantity, "unit_price": money(line.unit_price), "total": money(line.total)}
                  for line in order.lines],
        "shipping_address": {"name": address.name, "line1": address.line1, "line2": address.line2,
                             "city": address.city, "postal_code": address.postal_code, "region": address.region,
                             "country": address.country, "phone": address.phone},
        "shipping_method": {"code": order.shipping_method, "name": order.shipping_method_name},
        "discount_code": order.discount_code,
        "totals": {"goods": money(totals.goods), "discount": money(totals.discount),
                   "shipping": money(totals.shipping), "tax": money(totals.tax), "total": money(totals.total),
                   "tax_rate": str(totals.tax_rate), "prices_include_tax": totals.prices_include_tax},
        "payment": {"provider": payment.provider, "status": payment.status.value,
                    "action_url": payment.action_url, "decline_reason": payment.decline_reason},
        "tracking": order.tracking,
        "reservation_expires_at": iso(order.reservation_expires_at),
        "history": [{"status": status.value, "at": iso(at)} for status, at in order.history],
    }


class CartLineOut(BaseModel):
    id: str = Field(description="the line's id, for PATCH and DELETE /carts/{cart_id}/items/{item_id}")
    sku: str
    name: str
    product_slug: str
    quantity: int
    unit_price: MoneyOut = Field(description="today's price")
    total: MoneyOut
    available: int = Field(description="units that can be bought now")


class UnavailableLineOut(BaseModel):
    id: str
    sku: str


class CartOut(BaseModel):
    id: str
    status: CartStatus
    owned: bool = Field(description="held by a customer account rather than by whoever knows its id")
    items: list[CartLineOut]
    unavailable_items: list[UnavailableLineOut] = Field(description="lines that cannot be bought any more")
    item_count: int
    discount_code: str | None
    discount_problem: str | None = Field(description="why the voucher does not apply now, if it does not")
    goods: MoneyOut
    discount: MoneyOut
    subtotal: MoneyOut
    updated_at: datetime | None


class OrderLineOut(BaseModel):
    sku: str
    name: str
    product_slug: str
    quantity: int
    unit_price: MoneyOut
    total: MoneyOut


class AddressOut(BaseModel):
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    region: str
    country: str
    phone: str


class ShippingChoiceOut(BaseModel):
    code: str
    name: str


class TotalsOut(BaseModel):
    goods: MoneyOut
    discount: MoneyOut
    shipping: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    tax_rate: str = Field(examples=["0.19"], description="a decimal fraction written as text")
    prices_include_tax: bool


class PaymentOut(BaseModel):
    provider: str
    status: PaymentStatus
    action_url: str | None = Field(description="where the customer confirms the payment (202 from checkout)")
    decline_reason: str | None


class StatusChangeOut(BaseModel):
    status: OrderStatus
    at: datetime | None


class OrderOut(BaseModel):
    number: str
    status: OrderStatus
    email: str
    created_at: datetime | None
    items: list[OrderLineOut]
    shipping_address: AddressOut
    shipping_method: ShippingChoiceOut
    discount_code: str | None
    totals: TotalsOut
    payment: PaymentOut
    tracking: str | None
    reservation_expires_at: datetime | None = Field(description="when unpaid stock goes back on sale")
    history: list[StatusChangeOut]


class PlacedOrderOut(OrderOut):
    access_key: str | None = Field(description="a guest's key to the order: send it as X-Order-Key")


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    page: int
    limit: int
