"""The control panel's management pages in Chromium against a running shop: a staff member edits a product's title
and price and the shop's product page shows them; a staff member fulfils an order."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import STAFF_PASSWORD, LiveShop, staff_account
from tests.e2e.shopping import checkout_body

PASSWORD = STAFF_PASSWORD
Screenshot = Callable[[Any, str], Awaitable[Path]]


async def _product(shop: LiveShop, email: str) -> tuple[str, str]:
    """A published product of our own (the demo ones are shared with other tests): its slug and SKU."""
    sku = f"BR-{uuid.uuid4().hex[:10].upper()}"
    async with httpx.AsyncClient(base_url=shop.url, timeout=10) as client:
        token = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        created = await client.post("/api/v1/products", headers={"Authorization": f"Bearer {token['access_token']}"},
                                    json={"title": f"Browser Vase {sku}", "published": True,
                                          "variants": [{"sku": sku, "price": "30.00", "stock": 20}]})
        assert created.status_code == 201, created.text
    return created.json()["slug"], sku


async def _sign_in(page: Page, shop: LiveShop, email: str, target: str) -> None:
    await page.goto(f"{shop.url}{target}")
    await expect(page).to_have_url(f"{shop.url}/account/login?next={target}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button.primary")
    await expect(page).to_have_url(f"{shop.url}{target}")


async def test_staff_edit_a_product_and_the_shop_shows_it(page: Page, live_shop: LiveShop,
                                                          screenshot: Screenshot) -> None:
    email = await staff_account(live_shop)
    slug, sku = await _product(live_shop, email)
    await _sign_in(page, live_shop, email, "/admin/products")
    await page.get_by_label("Title, slug or SKU").fill(sku)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=f"Browser Vase {sku}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Browser Vase {sku}")

    details = page.get_by_role("form", name="Details")
    await details.get_by_label("Title").fill(f"Blue Vase {sku}")
    await details.get_by_role("button", name="Save details").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    variant = page.get_by_role("form", name=f"Variant {sku}")
    await variant.get_by_label("Price").fill("27.50")
    await variant.get_by_role("button", name="Save variant").click()
    await expect(page.get_by_role("status")).to_have_text("The variant was saved.")
    await screenshot(page, "admin-product")

    await page.get_by_role("link", name="See it in the shop").click()
    await expect(page).to_have_url(f"{live_shop.url}/p/{slug}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Blue Vase {sku}")
    await expect(page.locator("label.variant .price")).to_have_text("€27.50")


async def test_staff_fulfil_an_order(page: Page, live_shop: LiveShop, screenshot: Screenshot) -> None:
    email = await staff_account(live_shop)
    _, sku = await _product(live_shop, email)
    async with httpx.AsyncClient(base_url=live_shop.url, timeout=10) as client:
        cart = (await client.post("/api/v1/carts")).json()["id"]
        assert (await client.post(f"/api/v1/carts/{cart}/items", json={"sku": sku, "quantity": 1})).status_code == 201
        placed = await client.post("/api/v1/checkout", json=checkout_body(cart, email="fulfil@example.com"))
        assert placed.status_code == 201, placed.text
    number = placed.json()["number"]

    await _sign_in(page, live_shop, email, "/admin/orders")
    await page.get_by_label("Number").fill(number)
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name=number).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {number}")
    await expect(page.locator("[data-state]")).to_have_text("paid")
    await page.get_by_role("button", name="Fulfil").click()
    await expect(page.get_by_role("status")).to_have_text("The order is fulfilled.")
    await expect(page.locator("[data-state]")).to_have_text("fulfilled")
    await expect(page.get_by_role("button", name="Fulfil")).to_have_count(0)
    await screenshot(page, "admin-order")
