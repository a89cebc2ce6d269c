"""Payments the shop must not take at their word, on every database: a webhook whose amount or currency is not the
order's pays nothing and is shown to staff; the test gateway's 3-D Secure reference cannot be guessed from the
order number; and the test gateway does not run on an https shop unless told to."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_gateways
from shop.config import Settings
from shop.domain.money import Money
from shop.domain.payments import EventKind
from shop.domain.users import Role
from shop.infrastructure.payments.test_gateway import TestGateway
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in, stock_of
from tests.e2e.test_admin_manage import sign_in
from tests.e2e.test_serve import free_port


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _awaiting_3d_secure(client: httpx.AsyncClient, staff: dict[str, str], *,
                              quantity: int = 2) -> tuple[dict[str, Any], str]:
    sku = await new_product(client, staff, stock=3)
    placed = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: quantity}),
                                                                      token="tok_threeDSecure"))
    assert placed.status_code == 202, placed.text
    return placed.json(), sku


def _gateway(settings: Settings) -> TestGateway:
    gateway = build_gateways(settings)["test"]
    assert isinstance(gateway, TestGateway)
    return gateway


async def _paid_event(client: httpx.AsyncClient, gateway: TestGateway, order: dict[str, Any], amount: Money, *,
                      event_id: str | None = None) -> httpx.Response:
    ref = httpx.URL(order["payment"]["action_url"]).path.rsplit("/", 1)[1]
    body = gateway.event_body(event_id=event_id or f"evt_{uuid.uuid4().hex}", kind=EventKind.PAYMENT_SUCCEEDED,
                              payment_ref=ref, reference=order["number"], amount=amount)
    return await client.post("/api/v1/payments/webhooks/test", content=body,
                             headers=gateway.signed_headers(body, now=datetime.now(UTC)))


async def test_a_webhook_for_another_amount_or_currency_does_not_pay_the_order_and_staff_see_it(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    order, sku = await _awaiting_3d_secure(client, staff)
    gateway = _gateway(demo_settings)
    total = Money.of(order["totals"]["total"]["amount"], order["totals"]["total"]["currency"])
    short = Money(total.amount - Decimal("0.01"), total.currency)
    dollars = Money(total.amount, "USD" if total.currency != "USD" else "EUR")
    with caplog.at_level(logging.WARNING, logger="shop.services.orders"):
        first = await _paid_event(client, gateway, order, short, event_id=f"evt_short_{order['number']}")
        again = await _paid_event(client, gateway, order, short, event_id=f"evt_short_{order['number']}")
        other = await _paid_event(client, gateway, order, dollars)
    assert [r.status_code for r in (first, again, other)] == [200, 200, 200]
    # recorded once, like every event; a replay changes nothing more
    assert [r.json()["applied"] for r in (first, again, other)] == [True, False, True]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(order["number"] in w and "flagged for staff" in w for w in warnings)
    assert str(short) in warnings[0] and str(dollars) in warnings[1]

    seen = (await client.get(f"/api/v1/orders/{order['number']}", headers=staff)).json()
    assert seen["status"] == "pending" and seen["payment"]["status"] == "mismatched"
    mine = await client.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert mine.json()["payment"]["status"] == "mismatched"
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (3, 2)  # held as for any unpaid order, nothing sold

    await sign_in(client, demo_settings, Role.STAFF)
    page = (await client.get(f"/admin/orders/{order['number']}")).text
    assert "data-payment-alert" in page and str(short) in page and str(dollars) in page
    assert "<dd>mismatched</dd>" in page

    # the bank's own event, for the order's total, still pays it; staff keep the alert about the other money
    paid = await _paid_event(client, gateway, order, total)
    assert paid.json()["applied"] is True
    seen = (await client.get(f"/api/v1/orders/{order['number']}", headers=staff)).json()
    assert seen["status"] == "paid" and seen["payment"]["status"] == "captured"
    assert (await stock_of(demo_settings, sku)).on_hand == 1
    assert str(short) in (await client.get(f"/admin/orders/{order['number']}")).text


async def test_money_of_the_wrong_amount_for_a_paid_order_is_flagged_without_touching_it(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    order, sku = await _awaiting_3d_secure(client, staff, quantity=1)
    assert (await client.post(httpx.URL(order["payment"]["action_url"]).path)).json()["applied"] is True
    gateway = _gateway(demo_settings)
    extra = await _paid_event(client, gateway, order, Money.of("1.00", order["totals"]["total"]["currency"]))
    assert extra.json()["applied"] is True
    seen = (await client.get(f"/api/v1/orders/{order['number']}", headers=staff)).json()
    assert seen["status"] == "paid" and seen["payment"]["status"] == "captured"
    assert (await stock_of(demo_settings, sku)).on_hand == 2


async def test_a_guessed_3d_secure_reference_is_not_found_and_pays_nothing(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    order, sku = await _awaiting_3d_secure(client, staff)
    key = f"order-{order['number']}".encode()  # the idempotency key checkout sends: the order number
    guesses = [f"pi_test_requires_action_{hashlib.sha256(key).hexdigest()[:24]}",  # how references were made
               f"pi_test_requires_action_{hashlib.sha256(key).hexdigest()[:32]}",
               f"pi_test_succeeded_{hashlib.sha256(key).hexdigest()[:32]}"]
    for guess in guesses:
        refused = await client.post(f"/api/v1/payments/test/authenticate/{guess}")
        assert refused.status_code == 404, guess
        assert refused.headers["content-type"] == "application/problem+json"
    seen = await client.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert seen.json()["status"] == "pending"
    assert (await stock_of(demo_settings, sku)).reserved == 2
    # the reference the customer was sent still works
    assert (await client.post(httpx.URL(order["payment"]["action_url"]).path)).json()["applied"] is True


def _shop(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    command = [sys.executable, "-m", "shop", *args]
    process = subprocess.Popen(command, env={**clean, **env}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it started after all: stop it, gunicorn's workers with it
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"`shop {' '.join(args)}` did not stop")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


# made up, of the shapes Stripe's keys have: the stripe gateway refuses to start without all three
STRIPE_KEYS = {"SHOP_STRIPE_SECRET_KEY": "sk_test_" + "x" * 24, "SHOP_STRIPE_PUBLISHABLE_KEY": "pk_test_" + "x" * 24,
               "SHOP_STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 24}


def test_the_test_gateway_does_not_start_on_an_https_shop_unless_allowed(tmp_path: Path) -> None:
    live = {"SHOP_PUBLIC_URL": "https://shop.example", "SHOP_MAIN_DB_URL": f"sqlite+aiosqlite:///{tmp_path}/shop.db",
            "SHOP_SECRET_KEY": "k" * 48}  # an https shop needs it (or SHOP_TOTP_KEYS) to seal 2FA secrets
    refused = _shop("serve", "--no-worker", "--port", str(free_port()), env=live, cwd=tmp_path)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "SHOP_ALLOW_TEST_PAYMENTS" in lines[0] and "SHOP_PAYMENT_GATEWAY=stripe" in lines[0]
    allowed = _shop("config", "--json", env={**live, "SHOP_ALLOW_TEST_PAYMENTS": "true"}, cwd=tmp_path)
    stripe = _shop("config", "--json", env={**live, "SHOP_PAYMENT_GATEWAY": "stripe", **STRIPE_KEYS}, cwd=tmp_path)
    plain = _shop("config", "--json", env={"SHOP_PUBLIC_URL": "http://127.0.0.1:8000"}, cwd=tmp_path)
    for answer in (allowed, stripe, plain):
        assert answer.returncode == 0, answer.stderr
    assert '"allow_test_payments": true' in allowed.stdout
