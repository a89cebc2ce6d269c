"""Orders: a snapshot of what was bought, at what price, shipped where, and the states an order moves through."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from shop.domain.errors import Conflict, InvalidValue
from shop.domain.fulfilment import (
    CARRIER_LIMIT,
    REASON_LIMIT,
    TRACKING_LIMIT,
    Refund,
    RefundLine,
    RefundRequest,
    RefundStatus,
    Shipment,
    ShipmentLine,
    check_lines,
    clean_text,
    line_share,
    per_line,
)
from shop.domain.money import Money, minor_units
from shop.domain.pricing import Address, Totals


class OrderStatus(StrEnum):
    PENDING = "pending"  # placed, stock reserved, payment not yet captured
    PAID = "paid"
    FULFILLED = "fulfilled"  # picked and packed
    PARTLY_SHIPPED = "partly_shipped"  # some units left with a carrier, others are still to go
    SHIPPED = "shipped"  # every unit still owed has left
    DELIVERED = "delivered"
    CANCELED = "canceled"
    REFUNDED = "refunded"


_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELED}),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.PARTLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.PARTLY_SHIPPED: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# the stock an order holds in each state: reserved while pending, taken off the shelf once paid
HOLDS_RESERVATION = frozenset({OrderStatus.PENDING})
# sold, and some units not yet handed to the carrier: a refund or cancellation puts those back on the shelf
GOODS_IN_HAND = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.PARTLY_SHIPPED})
# where a shipment may leave from: staff fulfil (start packing) a paid order first, then ship it in parcels
SHIPS_FROM = frozenset({OrderStatus.FULFILLED, OrderStatus.PARTLY_SHIPPED})


class IllegalTransition(Conflict):
    def __init__(self, number: str, current: OrderStatus, wanted: OrderStatus) -> None:
        super().__init__(f"order {number} is {current.value} and cannot become {wanted.value}")
        self.number = number
        self.current = current
        self.wanted = wanted


def can_move(current: OrderStatus, wanted: OrderStatus) -> bool:
    return wanted in _NEXT[current]


def check_transition(number: str, current: OrderStatus, wanted: OrderStatus) -> None:
    if not can_move(current, wanted):
        raise IllegalTransition(number, current, wanted)


class PaymentStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    CAPTURED = "captured"
    FAILED = "failed"
    CANCELED = "canceled"
    PARTLY_REFUNDED = "partly_refunded"  # captured, and some of it given back
    REFUNDED = "refunded"
    MISMATCHED = "mismatched"  # money came for the order, but not its total: it pays nothing, staff look into it


# the payment brought the order's total, whatever has been given back since
MONEY_TAKEN = frozenset({PaymentStatus.CAPTURED, PaymentStatus.PARTLY_REFUNDED, PaymentStatus.REFUNDED})


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    product_slug: str
    unit_price: Money
    quantity: int
    weight_grams: int = 0

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Payment:
    provider: str
    status: PaymentStatus
    amount: Money
    reference: str | None = None  # the gateway's id for it
    action_url: str | None = None
    decline_reason: str | None = None
    alert: str | None = None  # for staff: money that came for the order but did not match it, one line per event

    def mismatched(self, alert: str) -> Payment:
        """The payment once money that does not match the order came: staff are told, and a payment that had not
        brought the order's money yet is MISMATCHED (the order stays unpaid); a captured or refunded one stays so."""
        status = self.status if self.status in MONEY_TAKEN else PaymentStatus.MISMATCHED
        return replace(self, status=status, alert=f"{self.alert}\n{alert}" if self.alert else alert)


