"""JSON shapes of carts and orders: money as a decimal string with its currency, written by the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shop.domain.money import Money
from shop.domain.orders import Order
from shop.services.cart import CartView
from shop.web.responses import iso


def money(value: Money) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency}


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


class MoneyShape(BaseModel):
    amount: str
    currency: str
