"""Who is looking at a storefront page: their server-side session (a cookie naming it), the signed-in customer,
and the CSRF token every form carries.

CSRF: a random `shop_csrf` cookie (HttpOnly, SameSite=Lax) and, in each form, an HMAC of it under the shop's key.
A cross-site form can neither read the cookie nor compute the HMAC, so its POST is refused.

Over HTTPS both cookies are named with the `__Host-` prefix: a browser then takes them only from this host, over
HTTPS, for the whole site, so a sibling subdomain or a plain-HTTP page cannot plant a session or CSRF cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from shop.domain.users import User
from shop.services.web_sessions import WebSession, WebSessions
from shop.web.deps import AuthDep, WebSessionsDep

SESSION_COOKIE = "shop_session"
CSRF_COOKIE = "shop_csrf"
_SECURE_PREFIX = "__Host-"


def cookie_name(name: str, *, secure: bool) -> str:
    """What a cookie is called on the wire: with the `__Host-` prefix over HTTPS (browsers refuse it over HTTP)."""
    return _SECURE_PREFIX + name if secure else name


class CsrfFailed(Exception):
    """A form without the visitor's CSRF token (403)."""


@dataclass(slots=True)
class Visitor:
    session_id: str | None
    session: WebSession | None
    user: User | None
    csrf_cookie: str
    secure: bool
    key: bytes
    cookies: dict[str, str | None] = field(default_factory=dict)  # to set (None: delete) on the response

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.key, self.csrf_cookie.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, form: Any) -> None:
        sent = form.get("csrf") if form is not None else None
        if not isinstance(sent, str) or not hmac.compare_digest(sent, self.csrf_token):
            raise CsrfFailed("the form has expired or did not come from this shop; reload the page and try again")

    @property
    def cart_id(self) -> str | None:
        return self.session.cart_id if self.session else None

    def order_key(self, number: str) -> str | None:
        keys = dict(self.session.order_keys) if self.session else {}
        return keys.get(number)

    async def remember(self, sessions: WebSessions, **changes: Any) -> None:
        """Store something in the visitor's session, starting one if they have none yet."""
        if self.session is None or self.session_id is None:
            self.session_id, self.session = await sessions.start(**changes)
            self.cookies[SESSION_COOKIE] = self.session_id
        else:
            self.session = await sessions.save(self.session_id, replace(self.session, **changes))

    def apply(self, response: Response) -> Response:
        """Put the cookies this request changed on its response."""
        for name, value in self.cookies.items():
            wire = cookie_name(name, secure=self.secure)
            if value is None:
                response.delete_cookie(wire, path="/", secure=self.secure, httponly=True, samesite="lax")
            else:
                max_age = 14 * 86_400 if name == SESSION_COOKIE else 365 * 86_400
                response.set_cookie(wire, value, max_age=max_age, path="/", secure=self.secure, httponly=True,
                                    samesite="lax")
        return response


async def visitor(request: Request, sessions: WebSessionsDep, auth: AuthDep) -> Visitor:
    """The dependency pages take: loads the session (if any) and the signed-in user."""
    settings = request.app.state.settings
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    session_id = request.cookies.get(cookie_name(SESSION_COOKIE, secure=secure))
    session = await sessions.load(session_id)
    user = await auth.active_user(session.user_id) if session and session.user_id else None
    if user is not None:
        request.state.user_id = user.id  # for the request log (shop.web.request_log)
    csrf = request.cookies.get(cookie_name(CSRF_COOKIE, secure=secure)) or ""
    cookies: dict[str, str | None] = {}
    if len(csrf) < 20:
        csrf = secrets.token_urlsafe(24)
        cookies[CSRF_COOKIE] = csrf
    if session_id and session is None:
        cookies[SESSION_COOKIE] = None  # expired or unknown: drop the stale cookie
        session_id = None
    return Visitor(session_id=session_id, session=session, user=user, csrf_cookie=csrf, secure=secure,
                   key=request.app.state.csrf_key, cookies=cookies)


Guest = Annotated[Visitor, Depends(visitor)]
