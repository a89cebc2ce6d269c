"""Mounting the storefront on the app: its pages, static files, security headers and HTML error pages."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, Response

from shop.config import Settings
from shop.domain.errors import DomainError, NotFound
from shop.services.ports import StoreBusy, StoreUnavailable
from shop.web import deps
from shop.web.assets import Assets
from shop.web.input_policy import InputRefused
from shop.web.storefront import account, buying, catalogue
from shop.web.storefront.rendering import Pages
from shop.web.storefront.visitor import CsrfFailed, Visitor, visitor

log = logging.getLogger(__name__)
# paths that are not storefront pages: their errors stay problem+json
NOT_PAGES = ("/api/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/media/", "/static/", "/app/")
static = APIRouter(include_in_schema=False)


@static.get("/static/{path:path}")
async def static_file(request: Request, path: str) -> Response:
    """A static file: content-hashed names are cached for a year, plain names briefly."""
    assets: Assets = request.app.state.assets
    hashed = assets.file_for(path)
    if hashed is not None:
        return FileResponse(hashed, headers={"Cache-Control": "public, max-age=31536000, immutable"})
    plain = assets.plain_file(path)
    if plain is None:
        raise NotFound("file", path)
    return FileResponse(plain, headers={"Cache-Control": "public, max-age=300"})


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def install(app: FastAPI, settings: Settings) -> Assets:
    """Add the storefront to `app`; returns its assets (for the CSP's CDN origin)."""
    assets = Assets(cdn=settings.assets_cdn)
    pages = Pages(assets=assets, shop_name=settings.shop_name)
    app.state.assets = assets
    app.state.pages = pages
    app.state.csrf_key = hmac.new(settings.signing_secret().encode(), b"storefront-csrf", hashlib.sha256).digest()
    for router in (catalogue.router, buying.router, account.router, static):
        app.include_router(router)

    handlers: dict[Any, Any] = dict(app.exception_handlers)

    def html_or_problem(kind: type[Exception], status: int, title: str, *, retry_after: str | None = None,
                        detail: str = "Something went wrong on our side; it has been logged.",
                        anonymous: bool = False) -> None:
        fallback = handlers.get(kind) or handlers[Exception]

        async def handle(request: Request, exc: Exception) -> Response:
            if not _is_page(request):
                response: Response = await fallback(request, exc)
                return response
            if retry_after is not None:  # a store away or busy: nothing to trace, only to retry
                log.warning("storefront page %s: %s", request.url.path, exc)
            elif status >= 500:
                log.exception("storefront page %s failed", request.url.path)
            guest = await _visitor(request) if status < 500 and not anonymous else _bare(request)
            page = pages.render(guest, "error.html", status=status, title=title,
                                detail=str(exc) if status < 500 else detail)
            if retry_after is not None:
                page.headers["Retry-After"] = retry_after
            return page

        app.add_exception_handler(kind, handle)

    html_or_problem(NotFound, 404, "Not found")
    # shown without the visitor's session: the refused text may be in the very cookie that would be looked up
    html_or_problem(InputRefused, 400, "Bad request", anonymous=True)
    html_or_problem(CsrfFailed, 403, "Please try again")
    html_or_problem(StoreUnavailable, 503, "The shop is busy", retry_after="5",
                    detail="The shop cannot reach its database just now. Please try again in a few seconds.")
    html_or_problem(StoreBusy, 503, "The shop is busy", retry_after="1",
                    detail="The shop was busy with another change. Please try again.")
    html_or_problem(DomainError, 409, "That did not work")
    html_or_problem(Exception, 500, "Sorry")
    return assets


async def _visitor(request: Request) -> Visitor:
    """The visitor for an error page: a handler is outside FastAPI's dependencies, so they are resolved here."""
    return await visitor(request, await deps.web_sessions(request), await deps.auth(request))


def _bare(request: Request) -> Visitor:
    """A visitor for error pages when the stores may be what failed."""
    return Visitor(session_id=None, session=None, user=None, csrf_cookie="-" * 24, secure=False,
                   key=request.app.state.csrf_key)
