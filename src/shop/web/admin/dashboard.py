"""The usage dashboard: traffic, latency and errors from the request log, and the live workers; its charts are
fed by /admin/api/usage and /admin/api/workers, which the page polls every few seconds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from shop.domain.errors import InvalidValue
from shop.services.process_status import ProcessBoard
from shop.services.usage import DEFAULT_RANGE, RANGE_LABELS, Latency, RouteFigures, UsageReport
from shop.web.admin.process_figures import ProcessGauge, WorkerFigures, worker_json
from shop.web.admin.shell import StaffPage, render
from shop.web.deps import ProcessesDep, UsageDep
from shop.web.problems import problem
from shop.web.responses import JSON

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 5


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _latency(latency: Latency) -> dict[str, float | None]:
    return {"p50": _ms(latency.p50), "p95": _ms(latency.p95), "p99": _ms(latency.p99)}


def _route(figures: RouteFigures) -> dict[str, Any]:
    return {"route": figures.key.label, "requests": figures.requests, "per_second": round(figures.per_second, 4),
            "error_rate": round(figures.error_rate, 4), "mean_ms": _ms(figures.mean_ms),
            "max_ms": _ms(figures.max_ms), **_latency(figures.latency)}


def usage_json(report: UsageReport, range_name: str) -> dict[str, Any]:
    """The report as the dashboard's script reads it: series are columns, one value per bucket."""
    points = report.points
    return {
        "range": range_name, "since": report.window.since.isoformat(), "until": report.window.until.isoformat(),
        "bucket_seconds": report.window.bucket_seconds, "route": report.route.label if report.route else None,
        "totals": {"requests": report.requests, "per_second": round(report.per_second, 4),
                   "error_rate": round(report.error_rate, 4), **_latency(report.latency),
                   "sampled": report.sampled, "sample_capped": report.sample_capped},
        "series": {"t": [int(p.start.timestamp()) for p in points],
                   "requests": [p.requests for p in points],
                   "per_second": [round(p.per_second, 4) for p in points],
                   "error_rate": [round(p.error_rate * 100, 2) for p in points],
                   "client_error_rate": [round(p.client_error_rate * 100, 2) for p in points],
                   "p50": [_ms(p.latency.p50) for p in points], "p95": [_ms(p.latency.p95) for p in points],
                   "p99": [_ms(p.latency.p99) for p in points]},
        "routes": [_route(r) for r in report.routes], "slowest": [_route(r) for r in report.slowest],
        "statuses": [{"status": s, "count": n} for s, n in report.statuses]}


async def live_workers(request: Request, board: ProcessBoard) -> list[WorkerFigures]:
    gauge: ProcessGauge = request.app.state.admin_gauge
    return await gauge.measure(board.workers())


def _choices(request: Request) -> tuple[str, str | None]:
    return (request.query_params.get("range") or DEFAULT_RANGE)[:10], (request.query_params.get("route") or None)


@router.get("/admin/")
async def dashboard(request: Request, visit: StaffPage, usage: UsageDep, board: ProcessesDep) -> Response:
    """Requests per second, latency percentiles and error rate over time; routes, statuses, workers."""
    range_name, route = _choices(request)
    values = {"range": range_name, "route": route or ""}
    errors: dict[str, str] = {}
    try:
        report = await usage.report(range_name, route=route)
    except InvalidValue as exc:
        errors[exc.field] = exc.message
        if exc.field == "range":
            range_name = DEFAULT_RANGE
        report = await usage.report(range_name)  # the whole shop while the choice is corrected
    return render(request, "admin/dashboard.html", status=422 if errors else 200, report=report,
                  ranges=list(RANGE_LABELS.items()), selected=range_name, values=values, errors=errors,
                  workers=await live_workers(request, board), poll_seconds=POLL_SECONDS,
                  data_url=request.url_for("usage_figures").path)


@router.get("/admin/api/usage", name="usage_figures")
async def usage_figures(request: Request, visit: StaffPage, usage: UsageDep) -> Response:
    """The dashboard's figures as JSON (`range`: 15m, 1h, 6h, 24h, 7d; `route`: 'GET /path/{template}')."""
    range_name, route = _choices(request)
    try:
        report = await usage.report(range_name, route=route)
    except InvalidValue as exc:
        return problem(422, f"invalid value for {exc.field}: {exc.message}",
                       errors=[{"field": exc.field, "message": exc.message}])
    return JSON(usage_json(report, range_name), headers={"Cache-Control": "no-store"})


@router.get("/admin/api/workers")
async def worker_figures(request: Request, visit: StaffPage, board: ProcessesDep) -> Response:
    """Live workers (pid, pool, CPU %, memory, requests, in flight, uptime) and the pools they serve."""
    pools = [{"name": p.name, "workers": p.workers, "min_workers": p.min_workers, "max_workers": p.max_workers,
              "manual": p.manual, "master_pid": p.master_pid} for p in board.pools()]
    return JSON({"workers": worker_json(await live_workers(request, board)), "pools": pools},
                headers={"Cache-Control": "no-store"})
