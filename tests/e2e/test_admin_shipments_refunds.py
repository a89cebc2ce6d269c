"""The control panel's order page ships parcels and refunds by lines or amount (issue 16, items 2 and 3) on every
database: staff ship half an order, refund one line with its unit back on the shelf; a form the order cannot take
is shown again with the reason and nothing changed; a form submitted twice refunds once."""

from __future__ import annotations

import re

import httpx
import pytest_asyncio

from shop.config import Settings
from shop.domain.users import Role
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in, stock_of
from tests.e2e.test_admin_manage import csrf_of, post, sign_in


@pytest_asyncio.fixture
async def staff_api(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


async def _order(client: httpx.AsyncClient, staff_api: dict[str, str]) -> tuple[str, str]:
    """A paid order of two units of a new product, fulfilled: its number and the SKU."""
    sku = await new_product(client, staff_api, stock=5, price="20.00")
    placed = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 2})))
    assert placed.status_code == 201, placed.text
    number: str = placed.json()["number"]
    assert (await client.post(f"/api/v1/orders/{number}/fulfil", headers=staff_api)).status_code == 200
    return number, sku


async def test_staff_ship_half_an_order_and_refund_one_line_in_the_panel(
        client: httpx.AsyncClient, demo_settings: Settings, staff_api: dict[str, str]) -> None:
    number, sku = await _order(client, staff_api)
    await sign_in(client, demo_settings, Role.STAFF)
    page = f"/admin/orders/{number}"
    shipped = await post(client, f"{page}/parcel", {"ship_1": "1", "carrier": "DHL", "tracking": "DHL-77"}, page=page)
    assert shipped.status_code == 303, shipped.text
    shown = (await client.get(page)).text
    assert "partly_shipped" in shown and "DHL-77" in shown and 'data-shipped="1">1<' in shown
    order = (await client.get(f"/api/v1/orders/{number}", headers=staff_api)).json()
    assert order["status"] == "partly_shipped" and order["shipments"][0]["tracking"] == "DHL-77"
    assert (await stock_of(demo_settings, sku)).on_hand == 3
    form = (await client.get(page)).text
    key = re.search(r'name="key" value="([0-9a-f]+)"', form)
    assert key is not None
    data = {"refund_1": "1", "restock_1": "1", "reason": "damaged", "key": key.group(1), "csrf": csrf_of(form)}
    refunded = await client.post(f"{page}/refunds", data=data)
    assert refunded.status_code == 303, refunded.text
    again = await client.post(f"{page}/refunds", data=data)  # the same form submitted twice
    assert again.status_code == 303
    order = (await client.get(f"/api/v1/orders/{number}", headers=staff_api)).json()
    assert [r["lines"] for r in order["refunds"]] == [[{"line": 1, "quantity": 1, "restocked": 1}]]
    assert order["payment"]["status"] == "partly_refunded" and order["refunds"][0]["amount"]["amount"] == "20.00"
    assert (await stock_of(demo_settings, sku)).on_hand == 4
    shown = (await client.get(page)).text
    assert 'data-refunded="1">1<' in shown and "damaged" in shown


async def test_a_parcel_or_refund_the_order_cannot_take_is_shown_with_its_reason_and_changes_nothing(
        client: httpx.AsyncClient, demo_settings: Settings, staff_api: dict[str, str]) -> None:
    number, sku = await _order(client, staff_api)
    await sign_in(client, demo_settings, Role.STAFF)
    page = f"/admin/orders/{number}"
    too_many = await post(client, f"{page}/parcel", {"ship_1": "3"}, page=page)
    assert too_many.status_code == 422 and "enter a whole number from 0 to 2" in too_many.text
    nothing = await post(client, f"{page}/parcel", {"ship_1": "0"}, page=page)
    assert nothing.status_code == 422 and "at least one line" in nothing.text
    above = await post(client, f"{page}/refunds", {"amount": "1000.00"}, page=page)
    assert above.status_code == 422 and "left to refund" in above.text
    odd = await post(client, f"{page}/refunds", {"amount": "1.005"}, page=page)
    assert odd.status_code == 422 and "decimal places" in odd.text
    order = (await client.get(f"/api/v1/orders/{number}", headers=staff_api)).json()
    assert order["status"] == "fulfilled" and order["shipments"] == [] and order["refunds"] == []
    assert (await stock_of(demo_settings, sku)).on_hand == 3
