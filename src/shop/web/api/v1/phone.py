"""Phone verification over the API: text a code to a number, then send the code back.

Every refusal of a code (wrong, expired, used, tried five times, none sent) is a 422 problem naming `code`;
a number that cannot take texts is a 422 naming `phone`; a fourth text within the hour is a 429 with Retry-After,
and so is any code once the account or the client has sent too many wrong ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.web.api.v1.auth import UserOut, user_json
from shop.web.api.v1.schemas import Problem, StrictInput
from shop.web.client import client_address
from shop.web.deps import PhoneDep
from shop.web.responses import JSON, iso
from shop.web.security import CurrentUser

router = APIRouter(prefix="/api/v1", tags=["accounts"])
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 422: {"model": Problem},
                                            429: {"model": Problem}, 503: {"model": Problem}}


class PhoneIn(StrictInput):
    phone: str = Field(max_length=40, examples=["+49 1512 3456789"], description="in international form")


class PhoneCodeIn(StrictInput):
    code: str = Field(max_length=20, examples=["123456"], description="the six digits from the text message")


class CodeSentOut(BaseModel):
    phone: str = Field(description="the number in E.164 form")
    expires_at: datetime


@router.post("/auth/phone", status_code=202, response_model=CodeSentOut, responses=_ERRORS)
async def send_phone_code(body: PhoneIn, user: CurrentUser, phones: PhoneDep) -> Response:
    """Text a six-digit code to the number; send it to /auth/phone/verify within ten minutes."""
    sent = await phones.send_code(user, body.phone)
    return JSON({"phone": sent.phone, "expires_at": iso(sent.expires_at)}, status_code=202,
                headers={"Cache-Control": "no-store"})


@router.post("/auth/phone/verify", response_model=UserOut, responses=_ERRORS)
async def verify_phone(body: PhoneCodeIn, request: Request, user: CurrentUser, phones: PhoneDep) -> Response:
    """Confirm the number with the code texted to it; the user's phone is then verified."""
    verified = await phones.verify(user, body.code, client=client_address(request))
    return JSON(user_json(verified), headers={"Cache-Control": "no-store"})
