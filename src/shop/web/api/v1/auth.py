"""Accounts over the API: register, log in, refresh, log out, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.domain.errors import NotFound
from shop.domain.users import User
from shop.services.auth import Session
from shop.web.api.v1.schemas import Problem, StrictInput
from shop.web.client import client_address
from shop.web.deps import AccountsDep, AuthDep, CartsDep, TwoFactorDep
from shop.web.responses import JSON, iso
from shop.web.security import CurrentUser

router = APIRouter(prefix="/api/v1", tags=["accounts"])
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 409: {"model": Problem},
                                            422: {"model": Problem}, 429: {"model": Problem}}


class Registration(StrictInput):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=256)
    name: str = Field("", max_length=200)


class Credentials(StrictInput):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    otp: str | None = Field(None, max_length=20, description="authenticator or recovery code, when 2FA is on")
    cart_id: str | None = Field(None, max_length=40, description="a guest cart to fold into the customer's cart")


class CodeIn(StrictInput):
    code: str = Field(min_length=6, max_length=20)


class EnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class RefreshTokenIn(StrictInput):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class TokenIn(StrictInput):
    token: Annotated[str, Field(min_length=1, max_length=2000)]


class PasswordResetRequest(StrictInput):
    email: str = Field(max_length=320)


class PasswordResetConfirm(StrictInput):
    token: Annotated[str, Field(min_length=1, max_length=2000)]
    password: str = Field(max_length=256)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]
    email_verified: bool
    phone: str | None
    phone_verified: bool
    two_factor: bool
    created_at: datetime | None


class TokensOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    user: UserOut
    cart_id: str | None = Field(None, description="the customer's cart, when the sign-in named a guest cart to fold "
                                                  "into it (null: that cart was not found)")


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "roles": sorted(r.value for r in user.roles),
            "two_factor": user.has_two_factor,
            "email_verified": user.email_verified_at is not None, "phone": user.phone,
            "phone_verified": user.phone_verified_at is not None, "created_at": iso(user.created_at)}


def _tokens(session: Session, **extra: Any) -> Response:
    return JSON({"access_token": session.access_token, "token_type": "bearer", "expires_in": session.expires_in,
                 "refresh_token": session.refresh_token, "user": user_json(session.user), **extra},
                headers={"Cache-Control": "no-store"})


def _client(request: Request) -> str:
    return client_address(request)


@router.post("/auth/register", status_code=201, response_model=UserOut, responses=_ERRORS)
async def register(body: Registration, auth: AuthDep, accounts: AccountsDep) -> Response:
    """Open a customer account; a link to verify the address is e-mailed."""
    user = await auth.register(email=body.email, password=body.password, name=body.name)
    await accounts.send_verification(user)
    return JSON(user_json(user), status_code=status.HTTP_201_CREATED)


@router.post("/auth/verify-email", response_model=UserOut, responses=_ERRORS)
async def verify_email(body: TokenIn, request: Request, accounts: AccountsDep) -> Response:
    """Confirm an address with the token from the e-mailed link (once)."""
    return JSON(user_json(await accounts.verify_email(body.token, client=_client(request))))


@router.post("/auth/verify-email/resend", status_code=202, response_class=Response, responses=_ERRORS)
async def resend_verification(user: CurrentUser, accounts: AccountsDep) -> Response:
    """E-mail the verification link again."""
    if user.email_verified_at is None:
        await accounts.send_verification(user)
    return Response(status_code=202)


@router.post("/auth/password-reset", status_code=202, response_class=Response, responses=_ERRORS)
async def password_reset(body: PasswordResetRequest, accounts: AccountsDep) -> Response:
    """E-mail a reset link if the address has an account (the answer is the same either way)."""
    await accounts.request_password_reset(body.email)
    return Response(status_code=202)


@router.post("/auth/password-reset/confirm", status_code=204, responses=_ERRORS)
async def password_reset_confirm(body: PasswordResetConfirm, request: Request, accounts: AccountsDep) -> Response:
    """Choose a new password with the token from the e-mailed link; every session ends."""
    await accounts.reset_password(body.token, body.password, client=_client(request))
    return Response(status_code=204)


@router.post("/auth/login", response_model=TokensOut, responses=_ERRORS)
async def login(body: Credentials, request: Request, auth: AuthDep, carts: CartsDep) -> Response:
    """Trade an e-mail and password for an access token and a refresh token."""
    session = await auth.login(email=body.email, password=body.password, client=_client(request), otp=body.otp)
    if body.cart_id is None:
        return _tokens(session)
    # the guest's cart joins the customer's; a cart that cannot be found does not stop the sign-in
    try:
        cart = await carts.merge(body.cart_id, customer_id=session.user.id)
    except NotFound:
        return _tokens(session, cart_id=None)
    return _tokens(session, cart_id=cart.cart.id)


@router.post("/auth/refresh", response_model=TokensOut, responses=_ERRORS)
async def refresh(body: RefreshTokenIn, auth: AuthDep) -> Response:
    """Trade a refresh token (once) for a new access token and refresh token."""
    return _tokens(await auth.refresh(body.refresh_token))


@router.post("/auth/logout", status_code=204, responses=_ERRORS)
async def logout(body: RefreshTokenIn, auth: AuthDep) -> Response:
    """End the session the refresh token belongs to."""
    await auth.logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=_ERRORS)
async def me(user: CurrentUser) -> Response:
    """The signed-in user."""
    return JSON(user_json(user), headers={"Cache-Control": "no-store"})


@router.post("/auth/2fa/setup", response_model=EnrolmentOut, responses=_ERRORS)
async def two_factor_setup(user: CurrentUser, factor: TwoFactorDep) -> Response:
    """A new authenticator secret (and its otpauth:// URI for a QR code); confirm it with a first code."""
    enrolment = await factor.begin(user)
    return JSON({"secret": enrolment.secret, "otpauth_uri": enrolment.uri}, headers={"Cache-Control": "no-store"})


@router.post("/auth/2fa/confirm", response_model=RecoveryCodesOut, responses=_ERRORS)
async def two_factor_confirm(body: CodeIn, request: Request, user: CurrentUser, factor: TwoFactorDep) -> Response:
    """Switch two-factor sign-in on; the recovery codes are shown this once."""
    codes = await factor.confirm(user, body.code, client=_client(request))
    return JSON({"recovery_codes": codes}, headers={"Cache-Control": "no-store"})


@router.post("/auth/2fa/disable", status_code=204, responses=_ERRORS)
async def two_factor_disable(body: CodeIn, request: Request, user: CurrentUser, factor: TwoFactorDep) -> Response:
    """Switch two-factor sign-in off with a current or recovery code."""
    await factor.disable(user, body.code, client=_client(request))
    return Response(status_code=204)
