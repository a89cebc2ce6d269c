"""Fakes of what the commerce services talk to besides the main store: a payment gateway, the metrics' event
sink, the mail templates and the catalogue's in-stock flags (ports in services/payment_gateway.py,
commerce_events.py, email_delivery.py and commerce_ports.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from shop.domain.messages import Email
from shop.domain.money import Money
from shop.domain.orders import Order, OrderStatus
from shop.domain.payments import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    EventKind,
    GatewayEvent,
    InvalidWebhook,
    RefundResult,
)
from shop.services.payment_gateway import GatewayUnavailable

# token → what the bank says; any other token is declined, as the test gateway does
OUTCOMES: dict[str, tuple[ChargeStatus, str | None]] = {
    "tok_visa": (ChargeStatus.SUCCEEDED, None),
    "tok_declined": (ChargeStatus.DECLINED, "card_declined"),
    "tok_threeDSecure": (ChargeStatus.REQUIRES_ACTION, None),
    "tok_processing": (ChargeStatus.PROCESSING, None),
}
UNAVAILABLE = "tok_unreachable"  # the gateway does not answer: the outcome is unknown
SIGNATURE = "fake-signature"


@dataclass(slots=True)
class FakePayment:
    reference: str  # our order number
    amount: Money
    status: ChargeStatus


@dataclass(frozen=True, slots=True)
class Refund:
    payment_ref: str
    amount: Money
    idempotency_key: str


class FakeGateway:
    """PaymentGateway and SimulatedGateway in memory. Like a real gateway, one idempotency key is one payment
    (asked twice, it answers what it answered first); a refund key refunds once. Its webhooks are JSON signed by
    a hash of the body and its secret."""

    def __init__(self, name: str = "test", *, secret: str = "whsec_fake") -> None:
        self.name = name
        self._secret = secret
        self.payments: dict[str, FakePayment] = {}  # by payment reference
        self._by_key: dict[str, str] = {}
        self.charges: list[ChargeRequest] = []  # every charge asked for, in order, repeats included
        self.refunds: dict[str, Refund] = {}  # by idempotency key
        self.status_asked: list[str] = []
        self.unavailable = False  # every call raises GatewayUnavailable while set

    def _reachable(self) -> None:
        if self.unavailable:
            raise GatewayUnavailable("the fake gateway is down")

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.charges.append(request)
        self._reachable()
        if request.token == UNAVAILABLE:
            raise GatewayUnavailable("no answer")
        status, reason = OUTCOMES.get(request.token, (ChargeStatus.DECLINED, "unknown token"))
        ref = self._by_key.get(request.idempotency_key)
        if ref is None:
            ref = f"pay_{len(self.payments) + 1}"
            self._by_key[request.idempotency_key] = ref
            self.payments[ref] = FakePayment(request.reference, request.amount, status)
        status = self.payments[ref].status
        action = f"https://bank.example/authenticate/{ref}" if status is ChargeStatus.REQUIRES_ACTION else None
        return ChargeResult(status, ref, action_url=action,
                            decline_reason=reason if status is ChargeStatus.DECLINED else None)

    async def status(self, payment_ref: str) -> ChargeStatus:
        self.status_asked.append(payment_ref)
        self._reachable()
        return self.payments[payment_ref].status

    async def refund(self, payment_ref: str, amount: Money, *, idempotency_key: str) -> RefundResult:
        self._reachable()
        if self.payments[payment_ref].status is not ChargeStatus.SUCCEEDED:
            raise ValueError(f"payment {payment_ref} has not succeeded: nothing to refund")
        given = sum((r.amount.amount for key, r in self.refunds.items()
                     if r.payment_ref == payment_ref and key != idempotency_key), Decimal(0))
        if idempotency_key not in self.refunds and given + amount.amount > self.payments[payment_ref].amount.amount:
            raise ValueError(f"refund of {amount} exceeds what is left of payment {payment_ref}")  # as Stripe does
        self.refunds.setdefault(idempotency_key, Refund(payment_ref, amount, idempotency_key))
        return RefundResult(f"re_{idempotency_key}", amount)

    def _sign(self, body: bytes) -> str:
        return hashlib.sha256(self._secret.encode() + body).hexdigest()

    def event_body(self, *, event_id: str, kind: EventKind, payment_ref: str, reference: str | None,
                   amount: Money) -> bytes:
        return json.dumps({"id": event_id, "type": kind.value, "payment_ref": payment_ref, "reference": reference,
                           "amount": str(amount.amount), "currency": amount.currency}).encode()

    def signed_headers(self, body: bytes, *, now: datetime) -> dict[str, str]:
        return {SIGNATURE: self._sign(body)}

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> GatewayEvent:
        if headers.get(SIGNATURE) != self._sign(body):
            raise InvalidWebhook("the signature does not match")
        event = json.loads(body)
        kinds = {kind.value: kind for kind in EventKind}
        amount = Money(Decimal(event["amount"]), event["currency"]) if event.get("amount") is not None else None
        return GatewayEvent(event["id"], kinds.get(event["type"], EventKind.OTHER), event["payment_ref"], amount,
                            event.get("reference"))

    def signed(self, *, event_id: str, kind: EventKind, payment_ref: str, amount: Money,
               reference: str | None = None) -> tuple[bytes, dict[str, str]]:
        """For tests: a webhook this gateway sent, body and headers."""
        body = self.event_body(event_id=event_id, kind=kind, payment_ref=payment_ref, reference=reference,
                               amount=amount)
        return body, self.signed_headers(body, now=datetime.now(UTC))


class FakeEvents:
    """CommerceEvents that remember what they were told: (what happened, order number, order status)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, OrderStatus]] = []

    def order_placed(self, order: Order) -> None:
        self.seen.append(("placed", order.number, order.status))

    def payment_captured(self, order: Order) -> None:
        self.seen.append(("captured", order.number, order.status))

    def payment_declined(self, order: Order) -> None:
        self.seen.append(("declined", order.number, order.status))


class FakeMailTemplates:
    """MailTemplates: the subject is the template's name and the order's number; the text lists the context."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def render(self, template: str, /, *, to: str | Sequence[str], reply_to: str | None = None,
               **context: object) -> Email:
        self.rendered.append(template)
        order = context.get("order")
        number = order.get("number") if isinstance(order, Mapping) else ""
        recipients = (to,) if isinstance(to, str) else tuple(to)
        return Email(to=recipients, subject=f"{template} {number}".strip(), text=repr(sorted(context.items())),
                     reply_to=reply_to)


class FakeInStockProjection:
    """InStockProjection: which SKUs belong to which product, and each product's flag."""

    def __init__(self, products: Mapping[int, Sequence[str]]) -> None:
        self.products = {pid: list(skus) for pid, skus in products.items()}
        self.flags: dict[int, bool] = dict.fromkeys(self.products, True)
        self.unavailable = False  # the catalogue's store is away: every call raises while set

    async def siblings(self, skus: Sequence[str]) -> dict[int, list[str]]:
        if self.unavailable:
            raise ConnectionError("the posts store is away")
        wanted = set(skus)
        return {pid: list(group) for pid, group in self.products.items() if wanted.intersection(group)}

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        changed = {pid: flag for pid, flag in flags.items() if self.flags.get(pid) is not flag}
        self.flags.update(changed)
        return len(changed)
