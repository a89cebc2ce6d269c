"""The test gateway's card element in real Chromium, in each storefront: the test card is chosen in a form of its
own, the checkout sends only the token it stands for, and a card that asks for 3-D Secure is finished on the
test bank's page — the same page flow as Stripe's Payment Element (which cannot load here, offline)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from playwright.async_api import Page, expect

from tests.browser.conftest import LiveShop
from tests.browser.test_spa import add_to_cart, buyable_product, confirmed_order, fill_checkout
from tests.browser.test_storefront import _fill_address


async def test_the_main_shop_pays_with_a_test_card_token_and_3d_secure(page: Page, live_shop: LiveShop) -> None:
    product = await buyable_product(live_shop, skip=4)
    await page.goto(f"{live_shop.url}/p/{product['slug']}")
    await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()
    await _fill_address(page)
    card = page.get_by_label(re.compile("asks the bank"))
    await card.check()
    assert await card.evaluate("radio => radio.form.id") == "test-card-form"
    await expect(page.locator('[data-card-element="test"]')).to_have_attribute("data-card-element-ready", "true")

    async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/checkout")) as sent:
        await page.get_by_role("button", name="Place order and pay").click()
    posted = parse_qs((await sent.value).post_data or "")
    assert posted["token"] == ["tok_threeDSecure"] and "test-card" not in posted

    await expect(page.get_by_role("heading", name="Test bank")).to_be_visible()
    await page.get_by_role("button", name="Confirm payment").click()
    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "paid")


async def test_the_backup_shop_pays_with_a_test_card_token_and_3d_secure(page: Page, live_shop: LiveShop) -> None:
    product = await buyable_product(live_shop, skip=5)
    app = f"{live_shop.url}/app/"
    await add_to_cart(page, app, product["slug"])
    await page.goto(f"{app}#/checkout")
    await fill_checkout(page, card="asks the bank to confirm")
    card = page.get_by_label(re.compile("asks the bank to confirm"))
    assert await card.evaluate("radio => radio.form.id") == "test-card-form"

    async with (page.expect_response(lambda r: r.url.endswith("/next-action")) as stepped,
                page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/v1/checkout")) as sent):
        await page.get_by_role("button", name="Place order and pay").click()
    assert json.loads((await sent.value).post_data or "{}")["payment"] == {"token": "tok_threeDSecure"}
    step = await (await stepped.value).json()
    assert step["status"] == "pending" and step["next_action"]["type"] == "redirect_to_url"

    await expect(page.get_by_role("heading", name="Almost done")).to_be_visible()
    async with page.context.expect_page() as opened:
        await page.get_by_role("link", name="Confirm payment with your bank").click()
    bank = await opened.value
    async with bank.expect_response(lambda r: r.request.method == "POST") as answered:
        await bank.get_by_role("button", name="Confirm payment").click()
    assert (await answered.value).status == 200
    await bank.wait_for_load_state()
    await expect(page.locator(".order-status")).to_have_text("Paid", timeout=15_000)
    assert (await confirmed_order(page, live_shop))["status"] == "paid"
