"""`TestGateway`: the built-in gateway for trying the shop without a payment provider. No network, no memory.

Its tokens behave like Stripe's test cards. The outcome is written into the payment reference
(`pi_test_<outcome>_<HMAC of the idempotency key>`), so `status` answers the same in every process and after a
restart, and the same idempotency key always gives the same payment. The HMAC's key comes from the gateway's
secret (every process of a shop has the same): a 3-D Secure reference is what lets its bearer confirm the payment
(`/api/v1/payments/test/authenticate/{ref}`, anonymous, as a bank's page is), so nobody may work it out from the
order number the idempotency key is made of. Its webhooks are signed as Stripe's are.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from shop.domain.errors import InvalidValue
from shop.domain.money import Money
from shop.domain.payments import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    EventKind,
    GatewayEvent,
    InvalidWebhook,
    RefundResult,
    check_token,
)
from shop.infrastructure.payments import signatures

# token → (outcome, decline reason)
TOKENS: dict[str, tuple[ChargeStatus, str | None]] = {
    "tok_visa": (ChargeStatus.SUCCEEDED, None),
    "tok_mastercard": (ChargeStatus.SUCCEEDED, None),
    "tok_chargeDeclined": (ChargeStatus.DECLINED, "card_declined"),
    "tok_insufficientFunds": (ChargeStatus.DECLINED, "insufficient_funds"),
    "tok_threeDSecure": (ChargeStatus.REQUIRES_ACTION, None),
    "tok_processing": (ChargeStatus.PROCESSING, None),
}
UNKNOWN_REASON = "unknown test token"
# 32 hex digits: an HMAC; 24: a plain hash of the key, as references were made before (still pending orders)
_REF = re.compile(r"pi_test_(succeeded|requires_action|processing|declined)_([0-9a-f]{32}|[0-9a-f]{24})")
_REF_KEY_LABEL = b"test gateway: payment references"
_KINDS = {kind.value: kind for kind in EventKind if kind is not EventKind.OTHER}


def _key_hash(key: str) -> str:
    if not key:
        raise ValueError("an idempotency key is needed")
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _outcome(payment_ref: str) -> ChargeStatus:
    match = _REF.fullmatch(payment_ref)
    if match is None:
        raise ValueError("not a payment of the test gateway")
    return ChargeStatus(match.group(1))


class TestGateway:
    """A PaymentGateway whose answers depend only on the token and the idempotency key."""

    __test__ = False  # not a pytest test class, whatever its name
    name = "test"

    def __init__(self, *, webhook_secret: str, public_url: str) -> None:
        if not webhook_secret:
            raise ValueError("test gateway: a webhook secret is needed")
        self._secret = webhook_secret
        self._ref_key = hmac.new(webhook_secret.encode(), _REF_KEY_LABEL, hashlib.sha256).digest()
        self._public_url = public_url.rstrip("/")

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        token = check_token(request.token)
        if request.amount.amount <= 0:
            raise ValueError("test gateway: only a positive amount can be charged")
        status, reason = TOKENS.get(token, (ChargeStatus.DECLINED, UNKNOWN_REASON))
        ref = f"pi_test_{status.value}_{self._unguessable(request.idempotency_key)}"
        if status is ChargeStatus.REQUIRES_ACTION:
            return ChargeResult(status, ref, action_url=f"{self._public_url}/api/v1/payments/test/authenticate/{ref}")
        return ChargeResult(status, ref, decline_reason=reason)

    def _unguessable(self, key: str) -> str:
        if not key:
            raise ValueError("an idempotency key is needed")
        return hmac.new(self._ref_key, key.encode(), hashlib.sha256).hexdigest()[:32]

    async def status(self, payment_ref: str) -> ChargeStatus:
        return _outcome(payment_ref)

    async def refund(self, payment_ref: str, amount: Money, *, idempotency_key: str) -> RefundResult:
        # a 3-D Secure payment is captured once the customer authenticates, which this stateless gateway
        # learns only through the shop (the authenticate route's signed event), so it may be refunded too
        if _outcome(payment_ref) not in (ChargeStatus.SUCCEEDED, ChargeStatus.REQUIRES_ACTION):
            raise ValueError("test gateway: only a succeeded payment can be refunded")
        if amount.amount <= 0:
            raise ValueError("test gateway: only a positive amount can be refunded")
        return RefundResult(f"re_test_{_key_hash(idempotency_key)}", amount)

    def event_body(self, *, event_id: str, kind: EventKind, payment_ref: str, reference: str | None,
                   amount: Money) -> bytes:
        """A webhook body as this gateway sends it (amounts as decimal text, never floats)."""
        return json.dumps({"id": event_id, "type": kind.value, "payment_ref": payment_ref, "reference": reference,
                           "amount": str(amount.amount), "currency": amount.currency},
                          separators=(",", ":")).encode()

    def signed_headers(self, body: bytes, *, now: datetime) -> dict[str, str]:
        """The headers that make `body` a webhook this gateway accepts at `now`."""
        return {"Content-Type": "application/json",
                signatures.HEADER: signatures.sign(body, self._secret, now=now)}

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> GatewayEvent:
        signatures.verify(body, signatures.header_value(headers), self._secret, now=now)
        try:
            event = json.loads(body, parse_float=Decimal)
        except ValueError:  # includes undecodable bytes
            raise InvalidWebhook("the webhook body is not JSON") from None
        if not isinstance(event, dict):
            raise InvalidWebhook("the webhook body is not a JSON object")
        return _event(event)


def _required(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidWebhook(f"the webhook has no valid {key!r}")
    return value


def _event(event: dict[str, Any]) -> GatewayEvent:
    event_id = _required(event, "id")
    kind = _KINDS.get(_required(event, "type"), EventKind.OTHER)
    if kind is EventKind.OTHER:
        ref = event.get("payment_ref")
        return GatewayEvent(event_id, kind, ref if isinstance(ref, str) else "", None, None)
    payment_ref, currency = _required(event, "payment_ref"), _required(event, "currency")
    amount = event.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise InvalidWebhook("the webhook has no valid 'amount'")
    try:
        money = Money.of(amount, currency)
        exact = money.amount == Decimal(amount) and money.amount >= 0
    except (InvalidValue, ArithmeticError):
        exact = False
    if not exact:
        raise InvalidWebhook("the webhook's 'amount' is not a non-negative, exact amount of its 'currency'")
    reference = event.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise InvalidWebhook("the webhook's 'reference' is not text")
    return GatewayEvent(event_id, kind, payment_ref, money, reference or None)
