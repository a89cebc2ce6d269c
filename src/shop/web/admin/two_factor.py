"""Where staff switch on two-factor sign-in, the page SHOP_REQUIRE_STAFF_2FA sends them to. Wrong codes count
against the account and the client like everywhere else: too many, and the page answers 429 with Retry-After."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from shop.domain.users import InvalidCredentials, TooManyAttempts
from shop.web.admin.shell import TWO_FACTOR_PAGE, StaffVisit, checked_form, render, staff_without_two_factor
from shop.web.client import client_address
from shop.web.deps import TwoFactorDep

router = APIRouter(include_in_schema=False)
_SECRET = re.compile(r"[A-Z2-7]{16,128}")
Enrolling = Annotated[StaffVisit, Depends(staff_without_two_factor)]


def _required(request: Request) -> bool:
    return bool(request.app.state.settings.require_staff_2fa)


@router.get(TWO_FACTOR_PAGE)
async def two_factor_page(request: Request, visit: Enrolling, two_factor: TwoFactorDep) -> Response:
    """A new authenticator secret to scan, or word that two-factor sign-in is already on."""
    if visit.user.has_two_factor:
        return render(request, "admin/two_factor.html", enabled=True, codes=None)
    enrolment = await two_factor.begin(visit.user)
    return render(request, "admin/two_factor.html", enabled=False, codes=None, secret=enrolment.secret,
                  uri=enrolment.uri, required=_required(request), error=None)


@router.post(TWO_FACTOR_PAGE)
async def confirm_two_factor(request: Request, visit: Enrolling, two_factor: TwoFactorDep) -> Response:
    """Switch two-factor sign-in on with a first code; the recovery codes are shown this once."""
    form = await checked_form(request)
    if visit.user.has_two_factor:
        return render(request, "admin/two_factor.html", enabled=True, codes=None)
    code = str(form.get("code", "")).strip()[:12]
    try:
        codes = await two_factor.confirm(visit.user, code, client=client_address(request))
    except (InvalidCredentials, TooManyAttempts) as exc:
        # the same secret again: a new one would strand a staff member who has already scanned the first
        secret, uri = str(form.get("secret", "")), str(form.get("uri", ""))
        if not _SECRET.fullmatch(secret) or not uri.startswith("otpauth://"):
            enrolment = await two_factor.begin(visit.user)
            secret, uri = enrolment.secret, enrolment.uri
        if isinstance(exc, TooManyAttempts):
            wait = -(-exc.retry_after // 60)
            refused = render(request, "admin/two_factor.html", status=429, enabled=False, codes=None, secret=secret,
                             uri=uri[:500], required=_required(request), error="Too many wrong codes. Please try "
                             f"again in {wait} minute{'s' if wait != 1 else ''}.")
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        return render(request, "admin/two_factor.html", status=422, enabled=False, codes=None, secret=secret,
                      uri=uri[:500], required=_required(request),
                      error="That code is not right; enter the newest code the app shows.")
    return render(request, "admin/two_factor.html", enabled=True, codes=codes)
