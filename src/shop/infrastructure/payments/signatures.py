"""Stripe's webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…]`, where each v1 is an
HMAC-SHA256 under the endpoint secret of `f"{t}."` followed by the raw body. Several v1 values appear while a
secret is being rolled; one match is enough. The timestamp bounds how long a captured webhook can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

from shop.domain.payments import InvalidWebhook

HEADER = "Stripe-Signature"
TOLERANCE = timedelta(minutes=5)
_MAX_HEADER = 4096  # a handful of signatures; anything longer is not one


def header_value(headers: Mapping[str, str]) -> str | None:
    """The signature header, whatever the case of its name (a plain dict is not case-insensitive)."""
    found = headers.get(HEADER)
    if found is not None:
        return found
    wanted = HEADER.lower()
    return next((value for name, value in headers.items() if name.lower() == wanted), None)


def _seconds(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("webhook signatures need an aware datetime for `now`")
    return int(now.timestamp())


def _digest(body: bytes, secret: str, timestamp: int) -> str:
    if not secret:
        raise ValueError("no webhook secret is configured")
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, *, now: datetime) -> str:
    """The Stripe-Signature header for `body` sent at `now`."""
    timestamp = _seconds(now)
    return f"t={timestamp},v1={_digest(body, secret, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidWebhook("the webhook signature header is malformed")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise InvalidWebhook("the webhook signature header has no valid timestamp")
    if not signatures:
        raise InvalidWebhook("the webhook signature header has no v1 signature")
    return int(timestamps[0]), signatures


def verify(body: bytes, header: str | None, secret: str, *, now: datetime, tolerance: timedelta = TOLERANCE) -> None:
    """Return if `header` signs exactly these bytes with `secret` within `tolerance` of `now`; else InvalidWebhook."""
    current = _seconds(now)
    if not header:
        raise InvalidWebhook(f"the {HEADER} header is missing")
    if len(header) > _MAX_HEADER or not header.isascii():
        raise InvalidWebhook("the webhook signature header is malformed")
    timestamp, signatures = _parse(header)
    expected = _digest(body, secret, timestamp).encode()
    matched = False
    for candidate in signatures:  # every one is compared, so timing says nothing about which matched
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise InvalidWebhook("the webhook signature does not match")
    if abs(current - timestamp) > tolerance.total_seconds():
        raise InvalidWebhook("the webhook timestamp is outside the allowed window (replayed, or a clock is off)")
