"""The payment form's side of a card payment: which card element to load, and what the buyer's browser does next
when the payment waits for them (3-D Secure)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.web.api.v1.schemas import Problem
from shop.web.deps import CardPaymentsDep
from shop.web.responses import JSON
from shop.web.security import MaybeUser

router = APIRouter(prefix="/api/v1", tags=["checkout"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (404, 422)}
Number = Annotated[str, PathParam(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9-]+$")]


class CardFormOut(BaseModel):
    gateway: Literal["test", "stripe"] = Field(description="test: the shop's test-card field; stripe: Stripe's "
                                                          "Payment Element (Stripe.js from js.stripe.com)")
    publishable_key: str | None = Field(description="Stripe's publishable key, for Stripe.js")


class NextActionOut(BaseModel):
    type: Literal["redirect_to_url", "use_stripe_sdk"]
    url: str | None = Field(None, description="redirect_to_url: the page where the customer confirms")
    client_secret: str | None = Field(None, description="use_stripe_sdk: for Stripe.js `handleNextAction`")


class PaymentStepOut(BaseModel):
    order: str
    status: str = Field(description="the order's status: pending until the payment is settled")
    payment_status: str
    next_action: NextActionOut | None = Field(description="null: nothing for the customer to do")


@router.get("/payments/card-form", response_model=CardFormOut)
async def card_form(service: CardPaymentsDep) -> Response:
    """The card element the payment form loads for the configured gateway."""
    return JSON({"gateway": service.form.gateway, "publishable_key": service.form.publishable_key})


@router.post("/orders/{number}/next-action", response_model=PaymentStepOut, responses=_ERRORS)
async def next_action(number: Number, user: MaybeUser, service: CardPaymentsDep,
                      x_order_key: Annotated[str | None, Header(max_length=100)] = None) -> Response:
    """For the order's buyer only (signed in, or with the `X-Order-Key` from checkout): the payment as the gateway
    sees it now, and the customer's next step, if any (POST: the answer is private and may settle the order)."""
    step = await service.next_action(number, customer_id=user.id if user else None, access_key=x_order_key)
    action: dict[str, str] | None = None
    if step.redirect_url:
        action = {"type": "redirect_to_url", "url": step.redirect_url}
    elif step.client_secret:
        action = {"type": "use_stripe_sdk", "client_secret": step.client_secret}
    return JSON({"order": step.order.number, "status": step.order.status.value,
                 "payment_status": step.order.payment.status.value, "next_action": action},
                headers={"Cache-Control": "no-store"})
