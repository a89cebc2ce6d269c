"""Control panel: customers — find by e-mail, see one with their orders and how their account is secured, switch
an account off (it cannot sign in; its sessions and refresh tokens end at once) or on again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import Conflict
from shop.services.customers import Customers
from shop.services.orders import OrderService
from shop.web.admin.manage_forms import page_number
from shop.web.admin.shell import StaffPage, checked_form, render, section
from shop.web.deps import CustomersDep, OrdersDep

router = APIRouter(prefix="/admin/customers", include_in_schema=False)
section("Customers", "/admin/customers")
PAGE_SIZE = 25
DONE = {"disabled": "The account is disabled and signed out everywhere.", "enabled": "The account is enabled."}


@router.get("")
async def customers(request: Request, visit: StaffPage, accounts: CustomersDep) -> Response:
    """Accounts, newest first; search by part of the e-mail address."""
    email = request.query_params.get("email", "")[:320]
    found = await accounts.find(email, page=page_number(request), limit=PAGE_SIZE)
    return render(request, "admin/manage/customers.html", found=found, email=email)


async def _customer_page(request: Request, user_id: str, accounts: Customers, orders_service: OrderService, *,
                         status: int = 200, **given: Any) -> Response:
    customer = await accounts.account(user_id)
    orders = await orders_service.orders_of(customer.id, page=page_number(request), limit=PAGE_SIZE)
    context: dict[str, Any] = {"notice": DONE.get(request.query_params.get("done", "")), "error": None}
    context.update(given)
    return render(request, "admin/manage/customer.html", status=status, customer=customer, orders=orders,
                  **context)


@router.get("/{user_id}")
async def customer(request: Request, user_id: str, visit: StaffPage, accounts: CustomersDep,
                   orders: OrdersDep) -> Response:
    """One account: its orders, whether its e-mail and phone are verified, whether 2FA is on."""
    return await _customer_page(request, user_id, accounts, orders)


@router.post("/{user_id}/disable")
async def disable(request: Request, user_id: str, visit: StaffPage, accounts: CustomersDep,
                  orders: OrdersDep) -> Response:
    await checked_form(request)
    try:
        await accounts.disable(user_id, by=visit.user)
    except Conflict as exc:
        return await _customer_page(request, user_id, accounts, orders, status=409, error=str(exc))
    return RedirectResponse(f"/admin/customers/{user_id}?done=disabled", status_code=303)


@router.post("/{user_id}/enable")
async def enable(request: Request, user_id: str, visit: StaffPage, accounts: CustomersDep,
                 orders: OrdersDep) -> Response:
    await checked_form(request)
    try:
        await accounts.enable(user_id, by=visit.user)
    except Conflict as exc:
        return await _customer_page(request, user_id, accounts, orders, status=409, error=str(exc))
    return RedirectResponse(f"/admin/customers/{user_id}?done=enabled", status_code=303)
