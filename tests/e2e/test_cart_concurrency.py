"""Ordinary concurrency on carts: many shoppers at once, each with their own cart, is no conflict at all. None
of them may be told the shop is busy (503), on any database; every cart and line they were answered is stored."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest_asyncio
from sqlalchemy import func, select

from shop.bootstrap import build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import cart_lines, carts
from tests.e2e.shopping import new_cart, new_product, signed_in


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


def _assert_no_server_error(responses: list[httpx.Response]) -> None:
    errors = [f"{r.status_code} {r.text[:160]}" for r in responses if r.status_code >= 500]
    assert not errors, f"{len(errors)} of {len(responses)} answered 5xx, e.g. {errors[0]}"


async def _stored(settings: Settings, cart_ids: list[str]) -> tuple[set[str], list[tuple[str, str, int]]]:
    """The ids of these carts as stored, and their lines as (cart id, sku, quantity)."""
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            found = set((await conn.execute(select(carts.c.id).where(carts.c.id.in_(cart_ids)))).scalars())
            lines = [(r.cart_id, r.sku, r.quantity) for r in await conn.execute(
                select(cart_lines.c.cart_id, cart_lines.c.sku, cart_lines.c.quantity)
                .where(cart_lines.c.cart_id.in_(cart_ids)))]
        return found, lines
    finally:
        await databases.dispose()


async def _open_carts_of(settings: Settings, customer_ids: list[str]) -> Counter[str]:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            rows = await conn.execute(select(carts.c.customer_id, func.count()).where(
                carts.c.customer_id.in_(customer_ids), carts.c.status == "open").group_by(carts.c.customer_id))
            return Counter({customer: int(n) for customer, n in rows})
    finally:
        await databases.dispose()


async def test_fifty_guests_creating_carts_at_once_each_get_their_own(client: httpx.AsyncClient,
                                                                       demo_settings: Settings) -> None:
    responses = await asyncio.gather(*(client.post("/api/v1/carts") for _ in range(50)))
    _assert_no_server_error(responses)
    assert [r.status_code for r in responses] == [201] * 50
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 50
    stored, lines = await _stored(demo_settings, ids)
    assert stored == set(ids) and lines == []


async def test_thirty_shoppers_adding_the_same_sku_each_to_their_own_cart_are_all_served(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=100)
    ids = [(await client.post("/api/v1/carts")).json()["id"] for _ in range(30)]
    responses = await asyncio.gather(*(client.post(f"/api/v1/carts/{cart_id}/items",
                                                   json={"sku": sku, "quantity": 2}) for cart_id in ids))
    _assert_no_server_error(responses)
    assert [r.status_code for r in responses] == [201] * 30, [r.text for r in responses if r.status_code != 201][:3]
    assert all(r.json()["items"][0]["quantity"] == 2 for r in responses)
    stored, lines = await _stored(demo_settings, ids)
    assert stored == set(ids)
    assert sorted(lines) == sorted((cart_id, sku, 2) for cart_id in ids)


async def test_shoppers_filling_fresh_carts_at_once_are_all_served(client: httpx.AsyncClient,
                                                                   demo_settings: Settings,
                                                                   staff: dict[str, str]) -> None:
    """Each guest makes a cart and puts two SKUs in it, all at the same moment: new carts and new lines."""
    first, second = await new_product(client, staff, stock=100), await new_product(client, staff, stock=100)

    async def shop() -> list[httpx.Response]:
        made = await client.post("/api/v1/carts")
        if made.status_code != 201:
            return [made]
        cart_id = made.json()["id"]
        return [made, *[await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, "quantity": 1})
                        for sku in (first, second)]]

    flows = await asyncio.gather(*(shop() for _ in range(30)))
    responses = [r for flow in flows for r in flow]
    _assert_no_server_error(responses)
    assert [r.status_code for r in responses] == [201] * 90
    ids = [flow[0].json()["id"] for flow in flows]
    stored, lines = await _stored(demo_settings, ids)
    assert stored == set(ids)
    assert sorted(lines) == sorted((cart_id, sku, 1) for cart_id in ids for sku in (first, second))


async def test_signed_in_customers_making_and_filling_their_carts_at_once_each_have_one(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=100)
    customers = [(await signed_in(client, demo_settings))[1] for _ in range(12)]

    async def shop(headers: dict[str, str]) -> list[httpx.Response]:
        made = await client.post("/api/v1/carts", headers=headers)
        if made.status_code != 201:
            return [made]
        added = await client.post(f"/api/v1/carts/{made.json()['id']}/items", json={"sku": sku, "quantity": 1},
                                  headers=headers)
        again = await client.post("/api/v1/carts", headers=headers)  # the open cart of the customer, found
        return [made, added, again]

    flows = await asyncio.gather(*(shop(headers) for headers in customers))
    responses = [r for flow in flows for r in flow]
    _assert_no_server_error(responses)
    assert [[r.status_code for r in flow] for flow in flows] == [[201, 201, 200]] * 12
    assert all(flow[2].json()["id"] == flow[0].json()["id"] for flow in flows)
    ids = [flow[0].json()["id"] for flow in flows]
    stored, lines = await _stored(demo_settings, ids)
    assert stored == set(ids)
    assert sorted(lines) == sorted((cart_id, sku, 1) for cart_id in ids)
    me = [(await client.get("/api/v1/me", headers=headers)).json()["id"] for headers in customers]
    assert await _open_carts_of(demo_settings, me) == Counter(dict.fromkeys(me, 1))


async def test_a_cart_keeps_its_lines_in_the_order_they_were_added_whatever_is_changed(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    """Only the lines that changed are written; the others stay as stored, in their order."""
    skus = [await new_product(client, staff, stock=50) for _ in range(4)]
    cart_id = (await client.post("/api/v1/carts")).json()["id"]
    for sku in skus[:3]:
        assert (await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku})).status_code == 201
    raised = await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": skus[0], "quantity": 4})
    first, middle = raised.json()["items"][0]["id"], raised.json()["items"][1]["id"]
    assert (await client.delete(f"/api/v1/carts/{cart_id}/items/{middle}")).status_code == 200
    assert (await client.patch(f"/api/v1/carts/{cart_id}/items/{first}", json={"quantity": 7})).status_code == 200
    assert (await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": skus[3]})).status_code == 201
    items = (await client.get(f"/api/v1/carts/{cart_id}")).json()["items"]
    assert [(item["sku"], item["quantity"]) for item in items] == [(skus[0], 7), (skus[2], 1), (skus[3], 1)]
    _, lines = await _stored(demo_settings, [cart_id])
    assert sorted(lines) == sorted((cart_id, sku, n) for sku, n in ((skus[0], 7), (skus[2], 1), (skus[3], 1)))


async def test_customers_signing_in_at_once_each_get_their_guest_cart_merged(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    mine, theirs = await new_product(client, staff, stock=100), await new_product(client, staff, stock=100)
    customers = []
    for _ in range(10):
        headers = (await signed_in(client, demo_settings))[1]
        await new_cart(client, headers, items={mine: 1})
        customers.append((headers, await new_cart(client, items={mine: 1, theirs: 2})))
    responses = await asyncio.gather(*(client.post("/api/v1/carts", json={"merge_from": guest}, headers=headers)
                                       for headers, guest in customers))
    _assert_no_server_error(responses)
    assert [r.status_code for r in responses] == [200] * 10
    assert all({i["sku"]: i["quantity"] for i in r.json()["items"]} == {mine: 2, theirs: 2} for r in responses)
    guests = [guest for _, guest in customers]
    assert [(await client.get(f"/api/v1/carts/{g}")).json()["status"] for g in guests] == ["merged"] * 10
    _, lines = await _stored(demo_settings, [r.json()["id"] for r in responses])
    assert len(lines) == 20
