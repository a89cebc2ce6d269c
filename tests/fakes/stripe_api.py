"""A fake of the Stripe endpoints the shop calls, as an ASGI app: PaymentIntents (create and confirm, retrieve),
Refunds, and signed webhooks. It answers as Stripe's API reference documents (the objects' fields and statuses, the
`error` object, HTTP 401/402/404, `Idempotency-Key` replays) and keeps its state in memory.

Payment methods behave like Stripe's test ones: a token naming `threeDSecure` needs 3-D Secure, `chargeDeclined`
is declined, anything else pays. A test plays the customer and Stripe with `complete_3ds` and `event`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_VERSION = "2024-06-20"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _error(status: int, kind: str, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **more}}, status_code=status)


@dataclass
class FakeStripe:
    secret_key: str
    webhook_secret: str
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    _replays: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/payment_intents", self._create_intent, methods=["POST"]),
            Route("/v1/payment_intents/{intent_id}", self._retrieve_intent, methods=["GET"]),
            Route("/v1/refunds", self._create_refund, methods=["POST"]),
        ])

    # --- what a test does as the customer and as Stripe --------------------------------------------------------

    def complete_3ds(self, intent_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """The customer passes (or fails) the bank's challenge, as Stripe.js's handleNextAction would see it."""
        intent = self.intents[intent_id]
        assert intent["status"] == "requires_action", intent["status"]
        intent["next_action"] = None
        if succeed:
            intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=_id("ch"))
        else:
            intent.update(status="requires_payment_method", last_payment_error={
                "type": "card_error", "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication."})
        return intent

    def event(self, intent_id: str, kind: str, *, at: int | None = None) -> tuple[bytes, dict[str, str]]:
        """A webhook Stripe would send about the intent now: the Event's body and its Stripe-Signature header."""
        created = at if at is not None else int(time.time())
        body = json.dumps({"id": _id("evt"), "object": "event", "api_version": API_VERSION, "created": created,
                           "data": {"object": dict(self.intents[intent_id])}, "livemode": False,
                           "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                           "type": kind}).encode()
        digest = hmac.new(self.webhook_secret.encode(), f"{created}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={created},v1={digest}"}

    # --- the API --------------------------------------------------------------------------------------------

    async def _call(self, request: Request) -> tuple[dict[str, str], JSONResponse | None]:
        form = {k: str(v) for k, v in (await request.form()).items()} if request.method == "POST" else {}
        self.requests.append((request.method, request.url.path, form, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            shown = request.headers.get("authorization", "").removeprefix("Bearer ")[:8]
            return form, _error(401, "invalid_request_error", f"Invalid API Key provided: {shown}****")
        return form, None

    async def _idempotent(self, request: Request, form: dict[str, str], make: Any) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        if key is not None and (request.url.path, key) in self._replays:
            status, body = self._replays[(request.url.path, key)]
            return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
        status, body = make(form)
        if key is not None:
            self._replays[(request.url.path, key)] = (status, body)
        return JSONResponse(body, status_code=status)

    async def _create_intent(self, request: Request) -> JSONResponse:
        form, refused = await self._call(request)
        return refused or await self._idempotent(request, form, self._new_intent)

    def _new_intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        amount, currency = form.get("amount", ""), form.get("currency", "")
        if not amount.isdigit() or int(amount) < 1:
            return 400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid_integer",
                                   "param": "amount", "message": "Invalid integer: " + amount}}
        if len(currency) != 3 or currency != currency.lower():
            return 400, {"error": {"type": "invalid_request_error", "code": "parameter_missing",
                                   "param": "currency", "message": "Missing required param: currency."}}
        method = form.get("confirmation_token") or form.get("payment_method")
        if form.get("confirmation_token") and form.get("payment_method"):
            return 400, {"error": {"type": "invalid_request_error", "param": "confirmation_token",
                                   "message": "You may only specify one of these parameters: "
                                              "confirmation_token, payment_method."}}
        intent_id = _id("pi")
        intent: dict[str, Any] = {
            "id": intent_id, "object": "payment_intent", "amount": int(amount), "amount_capturable": 0,
            "amount_received": 0, "automatic_payment_methods": {"enabled": True}, "canceled_at": None,
            "cancellation_reason": None, "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}", "confirmation_method": "automatic",
            "created": int(time.time()), "currency": currency, "customer": None, "description": None,
            "last_payment_error": None, "latest_charge": None, "livemode": False,
            "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "next_action": None, "payment_method": _id("pm") if method else None,
            "payment_method_types": ["card"], "receipt_email": form.get("receipt_email"),
            "status": "requires_payment_method"}
        self.intents[intent_id] = intent
        if form.get("confirm") != "true" or not method:
            return 200, intent
        if "chargeDeclined" in method:
            error = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                     "message": "Your card was declined.", "payment_method": {"id": intent["payment_method"]}}
            intent["last_payment_error"] = error
            return 402, {"error": {**error, "payment_intent": intent}}
        if "threeDSecure" in method:
            intent.update(status="requires_action", next_action={
                "type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect",
                                                             "stripe_js": "https://hooks.stripe.com/3d_secure_2/"}})
        else:
            intent.update(status="succeeded", amount_received=int(amount), latest_charge=_id("ch"))
        return 200, intent

    async def _retrieve_intent(self, request: Request) -> JSONResponse:
        _, refused = await self._call(request)
        if refused:
            return refused
        intent = self.intents.get(request.path_params["intent_id"])
        if intent is None:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{request.path_params['intent_id']}'",
                          code="resource_missing", param="intent")
        return JSONResponse(intent)

    async def _create_refund(self, request: Request) -> JSONResponse:
        form, refused = await self._call(request)
        return refused or await self._idempotent(request, form, self._new_refund)

    def _new_refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "param": "payment_intent", "message": "No such payment_intent"}}
        amount = int(form.get("amount") or intent["amount_received"])
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"])
        if intent["status"] != "succeeded" or amount > intent["amount_received"] - refunded:
            return 400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                   "message": "Refund amount is greater than unrefunded amount on charge."}}
        refund = {"id": _id("re"), "object": "refund", "amount": amount, "balance_transaction": None,
                  "charge": intent["latest_charge"], "created": int(time.time()), "currency": intent["currency"],
                  "metadata": {}, "payment_intent": intent["id"], "reason": None, "receipt_number": None,
                  "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        return 200, refund
