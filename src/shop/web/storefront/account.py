"""Account pages: sign in (with a second factor where switched on), register, sign out, order history.

A page refused because too many wrong passwords, codes or links came from the account or the client answers 429
with Retry-After, as the API does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import InvalidValue, NotFound
from shop.domain.users import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    SecondFactorRequired,
    TooManyAttempts,
)
from shop.services.auth import AuthService
from shop.services.cart import CartService
from shop.services.phone_verification import SmsNotSent
from shop.services.web_sessions import WebSessions
from shop.web.client import client_address
from shop.web.deps import AccountsDep, AuthDep, CartsDep, OrdersDep, PhoneDep, WebSessionsDep
from shop.web.input_policy import check_form
from shop.web.storefront.rendering import Pages
from shop.web.storefront.visitor import SESSION_COOKIE, Guest, Visitor

router = APIRouter(include_in_schema=False)


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def _too_many(exc: TooManyAttempts) -> str:
    wait = exc.retry_after
    if wait < 60:
        return f"Too many attempts. Please try again in {wait} second{'s' if wait != 1 else ''}."
    minutes = -(-wait // 60)
    return f"Too many attempts. Please try again in {minutes} minute{'s' if minutes != 1 else ''}."


def _retry_after(response: Response, exc: TooManyAttempts) -> Response:
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _safe_next(raw: object) -> str:
    """Only a path on this site: never //evil.example or https://…"""
    target = str(raw or "")
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/account"


async def _signed_in(request: Request, guest: Visitor, *, auth: AuthService, sessions: WebSessions,
                     carts: CartService, email: str, password: str, otp: str | None, next_page: str) -> Response:
    client = client_address(request)
    session = await auth.login(email=email, password=password, client=client, otp=otp)
    cart_id = guest.cart_id
    # a new session id at sign-in; the guest's cart joins the customer's
    guest.session_id, guest.session = await sessions.rotate(
        guest.session_id, user_id=session.user.id, refresh_token=session.refresh_token)
    guest.cookies[SESSION_COOKIE] = guest.session_id
    if cart_id is not None:
        try:
            merged = await carts.merge(cart_id, customer_id=session.user.id)
        except NotFound:
            merged = None
        await guest.remember(sessions, cart_id=merged.cart.id if merged else None)
    return guest.apply(RedirectResponse(next_page, status_code=303))


@router.get("/account/login")
async def login_page(request: Request, guest: Guest) -> Response:
    return _pages(request).render(guest, "login.html", values={"next": _safe_next(request.query_params.get("next"))},
                                  error=None, need_otp=False)


@router.post("/account/login")
async def login(request: Request, guest: Guest, auth: AuthDep, sessions: WebSessionsDep,
                carts: CartsDep) -> Response:
    """Sign in; a wrong e-mail or password gets one message, whichever it was."""
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    values = {"email": str(form.get("email", "")), "next": _safe_next(form.get("next"))}
    otp = str(form.get("otp", "")).strip() or None
    try:
        return await _signed_in(request, guest, auth=auth, sessions=sessions, carts=carts, email=values["email"],
                                password=str(form.get("password", "")), otp=otp, next_page=values["next"])
    except SecondFactorRequired:
        return _pages(request).render(guest, "login.html", values=values, need_otp=True, status=401,
                                      error="Enter the code from your authenticator app." if otp is None
                                      else "That code is not right; try the newest one.")
    except TooManyAttempts as exc:
        return _retry_after(_pages(request).render(guest, "login.html", values=values, need_otp=otp is not None,
                                                   status=429, error=_too_many(exc)), exc)
    except (InvalidCredentials, InvalidValue) as exc:
        return _pages(request).render(guest, "login.html", values=values, need_otp=False, status=401,
                                      error=str(exc))
    except AccountDisabled:
        return _pages(request).render(guest, "login.html", values=values, need_otp=False, status=403,
                                      error="This account is disabled. Please contact the shop.")


@router.get("/account/register")
async def register_page(request: Request, guest: Guest) -> Response:
    return _pages(request).render(guest, "register.html", values={}, errors={})


@router.post("/account/register")
async def register(request: Request, guest: Guest, auth: AuthDep, accounts: AccountsDep,
                   sessions: WebSessionsDep, carts: CartsDep) -> Response:
    """Create an account (a verification e-mail goes out) and sign in."""
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    values = {"email": str(form.get("email", "")), "name": str(form.get("name", ""))}
    password = str(form.get("password", ""))
    try:
        user = await auth.register(email=values["email"], password=password, name=values["name"])
    except InvalidValue as exc:
        return _pages(request).render(guest, "register.html", values=values, errors={exc.field: exc.message},
                                      status=422)
    except EmailTaken:
        return _pages(request).render(guest, "register.html", values=values, status=409,
                                      errors={"email": "an account with this e-mail exists; sign in instead"})
    await accounts.send_verification(user)
    return await _signed_in(request, guest, auth=auth, sessions=sessions, carts=carts, email=values["email"],
                            password=password, otp=None, next_page="/account")


@router.post("/account/logout")
async def logout(request: Request, guest: Guest, auth: AuthDep, sessions: WebSessionsDep) -> Response:
    """Sign out: the session is destroyed, here and for the API tokens it held."""
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    old = await sessions.destroy(guest.session_id)
    if old is not None and old.refresh_token:
        await auth.logout(old.refresh_token)
    guest.cookies[SESSION_COOKIE] = None
    return guest.apply(RedirectResponse("/", status_code=303))


