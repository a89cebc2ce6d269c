"""Card payments through Stripe, against a local fake of Stripe's API (tests/fakes/stripe_api.py) on every
database: the PaymentIntent is made on the server for the order's own total, 3-D Secure hands the client secret
to the order's buyer only, the webhook finishes an order whose buyer never came back, a declined card lets the
stock go, and Stripe's script is allowed by the pages' policy only on a shop that uses Stripe."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr

from shop.config import Settings
from shop.domain.users import Role
from tests.conftest import open_client
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in, stock_of
from tests.e2e.test_serve import free_port
from tests.fakes.stripe_api import FakeStripe

SECRET_KEY, WEBHOOK_SECRET, PUBLISHABLE_KEY = "sk_test_fake_secret", "whsec_fake_secret", "pk_test_fake_public"


@pytest.fixture
def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    """The fake on a loopback port of its own, as the shop's StripeGateway would reach Stripe; one per test, as
    each database numbers its orders from the same start (and the order number is the idempotency key)."""
    fake = FakeStripe(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the fake Stripe did not start"
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest_asyncio.fixture
async def stripe_shop(demo_settings: Settings, fake_stripe: tuple[FakeStripe, str]) -> AsyncIterator[
        httpx.AsyncClient]:
    settings = demo_settings.model_copy(update={
        "response_cache": False, "payment_gateway": "stripe", "stripe_base_url": fake_stripe[1],
        "stripe_secret_key": SecretStr(SECRET_KEY), "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "stripe_publishable_key": PUBLISHABLE_KEY})
    async for client in open_client(settings):
        yield client


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


def _minor(total: dict[str, str]) -> int:
    return int(Decimal(total["amount"]) * 100)


async def _place(shop: httpx.AsyncClient, staff: dict[str, str], token: str, *, quantity: int = 2,
                 headers: dict[str, str] | None = None) -> tuple[httpx.Response, str]:
    sku = await new_product(shop, staff, stock=3, price="12.50")
    cart = await new_cart(shop, headers, items={sku: quantity})
    return await shop.post("/api/v1/checkout", json=checkout_body(cart, token=token), headers=headers or {}), sku


def _intent_of(fake: FakeStripe, number: str) -> dict[str, Any]:
    return next(i for i in fake.intents.values() if i["metadata"].get("order") == number)


async def test_a_card_is_charged_the_total_the_server_worked_out(stripe_shop: httpx.AsyncClient, staff: dict[str, str],
                                                                  fake_stripe: tuple[FakeStripe, str]) -> None:
    fake = fake_stripe[0]
    placed, _ = await _place(stripe_shop, staff, "ctoken_visa_from_the_payment_element")
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "paid" and order["payment"]["provider"] == "stripe"
    intent = _intent_of(fake, order["number"])
    assert intent["amount"] == _minor(order["totals"]["total"]) and intent["currency"] == "eur"
    method, path, form, headers = next(r for r in fake.requests if r[2].get("metadata[order]") == order["number"])
    assert (method, path) == ("POST", "/v1/payment_intents")
    assert form["confirmation_token"] == "ctoken_visa_from_the_payment_element" and "payment_method" not in form
    assert form["confirm"] == "true" and headers["idempotency-key"] == f"order-{order['number']}"


async def test_3d_secure_gives_the_client_secret_to_the_buyer_only_and_the_page_settles_it(
        stripe_shop: httpx.AsyncClient, staff: dict[str, str], fake_stripe: tuple[FakeStripe, str],
        demo_settings: Settings) -> None:
    fake = fake_stripe[0]
    placed, sku = await _place(stripe_shop, staff, "ctoken_threeDSecure")
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert order["payment"]["status"] == "requires_action" and order["payment"]["action_url"] is None
    intent = _intent_of(fake, order["number"])
    path = f"/api/v1/orders/{order['number']}/next-action"

    for stranger in ({}, {"X-Order-Key": "not-the-key"}, (await signed_in(stripe_shop, demo_settings))[1]):
        refused = await stripe_shop.post(path, headers=stranger)
        assert refused.status_code == 404 and intent["client_secret"] not in refused.text
    step = await stripe_shop.post(path, headers={"X-Order-Key": order["access_key"]})
    assert step.status_code == 200 and step.headers["cache-control"] == "no-store"
    assert step.json()["next_action"] == {"type": "use_stripe_sdk", "client_secret": intent["client_secret"]}
    assert (await stock_of(demo_settings, sku)).reserved == 2

    fake.complete_3ds(intent["id"])  # the customer passed the bank's challenge; no webhook has come yet
    settled = await stripe_shop.post(path, headers={"X-Order-Key": order["access_key"]})
    assert settled.json() == {"order": order["number"], "status": "paid", "payment_status": "captured",
                              "next_action": None}


async def test_the_webhook_finishes_an_order_whose_buyer_never_came_back(
        stripe_shop: httpx.AsyncClient, staff: dict[str, str], fake_stripe: tuple[FakeStripe, str]) -> None:
    fake = fake_stripe[0]
    placed, _ = await _place(stripe_shop, staff, "ctoken_threeDSecure")
    order = placed.json()
    intent = fake.complete_3ds(_intent_of(fake, order["number"])["id"])
    body, headers = fake.event(intent["id"], "payment_intent.succeeded")

    forged = await stripe_shop.post("/api/v1/payments/webhooks/stripe", content=body.replace(b'"eur"', b'"usd"'),
                                    headers=headers)
    assert forged.status_code == 400
    applied = await stripe_shop.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
    assert applied.status_code == 200 and applied.json() == {"received": True, "applied": True}
    again = await stripe_shop.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
    assert again.json()["applied"] is False
    seen = await stripe_shop.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert seen.json()["status"] == "paid"


async def test_a_failed_challenge_cancels_the_order_and_lets_its_stock_go(
        stripe_shop: httpx.AsyncClient, staff: dict[str, str], fake_stripe: tuple[FakeStripe, str],
        demo_settings: Settings) -> None:
    fake = fake_stripe[0]
    placed, sku = await _place(stripe_shop, staff, "ctoken_threeDSecure")
    order = placed.json()
    intent = fake.complete_3ds(_intent_of(fake, order["number"])["id"], succeed=False)
    body, headers = fake.event(intent["id"], "payment_intent.payment_failed")
    assert (await stripe_shop.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)).json()[
        "applied"] is True
    seen = await stripe_shop.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert seen.json()["status"] == "canceled"
    assert (await stock_of(demo_settings, sku)).reserved == 0


async def test_a_declined_card_cancels_the_order_and_lets_its_stock_go(
        stripe_shop: httpx.AsyncClient, staff: dict[str, str], demo_settings: Settings) -> None:
    placed, sku = await _place(stripe_shop, staff, "ctoken_chargeDeclined")
    assert placed.status_code == 402, placed.text
    assert "generic_decline" in placed.text
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (3, 0)


async def test_the_pages_allow_stripes_script_only_on_a_shop_that_uses_stripe(
        stripe_shop: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    for shop, stripe in ((stripe_shop, True), (client, False)):
        form = (await shop.get("/api/v1/payments/card-form")).json()
        assert form == ({"gateway": "stripe", "publishable_key": PUBLISHABLE_KEY} if stripe
                        else {"gateway": "test", "publishable_key": None})
        for path in ("/", "/app/"):
            policy = (await shop.get(path)).headers["content-security-policy"]
            script_src = re.search(r"script-src ([^;]*)", policy)
            assert script_src is not None
            assert ("https://js.stripe.com" in script_src.group(1)) is stripe, (path, policy)
            assert ("connect-src 'self' https://api.stripe.com" in policy) is stripe
            assert ("frame-src https://js.stripe.com https://hooks.stripe.com" in policy) is stripe


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_the_server_rendered_checkout_pays_with_stripes_element_and_3d_secure(
        stripe_shop: httpx.AsyncClient, staff: dict[str, str], fake_stripe: tuple[FakeStripe, str]) -> None:
    fake = fake_stripe[0]
    sku = await new_product(stripe_shop, staff, stock=3, price="15.00")
    product = await stripe_shop.get("/api/v1/products", params={"q": sku.lower()})
    page = await stripe_shop.get(f"/p/{product.json()['items'][0]['slug']}")
    assert (await stripe_shop.post("/cart/add", data={"sku": sku, "quantity": "2", "csrf": _csrf(page.text)}
                                   )).status_code == 303
    checkout = await stripe_shop.get("/checkout")
    assert 'data-card-element="stripe"' in checkout.text
    assert f'data-publishable-key="{PUBLISHABLE_KEY}"' in checkout.text
    assert 'src="https://js.stripe.com/v3/"' in checkout.text and "<noscript>" in checkout.text
    assert 'data-amount="3000"' in checkout.text and "4242" not in checkout.text  # no test cards on a real shop

    placed = await stripe_shop.post("/checkout", data={
        "csrf": _csrf(checkout.text), "email": "buyer@example.com", "name": "Ada", "line1": "Main St 1",
        "postal_code": "10115", "city": "Berlin", "country": "DE", "shipping_method": "standard",
        "token": "ctoken_threeDSecure"})
    assert placed.status_code == 303, placed.text
    number = placed.headers["location"].rsplit("/", 1)[1]
    intent = _intent_of(fake, number)
    pending = await stripe_shop.get(placed.headers["location"])
    assert f'data-client-secret="{intent["client_secret"]}"' in pending.text
    assert pending.headers["cache-control"] == "no-store"
    stranger = httpx.AsyncClient(transport=stripe_shop._transport, base_url=str(stripe_shop.base_url))
    assert (await stranger.get(f"/order/{number}")).status_code == 404

    fake.complete_3ds(intent["id"])
    await asyncio.sleep(0)
    paid = await stripe_shop.get(placed.headers["location"])
    assert 'data-status="paid"' in paid.text and "data-client-secret" not in paid.text
    assert intent["amount"] == 3490  # 30.00 of goods + 4.90 shipping, computed by the shop


def test_the_stripe_gateway_refuses_to_start_without_its_keys() -> None:
    with pytest.raises(ValueError, match="SHOP_STRIPE_PUBLISHABLE_KEY") as refused:
        Settings(_env_file=None, payment_gateway="stripe",  # type: ignore[call-arg]
                 stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET)
    assert "SHOP_STRIPE_SECRET_KEY" not in str(refused.value)
    with pytest.raises(ValueError, match="pattern"):
        Settings(_env_file=None, payment_gateway="stripe", stripe_publishable_key=SECRET_KEY,  # type: ignore[call-arg]
                 stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET)
