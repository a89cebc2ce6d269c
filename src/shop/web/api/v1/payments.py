"""Payment gateways call in: signed webhooks, and the test gateway's stand-in for 3-D Secure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shop.web.api.v1.schemas import Problem
from shop.web.deps import OrderPaymentsDep
from shop.web.responses import JSON

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (400, 404)}
Ref = Annotated[str, PathParam(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9_]+$")]


class WebhookReceived(BaseModel):
    received: bool
    applied: bool = Field(description="false: a replay, or an event that changes nothing")


class PaymentConfirmed(BaseModel):
    order: str | None = Field(description="the order's number")
    applied: bool


@router.post("/webhooks/{provider}", response_model=WebhookReceived, responses=_ERRORS)
async def webhook(request: Request, payments: OrderPaymentsDep,
                  provider: Annotated[str, PathParam(max_length=20)]) -> Response:
    """A gateway's signed event; applied once however often it arrives (the signature is checked on the raw
    body, so this route reads the body itself)."""
    body = await request.body()
    outcome = await payments.apply_webhook(provider, body, dict(request.headers))
    return JSON({"received": True, "applied": outcome.applied})


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test payment</title></head>
<body><main><h1>Test bank</h1><p>This stands in for the customer's bank asking them to confirm a card payment
(3-D Secure). Nothing is charged.</p><form method="post"><button type="submit">Confirm payment</button></form>
</main></body></html>"""


@router.get("/test/authenticate/{payment_ref}", response_class=HTMLResponse)
async def authenticate_page(payment_ref: Ref) -> Response:
    """The test bank's confirmation page (test gateway only)."""
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-store"})


@router.post("/test/authenticate/{payment_ref}", response_model=PaymentConfirmed,
             responses={**_ERRORS, 303: {"description": "Back to `return`, a page of this shop"}})
async def authenticate(request: Request, payments: OrderPaymentsDep, payment_ref: Ref) -> Response:
    """Confirm a test payment that required authentication, as the customer's bank would."""
    outcome = await payments.authenticate_test_payment(payment_ref)
    back = request.query_params.get("return", "")
    if back.startswith("/") and not back.startswith("//") and "\\" not in back:  # a page of this shop only
        return RedirectResponse(back, status_code=303)
    return JSON({"order": outcome.order, "applied": outcome.applied}, headers={"Cache-Control": "no-store"})
