"""Workers and pools: the live workers with their CPU and memory, each pool's size and how it got there, and a
form to set a pool's size by hand (the supervisor's autoscaler then leaves it alone) or hand it back."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.services.process_status import PoolState, ProcessBoard, SizeRequest
from shop.web.admin.dashboard import live_workers
from shop.web.admin.shell import StaffPage, checked_form, render
from shop.web.deps import ProcessesDep

router = APIRouter(include_in_schema=False)
DECISIONS_SHOWN = 50


async def _page(request: Request, board: ProcessBoard, *, status: int = 200, errors: dict[str, str] | None = None,
                values: dict[str, str] | None = None) -> Response:
    return render(request, "admin/workers.html", status=status, workers=await live_workers(request, board),
                  pools=board.pools(), decisions=board.decisions(limit=DECISIONS_SHOWN), errors=errors or {},
                  values=values or {}, asked=request.query_params.get("asked", "")[:40])


@router.get("/admin/workers")
async def workers_page(request: Request, visit: StaffPage, board: ProcessesDep) -> Response:
    """Live workers, pools (min/max/current, by hand or automatic) and the latest scaling decisions."""
    return await _page(request, board)


def _check(pools: list[PoolState], name: str, raw: str, *, automatic: bool) -> tuple[int | None, dict[str, str]]:
    pool = next((p for p in pools if p.name == name), None)
    if pool is None:
        return None, {"pool": "is not a pool this machine runs" if name else "choose a pool"}
    if automatic:
        return None, {}
    if not raw.isdigit():
        return None, {"workers": "must be a whole number of workers"}
    workers = int(raw)
    if not pool.min_workers <= workers <= pool.max_workers:
        return None, {"workers": f"must be from {pool.min_workers} to {pool.max_workers} for the "
                                 f"{pool.name} pool"}
    return workers, {}


@router.post("/admin/workers/size")
async def set_pool_size(request: Request, visit: StaffPage, board: ProcessesDep) -> Response:
    """Ask the supervisor for a pool size (within the pool's min..max), or hand the pool back to the autoscaler."""
    form = await checked_form(request)
    name, raw = str(form.get("pool", "")).strip()[:40], str(form.get("workers", "")).strip()[:10]
    automatic = form.get("mode") == "auto"
    workers, errors = _check(board.pools(), name, raw, automatic=automatic)
    if errors:
        return await _page(request, board, status=422, errors=errors, values={"pool": name, "workers": raw})
    board.request_size(SizeRequest(pool=name, workers=workers, requested_by=visit.user.email,
                                   at=datetime.now(UTC)))
    return visit.visitor.apply(RedirectResponse(f"/admin/workers?asked={name}", status_code=303))
