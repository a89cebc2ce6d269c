"""After checkout: staff move orders through their states, refunds and cancellations put money and stock back,
gateway webhooks apply once, idempotency keys replay, vouchers count."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_commerce, build_databases, build_gateways
from shop.config import Settings
from shop.domain.money import Money
from shop.domain.payments import EventKind
from shop.domain.users import Role
from shop.infrastructure.payments.test_gateway import TestGateway
from tests.e2e.shopping import PROBLEM, checkout_body, new_cart, new_product, signed_in, stock_of


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _paid_order(client: httpx.AsyncClient, staff: dict[str, str], *, stock: int = 3,
                      quantity: int = 1) -> tuple[str, str]:
    sku = await new_product(client, staff, stock=stock)
    placed = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: quantity})))
    assert placed.status_code == 201, placed.text
    return placed.json()["number"], sku


async def test_staff_fulfil_ship_and_deliver_an_order(client: httpx.AsyncClient, demo_settings: Settings,
                                                      staff: dict[str, str]) -> None:
    number, _ = await _paid_order(client, staff)
    _, customer = await signed_in(client, demo_settings)
    assert (await client.post(f"/api/v1/orders/{number}/fulfil", headers=customer)).status_code == 403
    assert (await client.post(f"/api/v1/orders/{number}/fulfil")).status_code == 401
    early = await client.post(f"/api/v1/orders/{number}/ship", headers=staff)
    assert early.status_code == 409 and early.headers["content-type"] == PROBLEM
    assert (await client.post(f"/api/v1/orders/{number}/fulfil", headers=staff)).json()["status"] == "fulfilled"
    shipped = await client.post(f"/api/v1/orders/{number}/ship", json={"tracking": "DHL-123"}, headers=staff)
    assert shipped.json()["status"] == "shipped" and shipped.json()["tracking"] == "DHL-123"
    delivered = (await client.post(f"/api/v1/orders/{number}/deliver", headers=staff)).json()
    assert [h["status"] for h in delivered["history"]] == ["pending", "paid", "fulfilled", "shipped", "delivered"]
    assert (await client.post(f"/api/v1/orders/{number}/cancel", headers=staff)).status_code == 409
    refunded = await client.post(f"/api/v1/orders/{number}/refund", headers=staff)
    assert refunded.json()["status"] == "refunded" and refunded.json()["payment"]["status"] == "refunded"
    assert (await client.post(f"/api/v1/orders/{number}/refund", headers=staff)).status_code == 409
    assert (await client.post("/api/v1/orders/999999999/fulfil", headers=staff)).status_code == 404


async def test_refunding_an_unshipped_order_puts_its_goods_back(client: httpx.AsyncClient, demo_settings: Settings,
                                                                staff: dict[str, str]) -> None:
    number, sku = await _paid_order(client, staff, stock=4, quantity=3)
    assert (await stock_of(demo_settings, sku)).on_hand == 1
    refunded = await client.post(f"/api/v1/orders/{number}/refund", headers=staff)
    assert refunded.status_code == 200, refunded.text
    assert (await stock_of(demo_settings, sku)).on_hand == 4


async def test_cancelling_a_paid_order_refunds_and_restocks(client: httpx.AsyncClient, demo_settings: Settings,
                                                            staff: dict[str, str]) -> None:
    number, sku = await _paid_order(client, staff, stock=2, quantity=2)
    canceled = (await client.post(f"/api/v1/orders/{number}/cancel", headers=staff)).json()
    assert canceled["status"] == "canceled" and canceled["payment"]["status"] == "refunded"
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (2, 0)


async def test_a_pending_order_whose_reservation_runs_out_gives_its_stock_back(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=1)
    placed = await client.post("/api/v1/checkout",
                               json=checkout_body(await new_cart(client, items={sku: 1}), token="tok_threeDSecure"))
    assert placed.status_code == 202
    assert (await stock_of(demo_settings, sku)).reserved == 1
    databases = build_databases(demo_settings)
    try:  # what `shop worker` does each round, an hour later
        settled = await build_commerce(demo_settings, databases).payments.expire_reservations(
            now=datetime.now(UTC) + timedelta(hours=1))
    finally:
        await databases.dispose()
    assert settled >= 1
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (1, 0)
    order = placed.json()
    seen = await client.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert seen.json()["status"] == "canceled"


async def test_a_webhook_delivered_three_times_has_one_effect(client: httpx.AsyncClient, demo_settings: Settings,
                                                              staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=3)
    placed = (await client.post("/api/v1/checkout", json=checkout_body(
        await new_cart(client, items={sku: 2}), token="tok_threeDSecure"))).json()
    gateway = build_gateways(demo_settings)["test"]
    assert isinstance(gateway, TestGateway)
    ref = httpx.URL(placed["payment"]["action_url"]).path.rsplit("/", 1)[1]
    total = placed["totals"]["total"]  # the order's own: another amount would not pay it (test_payment_checks.py)
    body = gateway.event_body(event_id=f"evt_{uuid.uuid4().hex}", kind=EventKind.PAYMENT_SUCCEEDED,
                              payment_ref=ref, reference=placed["number"],
                              amount=Money.of(total["amount"], total["currency"]))
    results = []
    for _ in range(3):
        response = await client.post("/api/v1/payments/webhooks/test", content=body,
                                     headers=gateway.signed_headers(body, now=datetime.now(UTC)))
        assert response.status_code == 200, response.text
        results.append(response.json()["applied"])
    assert results == [True, False, False]
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (1, 0)
    tampered = await client.post("/api/v1/payments/webhooks/test", content=body + b" ",
                                 headers=gateway.signed_headers(body, now=datetime.now(UTC)))
    assert tampered.status_code == 400 and tampered.headers["content-type"] == PROBLEM
    stale = await client.post("/api/v1/payments/webhooks/test", content=body,
                              headers=gateway.signed_headers(body, now=datetime.now(UTC) - timedelta(minutes=10)))
    assert stale.status_code == 400
    assert (await client.post("/api/v1/payments/webhooks/paypal", content=body)).status_code == 404


async def test_an_idempotency_key_replays_the_first_answer(client: httpx.AsyncClient, demo_settings: Settings,
                                                           staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=5)
    cart_id = await new_cart(client, items={sku: 1})
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/api/v1/checkout", json=checkout_body(cart_id), headers=key)
    second = await client.post("/api/v1/checkout", json=checkout_body(cart_id), headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert (first.headers["idempotent-replayed"], second.headers["idempotent-replayed"]) == ("false", "true")
    assert (await stock_of(demo_settings, sku)).on_hand == 4
    other = await client.post("/api/v1/checkout", json=checkout_body(cart_id, email="else@example.com"), headers=key)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    short = await client.post("/api/v1/checkout", json=checkout_body(cart_id), headers={"Idempotency-Key": "x"})
    assert short.status_code == 422


async def test_a_refused_checkout_is_replayed_as_refused(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=1)
    cart_id = await new_cart(client, items={sku: 1})
    key = {"Idempotency-Key": str(uuid.uuid4())}
    declined = await client.post("/api/v1/checkout", json=checkout_body(cart_id, token="tok_chargeDeclined"),
                                 headers=key)
    replay = await client.post("/api/v1/checkout", json=checkout_body(cart_id, token="tok_chargeDeclined"),
                               headers=key)
    assert declined.status_code == replay.status_code == 402
    assert replay.headers["content-type"] == PROBLEM and replay.json() == declined.json()


async def test_a_voucher_takes_its_discount_within_its_rules(client: httpx.AsyncClient, demo_settings: Settings,
                                                             staff: dict[str, str]) -> None:
    code = f"TEN{uuid.uuid4().hex[:6].upper()}"
    created = await client.post("/api/v1/vouchers", headers=staff, json={
        "code": code.lower(), "kind": "percentage", "value": "10", "min_order": "30.00"})
    assert created.status_code == 201, created.text
    assert (await client.post("/api/v1/vouchers", headers=staff, json={
        "code": code, "kind": "fixed", "value": "5"})).status_code == 409
    sku = await new_product(client, staff, stock=9, price="20.00")
    cart_id = await new_cart(client, items={sku: 1})
    too_small = await client.post(f"/api/v1/carts/{cart_id}/discount", json={"code": code})
    assert too_small.status_code == 422 and "at least" in too_small.json()["detail"]
    await client.patch(f"/api/v1/carts/{cart_id}/items/"
                       f"{(await client.get(f'/api/v1/carts/{cart_id}')).json()['items'][0]['id']}",
                       json={"quantity": 3})
    applied = (await client.post(f"/api/v1/carts/{cart_id}/discount", json={"code": code})).json()
    assert applied["discount"]["amount"] == "6.00" and applied["subtotal"]["amount"] == "54.00"
    placed = (await client.post("/api/v1/checkout", json=checkout_body(cart_id))).json()
    assert placed["discount_code"] == code and placed["totals"]["discount"]["amount"] == "6.00"
    assert placed["totals"]["shipping"]["amount"] == "0.00"  # 54.00 after discount is above 50.00
    listed = {v["code"]: v for v in (await client.get("/api/v1/vouchers", headers=staff)).json()["items"]}
    assert listed[code]["times_used"] == 1
    expired_code = f"OLD{uuid.uuid4().hex[:6].upper()}"
    await client.post("/api/v1/vouchers", headers=staff, json={
        "code": expired_code, "kind": "fixed", "value": "5", "ends_at": "2020-01-01T00:00:00Z"})
    expired = await client.post(f"/api/v1/carts/{await new_cart(client, items={sku: 1})}/discount",
                                json={"code": expired_code})
    assert expired.status_code == 422 and "expired" in expired.json()["detail"]
    unknown = await client.post(f"/api/v1/carts/{cart_id}/discount", json={"code": "NOPE-NOPE"})
    assert unknown.status_code in (409, 422)


@pytest.mark.parametrize("body", [
    {"code": "x", "kind": "fixed", "value": "5"},
    {"code": "GOODCODE", "kind": "percentage", "value": "150"},
    {"code": "GOODCODE", "kind": "fixed", "value": "-5"},
    {"code": "GOODCODE", "kind": "fixed", "value": "abc"},
    {"code": "GOODCODE", "kind": "bogus", "value": "5"},
    {"code": "GOODCODE", "kind": "fixed", "value": "5", "usage_limit": 0},
    {"code": "GOODCODE", "kind": "fixed", "value": "5", "starts_at": "2030-01-01T00:00:00Z",
     "ends_at": "2029-01-01T00:00:00Z"},
])
async def test_bad_vouchers_are_refused(client: httpx.AsyncClient, staff: dict[str, str],
                                        body: dict[str, object]) -> None:
    response = await client.post("/api/v1/vouchers", json=body, headers=staff)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_the_order_confirmation_is_queued_with_the_order(client: httpx.AsyncClient, demo_settings: Settings,
                                                               staff: dict[str, str]) -> None:
    from sqlalchemy import select

    from shop.infrastructure.db.main.tables import outbox

    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    sku = await new_product(client, staff, stock=1)
    placed = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 1}),
                                                                      email=email))
    number = placed.json()["number"]
    databases = build_databases(demo_settings)
    try:
        async with databases.store("main").read() as conn:
            rows = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "email"))).scalars().all()
    finally:
        await databases.dispose()
    mails = [p for p in rows if email in p["to"]]
    assert len(mails) == 1 and number in mails[0]["subject"] and "Test Mug" in mails[0]["text"]


async def test_the_catalogue_learns_a_product_sold_out_and_back_in_stock(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str], tmp_path: Path) -> None:
    from sqlalchemy import select

    from shop.bootstrap import build_delivery
    from shop.infrastructure.db.posts.tables import products, variants

    async def in_stock() -> bool:
        databases = build_databases(demo_settings)
        try:
            # one round of `shop worker` (its e-mails go to files under tmp_path)
            await build_delivery(demo_settings.model_copy(update={"var_dir": tmp_path}), databases)()
            async with databases.store("posts").read() as conn:
                return bool((await conn.execute(select(products.c.in_stock).join(
                    variants, variants.c.product_id == products.c.id).where(variants.c.sku == sku))).scalar_one())
        finally:
            await databases.dispose()

    sku = await new_product(client, staff, stock=1)
    assert await in_stock()
    number = (await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 1})))
              ).json()["number"]
    assert not await in_stock()
    assert (await client.post(f"/api/v1/orders/{number}/cancel", headers=staff)).status_code == 200
    assert await in_stock()


async def test_a_partial_refund_at_the_gateway_leaves_the_order_standing(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=3)
    placed = (await client.post("/api/v1/checkout", json=checkout_body(
        await new_cart(client, items={sku: 2}), token="tok_threeDSecure"))).json()
    ref = httpx.URL(placed["payment"]["action_url"]).path.rsplit("/", 1)[1]
    await client.post(httpx.URL(placed["payment"]["action_url"]).path)
    gateway = build_gateways(demo_settings)["test"]
    assert isinstance(gateway, TestGateway)

    async def refunded(amount: str) -> bool:
        body = gateway.event_body(event_id=f"evt_{uuid.uuid4().hex}", kind=EventKind.REFUNDED, payment_ref=ref,
                                  reference=placed["number"], amount=Money.of(amount, "EUR"))
        response = await client.post("/api/v1/payments/webhooks/test", content=body,
                                     headers=gateway.signed_headers(body, now=datetime.now(UTC)))
        return bool(response.json()["applied"])

    assert not await refunded("1.00")
    assert (await stock_of(demo_settings, sku)).on_hand == 1
    assert await refunded(placed["totals"]["total"]["amount"])
    seen = await client.get(f"/api/v1/orders/{placed['number']}", headers={"X-Order-Key": placed["access_key"]})
    assert seen.json()["status"] == "refunded"
    assert (await stock_of(demo_settings, sku)).on_hand == 3  # not shipped yet: the goods are back
