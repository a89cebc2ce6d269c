"""Control panel: orders — the list filtered by state, number or e-mail; one order with its lines, totals,
address, payment, parcels, refunds and history; and the staff's moves (fulfil, ship, deliver, cancel, refund; a
parcel of some lines; a refund by amount or lines) through OrderService. A move the order's state does not allow,
or a quantity or amount it cannot take, is shown as a message on the order, not an error page."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import DomainError, InvalidValue, NotFound
from shop.domain.fulfilment import RefundLine, RefundRequest
from shop.domain.money import Money, minor_units
from shop.domain.orders import SHIPS_FROM, Order, OrderStatus, can_move
from shop.services.orders import OrderService
from shop.web.admin.manage_forms import Errors, page_number, text, whole_number
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
        "refund": "The payment was refunded.", "parcel": "The parcel is shipped; the customer was told.",
        "refunded": "The refund went through; the customer was told."}


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
    context.setdefault("form_errors", {})
    context.setdefault("refund_key", secrets.token_hex(16))  # one per form shown: a second submit refunds nothing
    return render(request, "admin/manage/order.html", status=status, order=order, moves=moves,
                  labels={name: name.capitalize() for name in MOVES}, can_ship=order.status in SHIPS_FROM,
                  lines=_lines(order), **context)


def _lines(order: Order) -> list[dict[str, Any]]:
    """Each line with what has happened to its units, for the parcel and refund forms."""
    refunded = order.refunded_units()
    return [{"number": n, "line": line, "shipped": shipped, "refunded": refunded[n - 1], "left": left,
             "refundable": line.quantity - refunded[n - 1]}
            for n, (line, shipped, left) in enumerate(zip(order.lines, order.shipped_units(), order.left_to_ship(),
                                                          strict=True), start=1)]


@router.post("/{number}/parcel")
async def ship_parcel(request: Request, number: str, visit: StaffPage, service: OrdersDep) -> Response:
    """Ship the units entered per line with a carrier and tracking number."""
    form = await checked_form(request)
    order = await service.order_for(number, staff=True)
    errors: Errors = {}
    wanted = []
    for n, line in enumerate(order.lines, start=1):
        units = whole_number(form, f"ship_{n}", errors, high=line.quantity, required=False)
        if units:
            wanted.append((n, units))
    if not errors and not wanted:
        errors["ship_1"] = "enter the units to ship of at least one line"
    if errors:
        return await _order_page(request, service, number, status=422, error="The parcel was not shipped.",
                                 form_errors=errors)
    try:
        await service.ship_lines(number, wanted, carrier=text(form, "carrier", limit=60),
                                 tracking=text(form, "tracking", limit=100) or None)
    except DomainError as exc:
        return await _refused(request, service, number, exc)
    return RedirectResponse(f"/admin/orders/{number}?done=parcel", status_code=303)


@router.post("/{number}/refunds")
async def refund_part(request: Request, number: str, visit: StaffPage, service: OrdersDep) -> Response:
    """Refund the units entered per line (restocking those ticked), an amount, or both."""
    form = await checked_form(request)
    order = await service.order_for(number, staff=True)
    errors: Errors = {}
    lines = []
    for n, line in enumerate(order.lines, start=1):
        units = whole_number(form, f"refund_{n}", errors, high=line.quantity, required=False)
        if units:
            lines.append(RefundLine(n, units, units if form.get(f"restock_{n}") else 0))
    amount = None
    raw = text(form, "amount", limit=24)
    if raw:
        try:
            amount = Money.of(raw, order.currency)
            if amount.amount != Decimal(raw):
                raise InvalidValue("amount", f"{order.currency} has {minor_units(order.currency)} decimal places")
        except InvalidValue as exc:
            errors["amount"] = exc.message
    if not errors and amount is None and not lines:
        errors["amount"] = "enter an amount, or the units to refund of at least one line"
    if errors:
        return await _order_page(request, service, number, status=422, error="Nothing was refunded.",
                                 form_errors=errors)
    key = text(form, "key", limit=64) or secrets.token_hex(16)
    try:
        await service.refund_part(number, RefundRequest(amount=amount, lines=tuple(lines),
                                                        reason=text(form, "reason", limit=500)),
                                  key=f"panel:{key}", by=visit.user.id)
    except DomainError as exc:
        return await _refused(request, service, number, exc)
    return RedirectResponse(f"/admin/orders/{number}?done=refunded", status_code=303)


async def _refused(request: Request, service: OrderService, number: str, exc: DomainError) -> Response:
    """The order page again, saying why (the field's name where there is one)."""
    if isinstance(exc, NotFound) and exc.kind == "order":
        raise exc
    errors = {exc.field: exc.message} if isinstance(exc, InvalidValue) else {}
    return await _order_page(request, service, number, status=422 if errors else 409, error=str(exc),
                             form_errors=errors)


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
