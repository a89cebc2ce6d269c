"""The payment gateways: Stripe's webhook signatures, the built-in test gateway, and the Stripe adapter against
`httpx.MockTransport` (every request it would send is kept and checked field by field)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio

from shop.domain.money import Money
from shop.domain.payments import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    EventKind,
    GatewayEvent,
    InvalidPaymentToken,
    InvalidWebhook,
    RefundResult,
    check_token,
)
from shop.infrastructure.payments import signatures
from shop.infrastructure.payments.stripe import (
    STRIPE_VERSION,
    PaymentConfigurationError,
    StripeConfig,
    StripeGateway,
    to_stripe_amount,
)
from shop.infrastructure.payments.test_gateway import TestGateway
from shop.services.payment_gateway import GatewayUnavailable, PaymentGateway

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WEBHOOK_SECRET = "whsec_" + "w" * 32
SECRET_KEY = "sk_test_51Secret" + "k" * 24
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
EUR_12_34 = Money.of("12.34", "EUR")


def _request(token: str, *, key: str = "order-1001-attempt-1", amount: Money = EUR_12_34,
             email: str | None = None) -> ChargeRequest:
    return ChargeRequest(reference="1001", amount=amount, token=token, idempotency_key=key, email=email)


# signatures


def test_a_signed_body_verifies() -> None:
    signatures.verify(BODY, signatures.sign(BODY, WEBHOOK_SECRET, now=NOW), WEBHOOK_SECRET, now=NOW)


def test_the_signature_follows_stripes_scheme() -> None:
    header = signatures.sign(BODY, WEBHOOK_SECRET, now=NOW)
    timestamp = int(NOW.timestamp())
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={timestamp},v1={expected}"


@pytest.mark.parametrize(("received", "secret", "signed_at", "match"), [
    (BODY.replace(b"evt_1", b"evt_2"), WEBHOOK_SECRET, NOW, "does not match"),  # tampered body
    (BODY, "whsec_someone_else", NOW, "does not match"),  # signed with another secret
    (BODY, WEBHOOK_SECRET, NOW - timedelta(minutes=6), "outside the allowed window"),  # replayed
    (BODY, WEBHOOK_SECRET, NOW + timedelta(minutes=6), "outside the allowed window"),  # from the future
])
def test_a_tampered_forged_or_stale_webhook_is_refused(received: bytes, secret: str, signed_at: datetime,
                                                       match: str) -> None:
    header = signatures.sign(BODY, secret, now=signed_at)
    with pytest.raises(InvalidWebhook, match=match):
        signatures.verify(received, header, WEBHOOK_SECRET, now=NOW)


def test_a_webhook_within_the_tolerance_either_way_is_accepted() -> None:
    for skew in (timedelta(minutes=-4, seconds=-59), timedelta(minutes=4, seconds=59)):
        signatures.verify(BODY, signatures.sign(BODY, WEBHOOK_SECRET, now=NOW + skew), WEBHOOK_SECRET, now=NOW)


@pytest.mark.parametrize(("header", "match"), [
    (None, "missing"),
    ("", "missing"),
    ("garbage", "malformed"),
    ("v1=abcdef", "no valid timestamp"),
    ("t=abc,v1=abcdef", "no valid timestamp"),
    ("t=1,t=2,v1=abcdef", "no valid timestamp"),
    (f"t={int(NOW.timestamp())}", "no v1 signature"),
    (f"t={int(NOW.timestamp())},v0=abcdef", "no v1 signature"),
    (f"t={int(NOW.timestamp())},v1=é", "malformed"),
    ("t=1," + "v1=ab," * 1000, "malformed"),
])
def test_a_missing_or_malformed_signature_header_is_refused(header: str | None, match: str) -> None:
    with pytest.raises(InvalidWebhook, match=match):
        signatures.verify(BODY, header, WEBHOOK_SECRET, now=NOW)


def test_one_matching_signature_among_several_is_enough() -> None:
    good = signatures.sign(BODY, WEBHOOK_SECRET, now=NOW)
    stale = signatures.sign(BODY, "whsec_the_old_secret", now=NOW).partition(",")[2]
    timestamp, _, fresh = good.partition(",")
    signatures.verify(BODY, f"{timestamp},{stale},{fresh}", WEBHOOK_SECRET, now=NOW)
    signatures.verify(BODY, f"{timestamp},{fresh},{stale}", WEBHOOK_SECRET, now=NOW)
    with pytest.raises(InvalidWebhook, match="does not match"):
        signatures.verify(BODY, f"{timestamp},{stale},{stale}", WEBHOOK_SECRET, now=NOW)


def test_the_signature_header_is_found_whatever_the_case_of_its_name() -> None:
    assert signatures.header_value({"stripe-signature": "t=1,v1=a"}) == "t=1,v1=a"
    assert signatures.header_value({"STRIPE-SIGNATURE": "t=1,v1=a"}) == "t=1,v1=a"
    assert signatures.header_value({"content-type": "application/json"}) is None


def test_signing_without_a_secret_or_an_aware_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        signatures.sign(BODY, "", now=NOW)
    with pytest.raises(ValueError, match="aware"):
        signatures.sign(BODY, WEBHOOK_SECRET, now=datetime(2024, 5, 1, 12, 0))


# payment tokens


@pytest.mark.parametrize("number", ["4242 4242 4242 4242", "4242424242424242", "4242-4242-4242-4242",
                                    "378282246310005", "6011111111111117", "4000 0566 5566 5556 123",
                                    "tok_4242424242424242", "card 4242424242424242"])
def test_a_card_number_is_refused_without_being_repeated(number: str) -> None:
    with pytest.raises(InvalidPaymentToken) as refused:
        check_token(number)
    assert "card number" in refused.value.message and refused.value.field == "payment_token"
    for text in (str(refused.value), repr(refused.value)):
        assert not any(ch.isdigit() for ch in text)


@pytest.mark.parametrize("token", ["", "ab", "tok visa", "tok-visa", "x" * 256, "tok_visa\n", "tök_visa"])
def test_something_that_is_not_a_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidPaymentToken, match="not a payment method token"):
        check_token(token)


@pytest.mark.parametrize("token", ["tok_visa", "pm_1PabcDEF2ghiJKL3mnoPQR4s", "pm_card_visa", "x" * 255,
                                   "tok_123456789012"])  # twelve digits cannot be a card number
def test_a_well_formed_token_passes(token: str) -> None:
    assert check_token(token) == token


# the test gateway


@pytest.fixture
def test_gateway() -> TestGateway:
    return TestGateway(webhook_secret=WEBHOOK_SECRET, public_url="https://shop.example/")


async def test_both_gateways_are_payment_gateways(test_gateway: TestGateway, stripe: StripeGateway) -> None:
    gateways: list[PaymentGateway] = [test_gateway, stripe]
    assert [g.name for g in gateways] == ["test", "stripe"]


@pytest.mark.parametrize(("token", "status", "reason"), [
    ("tok_visa", ChargeStatus.SUCCEEDED, None),
    ("tok_mastercard", ChargeStatus.SUCCEEDED, None),
    ("tok_chargeDeclined", ChargeStatus.DECLINED, "card_declined"),
    ("tok_insufficientFunds", ChargeStatus.DECLINED, "insufficient_funds"),
    ("tok_processing", ChargeStatus.PROCESSING, None),
    ("tok_amex_unknown", ChargeStatus.DECLINED, "unknown test token"),
])
async def test_each_test_token_has_its_outcome(test_gateway: TestGateway, token: str, status: ChargeStatus,
                                               reason: str | None) -> None:
    result = await test_gateway.charge(_request(token))
    assert result.status is status and result.decline_reason == reason and result.action_url is None
    assert result.payment_ref is not None and result.payment_ref.startswith(f"pi_test_{status.value}_")
    assert await test_gateway.status(result.payment_ref) is status


async def test_the_3d_secure_token_sends_the_customer_to_authenticate(test_gateway: TestGateway) -> None:
    result = await test_gateway.charge(_request("tok_threeDSecure"))
    assert result.status is ChargeStatus.REQUIRES_ACTION and result.payment_ref is not None
    assert result.action_url == f"https://shop.example/api/v1/payments/test/authenticate/{result.payment_ref}"
    assert await test_gateway.status(result.payment_ref) is ChargeStatus.REQUIRES_ACTION


async def test_the_same_idempotency_key_is_the_same_payment_even_in_another_process(
        test_gateway: TestGateway) -> None:
    first = await test_gateway.charge(_request("tok_visa", key="k-1"))
    elsewhere = TestGateway(webhook_secret=WEBHOOK_SECRET, public_url="http://x")  # the same shop's secret
    again = await elsewhere.charge(_request("tok_visa", key="k-1"))
    other = await test_gateway.charge(_request("tok_visa", key="k-2"))
    assert first == again and first.payment_ref != other.payment_ref


async def test_a_test_payment_reference_cannot_be_worked_out_from_the_order_number(
        test_gateway: TestGateway) -> None:
    key = "order-100042"  # what checkout sends: the order number, which counts up
    secure = await test_gateway.charge(_request("tok_threeDSecure", key=key))
    assert secure.payment_ref is not None
    old_style = f"pi_test_requires_action_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
    other_shop = await TestGateway(webhook_secret="whsec_other", public_url="http://x").charge(
        _request("tok_threeDSecure", key=key))
    assert secure.payment_ref != old_style and secure.payment_ref != other_shop.payment_ref
    assert len(secure.payment_ref) == len("pi_test_requires_action_") + 32  # 128 bits of HMAC
    assert await test_gateway.status(old_style) is ChargeStatus.REQUIRES_ACTION  # references made before still read


@pytest.mark.parametrize("ref", ["", "pi_123", "pi_test_refunded_0123456789abcdef01234567",
                                 "pi_test_succeeded_0123", "pi_test_succeeded_0123456789abcdef01234567x"])
async def test_status_of_a_payment_the_test_gateway_never_made_is_an_error(test_gateway: TestGateway,
                                                                           ref: str) -> None:
    with pytest.raises(ValueError, match="not a payment of the test gateway"):
        await test_gateway.status(ref)


async def test_a_test_refund_is_idempotent_by_key(test_gateway: TestGateway) -> None:
    paid = await test_gateway.charge(_request("tok_visa"))
    assert paid.payment_ref is not None
    first = await test_gateway.refund(paid.payment_ref, Money.of("5.00", "EUR"), idempotency_key="refund-1")
    again = await test_gateway.refund(paid.payment_ref, Money.of("5.00", "EUR"), idempotency_key="refund-1")
    other = await test_gateway.refund(paid.payment_ref, Money.of("5.00", "EUR"), idempotency_key="refund-2")
    assert first == again == RefundResult(first.refund_ref, Money.of("5.00", "EUR"))
    assert first.refund_ref.startswith("re_test_") and len(first.refund_ref) == len("re_test_") + 24
    assert other.refund_ref != first.refund_ref


@pytest.mark.parametrize("token", ["tok_chargeDeclined", "tok_processing"])
async def test_only_a_succeeded_test_payment_can_be_refunded(test_gateway: TestGateway, token: str) -> None:
    result = await test_gateway.charge(_request(token))
    assert result.payment_ref is not None
    with pytest.raises(ValueError, match="only a succeeded payment"):
        await test_gateway.refund(result.payment_ref, EUR_12_34, idempotency_key="r")


async def test_an_authenticated_test_payment_can_be_refunded(test_gateway: TestGateway) -> None:
    # the stateless gateway cannot tell an authenticated 3-D Secure payment from an abandoned one; the shop can
    result = await test_gateway.charge(_request("tok_threeDSecure"))
    assert result.payment_ref is not None
    refund = await test_gateway.refund(result.payment_ref, EUR_12_34, idempotency_key="r")
    assert refund.amount == EUR_12_34


@pytest.mark.parametrize("number", ["4242 4242 4242 4242", "4242424242424242"])
async def test_the_test_gateway_refuses_a_card_number(test_gateway: TestGateway, number: str) -> None:
    with pytest.raises(InvalidPaymentToken) as refused:
        await test_gateway.charge(_request(number))
    assert "4242" not in str(refused.value)


async def test_a_test_charge_needs_a_positive_amount(test_gateway: TestGateway) -> None:
    with pytest.raises(ValueError, match="positive"):
        await test_gateway.charge(_request("tok_visa", amount=Money.zero("EUR")))


@pytest.mark.parametrize("kind", [EventKind.PAYMENT_SUCCEEDED, EventKind.PAYMENT_FAILED, EventKind.REFUNDED])
def test_a_test_webhook_round_trips(test_gateway: TestGateway, kind: EventKind) -> None:
    body = test_gateway.event_body(event_id="evt_1", kind=kind, payment_ref="pi_test_succeeded_ab",
                                   reference="1001", amount=EUR_12_34)
    assert json.loads(body)["amount"] == "12.34"
    event = test_gateway.parse_webhook(body, test_gateway.signed_headers(body, now=NOW), now=NOW)
    assert event == GatewayEvent("evt_1", kind, "pi_test_succeeded_ab", EUR_12_34, "1001")


def test_a_test_webhook_amount_is_read_as_a_decimal_never_a_float(test_gateway: TestGateway) -> None:
    body = b'{"id":"evt_2","type":"payment.succeeded","payment_ref":"pi_x","amount":0.10,"currency":"EUR"}'
    event = test_gateway.parse_webhook(body, test_gateway.signed_headers(body, now=NOW), now=NOW)
    assert event.amount == Money(Decimal("0.10"), "EUR") and event.reference is None


def test_an_unknown_test_event_is_other(test_gateway: TestGateway) -> None:
    body = b'{"id":"evt_3","type":"customer.created"}'
    event = test_gateway.parse_webhook(body, test_gateway.signed_headers(body, now=NOW), now=NOW)
    assert event == GatewayEvent("evt_3", EventKind.OTHER, "", None, None)


def test_a_test_webhook_with_a_bad_signature_is_refused(test_gateway: TestGateway) -> None:
    body = test_gateway.event_body(event_id="evt_1", kind=EventKind.PAYMENT_SUCCEEDED, payment_ref="pi_x",
                                   reference="1001", amount=EUR_12_34)
    forged = TestGateway(webhook_secret="whsec_guess", public_url="").signed_headers(body, now=NOW)
    with pytest.raises(InvalidWebhook, match="does not match"):
        test_gateway.parse_webhook(body, forged, now=NOW)
    with pytest.raises(InvalidWebhook, match="missing"):
        test_gateway.parse_webhook(body, {"Content-Type": "application/json"}, now=NOW)
    headers = test_gateway.signed_headers(body, now=NOW)
    with pytest.raises(InvalidWebhook, match="does not match"):
        test_gateway.parse_webhook(body.replace(b"12.34", b"0.01"), headers, now=NOW)


@pytest.mark.parametrize("body", [
    b"not json", b"\xff\xfe", b"[]", b'{"type":"payment.succeeded"}',
    b'{"id":"evt_1","type":"payment.succeeded","amount":"1.00","currency":"EUR"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":1.5e400,"currency":"EUR"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":"1.001","currency":"EUR"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":"-1","currency":"EUR"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":true,"currency":"EUR"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":"1.00","currency":"euro"}',
    b'{"id":"evt_1","type":"payment.succeeded","payment_ref":"pi_x","amount":"1.00","currency":"EUR",'
    b'"reference":7}',
])
def test_a_signed_but_malformed_test_webhook_is_refused(test_gateway: TestGateway, body: bytes) -> None:
    with pytest.raises(InvalidWebhook):
        test_gateway.parse_webhook(body, test_gateway.signed_headers(body, now=NOW), now=NOW)


# Stripe


@dataclass
class FakeStripe:
    """Stripe behind httpx.MockTransport: keeps each request, answers `answer` or raises `error`."""

    answer: httpx.Response = field(default_factory=lambda: httpx.Response(200, json=_intent("succeeded")))
    error: type[httpx.TransportError] | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error("simulated", request=request)
        return self.answer

    @property
    def form(self) -> dict[str, str]:
        [request] = self.requests
        return {k: v for k, [v] in parse_qs(request.content.decode(), strict_parsing=True).items()}


def _intent(status: str, **extra: object) -> dict[str, object]:
    return {"id": "pi_3Abc", "object": "payment_intent", "status": status, "amount": 1234, "currency": "eur",
            **extra}


@pytest.fixture
def stripe_api() -> FakeStripe:
    return FakeStripe()


@pytest_asyncio.fixture
async def stripe(stripe_api: FakeStripe) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(StripeConfig(SECRET_KEY, WEBHOOK_SECRET), transport=httpx.MockTransport(stripe_api.handle))
    yield gateway
    await gateway.aclose()


async def test_a_stripe_charge_confirms_a_payment_intent_with_these_exact_fields(
        stripe: StripeGateway, stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = await stripe.charge(_request("pm_card_visa", email="ada@example.com"))
    assert result == ChargeResult(ChargeStatus.SUCCEEDED, "pi_3Abc")
    [request] = stripe_api.requests
    assert (request.method, str(request.url)) == ("POST", "https://api.stripe.com/v1/payment_intents")
    assert request.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["idempotency-key"] == "order-1001-attempt-1"
    assert request.headers["stripe-version"] == STRIPE_VERSION
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert stripe_api.form == {
        "amount": "1234", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
        "metadata[order]": "1001", "receipt_email": "ada@example.com",
        "automatic_payment_methods[enabled]": "true", "automatic_payment_methods[allow_redirects]": "never"}
    assert SECRET_KEY not in caplog.text and "pm_card_visa" not in caplog.text


async def test_a_zero_decimal_currency_is_sent_in_whole_units(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    await stripe.charge(_request("pm_card_visa", amount=Money.of("500", "JPY")))
    assert stripe_api.form["amount"] == "500" and stripe_api.form["currency"] == "jpy"
    assert "receipt_email" not in stripe_api.form


@pytest.mark.parametrize(("amount", "expected"), [
    (Money.of("12.34", "EUR"), 1234), (Money.of("500", "JPY"), 500), (Money.of("1.234", "KWD"), 1234),
    (Money.of("0.01", "USD"), 1),
    (Money.of("500", "ISK"), 50000),  # ISO says no decimals, Stripe's API keeps two
    (Money.of("5000", "UGX"), 5000), (Money.of("1000", "XOF"), 1000),  # Stripe's zero-decimal list
])
def test_amounts_are_converted_to_stripes_minor_units_exactly(amount: Money, expected: int) -> None:
    assert to_stripe_amount(amount) == expected


@pytest.mark.parametrize("amount", [Money.zero("EUR"), Money.of("-1", "EUR"), Money.of("10.50", "UGX")])
def test_an_amount_stripe_cannot_take_exactly_is_refused(amount: Money) -> None:
    with pytest.raises(ValueError, match="Stripe cannot take"):
        to_stripe_amount(amount)


async def test_with_a_return_url_redirecting_payment_methods_are_allowed(stripe_api: FakeStripe) -> None:
    config = StripeConfig(SECRET_KEY, WEBHOOK_SECRET, return_url="https://shop.example/checkout/done")
    gateway = StripeGateway(config, transport=httpx.MockTransport(stripe_api.handle))
    await gateway.charge(_request("pm_card_visa"))
    await gateway.aclose()
    assert stripe_api.form["return_url"] == "https://shop.example/checkout/done"
    assert "automatic_payment_methods[allow_redirects]" not in stripe_api.form


@pytest.mark.parametrize(("intent", "expected"), [
    (_intent("succeeded"), ChargeResult(ChargeStatus.SUCCEEDED, "pi_3Abc")),
    (_intent("processing"), ChargeResult(ChargeStatus.PROCESSING, "pi_3Abc")),
    (_intent("canceled"), ChargeResult(ChargeStatus.CANCELED, "pi_3Abc")),
    (_intent("requires_action", next_action={"type": "redirect_to_url",
                                             "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/x"}}),
     ChargeResult(ChargeStatus.REQUIRES_ACTION, "pi_3Abc", action_url="https://hooks.stripe.com/3ds/x")),
    (_intent("requires_action", next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}}),
     ChargeResult(ChargeStatus.REQUIRES_ACTION, "pi_3Abc")),
    (_intent("requires_payment_method", last_payment_error={"code": "card_declined",
                                                            "decline_code": "insufficient_funds"}),
     ChargeResult(ChargeStatus.DECLINED, "pi_3Abc", decline_reason="insufficient_funds")),
    (_intent("requires_payment_method", last_payment_error={"code": "expired_card"}),
     ChargeResult(ChargeStatus.DECLINED, "pi_3Abc", decline_reason="expired_card")),
])
async def test_each_payment_intent_status_maps_to_an_outcome(stripe: StripeGateway, stripe_api: FakeStripe,
                                                             intent: dict[str, object],
                                                             expected: ChargeResult) -> None:
    stripe_api.answer = httpx.Response(200, json=intent)
    assert await stripe.charge(_request("pm_card_visa")) == expected


async def test_a_card_error_is_a_decline(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    stripe_api.answer = httpx.Response(402, json={"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "stolen_card",
        "message": "Your card was declined.", "payment_intent": _intent("requires_payment_method")}})
    assert await stripe.charge(_request("pm_card_visa")) == ChargeResult(ChargeStatus.DECLINED, "pi_3Abc",
                                                                        decline_reason="stolen_card")
    stripe_api.answer = httpx.Response(402, json={"error": {"type": "card_error", "code": "card_declined"}})
    assert await stripe.charge(_request("pm_card_visa")) == ChargeResult(ChargeStatus.DECLINED, None,
                                                                        decline_reason="card_declined")


@pytest.mark.parametrize("status", [500, 502, 503, 429, 409])
async def test_a_failing_or_busy_stripe_leaves_the_outcome_unknown(stripe: StripeGateway, stripe_api: FakeStripe,
                                                                   status: int) -> None:
    stripe_api.answer = httpx.Response(status, json={"error": {"type": "api_error", "message": SECRET_KEY}})
    with pytest.raises(GatewayUnavailable, match=f"HTTP {status}") as failed:
        await stripe.charge(_request("pm_card_visa"))
    assert SECRET_KEY not in str(failed.value)


@pytest.mark.parametrize(("error", "match"), [(httpx.ReadTimeout, "did not answer in time"),
                                              (httpx.ConnectTimeout, "did not answer in time"),
                                              (httpx.ConnectError, "cannot reach Stripe: ConnectError")])
async def test_an_unreachable_stripe_leaves_the_outcome_unknown(stripe: StripeGateway, stripe_api: FakeStripe,
                                                                error: type[httpx.TransportError],
                                                                match: str) -> None:
    stripe_api.error = error
    with pytest.raises(GatewayUnavailable, match=match) as failed:
        await stripe.charge(_request("pm_card_visa"))
    # no chained httpx error: it would carry the request, and its Authorization header, into a traceback
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


async def test_an_unreadable_success_leaves_the_outcome_unknown(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    for answer in (httpx.Response(200, text="<html>"), httpx.Response(200, json=_intent("requires_confirmation")),
                   httpx.Response(200, json={"status": "succeeded"})):
        stripe_api.answer = answer
        with pytest.raises(GatewayUnavailable):
            await stripe.charge(_request("pm_card_visa"))


async def test_a_refused_request_is_a_configuration_error_without_secrets(
        stripe: StripeGateway, stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stripe_api.answer = httpx.Response(400, json={"error": {
        "type": "invalid_request_error", "code": "resource_missing", "param": "payment_method",
        "message": f"No such PaymentMethod: 'pm_secret_token_1'; key {SECRET_KEY}"}})
    with pytest.raises(PaymentConfigurationError) as refused:
        await stripe.charge(_request("pm_secret_token_1"))
    text = str(refused.value)
    assert text.startswith("Stripe refused the request: HTTP 400 (invalid_request_error/resource_missing)")
    assert SECRET_KEY not in text and "pm_secret_token_1" not in text and "No such PaymentMethod" in text
    assert SECRET_KEY not in caplog.text and "pm_secret_token_1" not in caplog.text


async def test_a_wrong_key_is_a_configuration_error_that_does_not_quote_it(stripe: StripeGateway,
                                                                           stripe_api: FakeStripe) -> None:
    stripe_api.answer = httpx.Response(401, json={"error": {
        "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****kkkk"}})
    with pytest.raises(PaymentConfigurationError, match="HTTP 401") as refused:
        await stripe.charge(_request("pm_card_visa"))
    assert "sk_test" not in str(refused.value) and "kkkk" not in str(refused.value)


async def test_stripe_never_sees_a_card_number(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    with pytest.raises(InvalidPaymentToken):
        await stripe.charge(_request("4242 4242 4242 4242"))
    assert stripe_api.requests == []


async def test_stripe_status_reads_the_payment_intent(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    stripe_api.answer = httpx.Response(200, json=_intent("processing"))
    assert await stripe.status("pi_3Abc") is ChargeStatus.PROCESSING
    [request] = stripe_api.requests
    assert (request.method, str(request.url)) == ("GET", "https://api.stripe.com/v1/payment_intents/pi_3Abc")
    assert request.headers["authorization"] == f"Bearer {SECRET_KEY}" and "idempotency-key" not in request.headers
    stripe_api.answer = httpx.Response(404, json={"error": {"type": "invalid_request_error",
                                                            "code": "resource_missing"}})
    with pytest.raises(PaymentConfigurationError, match="HTTP 404"):
        await stripe.status("pi_gone")
    with pytest.raises(ValueError, match="not a Stripe payment id"):
        await stripe.status("../v1/refunds")
    assert len(stripe_api.requests) == 2


async def test_a_stripe_refund_sends_the_payment_amount_and_key(stripe: StripeGateway, stripe_api: FakeStripe) -> None:
    stripe_api.answer = httpx.Response(200, json={"id": "re_1", "object": "refund", "amount": 500,
                                                  "currency": "eur", "status": "succeeded"})
    result = await stripe.refund("pi_3Abc", Money.of("5.00", "EUR"), idempotency_key="refund-1001-1")
    assert result == RefundResult("re_1", Money.of("5.00", "EUR"))
    [request] = stripe_api.requests
    assert (request.method, str(request.url)) == ("POST", "https://api.stripe.com/v1/refunds")
    assert request.headers["idempotency-key"] == "refund-1001-1"
    assert stripe_api.form == {"payment_intent": "pi_3Abc", "amount": "500"}


async def test_a_refused_stripe_refund_is_a_configuration_error(stripe: StripeGateway,
                                                                stripe_api: FakeStripe) -> None:
    stripe_api.answer = httpx.Response(400, json={"error": {"type": "invalid_request_error",
                                                            "code": "charge_already_refunded",
                                                            "message": "Charge ch_1 has already been refunded."}})
    with pytest.raises(PaymentConfigurationError, match="charge_already_refunded"):
        await stripe.refund("pi_3Abc", EUR_12_34, idempotency_key="refund-2")


def _stripe_event(kind: str, target: dict[str, object]) -> bytes:
    return json.dumps({"id": "evt_1", "object": "event", "type": kind, "data": {"object": target}}).encode()


def _stripe_headers(body: bytes, *, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "stripe-signature": signatures.sign(body, secret, now=NOW)}


@pytest.mark.parametrize(("kind", "target", "expected"), [
    ("payment_intent.succeeded", _intent("succeeded", metadata={"order": "1001"}),
     GatewayEvent("evt_1", EventKind.PAYMENT_SUCCEEDED, "pi_3Abc", EUR_12_34, "1001")),
    ("payment_intent.payment_failed", _intent("requires_payment_method", metadata={}),
     GatewayEvent("evt_1", EventKind.PAYMENT_FAILED, "pi_3Abc", EUR_12_34, None)),
    ("charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_3Abc", "amount": 1234,
                         "amount_refunded": 500, "currency": "eur", "metadata": {"order": "1001"}},
     GatewayEvent("evt_1", EventKind.REFUNDED, "pi_3Abc", Money.of("5.00", "EUR"), "1001")),
    ("payment_intent.succeeded", _intent("succeeded", amount=500, currency="jpy"),
     GatewayEvent("evt_1", EventKind.PAYMENT_SUCCEEDED, "pi_3Abc", Money.of("500", "JPY"), None)),
    # what the payment collected, not what it asked for, is what the shop holds against the order's total
    ("payment_intent.succeeded", _intent("succeeded", amount_received=1000),
     GatewayEvent("evt_1", EventKind.PAYMENT_SUCCEEDED, "pi_3Abc", Money.of("10.00", "EUR"), None)),
    ("customer.created", {"id": "cus_1", "object": "customer"},
     GatewayEvent("evt_1", EventKind.OTHER, "", None, None)),
    ("payment_intent.created", _intent("requires_payment_method"),
     GatewayEvent("evt_1", EventKind.OTHER, "", None, None)),
])
def test_stripe_webhooks_map_to_gateway_events(stripe: StripeGateway, kind: str, target: dict[str, object],
                                               expected: GatewayEvent) -> None:
    body = _stripe_event(kind, target)
    assert stripe.parse_webhook(body, _stripe_headers(body), now=NOW) == expected


def test_a_stripe_webhook_signed_with_another_secret_is_refused(stripe: StripeGateway) -> None:
    body = _stripe_event("payment_intent.succeeded", _intent("succeeded"))
    with pytest.raises(InvalidWebhook, match="does not match"):
        stripe.parse_webhook(body, _stripe_headers(body, secret="whsec_guess"), now=NOW)
    with pytest.raises(InvalidWebhook, match="outside the allowed window"):
        stripe.parse_webhook(body, _stripe_headers(body), now=NOW + timedelta(minutes=6))


@pytest.mark.parametrize("body", [
    b"{", b"[]", b'{"id":"evt_1","type":"payment_intent.succeeded"}',
    _stripe_event("payment_intent.succeeded", {"id": "pi_1", "currency": "eur"}),
    _stripe_event("payment_intent.succeeded", _intent("succeeded", amount="12.34")),
    _stripe_event("payment_intent.succeeded", _intent("succeeded", amount=True)),
    _stripe_event("payment_intent.succeeded", _intent("succeeded", currency="euro")),
    _stripe_event("charge.refunded", {"id": "ch_1", "amount_refunded": 5, "currency": "eur"}),
])
def test_a_signed_but_malformed_stripe_webhook_is_refused(stripe: StripeGateway, body: bytes) -> None:
    with pytest.raises(InvalidWebhook):
        stripe.parse_webhook(body, _stripe_headers(body), now=NOW)


def test_stripe_settings_refuse_a_key_in_clear_over_the_network_and_hide_it() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        StripeConfig(SECRET_KEY, WEBHOOK_SECRET, base_url="http://stripe.example")
    with pytest.raises(ValueError, match="both needed"):
        StripeConfig("", WEBHOOK_SECRET)
    with pytest.raises(ValueError, match="timeout"):
        StripeConfig(SECRET_KEY, WEBHOOK_SECRET, timeout=0)
    config = StripeConfig(SECRET_KEY, WEBHOOK_SECRET, base_url="http://127.0.0.1:12111")
    assert SECRET_KEY not in repr(config) and WEBHOOK_SECRET not in repr(config)
