"""The request log browser: find requests by time, path, status, user or id, and open one's full record."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from shop.services.usage import RequestQuery
from shop.web.admin.shell import StaffPage, render
from shop.web.deps import UsageDep

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
FILTERS = ("since", "until", "path", "status", "user", "id")
_STATUS = re.compile(r"[1-5][0-9][0-9]")
_STATUS_CLASS = re.compile(r"[1-5]xx", re.IGNORECASE)
_TOKEN = re.compile(r"[\x21-\x7e]{1,64}")  # ids are printable ASCII without spaces


def _moment(raw: str) -> datetime:
    """`2025-01-31T14:05` (as a datetime-local field sends it, read as UTC) or ISO 8601 with an offset."""
    value = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_filters(params: QueryParams) -> tuple[RequestQuery, int, dict[str, str], dict[str, str]]:
    """The query, the page, the values as typed (to show again) and an error per field that was not understood."""
    values = {name: (params.get(name) or "").strip()[:1100] for name in FILTERS}
    errors: dict[str, str] = {}
    found: dict[str, Any] = {}
    for name in ("since", "until"):
        if values[name]:
            try:
                found[name] = _moment(values[name])
            except ValueError:
                errors[name] = "must be a date and time, e.g. 2025-01-31T14:05 (UTC)"
    if "since" in found and "until" in found and found["since"] >= found["until"]:
        errors["until"] = "must be later than the start"
    if values["path"]:
        if not values["path"].startswith("/") or len(values["path"]) > 1024:
            errors["path"] = "must start with / (a path prefix such as /api/v1/products), at most 1024 characters"
        else:
            found["path_prefix"] = values["path"]
    status = values["status"]
    if status:
        if _STATUS.fullmatch(status):
            found["status"] = int(status)
        elif _STATUS_CLASS.fullmatch(status):
            found["status_class"] = int(status[0])
        else:
            errors["status"] = "must be a status such as 404, or a class: 2xx, 3xx, 4xx, 5xx"
    for name, field in (("user", "user_id"), ("id", "request_id")):
        if values[name]:
            if _TOKEN.fullmatch(values[name]):
                found[field] = values[name]
            else:
                errors[name] = "must be at most 64 printable characters without spaces"
    raw_page = params.get("page") or "1"
    page = int(raw_page) if raw_page.isdigit() and 1 <= int(raw_page) <= 10_000 else 0
    if page == 0:
        errors["page"] = "must be a whole number from 1 to 10000"
        page = 1
    return RequestQuery(**found), page, values, errors


def _link(values: dict[str, str], page: int) -> str:
    return "/admin/requests?" + urlencode({**{k: v for k, v in values.items() if v}, "page": page})


@router.get("/admin/requests")
async def request_log(request: Request, visit: StaffPage, usage: UsageDep) -> Response:
    """Requests, newest first, filtered by time range, path prefix, status or class, user and request id."""
    query, page, values, errors = parse_filters(request.query_params)
    rows: list[Any] = []
    more = False
    if not errors:
        rows, more = await usage.find(query, page=page, per_page=PER_PAGE)
    return render(request, "admin/requests.html", status=422 if errors else 200, rows=rows, values=values,
                  errors=errors, page=page, previous=_link(values, page - 1) if page > 1 else None,
                  next=_link(values, page + 1) if more else None)


@router.get("/admin/requests/{request_id}")
async def one_request(request: Request, request_id: str, visit: StaffPage, usage: UsageDep) -> Response:
    """One request's full record, its redacted headers and body fields pretty-printed."""
    found = await usage.request(request_id[:64]) if _TOKEN.fullmatch(request_id) else None
    if found is None:
        return render(request, "admin/refused.html", status=404, title="No such request",
                      detail=f"No request with the id {request_id[:64]!r} is in the log (yet).")
    details = json.dumps(found.details, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return render(request, "admin/request.html", record=found, details=details)
