"""Control panel (admins only): who is staff — give an account the staff or admin role, take it away. An admin
cannot take away their own admin role, so the shop is never left without one by accident."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import Conflict, InvalidValue
from shop.domain.users import Role
from shop.services.customers import Customers
from shop.web.admin.manage_forms import AdminPage, text
from shop.web.admin.shell import checked_form, render, section
from shop.web.deps import CustomersDep

router = APIRouter(prefix="/admin/staff", include_in_schema=False)
section("Staff", "/admin/staff", role=Role.ADMIN)
DONE = {"granted": "The role was given.", "revoked": "The role was taken away."}


def _role(raw: str) -> Role | None:
    return {"staff": Role.STAFF, "admin": Role.ADMIN}.get(raw)


async def _page(request: Request, accounts: Customers, *, status: int = 200, **given: Any) -> Response:
    found = await accounts.staff()
    context: dict[str, Any] = {"values": {}, "errors": {}, "error": None,
                               "notice": DONE.get(request.query_params.get("done", ""))}
    context.update(given)
    return render(request, "admin/manage/staff.html", status=status, found=found, **context)


@router.get("")
async def staff(request: Request, visit: AdminPage, accounts: CustomersDep) -> Response:
    """Everyone holding the staff or admin role."""
    return await _page(request, accounts)


@router.post("")
async def grant(request: Request, visit: AdminPage, accounts: CustomersDep) -> Response:
    """Give the account with this e-mail address the staff or admin role."""
    form = await checked_form(request)
    values = {"email": text(form, "email", limit=320), "role": text(form, "role", limit=10)}
    role = _role(values["role"])
    try:
        if role is None:
            raise InvalidValue("role", "choose staff or admin")
        await accounts.grant(values["email"], role, by=visit.user)
    except InvalidValue as exc:
        return await _page(request, accounts, status=422, values=values, errors={exc.field: exc.message})
    return RedirectResponse("/admin/staff?done=granted", status_code=303)


@router.post("/{user_id}/revoke")
async def revoke(request: Request, user_id: str, visit: AdminPage, accounts: CustomersDep) -> Response:
    """Take the staff role (and with it admin) or only the admin role away."""
    form = await checked_form(request)
    role = _role(text(form, "role", limit=10))
    try:
        if role is None:
            raise InvalidValue("role", "choose staff or admin")
        await accounts.revoke(user_id, role, by=visit.user)
    except (InvalidValue, Conflict) as exc:
        message = exc.message if isinstance(exc, InvalidValue) else str(exc)
        return await _page(request, accounts, status=409 if isinstance(exc, Conflict) else 422, error=message)
    return RedirectResponse("/admin/staff?done=revoked", status_code=303)
