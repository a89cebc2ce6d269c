"""Security headers on every response; a strict Content-Security-Policy on the shop's HTML pages; redirects that
never name the host the request claimed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from shop.web.cache import ASGIApp

_EVERYWHERE = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"strict-origin-when-cross-origin")]
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


# Stripe.js and the frames of its Payment Element and 3-D Secure challenge (Stripe's documented CSP), allowed only
# where the stripe gateway is configured: a shop on the test gateway loads nothing from anyone else.
STRIPE_SCRIPTS = "https://js.stripe.com"
STRIPE_FRAMES = "https://js.stripe.com https://hooks.stripe.com"
STRIPE_CONNECT = "https://api.stripe.com"


def content_security_policy(extra_origins: Iterable[str] = (), *, stripe: bool = False) -> bytes:
    """Scripts and styles only from the shop (and its CDN, and Stripe's script with `stripe`): no inline script,
    no eval, no framing."""
    others = " ".join(extra_origins)
    sources = f"'self' {others}".strip()
    scripts = f"{sources} {STRIPE_SCRIPTS}" if stripe else sources
    frames = f"frame-src {STRIPE_FRAMES}; " if stripe else ""
    connect = f"'self' {STRIPE_CONNECT}" if stripe else "'self'"
    return (f"default-src 'self'; script-src {scripts}; style-src {sources}; img-src 'self' data: {others}; "
            f"font-src {sources}; connect-src {connect}; {frames}form-action 'self'; frame-ancestors 'none'; "
            f"base-uri 'self'; object-src 'none'").replace("  ", " ").encode()


def _same_site_location(location: bytes, host: bytes | None) -> bytes:
    """A redirect to the request's own Host header, made relative: the Host header is the client's to write, and
    a Location built from it (Starlette's slash redirects build one) would send a shopper wherever it says."""
    if not location.startswith((b"http://", b"https://", b"//")):
        return location
    parts = urlsplit(location.decode("latin-1"))
    if host is None or parts.netloc.lower() != host.decode("latin-1").lower():
        return location  # somewhere else on purpose (a payment provider's page)
    relative = parts.path or "/"
    if parts.query:
        relative += "?" + parts.query
    return ("/" + relative.lstrip("/")).encode("latin-1")


class SecurityHeaders:
    """ASGI middleware."""

    def __init__(self, app: ASGIApp, *, csp: bytes) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        host = next((value for name, value in scope["headers"] if name == b"host"), None)

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if 300 <= message["status"] < 400:
                    headers = [(n, _same_site_location(v, host) if n.lower() == b"location" else v)
                               for n, v in headers]
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in _EVERYWHERE if h[0] not in names)
                html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                if html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.csp))
                    headers.append((b"x-frame-options", b"DENY"))
                if https:
                    headers.append(_HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
