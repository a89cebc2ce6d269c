"""Vouchers (staff): create and list discount codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.domain.discounts import Voucher, VoucherKind
from shop.services.vouchers import VoucherDraft
from shop.web.api.v1.schemas import VOUCHER_CODE, Moment, MoneyOut, Problem, StrictInput
from shop.web.deps import VouchersDep
from shop.web.responses import JSON, iso, money
from shop.web.security import Staff

router = APIRouter(prefix="/api/v1", tags=["discounts (staff)"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 403, 409, 422)}


class VoucherIn(StrictInput):
    code: str = Field(pattern=VOUCHER_CODE, examples=["WELCOME10"])
    kind: str = Field(pattern=r"^(percentage|fixed)$")
    value: str = Field(max_length=20, description="a percentage (10 = 10 %) or an amount, as decimal text")
    min_order: str | None = Field(None, max_length=20)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    usage_limit: int | None = Field(None, ge=1, le=100_000_000)
    per_customer_limit: int | None = Field(None, ge=1, le=1000)


class VoucherOut(BaseModel):
    code: str
    kind: VoucherKind
    value: str = Field(description="a percentage (10 = 10 %) or an amount, as decimal text")
    currency: str
    min_order: MoneyOut | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    times_used: int
    active: bool


class VoucherList(BaseModel):
    items: list[VoucherOut]
    total: int


def voucher_json(voucher: Voucher) -> dict[str, Any]:
    return {"code": voucher.code, "kind": voucher.kind.value, "value": str(voucher.value),
            "currency": voucher.currency, "min_order": money(voucher.min_order) if voucher.min_order else None,
            "starts_at": iso(voucher.starts_at), "ends_at": iso(voucher.ends_at), "usage_limit": voucher.usage_limit,
            "per_customer_limit": voucher.per_customer_limit, "times_used": voucher.times_used,
            "active": voucher.active}


@router.post("/vouchers", status_code=201, response_model=VoucherOut, responses=_ERRORS)
async def create_voucher(vouchers: VouchersDep, body: VoucherIn, _: Staff) -> Response:
    """Create a voucher code."""
    voucher = await vouchers.create(VoucherDraft(**body.model_dump()))
    return JSON(voucher_json(voucher), status_code=201)


@router.get("/vouchers", response_model=VoucherList, responses=_ERRORS)
async def list_vouchers(vouchers: VouchersDep, _: Staff) -> Response:
    """Every voucher with how often it was used."""
    items = [voucher_json(v) for v in await vouchers.all()]
    return JSON({"items": items, "total": len(items)})
