"""Fast JSON responses (orjson) that know how to write the domain's values."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse

from shop.domain.money import Money


def money(value: Money) -> dict[str, str]:
    """Money as the API writes it everywhere: a decimal string and the currency."""
    return {"amount": str(value.amount), "currency": value.currency}


def _default(value: Any) -> Any:
    if isinstance(value, Money):
        return money(value)
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JSON(JSONResponse):
    """orjson's JSON; a JSONResponse, so FastAPI documents a route's `response_model` as its body."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