@router.get("/account")
async def account_page(request: Request, guest: Guest, orders_service: OrdersDep) -> Response:
    """The customer's orders."""
    if guest.user is None:
        return _sign_in_first(guest, "/account")
    orders = await orders_service.orders_of(guest.user.id, page=1, limit=50)
    return _pages(request).render(guest, "account.html", orders=orders.items)


@router.get("/account/verify-email")
async def verify_email_page(request: Request, guest: Guest) -> Response:
    """The link in the verification e-mail: a button confirms (a mail scanner's GET changes nothing)."""
    token = request.query_params.get("token", "")[:2000]
    return _pages(request).render(guest, "token_form.html", title="Confirm your e-mail address",
                                  action="/account/verify-email", token=token, password=False, message=None,
                                  button="Confirm my e-mail address")


@router.post("/account/verify-email")
async def verify_email(request: Request, guest: Guest, accounts: AccountsDep) -> Response:
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    token = str(form.get("token", ""))
    try:
        await accounts.verify_email(token, client=client_address(request))
    except InvalidToken as exc:
        return _pages(request).render(guest, "token_form.html", title="Confirm your e-mail address", status=400,
                                      action=None, token="", password=False, message=str(exc), button="")
    except TooManyAttempts as exc:
        return _retry_after(_pages(request).render(
            guest, "token_form.html", title="Confirm your e-mail address", status=429, action="/account/verify-email",
            token=token[:2000], password=False, message=_too_many(exc), button="Confirm my e-mail address"), exc)
    return _pages(request).render(guest, "token_form.html", title="E-mail address confirmed", action=None,
                                  token="", password=False, message="Thank you — your address is confirmed.",
                                  button="")


@router.get("/account/password-reset")
async def password_reset_page(request: Request, guest: Guest) -> Response:
    """Ask for a reset link, or (with the link's token) choose a new password."""
    token = request.query_params.get("token", "")[:2000]
    if token:
        return _pages(request).render(guest, "token_form.html", title="Choose a new password", token=token,
                                      action="/account/password-reset/confirm", password=True, message=None,
                                      button="Set the new password")
    return _pages(request).render(guest, "reset_request.html", sent=False)


@router.post("/account/password-reset")
async def request_password_reset(request: Request, guest: Guest, accounts: AccountsDep) -> Response:
    """E-mail a reset link; the answer is the same whether or not the address has an account."""
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    await accounts.request_password_reset(str(form.get("email", ""))[:320])
    return _pages(request).render(guest, "reset_request.html", sent=True)


@router.post("/account/password-reset/confirm")
async def reset_password(request: Request, guest: Guest, accounts: AccountsDep) -> Response:
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    token = str(form.get("token", ""))
    try:
        await accounts.reset_password(token, str(form.get("password", "")), client=client_address(request))
    except TooManyAttempts as exc:
        return _retry_after(_pages(request).render(
            guest, "token_form.html", title="Choose a new password", status=429, token=token[:2000],
            action="/account/password-reset/confirm", password=True, message=_too_many(exc),
            button="Set the new password"), exc)
    except (InvalidToken, InvalidValue) as exc:
        message = exc.message if isinstance(exc, InvalidValue) else str(exc)
        return _pages(request).render(guest, "token_form.html", title="Choose a new password", status=400,
                                      token=token, action="/account/password-reset/confirm", password=True,
                                      message=message, button="Set the new password")
    return guest.apply(RedirectResponse("/account/login", status_code=303))


def _sign_in_first(guest: Visitor, page: str) -> Response:
    return guest.apply(RedirectResponse(f"/account/login?next={page}", status_code=303))


def _phone_page(request: Request, guest: Visitor, *, sent_to: str | None = None, error: str | None = None,
                done: bool = False, status: int = 200) -> Response:
    return _pages(request).render(guest, "phone.html", sent_to=sent_to, error=error, done=done, status=status)


@router.get("/account/phone")
async def phone_page(request: Request, guest: Guest) -> Response:
    """Verify a phone number: a six-digit code is texted to it."""
    if guest.user is None:
        return _sign_in_first(guest, "/account/phone")
    return _phone_page(request, guest)


@router.post("/account/phone")
async def send_phone_code(request: Request, guest: Guest, phone: PhoneDep) -> Response:
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    if guest.user is None:
        return _sign_in_first(guest, "/account/phone")
    try:
        sent = await phone.send_code(guest.user, str(form.get("phone", ""))[:40])
    except InvalidValue as exc:
        return _phone_page(request, guest, error=exc.message[:1].upper() + exc.message[1:], status=422)
    except TooManyAttempts as exc:
        return _retry_after(_phone_page(request, guest, error=_too_many(exc), status=429), exc)
    except SmsNotSent:
        return _phone_page(request, guest, error="The text could not be sent just now; try again shortly.",
                           status=503)
    return _phone_page(request, guest, sent_to=sent.phone)


@router.post("/account/phone/verify")
async def verify_phone(request: Request, guest: Guest, phone: PhoneDep) -> Response:
    form = await request.form()
    guest.check_csrf(form)
    check_form(form)
    if guest.user is None:
        return _sign_in_first(guest, "/account/phone")
    sent_to = str(form.get("phone", ""))[:40] or "your phone"
    try:
        await phone.verify(guest.user, str(form.get("code", ""))[:20], client=client_address(request))
    except InvalidValue as exc:
        return _phone_page(request, guest, sent_to=sent_to, error=f"The code {exc.message}.", status=422)
    except TooManyAttempts as exc:
        return _retry_after(_phone_page(request, guest, sent_to=sent_to, error=_too_many(exc), status=429), exc)
    return _phone_page(request, guest, done=True)
