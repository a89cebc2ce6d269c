"""The payment gateway port: charge, look up, refund, and read the gateway's signed webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from shop.domain.money import Money
from shop.domain.payments import ChargeRequest, ChargeResult, ChargeStatus, EventKind, GatewayEvent, RefundResult


class GatewayUnavailable(Exception):
    """The gateway was unreachable, slow or failing, so the outcome is unknown: reconcile later with `status`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:300]


class PaymentConfigurationError(Exception):
    """The gateway refused the request itself (bad key, bad parameter): retrying will not help, a person must."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:300]


class PaymentGateway(Protocol):
    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Take the payment; the same idempotency key never charges twice."""
        ...

    async def status(self, payment_ref: str) -> ChargeStatus:
        """Where a payment stands now, to reconcile one whose outcome was missed."""
        ...

    async def refund(self, payment_ref: str, amount: Money, *, idempotency_key: str) -> RefundResult:
        """Give back `amount` of a succeeded payment; the same key twice refunds once."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> GatewayEvent:
        """Check the signature over the raw body, then read the event; raise InvalidWebhook if either fails."""
        ...


@runtime_checkable
class SimulatedGateway(PaymentGateway, Protocol):
    """A gateway for trying the shop out (the built-in `test` one) that can act as the customer's bank."""

    def event_body(self, *, event_id: str, kind: EventKind, payment_ref: str, reference: str | None,
                   amount: Money) -> bytes: ...

    def signed_headers(self, body: bytes, *, now: datetime) -> dict[str, str]: ...
