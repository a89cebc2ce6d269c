"""What the request log may keep: headers, query strings and small bodies with their secrets replaced.

A header, query parameter or body field is secret when its name (case-insensitive) contains one of the marks
below: `card_number`, `X-Api-Key`, `newPassword` and `otp` all are. Names are kept, so a reader still sees which
fields a request carried; only the values go. Erring towards redacting too much (a `postal_code` is not a
secret) is the price of never keeping a password, token, one-time code or card number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson

REDACTED = "[redacted]"
UNREADABLE = "[unreadable]"
_HEADER_MARKS = ("auth", "cookie", "token", "secret", "key", "passw", "signature", "session", "csrf", "otp")
_HEADERS_KEPT = frozenset({"idempotency-key"})  # names a mark matches, whose values are not secret
_FIELD_MARKS = ("pass", "pwd", "token", "code", "otp", "secret", "card", "cvc", "cvv", "number", "key", "auth",
                "signature", "session", "csrf", "credential", "iban")
_verdicts: dict[str, bool] = {}  # name → secret; names are few, so deciding each once is enough
_header_names: dict[bytes, tuple[str, bool]] = {}


def is_secret_field(name: str) -> bool:
    verdict = _verdicts.get(name)
    if verdict is None:
        lower = name.lower()
        verdict = any(mark in lower for mark in _FIELD_MARKS)
        if len(_verdicts) < 10_000:  # a client inventing names cannot grow it without bound
            _verdicts[name] = verdict
    return verdict


def is_secret_header(name: str) -> bool:
    return name not in _HEADERS_KEPT and any(mark in name for mark in _HEADER_MARKS)


def redact_query(raw: str) -> str:
    """The query string as sent, with the values of secret parameters replaced (the rest untouched)."""
    if not raw:
        return raw
    parts = raw.split("&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and is_secret_field(unquote_plus(name)):
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def _header_name(raw_name: bytes) -> tuple[str, bool]:
    """The header's name in lower case and whether its value is secret, decided once per name."""
    known = _header_names.get(raw_name)
    if known is None:
        name = raw_name.decode("latin-1").lower()
        known = (name, is_secret_header(name))
        if len(_header_names) < 10_000:  # a client inventing names cannot grow it without bound
            _header_names[raw_name] = known
    return known


def redact_headers(headers: Iterable[tuple[bytes, bytes]], *,
                   leave_out: frozenset[str] = frozenset()) -> dict[str, str]:
    """Header name → value (repeated headers joined with ", "), secret values replaced, `leave_out` left out."""
    kept: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, secret = _header_name(raw_name)
        if name in leave_out:
            continue
        if secret:
            value = REDACTED
        else:
            value = raw_value.decode("latin-1")
            if name == "referer" and "?" in value:  # a page's query (e.g. a reset link's token) rides along
                page, _, query = value.partition("?")
                value = f"{page}?{redact_query(query)}"
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return kept


def redact_fields(value: Any) -> Any:
    """A decoded JSON or form body with the values of secret fields replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and is_secret_field(k) else redact_fields(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_fields(v) for v in value]
    return value


def redact_body(content_type: str, body: bytes) -> Any:
    """The fields of a small JSON or form body, secrets replaced; UNREADABLE when it does not parse."""
    try:
        if "json" in content_type:
            return redact_fields(orjson.loads(body))
        fields: dict[str, Any] = {}
        for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)):
            if name in fields:
                previous = fields[name]
                fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                fields[name] = value
        return redact_fields(fields)
    except (ValueError, UnicodeDecodeError):
        return UNREADABLE
