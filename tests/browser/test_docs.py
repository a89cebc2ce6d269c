"""The API's page in Chromium: Swagger UI from the shop itself, under the shop's Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveShop

Screenshot = Callable[[Any, str], Awaitable[Path]]


async def test_the_api_page_renders_every_route_under_the_shops_policy(live_shop: LiveShop, page: Page,
                                                                       screenshot: Screenshot) -> None:
    loaded: list[str] = []
    page.on("request", lambda request: loaded.append(request.url))
    answer = await page.goto(f"{live_shop.url}/docs")
    assert answer is not None and answer.status == 200
    policy = await answer.header_value("content-security-policy")
    assert policy is not None and "script-src 'self'" in policy and "unsafe-inline" not in policy
    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() > 20  # every route of the document
    await expect(page.locator(".opblock-summary-path", has_text="/api/v1/checkout").first).to_be_visible()
    assert all(url.startswith(live_shop.url) for url in loaded), [u for u in loaded if live_shop.url not in u]
    await screenshot(page, "api-docs")


async def test_the_api_page_has_no_inline_script_and_pins_what_it_loads(live_shop: LiveShop) -> None:
    async with httpx.AsyncClient(base_url=live_shop.url) as client:
        html = (await client.get("/docs")).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all('src="' in attrs and 'integrity="sha384-' in attrs and not body.strip()
                               for attrs, body in scripts)
        for src in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert (await client.get(src)).status_code == 200, src
