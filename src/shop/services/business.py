"""How the shop is doing as a business, over a period: orders, revenue per currency, average order value,
conversion, and the SKUs running low (the control panel's business dashboard).

Definitions, shown on the page too:
- an order *counts* (for revenue, average value and conversion) once its payment went through and it was not
  given back: paid, fulfilled, (partly) shipped or delivered. Pending, canceled and refunded orders are listed apart.
- revenue is the sum of those orders' totals (goods − discount + shipping, tax as charged), per currency.
- conversion is the share of the carts created in the period that became a counted order (at any time since):
  a cohort, so it never exceeds 100 % however orders and carts fall across the period's edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from shop.domain.catalog import Offer
from shop.domain.errors import InvalidValue
from shop.domain.inventory import StockLevel
from shop.domain.money import Money
from shop.domain.orders import OrderStatus
from shop.services.clock import Clock, utc_now

COUNTED = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.PARTLY_SHIPPED, OrderStatus.SHIPPED,
                     OrderStatus.DELIVERED})
# a period's name → (how far back, bucket width in seconds for its chart)
BUSINESS_RANGES: Mapping[str, tuple[timedelta, int]] = {
    "24h": (timedelta(hours=24), 3600), "7d": (timedelta(days=7), 86_400), "30d": (timedelta(days=30), 86_400),
    "90d": (timedelta(days=90), 7 * 86_400)}
BUSINESS_RANGE_LABELS: Mapping[str, str] = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days",
                                            "90d": "Last 90 days"}
DEFAULT_BUSINESS_RANGE = "30d"


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime
    bucket_seconds: int


def period_for(range_name: str, now: datetime) -> Period:
    if range_name not in BUSINESS_RANGES:
        raise InvalidValue("range", f"must be one of {', '.join(BUSINESS_RANGES)}")
    span, step = BUSINESS_RANGES[range_name]
    aligned = datetime.fromtimestamp((int((now - span).timestamp()) // 3600) * 3600, UTC)
    return Period(since=aligned, until=now + timedelta(microseconds=1), bucket_seconds=step)


@dataclass(frozen=True, slots=True)
class OrderTally:
    """Orders of one status and currency placed in the period."""

    status: OrderStatus
    orders: int
    total: Money


@dataclass(frozen=True, slots=True)
class BucketSales:
    index: int  # buckets since the period's start
    currency: str
    orders: int  # counted orders
    revenue: Money


class SalesReader(Protocol):
    """Orders, carts and stock of the main store, summed for a period."""

    async def order_tallies(self, period: Period) -> list[OrderTally]: ...

    async def sales_by_bucket(self, period: Period, *, statuses: frozenset[OrderStatus]) -> list[BucketSales]: ...

    async def carts_created(self, period: Period) -> int: ...

    async def carts_converted(self, period: Period, *, statuses: frozenset[OrderStatus]) -> int:
        """Carts created in the period that have an order in one of `statuses`."""
        ...

    async def low_stock(self, *, threshold: int, limit: int) -> list[StockLevel]:
        """SKUs with at most `threshold` units available (on hand − reserved), fewest first."""
        ...


class OfferLookup(Protocol):
    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]: ...


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    currency: str
    orders: int
    revenue: Money
    average_order: Money


@dataclass(frozen=True, slots=True)
class LowStock:
    sku: str
    available: int
    on_hand: int
    reserved: int
    title: str | None  # None: the SKU is not in the catalogue (any more)
    product_slug: str | None


@dataclass(frozen=True, slots=True)
class BusinessReport:
    period: Period
    range_name: str
    orders_placed: int  # every order placed in the period, whatever became of it
    orders_counted: int
    by_status: list[tuple[OrderStatus, int]]
    currencies: list[CurrencyFigures]  # the shop's own currency first
    carts_created: int
    carts_converted: int
    conversion: float | None  # None: no carts in the period
    series: list[BucketSales]
    low_stock: list[LowStock]
    low_stock_threshold: int


class BusinessFigures:
    def __init__(self, *, sales: SalesReader, catalog: OfferLookup, currency: str, low_stock_threshold: int,
                 clock: Clock = utc_now) -> None:
        self._sales = sales
        self._catalog = catalog
        self._currency = currency
        self.low_stock_threshold = low_stock_threshold
        self._clock = clock

    async def report(self, range_name: str = DEFAULT_BUSINESS_RANGE, *, threshold: int | None = None,
                     low_stock_limit: int = 50) -> BusinessReport:
        """Orders, revenue, average order value, conversion and low stock over the period."""
        if threshold is not None and not 0 <= threshold <= 1_000_000:
            raise InvalidValue("threshold", "must be a whole number from 0 to 1000000")
        limit = self.low_stock_threshold if threshold is None else threshold
        period = period_for(range_name, self._clock())
        tallies = await self._sales.order_tallies(period)
        by_status: dict[OrderStatus, int] = {}
        revenue: dict[str, tuple[int, Money]] = {}
        for tally in tallies:
            by_status[tally.status] = by_status.get(tally.status, 0) + tally.orders
            if tally.status in COUNTED:
                count, total = revenue.get(tally.total.currency, (0, Money.zero(tally.total.currency)))
                revenue[tally.total.currency] = (count + tally.orders, total + tally.total)
        currencies = [CurrencyFigures(currency=c, orders=n, revenue=total,
                                      average_order=Money(total.amount / Decimal(n), c))
                      for c, (n, total) in sorted(revenue.items(), key=lambda i: (i[0] != self._currency, i[0]))]
        created = await self._sales.carts_created(period)
        converted = await self._sales.carts_converted(period, statuses=COUNTED)
        levels = await self._sales.low_stock(threshold=limit, limit=low_stock_limit)
        offers = await self._catalog.offers([lv.sku for lv in levels])
        low = [LowStock(sku=lv.sku, available=lv.on_hand - lv.reserved, on_hand=lv.on_hand, reserved=lv.reserved,
                        title=f"{o.product_title} — {o.variant_title}" if o and o.variant_title else
                        (o.product_title if o else None), product_slug=o.product_slug if o else None)
               for lv in levels for o in [offers.get(lv.sku)]]
        return BusinessReport(
            period=period, range_name=range_name, orders_placed=sum(by_status.values()),
            orders_counted=sum(c.orders for c in currencies),
            by_status=sorted(by_status.items(), key=lambda i: list(OrderStatus).index(i[0])), currencies=currencies,
            carts_created=created, carts_converted=converted, conversion=converted / created if created else None,
            series=await self._sales.sales_by_bucket(period, statuses=COUNTED), low_stock=low,
            low_stock_threshold=limit)
