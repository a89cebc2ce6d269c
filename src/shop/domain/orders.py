"""Orders: a snapshot of what was bought, at what price, shipped where, and the states an order moves through."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shop.domain.errors import Conflict
from shop.domain.money import Money
from shop.domain.pricing import Address, Totals


class OrderStatus(StrEnum):
    PENDING = "pending"  # placed, stock reserved, payment not yet captured
    PAID = "paid"
    FULFILLED = "fulfilled"  # picked and packed
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELED = "canceled"
    REFUNDED = "refunded"


_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELED}),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# the stock an order holds in each state: reserved while pending, taken off the shelf once paid
HOLDS_RESERVATION = frozenset({OrderStatus.PENDING})
# sold, but not yet handed to the carrier: a refund or cancellation puts these goods back on the shelf
GOODS_IN_HAND = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED})


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
    REFUNDED = "refunded"
    MISMATCHED = "mismatched"  # money came for the order, but not its total: it pays nothing, staff look into it


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
        status = self.status if self.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED) \
            else PaymentStatus.MISMATCHED
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

    @property
    def currency(self) -> str:
        return self.totals.total.currency

    def move_to(self, wanted: OrderStatus, *, at: datetime) -> None:
        check_transition(self.number, self.status, wanted)
        self.status = wanted
        self.history.append((wanted, at))


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
