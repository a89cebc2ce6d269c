"""Control panel: orders — the list filtered by state, number or e-mail; one order with its lines, totals,
address, payment and history; and the staff's moves (fulfil, ship, deliver, cancel, refund) through OrderService.
A move the order's state does not allow is shown as a message on the order, not an error page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import DomainError, InvalidValue, NotFound
from shop.domain.orders import OrderStatus, can_move
from shop.services.orders import OrderService
from shop.web.admin.manage_forms import page_number, text
from shop.web.admin.shell import StaffPage, checked_form, render, section
from shop.web.deps import OrderDeskDep, OrdersDep

router = APIRouter(prefix="/admin/orders", include_in_schema=False)
section("Orders", "/admin/orders")
PAGE_SIZE = 25
# what each button does, in the order the buttons are shown, and the state it aims for
MOVES = {"fulfil": OrderStatus.FULFILLED, "ship": OrderStatus.SHIPPED, "deliver": OrderStatus.DELIVERED,
         "cancel": OrderStatus.CANCELED, "refund": OrderStatus.REFUNDED}
DONE = {"fulfil": "The order is fulfilled.", "ship": "The order is shipped; the customer was told.",
        "deliver": "The order is delivered.", "cancel": "The order is canceled.",
        "refund": "The payment was refunded."}


@router.get("")
async def orders(request: Request, visit: StaffPage, desk: OrderDeskDep) -> Response:
    """Every order, newest first, filtered by state, number or e-mail."""
    params = request.query_params
    wanted = {"status": params.get("status", "")[:20], "number": params.get("number", "")[:24],
              "email": params.get("email", "")[:320]}
    errors: dict[str, str] = {}
    try:
        found = await desk.find(**wanted, page=page_number(request), limit=PAGE_SIZE)
    except InvalidValue as exc:
        errors[exc.field] = exc.message
        found = await desk.find(page=1, limit=PAGE_SIZE)
    return render(request, "admin/manage/orders.html", status=422 if errors else 200, found=found,
                  wanted=wanted, errors=errors, states=[s.value for s in OrderStatus],
                  params={k: v for k, v in wanted.items() if v})


async def _order_page(request: Request, service: OrderService, number: str, *, status: int = 200,
                      **given: Any) -> Response:
    order = await service.order_for(number, staff=True)
    context: dict[str, Any] = {"notice": DONE.get(request.query_params.get("done", "")), "error": None}
    context.update(given)
    moves = [name for name, target in MOVES.items() if can_move(order.status, target)]
    return render(request, "admin/manage/order.html", status=status, order=order, moves=moves,
                  labels={name: name.capitalize() for name in MOVES}, **context)


@router.get("/{number}")
async def order(request: Request, number: str, visit: StaffPage, service: OrdersDep) -> Response:
    """One order: lines, totals, address, payment and its history."""
    return await _order_page(request, service, number)


@router.post("/{number}/{move}")
async def move_order(request: Request, number: str, move: str, visit: StaffPage, service: OrdersDep) -> Response:
    """Fulfil, ship, deliver, cancel or refund the order."""
    form = await checked_form(request)
    if move not in MOVES:
        return await _order_page(request, service, number, status=404, error=f"there is no action {move[:20]!r}")
    actions = {"fulfil": service.fulfil, "deliver": service.deliver, "cancel": service.cancel,
               "refund": service.refund}
    try:
        if move == "ship":
            await service.ship(number, tracking=text(form, "tracking", limit=100) or None)
        else:
            await actions[move](number)
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.kind == "order":  # no such order: the 404 page
            raise
        return await _order_page(request, service, number, status=409, error=str(exc))
    return RedirectResponse(f"/admin/orders/{number}?done={move}", status_code=303)
