"""The business dashboard: orders, revenue per currency, average order value, conversion and low stock."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from shop.domain.errors import InvalidValue
from shop.services.business import BUSINESS_RANGE_LABELS, COUNTED, DEFAULT_BUSINESS_RANGE
from shop.web.admin.shell import StaffPage, render
from shop.web.deps import BusinessDep

router = APIRouter(include_in_schema=False)


@router.get("/admin/business")
async def business(request: Request, visit: StaffPage, figures: BusinessDep) -> Response:
    """Sales over the chosen period (`range`: 24h, 7d, 30d, 90d); SKUs at or under `threshold` units."""
    values = {"range": (request.query_params.get("range") or DEFAULT_BUSINESS_RANGE)[:10],
              "threshold": (request.query_params.get("threshold") or "").strip()[:12]}
    errors: dict[str, str] = {}
    threshold: int | None = None
    if values["threshold"]:
        if values["threshold"].isdigit():
            threshold = int(values["threshold"])
        else:
            errors["threshold"] = "must be a whole number of units, 0 or more"
    try:
        report = await figures.report(values["range"], threshold=threshold)
    except InvalidValue as exc:
        errors[exc.field] = exc.message
        report = await figures.report(values["range"] if exc.field != "range" else DEFAULT_BUSINESS_RANGE)
    step = timedelta(seconds=report.period.bucket_seconds)
    return render(request, "admin/business.html", status=422 if errors else 200, report=report, values=values,
                  errors=errors, ranges=list(BUSINESS_RANGE_LABELS.items()), selected=report.range_name,
                  counted=", ".join(sorted(s.value for s in COUNTED)),
                  series=[(report.period.since + step * b.index, b) for b in report.series])
