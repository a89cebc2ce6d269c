"""The backup storefront (/app/ and its exported copy) in real Chromium against a running shop: a guest browses,
fills a cart and pays; declined cards, the bank's confirmation and the shop's field errors reach the page; the
page shows the API's money and never works any out."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from shop.web import spa_site
from tests.browser.conftest import LiveShop

Screenshot = Callable[[Page, str], Awaitable[Path]]
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]""", re.M)


async def buyable_product(shop: LiveShop, *, skip: int = 0) -> dict[str, Any]:
    """A product on the first page of the catalogue whose preselected variant has plenty of stock."""
    async with httpx.AsyncClient(base_url=shop.url) as client:
        listed = (await client.get("/api/v1/products", params={"limit": 24})).json()["items"]
        found = []
        for card in listed:
            product = (await client.get(f"/api/v1/products/{card['slug']}")).json()
            first = next((v for v in product["variants"] if v["in_stock"]), None)
            if first is not None and first["available"] >= 10:
                found.append({**product, "variant": first})
            if len(found) > skip:
                return found[skip]
    raise AssertionError("the demo catalogue has no product with ten units of one variant on its first page")


async def api_json(shop: LiveShop, path: str, **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=shop.url) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(page: Page, key: str) -> Any:
    return await page.evaluate("(key) => JSON.parse(localStorage.getItem(key))", key)


async def add_to_cart(page: Page, app_url: str, slug: str, quantity: int = 1) -> None:
    await page.goto(f"{app_url}#/product/{slug}")
    await page.get_by_label("Quantity").fill(str(quantity))
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_text("Added to your cart")).to_be_visible()


async def fill_checkout(page: Page, *, card: str, postal_code: str = "10115") -> None:
    await page.get_by_label("E-mail address").fill("ada@example.com")
    await page.get_by_label("Full name").fill("Ada Lovelace")
    await page.get_by_label("Street and number").fill("Hauptstraße 1")
    await page.get_by_label("Postcode").fill(postal_code)
    await page.get_by_label("Town or city").fill("Berlin")
    await page.get_by_label("Country").select_option("DE")
    await page.get_by_label("Standard delivery").check()
    await page.get_by_label(card).check()


async def expect_money(page: Page, selector: str, money: dict[str, str]) -> None:
    """The page shows exactly the API's amount: in the <data> value, and in the text people read."""
    shown = page.locator(selector).first
    await expect(shown).to_have_attribute("value", money["amount"])
    await expect(shown).to_have_attribute("data-currency", money["currency"])
    assert money["amount"] in (await shown.inner_text()).replace(",", "")


async def confirmed_order(page: Page, shop: LiveShop) -> dict[str, Any]:
    """The order the confirmation page shows, read back from the API with the key the page kept."""
    await expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    number = (await page.locator(".order-number").inner_text()).strip()
    kept = await stored(page, "shop.orders")
    assert kept[0]["number"] == number
    order = await api_json(shop, f"/api/v1/orders/{number}", **{"X-Order-Key": kept[0]["key"]})
    await expect_money(page, "data.order-total", order["totals"]["total"])
    return order


# serving and configuration, no browser


async def test_the_spa_is_served_with_its_policy_and_cache_headers(live_shop: LiveShop) -> None:
    async with httpx.AsyncClient(base_url=live_shop.url) as client:
        bare = await client.get("/app")
        assert bare.status_code == 308 and bare.headers["location"] == "/app/"
        index = await client.get("/app/")
        assert index.status_code == 200 and index.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert (await client.get("/app/index.html")).content == index.content
        assert (await client.head("/app/")).status_code == 200
        again = await client.get("/app/", headers={"If-None-Match": index.headers["etag"]})
        assert again.status_code == 304

        assets = re.findall(r'(?:href|src)="\./(assets/[0-9a-f]{12})/([^"]+)"', index.text)
        assert {name for _, name in assets} >= {"styles.css", "app.js"}
        base = assets[0][0]
        modules, seen = ["app.js"], set()
        while modules:  # every module the page imports, followed from app.js
            name = modules.pop()
            seen.add(name)
            response = await client.get(f"/app/{base}/{name}")
            assert response.status_code == 200, name
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.headers["content-type"].startswith("text/javascript")
            for target in IMPORT.findall(response.text):
                assert target.startswith("./") or target.startswith("../"), f"{name} imports {target}"
                resolved = str(Path(name).parent / target).removeprefix("./")
                if resolved not in seen:
                    modules.append(str(Path(resolved)))
        assert "vendor/htm-preact-standalone-3.1.1.module.js" in seen

        css = await client.get(f"/app/{base}/styles.css")
        assert css.headers["content-type"].startswith("text/css")
        stale = await client.get("/app/assets/000000000000/app.js")
        assert stale.status_code == 404 and stale.headers["content-type"] == "application/problem+json"


