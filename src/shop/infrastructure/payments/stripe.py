"""`StripeGateway`: card payments through Stripe's PaymentIntents API (form-encoded POSTs, Bearer secret key,
a pinned API version, an Idempotency-Key on every POST) and Stripe's signed webhooks.

What it raises and logs never holds the secret key, the webhook secret or the customer's payment token: reasons
are built from the HTTP status, Stripe's error type and code, and Stripe's message with those scrubbed out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx

from shop.domain.errors import InvalidValue
from shop.domain.money import Money, minor_units
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
from shop.infrastructure.network import is_loopback
from shop.infrastructure.payments import signatures
from shop.services.payment_gateway import GatewayUnavailable, PaymentConfigurationError

__all__ = ["STRIPE_API", "STRIPE_VERSION", "PaymentConfigurationError", "StripeConfig", "StripeGateway"]

log = logging.getLogger(__name__)
STRIPE_API = "https://api.stripe.com"
STRIPE_VERSION = "2024-06-20"  # the API version this adapter was written against; bump it on purpose

# Stripe's API amounts follow ISO 4217 minor units except for these (Stripe's "zero-decimal" list and its
# special cases): sending ISO's exponent for them would charge a hundred times too much, or too little.
_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                           "XAF", "XOF", "XPF"})
_TWO_DECIMAL = frozenset({"ISK"})  # zero-decimal in ISO 4217, two in Stripe's API (in multiples of 100)
_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_KEYS = re.compile(r"\b(?:sk|rk|pk|whsec)_[A-Za-z0-9_*]+")
_STATUSES = {"succeeded": ChargeStatus.SUCCEEDED, "requires_action": ChargeStatus.REQUIRES_ACTION,
             "processing": ChargeStatus.PROCESSING, "requires_payment_method": ChargeStatus.DECLINED,
             "canceled": ChargeStatus.CANCELED,
             # authorised but not captured: the shop never asks for manual capture, so Stripe is still busy
             "requires_capture": ChargeStatus.PROCESSING}
_EVENTS = {"payment_intent.succeeded": EventKind.PAYMENT_SUCCEEDED,
           "payment_intent.payment_failed": EventKind.PAYMENT_FAILED,
           "charge.refunded": EventKind.REFUNDED}


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe's API puts in an amount of `currency`."""
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _TWO_DECIMAL:
        return 2
    return minor_units(currency)


def to_stripe_amount(amount: Money) -> int:
    """The whole number Stripe expects for `amount`; refused when Stripe cannot express it exactly."""
    scaled = amount.amount.scaleb(stripe_exponent(amount.currency))
    if scaled <= 0 or scaled != scaled.to_integral_value():
        raise ValueError(f"Stripe cannot take {amount}: the amount must be positive and exact in its currency")
    return int(scaled)


def from_stripe_amount(value: int, currency: str) -> Money:
    return Money(Decimal(value).scaleb(-stripe_exponent(currency)), currency)


