"""The server-rendered shop over HTTP (no browser): pages render from the domain, forms need the CSRF token,
the session cookie is HttpOnly and SameSite=Lax and changes at sign-in, and a guest can buy."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest_asyncio

from shop.config import Settings
from shop.domain.users import Role
from tests.conftest import open_client
from tests.e2e.shopping import PASSWORD, new_product, signed_in, stock_of


@pytest_asyncio.fixture
async def staff(client: httpx.AsyncClient, demo_settings: Settings) -> dict[str, str]:
    return (await signed_in(client, demo_settings, Role.STAFF))[1]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


async def test_pages_render_with_security_headers(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.status_code == 200 and "text/html" in home.headers["content-type"]
    csp = home.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert home.headers["x-content-type-options"] == "nosniff" and home.headers["referrer-policy"]
    css = re.search(r'href="(/static/css/shop\.[0-9a-f]{10}\.css)"', home.text)
    assert css, "the stylesheet has a content-hashed name"
    sheet = await client.get(css.group(1))
    assert sheet.status_code == 200 and "immutable" in sheet.headers["cache-control"]
    category = re.search(r'href="/c/([a-z0-9-]+)"', home.text)
    assert category
    listing = await client.get(f"/c/{category.group(1)}?sort=price&in_stock=1")
    assert listing.status_code == 200 and "product" in listing.text
    assert (await client.get("/c/no-such-category")).status_code == 404
    missing = await client.get("/p/no-such-product")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "Not found" in missing.text
    api_missing = await client.get("/api/v1/products/no-such-product")
    assert api_missing.headers["content-type"] == "application/problem+json"


async def test_search_marks_the_words_found(client: httpx.AsyncClient) -> None:
    found = await client.get("/search", params={"q": "linen"})
    assert found.status_code == 200
    assert re.search(r"<mark>linen</mark>", found.text, re.IGNORECASE)
    hostile = await client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in hostile.text


async def test_a_guest_buys_through_the_pages(client: httpx.AsyncClient, demo_settings: Settings,
                                              staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=3, price="15.00")
    found = (await client.get("/api/v1/products", params={"q": sku.lower()})).json()
    product = await client.get(f"/p/{next(i['slug'] for i in found['items'])}")
    assert product.status_code == 200 and "€15.00" in product.text and "Only 3 left" in product.text
    token = _csrf(product.text)

    forged = await client.post("/cart/add", data={"sku": sku, "quantity": "1", "csrf": "0" * 64})
    assert forged.status_code == 403 and "text/html" in forged.headers["content-type"]

    added = await client.post("/cart/add", data={"sku": sku, "quantity": "2", "csrf": token})
    assert added.status_code == 303 and added.headers["location"] == "/cart"
    cookie = added.headers["set-cookie"].lower()
    assert "shop_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    cart = await client.get("/cart")
    assert "€30.00" in cart.text

    page = await client.get("/checkout")
    bad = await client.post("/checkout", data={
        "csrf": _csrf(page.text), "email": "buyer@example.com", "name": "Ada", "line1": "Main St 1",
        "postal_code": "", "city": "Berlin", "country": "Germany", "shipping_method": "standard",
        "token": "tok_visa"})
    assert bad.status_code == 422
    assert 'id="country-error"' in bad.text or 'id="postal_code-error"' in bad.text
    assert (await stock_of(demo_settings, sku)).reserved == 0

    placed = await client.post("/checkout", data={
        "csrf": _csrf(page.text), "email": "buyer@example.com", "name": "Ada", "line1": "Main St 1",
        "postal_code": "10115", "city": "Berlin", "country": "DE", "shipping_method": "standard",
        "token": "tok_visa"})
    assert placed.status_code == 303, placed.text
    number = placed.headers["location"].rsplit("/", 1)[1]
    order = await client.get(placed.headers["location"])
    assert order.status_code == 200 and number in order.text and 'data-status="paid"' in order.text
    assert "€34.90" in order.text  # 30.00 of goods + 4.90 shipping, VAT included
    assert (await stock_of(demo_settings, sku)).on_hand == 1
    stranger = await httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)).get(
        f"/order/{number}")
    assert stranger.status_code == 404


async def test_signing_in_changes_the_session_and_signing_out_ends_it(client: httpx.AsyncClient,
                                                                      demo_settings: Settings) -> None:
    email, _ = await signed_in(client, demo_settings)
    page = await client.get("/account/login")
    token = _csrf(page.text)
    wrong = await client.post("/account/login", data={"csrf": token, "email": email, "password": "nope-nope-nope"})
    assert wrong.status_code == 401 and "password is wrong" in wrong.text
    before = client.cookies.get("shop_session")
    ok = await client.post("/account/login", data={"csrf": token, "email": email, "password": PASSWORD,
                                                   "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["location"] == "/account"
    after = client.cookies.get("shop_session")
    assert after and after != before
    account = await client.get("/account")
    assert email in account.text
    out = await client.post("/account/logout", data={"csrf": token})
    assert out.status_code == 303
    client.cookies.set("shop_session", after)  # an old cookie no longer signs anyone in
    again = await client.get("/account")
    assert again.status_code == 303 and again.headers["location"].startswith("/account/login")


async def test_a_customer_verifies_their_phone_number_on_the_pages(demo_settings: Settings, tmp_path: Path) -> None:
    settings = demo_settings.model_copy(update={"var_dir": tmp_path, "response_cache": False})
    async for client in open_client(settings):
        email, _ = await signed_in(client, settings)
        login = await client.get("/account/login")
        await client.post("/account/login", data={"csrf": _csrf(login.text), "email": email, "password": PASSWORD})
        page = await client.get("/account/phone")
        token = _csrf(page.text)
        bad = await client.post("/account/phone", data={"csrf": token, "phone": "12"})
        assert bad.status_code == 422 and 'role="alert"' in bad.text
        sent = await client.post("/account/phone", data={"csrf": token, "phone": "+49 151 23456789"})
        assert sent.status_code == 200 and "+4915123456789" in sent.text
        text = "\n".join(p.read_text() for p in (tmp_path / "sms").rglob("*") if p.is_file())
        code = re.search(r"(\d{6}) is your", text)
        assert code, text
        wrong = await client.post("/account/phone/verify", data={"csrf": token, "code": "000000"
                                                                 if code.group(1) != "000000" else "111111"})
        assert wrong.status_code == 422 and "wrong" in wrong.text
        done = await client.post("/account/phone/verify", data={"csrf": token, "code": code.group(1)})
        assert done.status_code == 200 and "verified" in done.text, (text, re.findall(r"error[^<]*<", done.text))
        assert "Verified: +4915123456789" in (await client.get("/account/phone")).text



async def test_a_password_reset_signs_the_customer_out_of_the_shop_everywhere(client: httpx.AsyncClient,
                                                                              demo_settings: Settings) -> None:
    from sqlalchemy import select

    from shop.bootstrap import build_databases
    from shop.infrastructure.db.main.tables import outbox

    email, _ = await signed_in(client, demo_settings)
    login = await client.get("/account/login")
    await client.post("/account/login", data={"csrf": _csrf(login.text), "email": email, "password": PASSWORD})
    assert (await client.get("/account")).status_code == 200

    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    page = await other.get("/account/password-reset")
    asked = await other.post("/account/password-reset", data={"csrf": _csrf(page.text), "email": email})
    assert asked.status_code == 200 and "on its way" in asked.text
    databases = build_databases(demo_settings)
    try:
        async with databases.store("main").read() as conn:
            mails = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "email")
                                        .order_by(outbox.c.id.desc()).limit(20))).scalars().all()
    finally:
        await databases.dispose()
    text = next(m["text"] for m in mails if email in m["to"])
    token = re.search(r"/account/password-reset\?token=(\S+)", text)
    assert token, text
    form = await other.get(f"/account/password-reset?token={token.group(1)}")
    done = await other.post("/account/password-reset/confirm", data={
        "csrf": _csrf(form.text), "token": token.group(1), "password": "a-brand-new-password-1"})
    assert done.status_code == 303

    after = await client.get("/account")  # the first browser's session ended with the reset
    assert after.status_code == 303 and after.headers["location"].startswith("/account/login")


async def test_with_a_cdn_both_storefronts_load_their_files_from_jsdelivr_with_integrity(
        demo_settings: Settings) -> None:
    import base64
    import hashlib

    from shop.web.assets import STATIC
    from shop.web.spa_site import SPA_DIR

    def sri(path: Path) -> str:
        return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()

    root = "https://cdn.jsdelivr.net/gh/acme/shop@v1.2.3"
    settings = demo_settings.model_copy(update={"assets_cdn": "gh:acme/shop@v1.2.3", "response_cache": False})
    async for client in open_client(settings):
        home = await client.get("/")
        css = f'href="{root}/src/shop/web/static/css/shop.css" integrity="{sri(STATIC / "css" / "shop.css")}"'
        assert css in home.text and 'crossorigin="anonymous"' in home.text
        assert "https://cdn.jsdelivr.net" in home.headers["content-security-policy"].split("script-src")[1]
        spa = await client.get("/app/")
        assert f'src="{root}/src/shop/web/spa/app.js"' in spa.text
        assert f'integrity="{sri(SPA_DIR / "app.js")}"' in spa.text
        assert "https://cdn.jsdelivr.net" in spa.headers["content-security-policy"]
    async for client in open_client(demo_settings.model_copy(update={"response_cache": False})):
        local = await client.get("/app/")  # no CDN: the shop's own versioned copies, nothing from elsewhere
        assert "jsdelivr" not in local.text and "./assets/" in local.text


async def test_over_https_the_session_and_csrf_cookies_carry_the_host_prefix(client: httpx.AsyncClient,
                                                                              demo_settings: Settings,
                                                                              staff: dict[str, str]) -> None:
    sku = await new_product(client, staff, stock=3, price="21.00")
    found = (await client.get("/api/v1/products", params={"q": sku.lower()})).json()
    page = await client.get(f"https://shop.test/p/{found['items'][0]['slug']}")
    set_cookies = [v.lower() for k, v in page.headers.multi_items() if k == "set-cookie"]
    csrf = next(c for c in set_cookies if c.startswith("__host-shop_csrf="))
    assert "secure" in csrf and "path=/" in csrf and "domain=" not in csrf
    added = await client.post("https://shop.test/cart/add", data={"sku": sku, "quantity": "1",
                                                                   "csrf": _csrf(page.text)})
    assert added.status_code == 303
    session = added.headers["set-cookie"].lower()
    assert session.startswith("__host-shop_session=") and "secure" in session and "domain=" not in session
    assert "€21.00" in (await client.get("https://shop.test/cart")).text
    # the same session id in a cookie without the prefix (planted by a sibling subdomain, or over plain HTTP)
    # names no session over HTTPS
    session_id = client.cookies.get("__Host-shop_session")
    client.cookies.clear()
    client.cookies.set("shop_session", session_id or "", domain="shop.test")
    assert "€21.00" not in (await client.get("https://shop.test/cart")).text
