"""Parcels and partial refunds over the API on every database under test (issue 16, items 2, 3 and 8): staff ship
some lines, refund an amount or lines once per Idempotency-Key; bad input is a 4xx problem naming its cause with
nothing changed; two staff refunding one order at once never give back more than was paid."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio

from shop.config import Settings
from shop.domain.users import Role
from tests.e2e.shopping import PROBLEM, checkout_body, new_cart, new_product, signed_in, stock_of


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _paid(client: httpx.AsyncClient, staff: dict[str, str], *items: int, stock: int = 5,
                fulfil: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A paid order of one new product per entry of `items` (units of each); the order and the SKUs."""
    skus = [await new_product(client, staff, stock=stock) for _ in items]
    placed = await client.post("/api/v1/checkout", json=checkout_body(
        await new_cart(client, items=dict(zip(skus, items, strict=True)))))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    if fulfil:
        assert (await client.post(f"/api/v1/orders/{order['number']}/fulfil", headers=staff)).status_code == 200
    return order, skus


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error["field"] for error in response.json().get("errors", [])]


async def test_staff_ship_half_an_order_and_the_order_shows_its_parcels(
        client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    order, _ = await _paid(client, staff, 2, 1)
    number = order["number"]
    early = await client.post(f"/api/v1/orders/{number}/shipments", headers=staff,
                              json={"lines": [{"line": 1, "quantity": 1}]})
    assert early.status_code == 409 and early.headers["content-type"] == PROBLEM  # paid, not yet fulfilled
    await client.post(f"/api/v1/orders/{number}/fulfil", headers=staff)
    first = await client.post(f"/api/v1/orders/{number}/shipments", headers=staff,
                              json={"lines": [{"line": 1, "quantity": 1}], "carrier": "DHL", "tracking": "DHL-1"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "partly_shipped" and body["tracking"] == "DHL-1"
    assert [(f["shipped"], f["left_to_ship"]) for f in body["fulfilment"]] == [(1, 1), (0, 1)]
    assert body["shipments"][0]["lines"] == [{"line": 1, "quantity": 1}] and body["shipments"][0]["carrier"] == "DHL"
    seen = (await client.get(f"/api/v1/orders/{number}", headers=staff)).json()
    assert seen["status"] == "partly_shipped"
    # MariaDB keeps times to the second, as it does for every other time of an order
    assert [{**s, "shipped_at": s["shipped_at"][:19]} for s in seen["shipments"]] == [
        {**s, "shipped_at": s["shipped_at"][:19]} for s in body["shipments"]]
    rest = await client.post(f"/api/v1/orders/{number}/ship", json={"tracking": "DHL-2"}, headers=staff)
    assert rest.status_code == 200 and rest.json()["status"] == "shipped"
    seen = (await client.get(f"/api/v1/orders/{number}", headers=staff)).json()
    assert [s["lines"] for s in seen["shipments"]] == [[{"line": 1, "quantity": 1}],
                                                       [{"line": 1, "quantity": 1}, {"line": 2, "quantity": 1}]]


async def test_shipping_more_than_is_left_is_a_problem_naming_the_line_and_ships_nothing(
        client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    order, _ = await _paid(client, staff, 2, fulfil=True)
    number = order["number"]
    for lines, field in (([{"line": 1, "quantity": 3}], "lines[0].quantity"),
                         ([{"line": 2, "quantity": 1}], "lines[0].line"),
                         ([{"line": 1, "quantity": 1}, {"line": 1, "quantity": 1}], "lines[1].line")):
        refused = await client.post(f"/api/v1/orders/{number}/shipments", headers=staff, json={"lines": lines})
        assert refused.status_code == 422 and _fields(refused) == [field], refused.text
    empty = await client.post(f"/api/v1/orders/{number}/shipments", headers=staff, json={"lines": []})
    assert empty.status_code == 422 and _fields(empty) == ["lines"]
    seen = (await client.get(f"/api/v1/orders/{number}", headers=staff)).json()
    assert seen["status"] == "fulfilled" and seen["shipments"] == []


async def test_a_customer_cannot_ship_or_refund(client: httpx.AsyncClient, demo_settings: Settings,
                                                staff: dict[str, str]) -> None:
    order, _ = await _paid(client, staff, 1, fulfil=True)
    _, customer = await signed_in(client, demo_settings)
    number = order["number"]
    assert (await client.post(f"/api/v1/orders/{number}/shipments", headers=customer,
                              json={"lines": [{"line": 1, "quantity": 1}]})).status_code == 403
    assert (await client.post(f"/api/v1/orders/{number}/refunds", headers=customer,
                              json={"amount": "1.00"})).status_code == 403


async def test_refunds_by_amount_and_lines_each_once_per_key(client: httpx.AsyncClient, demo_settings: Settings,
                                                             staff: dict[str, str]) -> None:
    order, (sku,) = await _paid(client, staff, 2, stock=4)
    number, total = order["number"], Decimal(order["totals"]["total"]["amount"])
    assert (await stock_of(demo_settings, sku)).on_hand == 2
    key = _key()
    first = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **key},
                              json={"lines": [{"line": 1, "quantity": 1, "restock": True}], "reason": "damaged"})
    assert first.status_code == 201, first.text
    assert first.headers["idempotent-replayed"] == "false"
    refund = first.json()["refund"]
    assert refund["status"] == "succeeded" and refund["lines"] == [{"line": 1, "quantity": 1, "restocked": 1}]
    assert first.json()["order"]["payment"]["status"] == "partly_refunded"
    assert (await stock_of(demo_settings, sku)).on_hand == 3
    again = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **key},
                              json={"lines": [{"line": 1, "quantity": 1, "restock": True}], "reason": "damaged"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["refund"] == refund and (await stock_of(demo_settings, sku)).on_hand == 3
    other = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **key}, json={"amount": "1.00"})
    assert other.status_code == 422 and _fields(other) == ["Idempotency-Key"]
    left = total - Decimal(refund["amount"]["amount"])
    too_much = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **_key()},
                                 json={"amount": str(left + Decimal("0.01"))})
    assert too_much.status_code == 422 and _fields(too_much) == ["amount"], too_much.text
    assert str(left) in too_much.json()["detail"]
    for body, field in (({"amount": "1.001"}, "amount"), ({"amount": "0"}, "amount"), ({}, "amount"),
                        ({"lines": [{"line": 1, "quantity": 2}]}, "lines[0].quantity")):
        refused = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **_key()}, json=body)
        assert refused.status_code == 422 and _fields(refused) == [field], refused.text
    seen = (await client.get(f"/api/v1/orders/{number}", headers=staff)).json()
    assert len(seen["refunds"]) == 1 and seen["refundable"]["amount"] == str(left)
    rest = await client.post(f"/api/v1/orders/{number}/refunds", headers={**staff, **_key()},
                             json={"amount": str(left)})
    assert rest.status_code == 201 and rest.json()["order"]["status"] == "refunded"
    assert rest.json()["order"]["refundable"]["amount"] in ("0", "0.00")
    assert (await stock_of(demo_settings, sku)).on_hand == 3  # money only: the second unit stays sold


async def test_two_staff_refunding_one_order_at_once_never_give_back_more_than_was_paid(
        client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    for _ in range(3):
        order, _ = await _paid(client, staff, 2)
        number, total = order["number"], Decimal(order["totals"]["total"]["amount"])
        most = str((total * Decimal("0.6")).quantize(Decimal("0.01")))
        answers = await asyncio.gather(*(client.post(f"/api/v1/orders/{number}/refunds",
                                                     headers={**staff, **_key()}, json={"amount": most})
                                         for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [201, 422], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 422)
        assert _fields(refused) == ["amount"]
        seen = (await client.get(f"/api/v1/orders/{number}", headers=staff)).json()
        assert [r["status"] for r in seen["refunds"]] == ["succeeded"]
        assert Decimal(seen["refunded"]["amount"]) == Decimal(most) <= total
