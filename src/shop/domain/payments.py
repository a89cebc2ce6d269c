"""What the shop asks a payment gateway and what it hears back, in the shop's own terms; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from shop.domain.errors import DomainError, InvalidValue
from shop.domain.money import Money

_TOKEN = re.compile(r"[A-Za-z0-9_]{3,255}")
# 13 to 19 digits, single spaces or dashes allowed between them, not part of a longer run of digits.
_CARD_NUMBER = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"  # the money is captured
    REQUIRES_ACTION = "requires_action"  # the customer must authenticate first (e.g. 3-D Secure)
    PROCESSING = "processing"  # the outcome comes later, by webhook or a status query
    DECLINED = "declined"
    CANCELED = "canceled"


class EventKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    REFUNDED = "refund.succeeded"
    OTHER = "other"  # an event the shop does not act on


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    reference: str  # our order number
    amount: Money
    token: str  # a payment method token from the client, never a card number
    idempotency_key: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    payment_ref: str | None  # the gateway's id for the payment, when it made one
    action_url: str | None = None  # where the customer authenticates, for REQUIRES_ACTION
    decline_reason: str | None = None  # the gateway's short code, e.g. "insufficient_funds"


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_ref: str
    amount: Money


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A webhook whose signature checked out. For REFUNDED, Stripe's amount is the total refunded so far."""

    id: str
    kind: EventKind
    payment_ref: str
    amount: Money | None
    reference: str | None  # our order number, when the gateway echoes it


def payment_mismatch(event: GatewayEvent, total: Money) -> str | None:
    """Why a payment event does not pay an order of `total`, or None when it does: it must bring exactly the
    order's total, in the order's currency (a gateway's rounding or a converted currency is for staff to judge)."""
    if event.amount == total:
        return None
    brought = f"{event.amount}" if event.amount is not None else "no amount"
    return f"payment {event.payment_ref} (event {event.id}) brought {brought}, the order's total is {total}"


class InvalidWebhook(DomainError):
    """A webhook that cannot be trusted or read: bad signature, too old, or malformed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPaymentToken(InvalidValue):
    """Not a payment method token; the message never repeats what was sent (it may be a card number)."""

    def __init__(self, message: str) -> None:
        super().__init__("payment_token", message)


def check_token(token: str) -> str:
    """The token if it can be one; card numbers are refused before anything is sent anywhere."""
    if not isinstance(token, str):
        raise InvalidPaymentToken("must be a payment method token from the payment form")
    if _CARD_NUMBER.search(token):
        raise InvalidPaymentToken("looks like a card number; card numbers are never accepted here, "
                                  "send the payment method token from the payment form instead")
    if not _TOKEN.fullmatch(token):
        raise InvalidPaymentToken("is not a payment method token (3 to 255 letters, digits or underscores)")
    return token
