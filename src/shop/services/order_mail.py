"""The e-mails about an order (confirmation, shipped, refunded), rendered from the shop's templates."""

from __future__ import annotations

from collections.abc import Mapping

from shop.domain.fulfilment import Refund, Shipment
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


def shipment_view(order: Order, shipment: Shipment) -> Mapping[str, object]:
    """What e-mail templates see of one parcel: its carrier, tracking number and the units in it."""
    return {"number": shipment.number, "carrier": shipment.carrier, "tracking": shipment.tracking,
            "lines": [{"name": order.lines[s.line - 1].name, "sku": order.lines[s.line - 1].sku,
                       "quantity": s.quantity} for s in shipment.lines],
            "complete": not any(order.left_to_ship())}


def refund_view(order: Order, refund: Refund) -> Mapping[str, object]:
    """What e-mail templates see of one refund: the money, the units it covers, why."""
    return {"number": refund.number, "amount": str(refund.amount), "reason": refund.reason,
            "lines": [{"name": order.lines[r.line - 1].name, "sku": order.lines[r.line - 1].sku,
                       "quantity": r.quantity} for r in refund.lines],
            "refunded": str(order.refunded), "in_full": order.refundable.amount <= 0}


class OrderMail:
    def __init__(self, *, templates: MailTemplates, public_url: str) -> None:
        self._templates = templates
        self._public_url = public_url.rstrip("/")

    def render(self, template: str, order: Order, *, shipment: Shipment | None = None,
               refund: Refund | None = None) -> Email:
        """The e-mail `template` about `order` (and the parcel or refund it is about), to its customer, linking
        to the order's page."""
        link = f"{self._public_url}/account/orders/{order.number}"
        if shipment is not None:
            return self._templates.render(template, to=order.email, order=order_view(order), link=link,
                                          shipment=shipment_view(order, shipment))
        if refund is not None:
            return self._templates.render(template, to=order.email, order=order_view(order), link=link,
                                          refund=refund_view(order, refund))
        return self._templates.render(template, to=order.email, order=order_view(order), link=link)
