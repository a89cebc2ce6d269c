"""The main (server-rendered) storefront in real Chromium against a running shop: a guest finds a product,
fills a cart, pays, and sees the order; the bank's confirmation step and field errors reach the page."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from shop.bootstrap import build_commerce, build_databases
from shop.domain.orders import Order
from tests.browser.conftest import LiveShop
from tests.browser.test_spa import buyable_product

Screenshot = Callable[[Page, str], Awaitable[Path]]


async def _fill_address(page: Page, email: str = "guest@example.com") -> None:
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Full name").fill("Ada Lovelace")
    await page.get_by_label("Street and number").fill("Hauptstraße 1")
    await page.get_by_label("Postal code").fill("10115")
    await page.get_by_label("City").fill("Berlin")
    await page.get_by_label("Country code (e.g. DE)").fill("DE")


async def _stored_order(shop: LiveShop, number: str) -> Order:
    databases = build_databases(shop.settings)
    try:
        order = await build_commerce(shop.settings, databases).orders.order_for(number, staff=True)
    finally:
        await databases.dispose()
    return order


async def test_a_guest_buys_a_product_on_the_main_shop(page: Page, live_shop: LiveShop,
                                                       screenshot: Screenshot) -> None:
    product = await buyable_product(live_shop, skip=2)
    await page.goto(f"{live_shop.url}/")
    await expect(page.get_by_role("heading", name="New in")).to_be_visible()
    await screenshot(page, "ssr-home")

    await page.get_by_role("searchbox", name="Search products").fill(product["title"])
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=re.compile(re.escape(product["title"]))).first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(product["title"])
    await screenshot(page, "ssr-product")
    await page.get_by_label("Quantity").fill("2")
    await page.get_by_role("button", name="Add to cart").click()

    await expect(page).to_have_url(f"{live_shop.url}/cart")
    await expect(page.locator("table.lines tbody tr")).to_have_count(1)
    await screenshot(page, "ssr-cart")
    await page.get_by_role("link", name="Check out").click()

    await _fill_address(page)
    await page.get_by_label(re.compile("Country code")).fill("D1")
    await page.get_by_role("button", name="Place order and pay").click()
    await expect(page.locator("#country-error")).to_contain_text("two-letter")
    await _fill_address(page)
    await page.get_by_label(re.compile("4242")).check()
    await screenshot(page, "ssr-checkout")
    await page.get_by_role("button", name="Place order and pay").click()

    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "paid")
    number = page.url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=live_shop.url) as client:  # without the visitor's session: not found
        assert (await client.get(f"/api/v1/orders/{number}")).status_code == 404
        assert (await client.get(f"/order/{number}")).status_code == 404
    total = await page.locator("#order-total").inner_text()
    await screenshot(page, "ssr-order")
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert "Thank you" in heading
    stored = await _stored_order(live_shop, number)  # what the domain computed and the database kept
    assert total == f"€{stored.totals.total.amount}" and stored.lines[0].quantity == 2


async def test_a_declined_card_and_the_banks_confirmation_on_the_main_shop(page: Page, live_shop: LiveShop) -> None:
    product = await buyable_product(live_shop, skip=3)
    await page.goto(f"{live_shop.url}/p/{product['slug']}")
    await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()
    await _fill_address(page)
    await page.get_by_label(re.compile("declined")).check()
    await page.get_by_role("button", name="Place order and pay").click()
    await expect(page.locator("#token-error")).to_contain_text("declined")

    await page.get_by_label(re.compile("asks the bank")).check()
    await page.get_by_role("button", name="Place order and pay").click()
    await expect(page.get_by_role("heading", name="Test bank")).to_be_visible()
    await page.get_by_role("button", name="Confirm payment").click()
    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "paid")


async def _mailed_link(shop: LiveShop, to: str, page_path: str, *, seconds: float = 20) -> str:
    """The link in the newest e-mail to `to` that the worker delivered to the test SMTP server."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        for received in reversed(shop.inbox.received):
            if to in received.rcpt_tos:
                body = received.message.get_body(preferencelist=("plain",))
                assert body is not None
                found = re.search(rf"{re.escape(shop.url)}{page_path}\?token=\S+", body.get_content())
                if found:
                    return found.group(0)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no e-mail with a {page_path} link reached {to} within {seconds} s")


async def test_a_customer_registers_verifies_their_address_buys_and_sees_the_order(
        page: Page, live_shop: LiveShop, screenshot: Screenshot) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(f"{live_shop.url}/account/register")
    await page.get_by_label("Name").fill("Ada Lovelace")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label(re.compile("^Password")).fill("analytical-engine-1843")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("please confirm your e-mail address")).to_be_visible()

    link = await _mailed_link(live_shop, email, "/account/verify-email")
    await page.goto(link)
    await page.get_by_role("button", name="Confirm my e-mail address").click()
    await expect(page.get_by_text("your address is confirmed")).to_be_visible()

    product = await buyable_product(live_shop, skip=4)
    await page.goto(f"{live_shop.url}/p/{product['slug']}")
    await page.get_by_role("button", name="Add to cart").click()
    await page.get_by_role("link", name="Check out").click()
    await expect(page.get_by_label("E-mail")).to_have_value(email)
    await _fill_address(page, email)
    await page.get_by_role("button", name="Place order and pay").click()
    await expect(page.locator("[data-status]")).to_have_attribute("data-status", "paid")
    number = page.url.rsplit("/", 1)[1]

    await page.goto(f"{live_shop.url}/account")
    await expect(page.get_by_role("link", name=number)).to_be_visible()
    await expect(page.get_by_text("please confirm")).to_have_count(0)
    await screenshot(page, "ssr-account")
    confirmation = await _mailed_subject(live_shop, email, number)
    assert number in confirmation


async def _mailed_subject(shop: LiveShop, to: str, needle: str, *, seconds: float = 20) -> str:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        for received in reversed(shop.inbox.received):
            if to in received.rcpt_tos and needle in str(received.message["Subject"]):
                return str(received.message["Subject"])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no e-mail about {needle} reached {to} within {seconds} s")