@dataclass(slots=True)
class Order:
    number: str
    status: OrderStatus
    email: str
    customer_id: str | None
    lines: Sequence[OrderLine]
    shipping_address: Address
    shipping_method: str
    shipping_method_name: str
    totals: Totals
    payment: Payment
    created_at: datetime
    discount_code: str | None = None
    cart_id: str | None = None
    tracking: str | None = None
    reservation_expires_at: datetime | None = None
    history: list[tuple[OrderStatus, datetime]] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return self.totals.total.currency

    def move_to(self, wanted: OrderStatus, *, at: datetime) -> None:
        check_transition(self.number, self.status, wanted)
        self.status = wanted
        self.history.append((wanted, at))

    # --- goods: what has left, what is still owed -------------------------------------------------------------

    def shipped_units(self) -> list[int]:
        """Units shipped per line (index 0 is line 1)."""
        return per_line(len(self.lines), ((s.line, s.quantity) for shipment in self.shipments
                                          for s in shipment.lines))

    def refunded_units(self) -> list[int]:
        return per_line(len(self.lines), ((r.line, r.quantity) for refund in self.refunds if refund.counts
                                          for r in refund.lines))

    def restocked_units(self) -> list[int]:
        return per_line(len(self.lines), ((r.line, r.restock) for refund in self.refunds if refund.counts
                                          for r in refund.lines))

    def left_to_ship(self) -> list[int]:
        """Units per line still owed to the customer: ordered, less shipped, less refunded (a refunded unit is
        one the customer will not get, whether or not it had left)."""
        return [max(0, line.quantity - shipped - refunded) for line, shipped, refunded
                in zip(self.lines, self.shipped_units(), self.refunded_units(), strict=True)]

    def in_hand(self) -> list[tuple[str, int]]:
        """(SKU, units) sold but still on our shelf: not shipped and not already put back by a refund."""
        if self.status not in GOODS_IN_HAND:
            return []
        units: dict[str, int] = {}
        for line, shipped, restocked in zip(self.lines, self.shipped_units(), self.restocked_units(), strict=True):
            left = line.quantity - shipped - restocked
            if left > 0:
                units[line.sku] = units.get(line.sku, 0) + left
        return sorted(units.items())

    def plan_shipment(self, wanted: Sequence[tuple[int, int]], *, carrier: str, tracking: str,
                      at: datetime) -> tuple[Shipment, OrderStatus]:
        """The shipment of `wanted` (line, units) and the state it leaves the order in; nothing is changed.
        Refused: an order not packed or already gone, an unknown line, more units than are left to ship."""
        if self.status not in SHIPS_FROM:
            raise IllegalTransition(self.number, self.status, OrderStatus.SHIPPED)
        check_lines(wanted, len(self.lines))
        left = self.left_to_ship()
        for i, (line, quantity) in enumerate(wanted):
            if quantity > left[line - 1]:
                raise InvalidValue(f"lines[{i}].quantity",
                                   f"line {line} has {left[line - 1]} of {self.lines[line - 1].quantity} units "
                                   f"left to ship, not {quantity}")
        shipment = Shipment(number=len(self.shipments) + 1,
                            lines=tuple(ShipmentLine(line, quantity) for line, quantity in wanted),
                            carrier=clean_text(carrier, "carrier", limit=CARRIER_LIMIT),
                            tracking=clean_text(tracking, "tracking", limit=TRACKING_LIMIT), shipped_at=at)
        after = [units - sum(q for line, q in wanted if line == n) for n, units in enumerate(left, start=1)]
        return shipment, (OrderStatus.SHIPPED if not any(after) else OrderStatus.PARTLY_SHIPPED)

    def everything_left(self) -> list[tuple[int, int]]:
        """(line, units) of every unit still owed: what `ship` on the whole order sends."""
        return [(n, units) for n, units in enumerate(self.left_to_ship(), start=1) if units > 0]

    # --- money: what was paid, what went back -------------------------------------------------------------------

    @property
    def captured(self) -> Money:
        """What the payment brought: the order's total once captured, nothing before."""
        return self.totals.total if self.payment.status in MONEY_TAKEN else Money.zero(self.currency)

    @property
    def refunded(self) -> Money:
        """Money given back or being given back (a pending refund holds its amount until the gateway answers)."""
        return sum((refund.amount for refund in self.refunds if refund.counts), Money.zero(self.currency))

    @property
    def refundable(self) -> Money:
        """What may still be refunded; nothing once the payment is refunded in full, however that happened (a
        cancellation or the gateway's own refund records no refund of its own)."""
        if self.payment.status is PaymentStatus.REFUNDED:
            return Money.zero(self.currency)
        return max(self.captured - self.refunded, Money.zero(self.currency))

    def refund_by_key(self, key: str) -> Refund | None:
        return next((refund for refund in self.refunds if refund.key == key), None)

    def plan_refund(self, request: RefundRequest, *, key: str, by: str | None, at: datetime) -> Refund:
        """The refund `request` asks for, pending; nothing is changed. Its amount is the one asked for, or the
        lines' share (`line_share`); refused: no captured payment, units not bought or already refunded, more
        restocked than refunded, more money than is left."""
        if self.captured.amount <= 0:
            raise RefundRefused(self.number, "has no captured payment to refund")
        if self.refundable.amount <= 0:
            raise RefundRefused(self.number, "has been refunded in full")
        reason = clean_text(request.reason, "reason", limit=REASON_LIMIT)
        lines = request.lines
        if lines:
            check_lines([(line.line, line.quantity) for line in lines], len(self.lines))
        refunded = self.refunded_units()
        for i, line in enumerate(lines):
            bought = self.lines[line.line - 1].quantity
            if line.quantity > bought - refunded[line.line - 1]:
                raise InvalidValue(f"lines[{i}].quantity",
                                   f"line {line.line} has {bought - refunded[line.line - 1]} of {bought} units "
                                   f"left to refund, not {line.quantity}")
            if not 0 <= line.restock <= line.quantity:
                raise InvalidValue(f"lines[{i}].restock", "restock at most the units refunded")
        amount = request.amount if request.amount is not None else self._lines_share(lines)
        if amount is None:
            raise InvalidValue("amount", "give an amount, lines, or both")
        if amount.currency != self.currency:
            raise InvalidValue("amount", f"the order was paid in {self.currency}")
        if amount.amount <= 0:
            raise InvalidValue("amount", "must be more than zero")
        if amount > self.refundable:
            raise InvalidValue("amount", f"{amount} is more than the {self.refundable} left to refund "
                                         f"(paid {self.captured}, refunded {self.refunded})")
        return Refund(number=len(self.refunds) + 1, key=key, fingerprint=request.fingerprint(), amount=amount,
                      lines=lines, reason=reason, status=RefundStatus.PENDING, created_at=at, by=by)

    def _lines_share(self, lines: Sequence[RefundLine]) -> Money | None:
        """What the lines' units paid. Each line's share is counted from its first unit on (the share of all its
        units refunded so far and these, less the share of those before), so refunding a line unit by unit gives
        back exactly what refunding it at once would; a cent or so above what is left (lines rounded each on its
        own) is capped to it."""
        if not lines:
            return None
        before = self.refunded_units()
        share = Money.zero(self.currency)
        for line in lines:
            price, earlier = self.lines[line.line - 1].unit_price, before[line.line - 1]
            share += line_share(price, earlier + line.quantity, self.totals) - line_share(price, earlier, self.totals)
        slack = Money(Decimal(len(lines)).scaleb(-minor_units(self.currency)), self.currency)
        if self.refundable < share <= self.refundable + slack:
            return self.refundable
        return share

    def whole_refund(self) -> RefundRequest:
        """What refunding the whole order gives back: all the money left, every unit not yet refunded, and the
        units still on our shelf restocked."""
        restock = dict(self.in_hand())
        lines = []
        for n, (line, refunded) in enumerate(zip(self.lines, self.refunded_units(), strict=True), start=1):
            units = line.quantity - refunded
            if units > 0:
                back = min(units, restock.get(line.sku, 0))
                restock[line.sku] = restock.get(line.sku, 0) - back
                lines.append(RefundLine(n, units, back))
        return RefundRequest(amount=self.refundable, lines=tuple(lines), reason="whole order")

    def settle(self, refund: Refund) -> None:
        """Keep `refund` as the gateway left it (replacing the one of its number)."""
        self.refunds = [refund if kept.number == refund.number else kept for kept in self.refunds]


class RefundRefused(Conflict):
    def __init__(self, number: str, why: str) -> None:
        super().__init__(f"order {number} {why}")
        self.number = number


ORDER_NUMBER_BASE = 100000


def order_number(serial: int, *, prefix: str = "") -> str:
    """A number a person can read out on the phone: the prefix and at least six digits, e.g. 100042."""
    return f"{prefix}{ORDER_NUMBER_BASE + serial}"


def hash_access_key(key: str) -> str:
    """What an order keeps of the key that lets a guest see it (the key itself is shown once, at checkout)."""
    return hashlib.sha256(key.encode()).hexdigest()


def access_key_matches(stored_hash: str, key: str) -> bool:
    """Whether `key` is the order's access key; compared in constant time."""
    return hmac.compare_digest(stored_hash, hash_access_key(key))


def may_have_moves(status: OrderStatus) -> bool:
    """Whether an order in `status` can have shipments or refunds: a pending order has neither, as nothing ships
    and nothing is refunded before its money is captured."""
    return status is not OrderStatus.PENDING
