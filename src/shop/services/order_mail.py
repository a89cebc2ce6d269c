"""The e-mails about an order (confirmation, shipped), rendered from the shop's templates."""

from __future__ import annotations

from collections.abc import Mapping

from shop.domain.messages import Email
from shop.domain.orders import Order
from shop.services.email_delivery import MailTemplates


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


class OrderMail:
    def __init__(self, *, templates: MailTemplates, public_url: str) -> None:
        self._templates = templates
        self._public_url = public_url.rstrip("/")

    def render(self, template: str, order: Order) -> Email:
        """The e-mail `template` about `order`, to its customer, linking to the order's page."""
        return self._templates.render(template, to=order.email, order=order_view(order),
                                      link=f"{self._public_url}/account/orders/{order.number}")
