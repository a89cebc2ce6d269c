"""The control panel's order page in Chromium (issue 16, items 2 and 3): staff ship half an order with a carrier
and a tracking number, then refund one line, its unit back on the shelf."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveShop, staff_account
from tests.browser.test_admin_manage import _product, _sign_in
from tests.e2e.shopping import checkout_body, stock_of

Screenshot = Callable[[Any, str], Awaitable[Path]]


async def test_staff_ship_half_an_order_and_refund_one_line(page: Page, live_shop: LiveShop,
                                                            screenshot: Screenshot) -> None:
    email = await staff_account(live_shop)
    _, sku = await _product(live_shop, email)
    async with httpx.AsyncClient(base_url=live_shop.url, timeout=10) as client:
        cart = (await client.post("/api/v1/carts")).json()["id"]
        assert (await client.post(f"/api/v1/carts/{cart}/items", json={"sku": sku, "quantity": 2})).status_code == 201
        placed = await client.post("/api/v1/checkout", json=checkout_body(
            cart, email=f"parcel-{uuid.uuid4().hex[:6]}@example.com"))
        assert placed.status_code == 201, placed.text
    number = placed.json()["number"]
    assert (await stock_of(live_shop.settings, sku)).on_hand == 18

    await _sign_in(page, live_shop, email, f"/admin/orders/{number}")
    await page.get_by_role("button", name="Fulfil", exact=True).click()
    await expect(page.locator("[data-state]")).to_have_text("fulfilled")
    parcel = page.get_by_role("region", name="Ship a parcel")
    await parcel.get_by_label("Units of line 1 to ship").fill("1")
    await parcel.get_by_label("Carrier").fill("DHL")
    await parcel.get_by_label("Tracking number").fill("DHL-HALF-1")
    await parcel.get_by_role("button", name="Ship parcel").click()
    await expect(page.get_by_role("status")).to_have_text("The parcel is shipped; the customer was told.")
    await expect(page.locator("[data-state]")).to_have_text("partly_shipped")
    await expect(page.locator("[data-shipments]")).to_contain_text("DHL-HALF-1")

    refund = page.get_by_role("region", name="Refund")
    await refund.get_by_label("Units of line 1 to refund").fill("1")
    await refund.get_by_label("restock").check()
    await refund.get_by_label("Reason").fill("the second one is out of stock")
    await refund.get_by_role("button", name="Refund these").click()
    await expect(page.get_by_role("status")).to_have_text("The refund went through; the customer was told.")
    await expect(page.locator("[data-refunds]")).to_contain_text("€30.00")
    await expect(page.locator("[data-refunded='1']")).to_have_text("1")
    # the unit still owed was refunded instead: nothing is left to ship
    await expect(page.locator("[data-state]")).to_have_text("shipped")
    await screenshot(page, "admin-order-parcel-refund")
    assert (await stock_of(live_shop.settings, sku)).on_hand == 19
