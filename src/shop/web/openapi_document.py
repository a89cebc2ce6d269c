"""The OpenAPI document (/openapi.json) as the API answers, settled in one place rather than on every route: errors
are application/problem+json, the errors any route can give are listed on each, and a route where a bearer token
is optional says so. tests/e2e/test_openapi_contract.py holds the API to it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shop.web.api.v1.schemas import ONE_LINE_TEXT, Problem
from shop.web.problems import PROBLEM
from shop.web.security import GUESTS_WELCOME

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {400: "A control character in the path, a query parameter or a header",
                 401: "No valid access token", 402: "Payment declined", 403: "Signed in without the role it needs",
                 404: "Not found", 409: "In conflict with the resource's state", 422: "Invalid input",
                 429: "Too many attempts; see Retry-After", 502: "The payment provider refused the request",
                 503: "A store or a provider is unavailable, or the shop was busy; see Retry-After"}
_METHODS = ("get", "put", "post", "patch", "delete")
BEARER = "HTTPBearer"  # FastAPI's name for shop.web.security's scheme
HEADER_TEXT = "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"  # HTTP lets a header value hold a tab, no other control


def install(app: FastAPI) -> None:
    """Serve the document below as the app's /openapi.json (built once, on its first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}), Problem=problem)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's own 422 body; ours is a Problem
        schemas.pop(unused, None)
    schemes = spec["components"].get("securitySchemes", {})
    if GUESTS_WELCOME in schemes:  # one bearer token, optional on some routes
        schemes.setdefault(BEARER, schemes.pop(GUESTS_WELCOME))
    for path, operations in spec.get("paths", {}).items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is not None:
                _settle(operation, api=path.startswith("/api/"))
    return spec


def _settle(operation: dict[str, Any], *, api: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {400}  # the input policy answers before any route (shop.web.input_policy)
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "security" in operation:
        statuses.add(401)  # a token that is sent must be valid, on a route that also welcomes guests
    if api:
        statuses.add(503)  # a store that does not answer, or a transaction refused by a concurrent one
    for status in statuses:
        responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            if response.get("description") == "Validation Error":
                response["description"] = _DESCRIPTIONS[422]
            response["content"] = {PROBLEM: {"schema": _PROBLEM_REF}}
    if any(GUESTS_WELCOME in requirement for requirement in operation.get("security", ())):
        # anyone may call it; a customer's token makes it theirs
        operation["security"] = [{BEARER: []}, {}]
    for parameter in parameters:
        schema = parameter.get("schema", {})
        for option in (schema, *schema.get("anyOf", ())):
            if option.get("type") == "string" and "pattern" not in option and "format" not in option:
                option["pattern"] = HEADER_TEXT if parameter.get("in") == "header" else ONE_LINE_TEXT