async def test_the_api_lets_the_configured_origin_in_and_no_other(live_shop: LiveShop) -> None:
    asked = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,idempotency-key,x-order-key,authorization"}
    async with httpx.AsyncClient(base_url=live_shop.url) as client:
        allowed = await client.options("/api/v1/checkout", headers={"Origin": live_shop.spa_origin, **asked})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == live_shop.spa_origin
        refused = await client.options("/api/v1/checkout", headers={"Origin": "http://evil.example", **asked})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        listed = await client.get("/api/v1/products", params={"limit": 1}, headers={"Origin": live_shop.spa_origin})
        assert listed.headers["access-control-allow-origin"] == live_shop.spa_origin
        assert "idempotent-replayed" in listed.headers["access-control-expose-headers"].lower()


def test_export_writes_a_folder_that_needs_nothing_else(tmp_path: Path) -> None:
    written = spa_site.export_spa(tmp_path / "site", api_url="https://api.shop.example/")
    index = (tmp_path / "site" / "index.html").read_text()
    assert '<meta name="shop-api-url" content="https://api.shop.example">' in index
    assert "connect-src &#x27;self&#x27; https://api.shop.example" in index
    names = {p.relative_to(tmp_path / "site").as_posix() for p in written}
    version = spa_site.bundle().version
    assert {"index.html", f"assets/{version}/app.js", f"assets/{version}/styles.css",
            f"assets/{version}/vendor/htm-preact-standalone-3.1.1.module.js"} <= names
    for path in written:
        if path.suffix == ".js":
            for target in IMPORT.findall(path.read_text()):
                assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}, not exported"

    for bad in ("api.shop.example", "ftp://api.shop.example", "https://api.shop.example/?x=1", "https://"):
        with pytest.raises(ValueError, match="API URL"):
            spa_site.export_spa(tmp_path / "nope", api_url=bad)
    with pytest.raises(ValueError, match="CORS origin"):
        spa_site.cors_middleware_kwargs(["https://shop.example/app"])


# buying in the browser


async def test_a_guest_buys_a_product_from_the_home_page(live_shop: LiveShop, page: Page,
                                                         screenshot: Screenshot) -> None:
    product = await buyable_product(live_shop)
    app = f"{live_shop.url}/app/"
    await page.goto(app)
    await expect(page.get_by_role("heading", name="All products")).to_be_visible()
    await expect(page.locator(".grid img").first).to_have_js_property("complete", True)
    await screenshot(page, "spa-home")

    await page.get_by_role("link", name=product["title"], exact=True).first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(product["title"])
    await expect_money(page, ".product__price data", product["variant"]["price"])
    await expect(page.locator("#stock")).to_contain_text(f"{product['variant']['available']} available")
    await screenshot(page, "spa-product")

    await page.get_by_label("Quantity").fill("2")
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_role("link", name="Cart, 2 items")).to_be_visible()
    await page.get_by_role("link", name="Cart, 2 items").click()

    await expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
    cart = await api_json(live_shop, f"/api/v1/carts/{await stored(page, 'shop.cart')}")
    assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(product["variant"]["sku"], 2)]
    await expect_money(page, ".line__total data", cart["items"][0]["total"])
    await expect_money(page, "data.cart-subtotal", cart["subtotal"])
    await screenshot(page, "spa-cart")

    await page.get_by_role("link", name="Go to checkout").click()
    await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    await fill_checkout(page, card="Visa test card")
    await screenshot(page, "spa-checkout")
    await page.get_by_role("button", name="Place order and pay").click()

    order = await confirmed_order(page, live_shop)
    assert order["status"] == "paid" and order["items"][0]["quantity"] == 2
    await expect(page.locator(".order-status")).to_have_text("Paid")
    await expect(page.get_by_role("link", name="Cart, 0 items")).to_be_visible()
    assert await stored(page, "shop.cart") is None
    await screenshot(page, "spa-order")


async def test_a_declined_card_is_explained_and_the_cart_still_works(live_shop: LiveShop, page: Page,
                                                                     screenshot: Screenshot) -> None:
    product = await buyable_product(live_shop, skip=1)
    app = f"{live_shop.url}/app/"
    await add_to_cart(page, app, product["slug"], quantity=2)
    await page.goto(f"{app}#/checkout")
    await fill_checkout(page, card="Test card that is declined")
    await page.get_by_role("button", name="Place order and pay").click()

    summary = page.locator(".error-summary")
    await expect(summary).to_contain_text("Your payment was declined")
    await expect(summary).to_contain_text("The card was declined.")
    await expect(summary).to_be_focused()
    await expect(page.locator("#checkout-card-error")).to_have_text("The card was declined.")
    await screenshot(page, "spa-declined")
    cart_id = await stored(page, "shop.cart")
    assert (await api_json(live_shop, f"/api/v1/carts/{cart_id}"))["status"] == "open"

    await page.get_by_role("link", name="Change your cart").click()
    await page.get_by_label(f"Quantity of {product['title']}").fill("1")
    await page.get_by_role("button", name="Update").click()
    await expect(page.get_by_role("link", name="Cart, 1 item")).to_be_visible()
    cart = await api_json(live_shop, f"/api/v1/carts/{cart_id}")
    await expect_money(page, "data.cart-subtotal", cart["subtotal"])

    await page.get_by_role("link", name="Go to checkout").click()
    await expect(page.get_by_label("Full name")).to_have_value("Ada Lovelace")  # kept for the retry
    await page.get_by_label("Visa test card").check()
    await page.get_by_role("button", name="Place order and pay").click()
    order = await confirmed_order(page, live_shop)
    assert [(i["sku"], i["quantity"]) for i in order["items"]] == [(product["variant"]["sku"], 1)]


