"""The control panel at /admin/: staff only, inside the storefront's session and CSRF protection.

`install(app)` mounts the panel's own pages and every `shop.web.admin.manage_*` module that exposes a `router`,
so a management section is added by creating its module, without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from shop.web.admin import business, dashboard, request_browser, two_factor, workers
from shop.web.admin.process_figures import ProcessGauge
from shop.web.admin.shell import (
    TWO_FACTOR_PAGE,
    AdminCsrfRefused,
    AdminPages,
    SignInFirst,
    StaffOnly,
    StaffVisit,
    TwoFactorFirst,
)
from shop.web.assets import Assets
from shop.web.problems import problem

__all__ = ["install"]
API = "/admin/api/"  # the dashboards' JSON: refusals there are problem+json, not pages


def _management_modules() -> list[str]:
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                  if m.name.startswith("manage_"))


def install(app: FastAPI) -> None:
    """Add the panel to `app`, after the storefront: it shares its session, CSRF key and assets."""
    assets: Assets = app.state.assets
    app.state.admin_pages = pages = AdminPages(assets=assets, shop_name=app.state.settings.shop_name)
    app.state.admin_gauge = ProcessGauge()
    for module in (dashboard, business, request_browser, workers, two_factor):
        app.include_router(module.router)
    for name in _management_modules():
        module = importlib.import_module(name)
        if hasattr(module, "router"):
            app.include_router(module.router)

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInFirst)
        if request.url.path.startswith(API):
            return problem(401, "sign in as staff first", headers={"Cache-Control": "no-store"})
        return RedirectResponse(exc.location, status_code=303)

    async def two_factor_first(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API):
            return problem(403, f"switch on two-factor sign-in first ({TWO_FACTOR_PAGE})")
        return RedirectResponse(TWO_FACTOR_PAGE, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API):
            return problem(403, str(exc))
        visit: StaffVisit | None = getattr(request.state, "admin_visit", None)
        title = "Please try again" if isinstance(exc, AdminCsrfRefused) else "Staff only"
        return pages.render(visit, "admin/refused.html", status=403, title=title, detail=str(exc),
                            path=request.url.path)

    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(TwoFactorFirst, two_factor_first)
    app.add_exception_handler(StaffOnly, refused)
    app.add_exception_handler(AdminCsrfRefused, refused)
