"""The business figures in Prometheus: orders placed, card payments, money captured (`CommerceEvents`).

They join the HTTP figures at /metrics (`shop.web.metrics`), which serves the whole registry; under gunicorn each
worker writes its own to PROMETHEUS_MULTIPROC_DIR like every other figure.
"""

from __future__ import annotations

from prometheus_client import Counter

from shop.domain.money import minor_units
from shop.domain.orders import Order

ORDERS = Counter("shop_orders_placed_total", "Orders placed, by their state once placed", ["status"])
PAYMENTS = Counter("shop_payments_total", "Card payments by outcome", ["outcome"])
REVENUE = Counter("shop_revenue_minor_units_total", "Money captured, in minor units (cents)", ["currency"])


class CommerceMetrics:
    """The business counters, fed by checkout and the payment webhooks (`CommerceEvents`), whatever the channel."""

    def order_placed(self, order: Order) -> None:
        ORDERS.labels(order.status.value).inc()

    def payment_captured(self, order: Order) -> None:
        PAYMENTS.labels("captured").inc()
        total = order.totals.total
        REVENUE.labels(total.currency).inc(int(total.amount.scaleb(minor_units(total.currency))))

    def payment_declined(self, order: Order) -> None:
        PAYMENTS.labels("declined").inc()
