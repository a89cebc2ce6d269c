"""What the management pages share: reading form fields leniently into values and field errors, the page number of
a list, and the admins-only guard. A form with errors is shown again with what was typed, never half-applied."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from shop.domain.errors import InvalidValue
from shop.domain.users import Role
from shop.web.admin.shell import StaffOnly, StaffPage, StaffVisit

MAX_PAIRS = 50
Errors = dict[str, str]


async def admin_page(visit: StaffPage) -> StaffVisit:
    """Like staff_page, for the pages only admins may open (403 for other staff)."""
    if not visit.user.has_role(Role.ADMIN):
        raise StaffOnly("this page is for the shop's admins")
    return visit


AdminPage = Annotated[StaffVisit, Depends(admin_page)]


def text(form: Mapping[str, Any], name: str, *, limit: int = 200) -> str:
    """A text field, trimmed and cut to `limit` characters (the services check what it means)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def whole_number(form: Mapping[str, Any], name: str, errors: Errors, *, low: int = 0, high: int = 1_000_000,
                 required: bool = True) -> int | None:
    """A whole number within [low, high]; an error names the field when it is not one."""
    raw = text(form, name, limit=20)
    if not raw:
        if required:
            errors[name] = "enter a number"
        return None
    if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
        errors[name] = f"enter a whole number from {low} to {high}"
        return None
    return int(raw)


def moment(form: Mapping[str, Any], name: str, errors: Errors) -> datetime | None:
    """A date and time typed in UTC (an <input type="datetime-local">), or None when left empty."""
    raw = text(form, name, limit=40)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        errors[name] = "enter a date and time, e.g. 2026-12-01 09:00"
        return None


def pairs(raw: str, *, field: str, limit: int = 500) -> dict[str, str]:
    """`name: value` pairs, one per line or separated by ';' (attributes, a variant's options)."""
    found: dict[str, str] = {}
    for part in re.split(r"[;\n]", raw):
        if not part.strip():
            continue
        name, colon, value = part.partition(":")
        name, value = " ".join(name.split()), " ".join(value.split())
        if not colon or not name or not value:
            raise InvalidValue(field, f"write each one as 'name: value' (not {part.strip()[:40]!r})")
        if len(name) > 100 or len(value) > limit:
            raise InvalidValue(field, f"names take at most 100 characters, values at most {limit}")
        found[name] = value
    if len(found) > MAX_PAIRS:
        raise InvalidValue(field, f"at most {MAX_PAIRS}")
    return found


def pairs_text(values: Mapping[str, str], *, sep: str = "\n") -> str:
    return sep.join(f"{k}: {v}" for k, v in values.items())


def too_long(values: Mapping[str, str], limits: Mapping[str, int], errors: Errors) -> None:
    """A field error for each value longer than its column holds (the API refuses the same lengths)."""
    for name, limit in limits.items():
        if len(values.get(name, "")) > limit:
            errors.setdefault(name, f"at most {limit} characters")


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(100_000, int(raw))) if raw.isdigit() else 1


def field_of(error: InvalidValue, *, prefix: str = "") -> str:
    """The form field a service's error names: `variants.0.price` is the variant form's `price`."""
    name = re.sub(r"^variants\.\d+\.", "", error.field)
    return f"{prefix}{name}"
