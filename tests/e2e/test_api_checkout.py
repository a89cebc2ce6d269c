"""Buying over the API: carts priced by the server, checkout that reserves stock and takes the payment once,
orders only their owner sees, and every bad input answered with a problem, never a 500."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shop.config import Settings
from shop.domain.users import Role
from tests.e2e.shopping import PROBLEM, address, checkout_body, new_cart, new_product, signed_in, stock_of


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def test_a_guest_buys_a_product_and_stock_leaves_the_shelf(client: httpx.AsyncClient, demo_settings: Settings,
                                                                 staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=5, price="12.50")
    cart_id = await new_cart(client, items={sku: 2})
    cart = (await client.get(f"/api/v1/carts/{cart_id}")).json()
    assert cart["goods"] == {"amount": "25.00", "currency": "EUR"} and cart["items"][0]["available"] == 5

    placed = await client.post("/api/v1/checkout", json=checkout_body(cart_id))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "paid" and order["payment"]["status"] == "captured"
    assert placed.headers["location"] == f"/api/v1/orders/{order['number']}"
    # 25.00 of goods is below the free-shipping threshold; German VAT is included in the prices
    totals = order["totals"]
    assert totals["shipping"]["amount"] == "4.90" and totals["total"]["amount"] == "29.90"
    assert Decimal(totals["tax"]["amount"]) == (Decimal("29.90") * Decimal("0.19") / Decimal("1.19")).quantize(
        Decimal("0.01"))
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (3, 0)

    mine = await client.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert mine.status_code == 200 and mine.json()["items"][0]["quantity"] == 2
    for headers in ({}, {"X-Order-Key": "wrong-key-wrong-key"}):
        hidden = await client.get(f"/api/v1/orders/{order['number']}", headers=headers)
        assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM

    again = await client.post("/api/v1/checkout", json=checkout_body(cart_id))
    assert again.status_code == 409 and "ordered" in again.json()["detail"]
    closed = await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, "quantity": 1})
    assert closed.status_code == 409


async def test_a_customer_buys_and_sees_only_their_own_orders(client: httpx.AsyncClient, demo_settings: Settings,
                                                              staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=3)
    email, me = await signed_in(client, demo_settings)
    _, other = await signed_in(client, demo_settings)
    cart_id = await new_cart(client, me, items={sku: 1})
    assert (await client.get(f"/api/v1/carts/{cart_id}", headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/carts/{cart_id}")).status_code == 404

    placed = await client.post("/api/v1/checkout", json=checkout_body(cart_id, email=email), headers=me)
    assert placed.status_code == 201, placed.text
    number = placed.json()["number"]
    listed = (await client.get("/api/v1/orders", headers=me)).json()
    assert [o["number"] for o in listed["items"]] == [number] and listed["total"] == 1
    assert (await client.get(f"/api/v1/orders/{number}", headers=me)).status_code == 200
    assert (await client.get(f"/api/v1/orders/{number}", headers=other)).status_code == 404
    assert (await client.get("/api/v1/orders", headers=other)).json()["total"] == 0
    assert (await client.get("/api/v1/orders")).status_code == 401


async def test_a_guest_cart_is_merged_into_the_customers_cart(client: httpx.AsyncClient, demo_settings: Settings,
                                                              staff: dict[str, str]) -> None:
    first, second = await new_product(client, staff, stock=9), await new_product(client, staff, stock=9)
    _, me = await signed_in(client, demo_settings)
    await new_cart(client, me, items={first: 1})
    guest = await new_cart(client, items={first: 2, second: 1})
    merged = await client.post("/api/v1/carts", json={"merge_from": guest}, headers=me)
    assert merged.status_code == 200, merged.text
    assert {i["sku"]: i["quantity"] for i in merged.json()["items"]} == {first: 3, second: 1}
    assert (await client.get(f"/api/v1/carts/{guest}")).json()["status"] == "merged"


async def test_cart_lines_change_and_prices_are_never_taken_from_the_client(client: httpx.AsyncClient,
                                                                           staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=10, price="3.00")
    cart_id = await new_cart(client)
    tampered = await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, "quantity": 1, "price": "0.01"})
    assert tampered.status_code == 422 and tampered.headers["content-type"] == PROBLEM
    added = (await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, "quantity": 1})).json()
    line = added["items"][0]["id"]
    changed = await client.patch(f"/api/v1/carts/{cart_id}/items/{line}", json={"quantity": 4})
    assert changed.json()["goods"]["amount"] == "12.00"
    too_many = await client.patch(f"/api/v1/carts/{cart_id}/items/{line}", json={"quantity": 11})
    assert too_many.status_code == 409 and too_many.json()["available"] == 10
    body = checkout_body(cart_id, total={"amount": "0.01", "currency": "EUR"})
    assert (await client.post("/api/v1/checkout", json=body)).status_code == 422
    removed = await client.delete(f"/api/v1/carts/{cart_id}/items/{line}")
    assert removed.status_code == 200 and removed.json()["items"] == []
    empty = await client.post("/api/v1/checkout", json=checkout_body(cart_id))
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


@pytest.mark.parametrize(("item", "field"), [
    ({"sku": "SKU-DOES-NOT-EXIST", "quantity": 1}, "sku"),
    ({"sku": "bad sku!", "quantity": 1}, "sku"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": -1}, "quantity"),
    ({"quantity": 10**9}, "quantity"),
    ({"quantity": "abc"}, "quantity"),
    ({"quantity": 1.5}, "quantity"),
])
async def test_bad_cart_items_get_a_problem_naming_the_field(client: httpx.AsyncClient, staff: dict[str, str],
                                                             item: dict[str, Any], field: str) -> None:
    sku = await new_product(client, staff, stock=5)
    cart_id = await new_cart(client)
    response = await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, **item})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_unknown_carts_and_lines_are_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/carts/no-such-cart-id")).status_code == 404
    assert (await client.get("/api/v1/carts/x")).status_code == 422
    cart_id = await new_cart(client)
    gone = await client.patch(f"/api/v1/carts/{cart_id}/items/abc123", json={"quantity": 1})
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(("changes", "field"), [
    ({"country": "Germany"}, "shipping_address.country"),
    ({"postal_code": ""}, "shipping_address.postal_code"),
    ({"postal_code": "<script>"}, "shipping_address.postal_code"),
    ({"name": "   "}, "shipping_address.name"),
    ({"region": "California"}, "shipping_address.region"),
])
async def test_a_malformed_address_is_refused_field_by_field(client: httpx.AsyncClient, staff: dict[str, str],
                                                             changes: dict[str, str], field: str) -> None:
    sku = await new_product(client, staff, stock=2)
    cart_id = await new_cart(client, items={sku: 1})
    body = checkout_body(cart_id)
    body["shipping_address"] = address(**changes)
    response = await client.post("/api/v1/checkout", json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(("changes", "field"), [
    ({"method": "teleport"}, "shipping_method"),
    ({"email": "not-an-email"}, "email"),
    ({"token": "4242 4242 4242 4242"}, "payment_token"),
    ({"discount_code": "x"}, "discount_code"),
])
async def test_bad_checkout_fields_are_refused(client: httpx.AsyncClient, demo_settings: Settings,
                                               staff: dict[str, str], changes: dict[str, str], field: str) -> None:
    sku = await new_product(client, staff, stock=2)
    cart_id = await new_cart(client, items={sku: 1})
    response = await client.post("/api/v1/checkout", json=checkout_body(cart_id, **changes))
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert "4242" not in response.text
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (2, 0)


async def test_a_declined_card_gives_the_stock_back_and_the_cart_can_pay_again(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=1)
    cart_id = await new_cart(client, items={sku: 1})
    declined = await client.post("/api/v1/checkout", json=checkout_body(cart_id, token="tok_chargeDeclined"))
    assert declined.status_code == 402 and declined.headers["content-type"] == PROBLEM
    assert declined.json()["reason"] == "card_declined"
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (1, 0)
    paid = await client.post("/api/v1/checkout", json=checkout_body(cart_id))
    assert paid.status_code == 201, paid.text
    assert paid.json()["number"] != declined.json()["order"]


async def test_a_payment_needing_authentication_holds_stock_until_the_bank_confirms(
        client: httpx.AsyncClient, demo_settings: Settings, staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=2)
    cart_id = await new_cart(client, items={sku: 2})
    pending = await client.post("/api/v1/checkout", json=checkout_body(cart_id, token="tok_threeDSecure"))
    assert pending.status_code == 202, pending.text
    order = pending.json()
    assert order["status"] == "pending" and order["payment"]["status"] == "requires_action"
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (2, 2)
    action = httpx.URL(order["payment"]["action_url"])
    confirmed = await client.post(action.path)
    assert confirmed.status_code == 200 and confirmed.json() == {"order": order["number"], "applied": True}
    again = await client.post(action.path)
    assert again.json()["applied"] is False
    level = await stock_of(demo_settings, sku)
    assert (level.on_hand, level.reserved) == (0, 0)
    seen = await client.get(f"/api/v1/orders/{order['number']}", headers={"X-Order-Key": order["access_key"]})
    assert seen.json()["status"] == "paid"


async def test_shipping_methods_are_listed_with_their_prices(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/shipping-methods?country=de")).json()
    codes = {m["code"]: m for m in listed["items"]}
    assert codes["standard"]["free_above"] == {"amount": "50.00", "currency": "EUR"}
    assert codes["express"]["bands"][0]["up_to_grams"] == 2000
    assert (await client.get("/api/v1/shipping-methods?country=Germany")).status_code == 422


async def test_weight_based_shipping_prices_by_weight_and_refuses_what_it_cannot_carry(
        client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    heavy = await new_product(client, staff, stock=6, price="10.00", weight_grams=4000)
    cart_id = await new_cart(client, items={heavy: 1})
    one = await client.post("/api/v1/checkout", json=checkout_body(cart_id, method="express"))
    assert one.status_code == 201 and one.json()["totals"]["shipping"]["amount"] == "14.90"
    too_heavy = await new_cart(client, items={heavy: 5})  # 20 kg
    ok = await client.post("/api/v1/checkout", json=checkout_body(too_heavy, method="express"))
    assert ok.json()["totals"]["shipping"]["amount"] == "29.90"
    huge = await new_product(client, staff, stock=1, weight_grams=40_000)
    refused = await client.post("/api/v1/checkout",
                                json=checkout_body(await new_cart(client, items={huge: 1}), method="express"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "shipping_method"


async def test_signing_in_with_a_guest_cart_merges_it(client: httpx.AsyncClient, demo_settings: Settings,
                                                      staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=5)
    guest = await new_cart(client, items={sku: 2})
    email, first = await signed_in(client, demo_settings)
    mine = await new_cart(client, first, items={sku: 1})
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": "shopper-password-long",
                                                          "cart_id": guest})
    assert login.status_code == 200 and login.json()["cart_id"] == mine
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    cart = (await client.get(f"/api/v1/carts/{mine}", headers=headers)).json()
    assert cart["items"][0]["quantity"] == 3
    unknown = await client.post("/api/v1/auth/login", json={"email": email, "password": "shopper-password-long",
                                                            "cart_id": "no-such-cart-here"})
    assert unknown.status_code == 200 and unknown.json()["cart_id"] is None