async def test_the_shops_field_errors_are_shown_beside_the_fields(live_shop: LiveShop, page: Page) -> None:
    product = await buyable_product(live_shop, skip=2)
    app = f"{live_shop.url}/app/"
    await add_to_cart(page, app, product["slug"])
    await page.goto(f"{app}#/checkout")
    await fill_checkout(page, card="Visa test card", postal_code="10115!")
    await page.get_by_role("button", name="Place order and pay").click()

    await expect(page.locator(".error-summary")).to_contain_text("Please check your details")
    postcode = page.get_by_label("Postcode")
    await expect(postcode).to_have_attribute("aria-invalid", "true")
    error = page.locator("#checkout-postal_code-error")
    await expect(error).to_contain_text("letters, digits, spaces and '-' only")
    assert "checkout-postal_code-error" in (await postcode.get_attribute("aria-describedby") or "")
    await page.locator(".error-summary a", has_text="letters, digits").click()
    await expect(postcode).to_be_focused()

    await postcode.fill("10115")
    await page.get_by_role("button", name="Place order and pay").click()
    await confirmed_order(page, live_shop)


async def test_a_payment_the_bank_must_confirm_completes_after_the_banks_page(live_shop: LiveShop, page: Page,
                                                                               screenshot: Screenshot) -> None:
    product = await buyable_product(live_shop, skip=3)
    app = f"{live_shop.url}/app/"
    await add_to_cart(page, app, product["slug"])
    await page.goto(f"{app}#/checkout")
    await fill_checkout(page, card="asks the bank to confirm")
    await page.get_by_role("button", name="Place order and pay").click()

    await expect(page.get_by_role("heading", name="Almost done")).to_be_visible()
    await expect(page.locator(".order-status")).to_have_text("Waiting for payment")
    await screenshot(page, "spa-3ds-pending")
    async with page.context.expect_page() as opened:
        await page.get_by_role("link", name="Confirm payment with your bank").click()
    bank = await opened.value
    async with bank.expect_response(lambda r: r.request.method == "POST") as answered:
        await bank.get_by_role("button", name="Confirm payment").click()
    assert (await answered.value).status == 200
    # the bank's tab stays open (the context closes it): closing a tab while its form's answer is still being
    # committed can hang Chromium's close for good
    await bank.wait_for_load_state()

    # the page asks the shop again every two seconds while the payment is pending
    await expect(page.locator(".order-status")).to_have_text("Paid", timeout=15_000)
    order = await confirmed_order(page, live_shop)
    assert order["status"] == "paid"


async def test_the_shop_works_from_the_keyboard(live_shop: LiveShop, page: Page) -> None:
    product = await buyable_product(live_shop)
    await page.goto(f"{live_shop.url}/app/#/product/{product['slug']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(product["title"])
    for landmark in (page.get_by_role("banner"), page.get_by_role("main"), page.get_by_role("contentinfo"),
                     page.get_by_role("search"), page.get_by_role("navigation", name="Categories"),
                     page.get_by_role("navigation", name="Breadcrumb")):
        await expect(landmark).to_have_count(1)

    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    assert await skip.evaluate("e => e.getBoundingClientRect().top >= 0")  # shown when focused
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("main")).to_be_focused()

    button = page.get_by_role("button", name="Add to cart")
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await button.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Add to cart button")
    outline = await button.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none", "the focused button has no visible focus ring"
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Added to your cart")).to_be_visible()


async def test_the_exported_folder_buys_from_another_origin(live_shop: LiveShop, page: Page,
                                                            static_host: tuple[Path, str],
                                                            screenshot: Screenshot) -> None:
    folder, site = static_host
    spa_site.export_spa(folder, api_url=live_shop.url)
    product = await buyable_product(live_shop, skip=4)

    await page.goto(site)
    await expect(page.get_by_role("heading", name="All products")).to_be_visible()
    picture = page.locator(".grid img").first
    await expect(picture).to_have_js_property("complete", True)
    assert await picture.evaluate("img => img.naturalWidth") > 0  # pictures come from the API's origin
    assert (await picture.get_attribute("src") or "").startswith(f"{live_shop.url}/media/")

    await add_to_cart(page, site, product["slug"])
    await page.goto(f"{site}#/checkout")
    await fill_checkout(page, card="Visa test card")
    await page.get_by_role("button", name="Place order and pay").click()
    order = await confirmed_order(page, live_shop)
    assert page.url.startswith(site) and order["status"] == "paid"
    await screenshot(page, "spa-exported-order")
