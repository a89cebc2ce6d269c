"""The races where shops break: many buyers for the last units, one single-use voucher, one request sent twice
at once. Run on every database under test; each must come out exact."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest_asyncio
from sqlalchemy import func, select

from shop.bootstrap import build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import order_lines, orders, vouchers
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in, stock_of


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _count(settings: Settings, query: object) -> int:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]
    finally:
        await databases.dispose()


async def test_a_hundred_buyers_for_ten_units_make_exactly_ten_orders(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=10)
    carts = [await new_cart(client, items={sku: 1}) for _ in range(100)]
    responses = await asyncio.gather(*(client.post("/api/v1/checkout", json=checkout_body(c)) for c in carts))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 10, [r.text for r in responses if r.status_code not in (201, 409)][:3]
    assert statuses.count(409) == 90
    assert all(r.json()["type"] == "urn:shop:problem:out-of-stock" for r in responses if r.status_code == 409)
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (0, 0)
    sold = await _count(demo_settings, select(func.coalesce(func.sum(order_lines.c.quantity), 0))
                        .join(orders, orders.c.id == order_lines.c.order_id)
                        .where(order_lines.c.sku == sku, orders.c.status == "paid"))
    assert sold == 10


async def test_a_single_use_voucher_is_used_exactly_once(client: httpx.AsyncClient, demo_settings: Settings,
                                                         staff: dict[str, str]) -> None:
    code = f"ONCE{uuid.uuid4().hex[:8].upper()}"
    created = await client.post("/api/v1/vouchers", headers=staff,
                                json={"code": code, "kind": "fixed", "value": "5.00", "usage_limit": 1})
    assert created.status_code == 201, created.text
    sku = await new_product(client, staff, stock=100)
    carts = [await new_cart(client, items={sku: 1}) for _ in range(30)]
    responses = await asyncio.gather(*(client.post("/api/v1/checkout", json=checkout_body(c, discount_code=code))
                                       for c in carts))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1 and statuses.count(422) == 29, statuses
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert winner["totals"]["discount"]["amount"] == "5.00"
    assert await _count(demo_settings, select(vouchers.c.times_used).where(vouchers.c.code == code)) == 1
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (99, 0)  # the refused checkouts held nothing


async def test_a_voucher_once_per_customer_holds_when_one_customer_races_themselves(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    code = f"MINE{uuid.uuid4().hex[:8].upper()}"
    await client.post("/api/v1/vouchers", headers=staff,
                      json={"code": code, "kind": "percentage", "value": "50", "per_customer_limit": 1})
    sku = await new_product(client, staff, stock=100)
    email = f"racer-{uuid.uuid4().hex[:8]}@example.com"
    carts = [await new_cart(client, items={sku: 1}) for _ in range(12)]
    responses = await asyncio.gather(*(client.post(
        "/api/v1/checkout", json=checkout_body(c, email=email, discount_code=code)) for c in carts))
    assert [r.status_code for r in responses].count(201) == 1
    someone_else = await client.post("/api/v1/checkout", json=checkout_body(
        await new_cart(client, items={sku: 1}), email="other-" + email, discount_code=code))
    assert someone_else.status_code == 201, someone_else.text


async def test_the_same_checkout_sent_twice_at_once_makes_one_order(client: httpx.AsyncClient,
                                                                    demo_settings: Settings,
                                                                    staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=50)
    for _ in range(5):
        cart_id = await new_cart(client, items={sku: 1})
        key = {"Idempotency-Key": str(uuid.uuid4())}
        responses = await asyncio.gather(*(client.post("/api/v1/checkout", json=checkout_body(cart_id), headers=key)
                                           for _ in range(4)))
        statuses = sorted(r.status_code for r in responses)
        # one places the order; the others either replay it or are told it is still running
        assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
        numbers = {r.json()["number"] for r in responses if r.status_code == 201}
        assert len(numbers) == 1
        assert all(r.json()["type"] == "about:blank" for r in responses if r.status_code == 409)
    assert (await stock_of(demo_settings, sku)).on_hand == 45
