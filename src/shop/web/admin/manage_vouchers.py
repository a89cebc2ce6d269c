"""Control panel: vouchers — the list with how often each was used, a new voucher (percentage or fixed amount,
minimum order, validity window, total and per-customer limits), and ending one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import Conflict, InvalidValue, NotFound
from shop.services.vouchers import VoucherDraft, Vouchers
from shop.web.admin.manage_forms import Errors, moment, text, too_long, whole_number
from shop.web.admin.shell import StaffPage, checked_form, render, section
from shop.web.deps import VouchersDep

router = APIRouter(prefix="/admin/vouchers", include_in_schema=False)
section("Vouchers", "/admin/vouchers")
DONE = {"created": "The voucher was created.", "deactivated": "The voucher no longer works."}
FIELDS = ("code", "kind", "value", "min_order", "starts_at", "ends_at", "usage_limit", "per_customer_limit")


async def _page(request: Request, service: Vouchers, *, status: int = 200, **given: Any) -> Response:
    vouchers = sorted(await service.all(), key=lambda v: (not v.active, v.code))
    context: dict[str, Any] = {"values": {"kind": "percentage"}, "errors": {}, "error": None,
                               "notice": DONE.get(request.query_params.get("done", ""))}
    context.update(given)
    return render(request, "admin/manage/vouchers.html", status=status, vouchers=vouchers, **context)


@router.get("")
async def vouchers(request: Request, visit: StaffPage, service: VouchersDep) -> Response:
    """Every voucher, the working ones first."""
    return await _page(request, service)


@router.post("")
async def create_voucher(request: Request, visit: StaffPage, service: VouchersDep) -> Response:
    """Create a voucher; every field that is wrong is named."""
    form = await checked_form(request)
    values = {name: text(form, name, limit=100) for name in FIELDS}
    errors = Errors()
    too_long(values, {"code": 32, "value": 20, "min_order": 20}, errors)
    starts_at, ends_at = moment(form, "starts_at", errors), moment(form, "ends_at", errors)
    usage_limit = whole_number(form, "usage_limit", errors, low=1, high=100_000_000, required=False)
    per_customer = whole_number(form, "per_customer_limit", errors, low=1, high=1000, required=False)
    if not errors:
        try:
            await service.create(VoucherDraft(
                code=values["code"], kind=values["kind"], value=values["value"],
                min_order=values["min_order"] or None, starts_at=starts_at, ends_at=ends_at,
                usage_limit=usage_limit, per_customer_limit=per_customer))
        except InvalidValue as exc:
            # Money's own complaint (too many decimals) can only be about the minimum order here
            errors[exc.field if exc.field in FIELDS else "min_order"] = exc.message
        except Conflict as exc:
            errors["code"] = str(exc)
        else:
            return RedirectResponse("/admin/vouchers?done=created", status_code=303)
    return await _page(request, service, status=409 if "exists" in errors.get("code", "") else 422, values=values,
                       errors=errors)


@router.post("/{code}/deactivate")
async def deactivate(request: Request, code: str, visit: StaffPage, service: VouchersDep) -> Response:
    """End a voucher: it takes nothing off any more (orders that used it keep their discount)."""
    await checked_form(request)
    try:
        await service.deactivate(code)
    except (InvalidValue, NotFound):
        return await _page(request, service, status=404, error=f"there is no voucher {code[:40]!r}")
    return RedirectResponse("/admin/vouchers?done=deactivated", status_code=303)
