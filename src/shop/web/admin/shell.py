"""The control panel's shell: who may see it, how its pages are rendered, and the sections in its navigation.

Every admin route takes `StaffPage` (the signed-in staff member) and answers with `render(request, template, …)`;
forms are read with `await checked_form(request)`, which refuses a POST without the storefront's CSRF token.
A section adds itself to the navigation with `section("Products", "/admin/products")` when its module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from shop.domain.users import Role, User
from shop.web.assets import Assets
from shop.web.input_policy import check_form
from shop.web.storefront.rendering import format_money
from shop.web.storefront.visitor import CsrfFailed, Guest, Visitor

TEMPLATES = Path(__file__).parent / "templates"
TWO_FACTOR_PAGE = "/admin/two-factor"
TEXT_AREAS = frozenset({"description", "attributes"})  # the form fields that run over several lines
# the order the navigation shows, whichever module registers first; unknown labels go last
_NAV_ORDER = ("Dashboard", "Business", "Requests", "Workers", "Products", "Categories", "Orders", "Customers",
              "Vouchers", "Staff")


@dataclass(frozen=True, slots=True)
class Section:
    label: str
    href: str
    role: Role = Role.STAFF  # who sees the link (the routes guard themselves too)


_sections: dict[str, Section] = {}


def section(label: str, href: str, *, role: Role = Role.STAFF) -> Section:
    """Add a link to the panel's navigation (idempotent: registering a label again replaces it)."""
    entry = Section(label, href, role)
    _sections[label] = entry
    return entry


def navigation(user: User) -> list[Section]:
    """The sections `user` may open, in the panel's order."""
    def rank(entry: Section) -> tuple[int, str]:
        return (_NAV_ORDER.index(entry.label) if entry.label in _NAV_ORDER else len(_NAV_ORDER), entry.label)
    return sorted((s for s in _sections.values() if user.has_role(s.role)), key=rank)


class SignInFirst(Exception):
    """Anonymous: off to the sign-in page, coming back here afterwards."""

    def __init__(self, next_page: str) -> None:
        super().__init__(next_page)
        self.location = "/account/login?next=" + quote(next_page, safe="/")


class StaffOnly(Exception):
    """Signed in without a staff role (403)."""


class TwoFactorFirst(Exception):
    """SHOP_REQUIRE_STAFF_2FA is on and this staff member has not switched on two-factor sign-in yet."""


class AdminCsrfRefused(CsrfFailed):
    """A control-panel form without the right CSRF token (403, shown inside the panel)."""


@dataclass(frozen=True, slots=True)
class StaffVisit:
    """The staff member looking at a panel page, with their storefront session (cookies, CSRF token)."""

    visitor: Visitor
    user: User


async def _signed_in_staff(request: Request, guest: Visitor, *, enforce_two_factor: bool) -> StaffVisit:
    if guest.user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInFirst(target if request.method == "GET" else "/admin/")
    if not guest.user.has_role(Role.STAFF):
        raise StaffOnly("this page is for the shop's staff")
    visit = StaffVisit(visitor=guest, user=guest.user)
    request.state.admin_visit = visit
    if enforce_two_factor and request.app.state.settings.require_staff_2fa and not guest.user.has_two_factor:
        raise TwoFactorFirst()
    return visit


async def staff_page(request: Request, guest: Guest) -> StaffVisit:
    """The dependency every panel route takes: staff only, with two-factor sign-in where the shop requires it."""
    return await _signed_in_staff(request, guest, enforce_two_factor=True)


async def staff_without_two_factor(request: Request, guest: Guest) -> StaffVisit:
    """For the page where staff switch two-factor sign-in on: it cannot demand it."""
    return await _signed_in_staff(request, guest, enforce_two_factor=False)


StaffPage = Annotated[StaffVisit, Depends(staff_page)]


def admin_visit(request: Request) -> StaffVisit:
    visit: StaffVisit | None = getattr(request.state, "admin_visit", None)
    if visit is None:
        raise RuntimeError("a control-panel page must depend on staff_page before rendering")
    return visit


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is known to be this visitor's (AdminCsrfRefused otherwise) and no field
    holds a control character (InputRefused); only the panel's text areas may hold tabs and line breaks."""
    form = await request.form()
    try:
        admin_visit(request).visitor.check_csrf(form)
    except CsrfFailed as exc:
        raise AdminCsrfRefused(str(exc)) from None
    check_form(form, multiline=TEXT_AREAS)
    return form


def _when(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone(UTC).strftime(pattern) if value is not None else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


class AdminPages:
    """The panel's Jinja2 environment: templates under admin/templates (names start with `admin/`)."""

    def __init__(self, *, assets: Assets, shop_name: str, extra_templates: tuple[Path, ...] = ()) -> None:
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(TEMPLATES), *(FileSystemLoader(p) for p in extra_templates)]),
            autoescape=select_autoescape(default=True), auto_reload=False, trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(asset=assets.url, shop_name=shop_name)
        self.env.filters.update(money=format_money, when=_when, duration=_duration)

    def render(self, visit: StaffVisit | None, template: str, *, status: int = 200, path: str = "",
               **context: Any) -> Response:
        user = visit.user if visit else None
        html = self.env.get_template(template).render(
            user=user, csrf=visit.visitor.csrf_token if visit else "", path=path,
            nav=navigation(user) if user else [], **context)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        return visit.visitor.apply(response) if visit else response


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    """A panel page for the staff member of this request (their nav, CSRF token, session cookies)."""
    pages: AdminPages = request.app.state.admin_pages
    return pages.render(admin_visit(request), template, status=status, path=request.url.path, **context)


for _label, _href in (("Dashboard", "/admin/"), ("Business", "/admin/business"), ("Requests", "/admin/requests"),
                      ("Workers", "/admin/workers")):
    section(_label, _href)
