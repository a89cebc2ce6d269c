"""The control panel in Chromium: a staff member signs in, watches the dashboard chart traffic this test made,
finds one of its requests by id and opens it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import STAFF_PASSWORD, LiveShop, staff_account

PASSWORD = STAFF_PASSWORD
Screenshot = Callable[[Any, str], Awaitable[Path]]


async def _traffic(shop: LiveShop) -> str:
    """Eight catalogue searches and three misses; the id of the last miss."""
    marker = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=shop.url, timeout=10) as client:
        for _ in range(8):
            assert (await client.get("/api/v1/products", params={"q": marker, "limit": 1})).status_code == 200
        for _ in range(3):
            missing = await client.get(f"/api/v1/products/no-such-{marker}")
            assert missing.status_code == 404
    request_id: str = missing.headers["x-request-id"]
    return request_id


async def _chart_total(page: Page, chart: str, column: int) -> float:
    total: float = await page.evaluate(
        """([chart, column]) => {
             const el = document.querySelector(`[data-chart="${chart}"]`);
             return el && el.uplot ? el.uplot.data[column].reduce((a, v) => a + (v || 0), 0) : -1;
           }""", [chart, column])
    return total


async def test_staff_watch_their_traffic_and_open_one_request(page: Page, live_shop: LiveShop,
                                                              screenshot: Screenshot) -> None:
    email = await staff_account(live_shop)
    request_id = await _traffic(live_shop)

    await page.goto(f"{live_shop.url}/admin/")
    await expect(page).to_have_url(f"{live_shop.url}/account/login?next=/admin/")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button.primary")
    await expect(page).to_have_url(f"{live_shop.url}/admin/")

    # the page polls the figures; the chart and the tables fill with what this test just did
    await expect(page.locator("#usage")).to_have_attribute("data-updates", "1", timeout=15_000)
    searches = page.locator('[data-rows="routes"] tr', has_text="GET /api/v1/products").first
    await expect(searches).to_be_visible()
    assert int(await searches.locator("td").nth(1).inner_text()) >= 8
    assert int(await page.locator('[data-figure="requests"]').inner_text()) >= 11
    points = await page.evaluate("() => document.querySelector('[data-chart=\"traffic\"]').uplot.data[0].length")
    assert points in (60, 61)  # the last hour, a point a minute
    assert await _chart_total(page, "traffic", 1) > 0
    assert await _chart_total(page, "latency", 2) > 0  # p95 drawn for the buckets with requests
    assert await page.locator('[data-chart="traffic"] canvas').count() == 1
    assert await page.locator('[data-rows="workers"] tr:not(.empty)').count() >= 1  # the shop's own workers
    await screenshot(page, "admin-dashboard")

    # one route: its misses show up as 4xx in the error chart
    await page.fill("#route", "GET /api/v1/products/{slug}")
    await page.select_option("#range", "15m")
    await page.click("form.toolbar button[type=submit]")
    await expect(page.locator(".route-name")).to_have_text("GET /api/v1/products/{slug}")
    await expect(page.locator("#usage")).to_have_attribute("data-updates", "1", timeout=15_000)
    assert int(await page.locator('[data-figure="requests"]').inner_text()) >= 3
    assert await _chart_total(page, "errors", 2) > 0  # the 4xx share, in percent per bucket
    await screenshot(page, "admin-dashboard-route")

    await page.click('nav[aria-label="Control panel"] >> text=Requests')
    await page.fill("#f-id", request_id)
    await page.click("form.toolbar button.primary")
    rows = page.locator("table.requests tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("/api/v1/products/no-such-")
    await expect(rows.first).to_contain_text("404")
    await screenshot(page, "admin-requests")
    await rows.first.locator(f'a[data-request-id="{request_id}"]').click()
    await expect(page.locator('[data-field="id"]')).to_have_text(request_id)
    await expect(page.locator('[data-field="status"]')).to_have_text("404")
    await expect(page.locator("h1")).to_contain_text("GET /api/v1/products/no-such-")
    await screenshot(page, "admin-request")