@dataclass(frozen=True, slots=True)
class StripeConfig:
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)  # the endpoint's signing secret, whsec_…
    base_url: str = STRIPE_API
    timeout: float = 20.0
    return_url: str | None = None  # where a redirecting payment method sends the customer back; None: no redirects

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("Stripe: the base URL must be an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("Stripe: the secret key would cross the network unencrypted; use an https URL")
        if not self.secret_key or not self.webhook_secret:
            raise ValueError("Stripe: the secret key and the webhook signing secret are both needed")
        if self.timeout <= 0:
            raise ValueError("Stripe: the timeout must be positive")
        if self.return_url is not None and urlsplit(self.return_url).scheme not in ("http", "https"):
            raise ValueError("Stripe: the return URL must be an http(s) URL")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        return _dict(response.json())
    except ValueError:
        return {}


def _payment_status(intent: dict[str, Any]) -> ChargeStatus:
    raw = intent.get("status")
    status = _STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        # a 2xx we cannot read: the payment may exist, so its outcome is unknown rather than failed
        raise GatewayUnavailable("Stripe answered with a payment the shop cannot read")
    return status


def _charge_result(intent: dict[str, Any]) -> ChargeResult:
    status, ref = _payment_status(intent), _text(intent.get("id"))
    if ref is None:
        raise GatewayUnavailable("Stripe answered with a payment that has no id")
    if status is ChargeStatus.REQUIRES_ACTION:
        redirect = _dict(_dict(intent.get("next_action")).get("redirect_to_url"))
        return ChargeResult(status, ref, action_url=_text(redirect.get("url")))
    if status is ChargeStatus.DECLINED:
        error = _dict(intent.get("last_payment_error"))
        reason = _text(error.get("decline_code")) or _text(error.get("code")) or "payment_failed"
        return ChargeResult(status, ref, decline_reason=reason)
    return ChargeResult(status, ref)


class StripeGateway:
    """A PaymentGateway over one long-lived HTTP client; close it with `aclose` on shutdown."""

    name = "stripe"

    def __init__(self, config: StripeConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"), timeout=config.timeout, follow_redirects=False,
            transport=transport,
            headers={"Authorization": f"Bearer {config.secret_key}", "Stripe-Version": STRIPE_VERSION})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        token = check_token(request.token)  # before anything leaves the machine
        # the Payment Element gives a confirmation token (ctoken_…); an API client may still send a PaymentMethod
        method = "confirmation_token" if token.startswith("ctoken_") else "payment_method"
        form = {"amount": str(to_stripe_amount(request.amount)), "currency": request.amount.currency.lower(),
                method: token, "confirm": "true", "metadata[order]": request.reference,
                "automatic_payment_methods[enabled]": "true"}
        if request.email:
            form["receipt_email"] = request.email
        if self._config.return_url:
            form["return_url"] = self._config.return_url
        else:
            form["automatic_payment_methods[allow_redirects]"] = "never"
        response = await self._send("POST", "/v1/payment_intents", form=form, idempotency_key=request.idempotency_key)
        body = _json(response)
        if response.is_success:
            result = _charge_result(body)
        elif response.status_code == 402 and _dict(body.get("error")).get("type") == "card_error":
            error = _dict(body.get("error"))
            result = ChargeResult(ChargeStatus.DECLINED, _text(_dict(error.get("payment_intent")).get("id")),
                                  decline_reason=_text(error.get("decline_code")) or _text(error.get("code"))
                                  or "card_declined")
        else:
            raise self._refused(response, body, token)
        log.info("Stripe payment %s for order %s: %s", result.payment_ref, request.reference, result.status)
        return result

    async def status(self, payment_ref: str) -> ChargeStatus:
        if not _ID.fullmatch(payment_ref):
            raise ValueError("not a Stripe payment id")
        response = await self._send("GET", f"/v1/payment_intents/{payment_ref}")
        body = _json(response)
        if not response.is_success:
            raise self._refused(response, body)
        return _payment_status(body)

    async def client_secret(self, payment_ref: str) -> str | None:
        """The PaymentIntent's client secret, which Stripe.js needs to finish a 3-D Secure challenge; None once
        the payment needs nothing more of the customer. Never logged: it lets its holder confirm the payment."""
        if not _ID.fullmatch(payment_ref):
            raise ValueError("not a Stripe payment id")
        response = await self._send("GET", f"/v1/payment_intents/{payment_ref}")
        body = _json(response)
        if not response.is_success:
            raise self._refused(response, body)
        if _payment_status(body) is not ChargeStatus.REQUIRES_ACTION:
            return None
        secret = _text(body.get("client_secret"))
        if secret is None or not secret.startswith(f"{payment_ref}_secret_"):
            raise GatewayUnavailable("Stripe answered with a payment the shop cannot read")
        return secret

    async def refund(self, payment_ref: str, amount: Money, *, idempotency_key: str) -> RefundResult:
        if not _ID.fullmatch(payment_ref):
            raise ValueError("not a Stripe payment id")
        form = {"payment_intent": payment_ref, "amount": str(to_stripe_amount(amount))}
        response = await self._send("POST", "/v1/refunds", form=form, idempotency_key=idempotency_key)
        body = _json(response)
        if not response.is_success:
            raise self._refused(response, body)
        refund_ref, value, currency = _text(body.get("id")), body.get("amount"), _text(body.get("currency"))
        if refund_ref is None or isinstance(value, bool) or not isinstance(value, int) or currency is None:
            raise GatewayUnavailable("Stripe answered with a refund the shop cannot read")
        log.info("Stripe refund %s of payment %s: %s", refund_ref, payment_ref, body.get("status"))
        return RefundResult(refund_ref, from_stripe_amount(value, currency.upper()))

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> GatewayEvent:
        signatures.verify(body, signatures.header_value(headers), self._config.webhook_secret, now=now)
        try:
            event = json.loads(body, parse_float=Decimal)
        except ValueError:  # includes undecodable bytes
            raise InvalidWebhook("the webhook body is not JSON") from None
        return _event(_dict(event))

    async def _send(self, method: str, path: str, *, form: dict[str, str] | None = None,
                    idempotency_key: str | None = None) -> httpx.Response:
        headers: dict[str, str] = {}
        if method == "POST":
            if not idempotency_key:
                raise ValueError("Stripe: every POST needs an idempotency key")
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = await self._client.request(method, path, data=form, headers=headers)
        except httpx.TimeoutException:
            raise GatewayUnavailable("Stripe did not answer in time") from None
        except httpx.HTTPError as exc:  # `from None`: the chained error holds the request and its headers
            raise GatewayUnavailable(f"cannot reach Stripe: {type(exc).__name__}") from None
        # 409: a request with the same idempotency key is still running, so its outcome is not known yet
        if response.status_code >= 500 or response.status_code in (409, 429):
            raise GatewayUnavailable(f"Stripe answered HTTP {response.status_code}")
        return response

    def _refused(self, response: httpx.Response, body: dict[str, Any], *hidden: str) -> PaymentConfigurationError:
        error = _dict(body.get("error"))
        kind = "/".join(filter(None, (_text(error.get("type")), _text(error.get("code"))))) or "no error code"
        message = _text(error.get("message")) or ""
        for secret in (self._config.secret_key, self._config.webhook_secret, *hidden):
            message = message.replace(secret, "[hidden]")
        message = _KEYS.sub("[hidden]", message)[:200]
        return PaymentConfigurationError(f"Stripe refused the request: HTTP {response.status_code} ({kind})"
                                         + (f": {message}" if message else ""))


def _event(event: dict[str, Any]) -> GatewayEvent:
    event_id, kind_name, data = _text(event.get("id")), _text(event.get("type")), _dict(event.get("data"))
    target = data.get("object")
    if event_id is None or kind_name is None or not isinstance(target, dict):
        raise InvalidWebhook("the webhook is not a Stripe event")
    kind = _EVENTS.get(kind_name, EventKind.OTHER)
    if kind is EventKind.OTHER:
        return GatewayEvent(event_id, kind, _text(target.get("payment_intent")) or "", None, None)
    if kind is EventKind.REFUNDED:  # a Charge: `amount` is what was charged, `amount_refunded` the refunds so far
        payment_ref, value = _text(target.get("payment_intent")), target.get("amount_refunded")
    else:  # a PaymentIntent: for a success, what it collected (`amount_received`) is what pays an order
        payment_ref, value = _text(target.get("id")), target.get("amount")
        received = target.get("amount_received")
        if kind is EventKind.PAYMENT_SUCCEEDED and isinstance(received, int) and not isinstance(received, bool):
            value = received
    currency = _text(target.get("currency"))
    if payment_ref is None or isinstance(value, bool) or not isinstance(value, int) or value < 0 or currency is None:
        raise InvalidWebhook(f"the {kind_name} event lacks its payment, amount or currency")
    try:
        amount = from_stripe_amount(value, currency.upper())
    except InvalidValue:
        raise InvalidWebhook(f"the {kind_name} event has an unknown currency") from None
    return GatewayEvent(event_id, kind, payment_ref, amount, _text(_dict(target.get("metadata")).get("order")))
