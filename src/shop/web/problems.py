"""Errors as RFC 9457 problem details: application/problem+json, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route

from shop.domain.discounts import VoucherNotApplicable
from shop.domain.errors import DomainError, InvalidQuantity, InvalidValue, NotFound, OutOfStock
from shop.domain.payments import InvalidWebhook
from shop.domain.users import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    SecondFactorRequired,
    TooManyAttempts,
)
from shop.services.checkout import ItemsUnavailable, PaymentDeclined
from shop.services.idempotency import RequestInProgress
from shop.services.payment_gateway import GatewayUnavailable, PaymentConfigurationError
from shop.services.phone_verification import SmsNotSent
from shop.services.ports import StoreBusy, StoreUnavailable
from shop.web.input_policy import InputRefused
from shop.web.responses import dumps
from shop.web.security import NotAllowed

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Unauthorized", 402: "Payment required", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 422: "Invalid input", 429: "Too many requests",
           500: "Internal error", 502: "Bad gateway", 503: "Service unavailable"}


class ProblemResponse(Response):
    """A problem+json response that keeps its document, for callers that store the problem rather than send it."""

    media_type = PROBLEM

    def __init__(self, document: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        self.document = document
        super().__init__(dumps(document), status_code=document["status"], headers=headers)


def problem(status: int, detail: str, *, errors: list[dict[str, Any]] | None = None, type_: str = "about:blank",
            headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> ProblemResponse:
    body: dict[str, Any] = {"type": type_, "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update(extra or {})
    if errors:
        body["errors"] = errors
    return ProblemResponse(body, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header", "cookie")]
    return ".".join(parts) or "request"


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field_of(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem(422, f"invalid value for {fields}", errors=errors)


async def _invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidValue)
    return problem(422, f"invalid value for {exc.field}: {exc.message}",
                   errors=[{"field": exc.field, "message": exc.message}])


async def _refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputRefused)
    return problem(400, str(exc), errors=[{"field": exc.field, "message": exc.message}])


async def _not_found(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return problem(404, str(exc))


async def _unauthenticated(_: Request, exc: Exception) -> Response:
    return problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"})


async def _second_factor(_: Request, exc: Exception) -> Response:
    return problem(401, str(exc), type_="urn:shop:problem:otp-required",
                   errors=[{"field": "otp", "message": "required for this account"}])


async def _forbidden(_: Request, exc: Exception) -> Response:
    return problem(403, str(exc))


async def _taken(_: Request, exc: Exception) -> Response:
    return problem(409, str(exc), errors=[{"field": "email", "message": str(exc)}])


async def _throttled(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyAttempts)
    return problem(429, str(exc), headers={"Retry-After": str(exc.retry_after)})


async def _sms_not_sent(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SmsNotSent)
    log.warning("verification text not sent: %s", exc.reason)
    return problem(503, "the text message could not be sent; try again shortly", headers={"Retry-After": "30"})


async def _domain(_: Request, exc: Exception) -> Response:
    return problem(409, str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
    return problem(exc.status_code, str(exc.detail), headers=headers)


def _allowed(request: Request) -> list[str]:
    """Every method the path answers: Starlette's 405 names only the first route's, and a path's methods may be
    spread over several routers (GET /api/v1/products/{slug} for everyone, PATCH and DELETE for staff)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


async def _unavailable(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    log.warning("store unavailable: %s", exc)
    return problem(503, f"the {exc.store} store is unavailable; try again shortly", headers={"Retry-After": "5"})


async def _quantity(_: Request, exc: Exception) -> Response:
    return problem(422, str(exc), errors=[{"field": "quantity", "message": str(exc)}])


async def _out_of_stock(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OutOfStock)
    return problem(409, f"only {exc.available} of {exc.sku} left; {exc.requested} wanted",
                   type_="urn:shop:problem:out-of-stock", extra={"sku": exc.sku, "available": exc.available},
                   errors=[{"field": "quantity", "message": f"at most {exc.available} available"}])


async def _voucher(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, VoucherNotApplicable)
    return problem(422, str(exc), type_="urn:shop:problem:voucher",
                   errors=[{"field": "code", "message": exc.reason}])


async def _unavailable_items(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ItemsUnavailable)
    return problem(409, str(exc), extra={"skus": exc.skus})


async def _declined(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaymentDeclined)
    return problem(402, str(exc), type_="urn:shop:problem:payment-declined",
                   extra={"order": exc.number, "reason": exc.reason},
                   errors=[{"field": "payment.token", "message": exc.reason}])


async def _in_progress(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestInProgress)
    return problem(409, str(exc), headers={"Retry-After": str(exc.retry_after)})


async def _bad_webhook(_: Request, exc: Exception) -> Response:
    return problem(400, str(exc))


async def _gateway_down(_: Request, exc: Exception) -> Response:
    log.warning("payment gateway unavailable: %s", exc)
    return problem(503, "the payment provider did not answer; try again shortly", headers={"Retry-After": "10"})


async def _gateway_refused(_: Request, exc: Exception) -> Response:
    log.error("payment gateway refused a request: %s", exc)
    return problem(502, "the payment provider refused the request; the shop's payment settings need a look")


async def response_for(request: Request, exc: Exception) -> Response:
    """The problem response the app's handlers give `exc` (used where a response is stored, not raised)."""
    for kind in type(exc).__mro__:
        handler = request.app.exception_handlers.get(kind)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    return await _unexpected(request, exc)


async def problem_of(request: Request, exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and problem document the app's handlers give `exc`, as data (to store, e.g. under an
    Idempotency-Key, and render when it is answered)."""
    response = await response_for(request, exc)
    if isinstance(response, ProblemResponse):
        return response.status_code, response.document
    return response.status_code, {"type": "about:blank", "title": _TITLES.get(response.status_code, "Error"),
                                  "status": response.status_code, "detail": "the request could not be completed"}


async def _busy(_: Request, exc: Exception) -> Response:
    log.warning("transaction refused by a concurrent one: %s", exc)
    return problem(503, "the shop was busy with a conflicting change; nothing was changed, try again",
                   headers={"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "something went wrong on our side; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InvalidValue, _invalid)
    app.add_exception_handler(InputRefused, _refused)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(InvalidCredentials, _unauthenticated)
    app.add_exception_handler(InvalidToken, _unauthenticated)
    app.add_exception_handler(SecondFactorRequired, _second_factor)
    app.add_exception_handler(AccountDisabled, _forbidden)
    app.add_exception_handler(NotAllowed, _forbidden)
    app.add_exception_handler(EmailTaken, _taken)
    app.add_exception_handler(TooManyAttempts, _throttled)
    app.add_exception_handler(InvalidQuantity, _quantity)
    app.add_exception_handler(OutOfStock, _out_of_stock)
    app.add_exception_handler(VoucherNotApplicable, _voucher)
    app.add_exception_handler(ItemsUnavailable, _unavailable_items)
    app.add_exception_handler(PaymentDeclined, _declined)
    app.add_exception_handler(RequestInProgress, _in_progress)
    app.add_exception_handler(InvalidWebhook, _bad_webhook)
    app.add_exception_handler(GatewayUnavailable, _gateway_down)
    app.add_exception_handler(PaymentConfigurationError, _gateway_refused)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(StoreBusy, _busy)
    app.add_exception_handler(SmsNotSent, _sms_not_sent)
    app.add_exception_handler(Exception, _unexpected)
