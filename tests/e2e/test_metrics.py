"""/metrics: real traffic counted by route, method and status, business counters, who may scrape, and the sum
across two gunicorn workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop.config import Settings
from shop.domain.users import Role
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in
from tests.e2e.test_request_log import OUTSIDER, logged_settings, serving
from tests.e2e.test_serve import start_serve, stop_serve

DETAIL = "/api/v1/products/{slug}"


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, frozenset(labels.items())), 0.0)


async def test_real_traffic_is_counted_by_route_method_and_status(demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path, response_cache=False)
    async with serving(settings) as client:
        before = (await client.get("/metrics")).text
        slug = (await client.get("/api/v1/products", params={"limit": 1})).json()["items"][0]["slug"]
        for _ in range(3):
            assert (await client.get(f"/api/v1/products/{slug}")).status_code == 200
        assert (await client.get("/api/v1/products/no-such-product-here")).status_code == 404
        assert (await client.get("/nowhere")).status_code == 404
        after = (await client.get("/metrics")).text
    ok = {"method": "GET", "route": DETAIL, "status": "200"}

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("shop_http_requests_total", **ok) == 3
    assert grew("shop_http_request_duration_seconds_count", **ok) == 3
    assert grew("shop_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert grew("shop_http_requests_total", method="GET", route=DETAIL, status="404") == 1
    assert grew("shop_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(after, "shop_http_requests_in_flight") == 1  # the scrape itself
    assert ("shop_db_pool_checked_out", frozenset({("store", "main")})) in samples(after)
    assert value(after, "shop_outbox_pending_jobs", kind="email") >= 0
    assert "# TYPE shop_outbox_pending_jobs gauge" in after and "shop_request_log_dropped_total" in after


async def test_checkouts_feed_the_business_counters(demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path, response_cache=False)
    async with serving(settings) as client:
        _, staff = await signed_in(client, settings, Role.STAFF)
        sku = await new_product(client, staff, stock=5, price="12.34")
        before = (await client.get("/metrics")).text
        paid = await client.post("/api/v1/checkout", json=checkout_body(await new_cart(client, items={sku: 2})))
        declined = await client.post("/api/v1/checkout", json=checkout_body(
            await new_cart(client, items={sku: 1}), token="tok_chargeDeclined"))
        # paid later, when the bank's event arrives (the webhook path, not the checkout request)
        waiting = await client.post("/api/v1/checkout", json=checkout_body(
            await new_cart(client, items={sku: 1}), token="tok_threeDSecure"))
        assert waiting.status_code == 202
        confirmed = await client.post(httpx.URL(waiting.json()["payment"]["action_url"]).path)
        assert confirmed.status_code == 200 and confirmed.json()["applied"] is True
        after = (await client.get("/metrics")).text
    assert paid.status_code == 201 and declined.status_code == 402
    total = paid.json()["totals"]["total"]
    minor = round(float(total["amount"]) * 100)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    later = round(float(waiting.json()["totals"]["total"]["amount"]) * 100)
    assert grew("shop_orders_placed_total", status="paid") == 1
    assert grew("shop_orders_placed_total", status="pending") == 1
    assert grew("shop_orders_placed_total", status="canceled") == 1
    assert grew("shop_payments_total", outcome="captured") == 2
    assert grew("shop_payments_total", outcome="declined") == 1
    assert grew("shop_revenue_minor_units_total", currency=total["currency"]) == minor + later > minor > 0


async def test_metrics_are_for_trusted_addresses_and_staff(demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path)
    async with serving(settings) as local:
        assert (await local.get("/metrics")).status_code == 200
        # through our proxy, from outside: the client is the outsider, not the proxy
        proxied = await local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
        _, staff = await signed_in(local, settings, Role.STAFF)
        _, customer = await signed_in(local, settings, Role.CUSTOMER)
    async with serving(settings, peer=OUTSIDER) as outside:
        anonymous = await outside.get("/metrics")
        as_customer = await outside.get("/metrics", headers=customer)
        as_staff = await outside.get("/metrics", headers=staff)
        forged = await outside.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    for refused in (proxied, anonymous, as_customer):
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert "shop_http_requests_total" not in refused.text
    assert forged.status_code == 401
    assert as_staff.status_code == 200 and "shop_http_requests_total" in as_staff.text


@pytest.fixture
def two_workers(demo_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": demo_settings.main_db_url,
                                           "SHOP_VAR_DIR": str(tmp_path / "var"),
                                           "SHOP_RUN_DIR": str(tmp_path / "run"), "SHOP_RESPONSE_CACHE": "false"},
                                "--workers", "2")
    try:
        # /readyz answers once one worker serves; the other may still be importing the app (and has already made
        # its metric files) — wait until both have posted a heartbeat, i.e. both run the app
        deadline = time.monotonic() + 60
        while len(list((tmp_path / "run" / "workers").glob("*.json"))) < 2:
            assert process.poll() is None and time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.1)
        yield base, tmp_path
    finally:
        stop_serve(process)


async def test_two_gunicorn_workers_are_summed_in_every_scrape(two_workers: tuple[str, Path]) -> None:
    base, folder = two_workers
    labels = {"method": "GET", "route": "/api/v1/categories", "status": "200"}
    async with httpx.AsyncClient(base_url=base) as client:
        # several connections at once, so both workers take some
        answers = await asyncio.gather(*(client.get("/api/v1/categories") for _ in range(60)))
        assert {a.status_code for a in answers} == {200}
        # a worker writes its figures at the end of the event loop's turn in which it answered: a scrape that
        # another worker takes in that instant may come before it — but never long after
        deadline = time.monotonic() + 2
        while value((await client.get("/metrics")).text, "shop_http_requests_total", **labels) < 60:
            assert time.monotonic() < deadline, "the figures never reached the requests answered"
            await asyncio.sleep(0.01)
        scrapes = [(await httpx.AsyncClient(base_url=base).get("/metrics")).text for _ in range(6)]
    assert all(value(s, "shop_http_requests_total", **labels) == 60 for s in scrapes)
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in (folder / "run" / "metrics").glob("counter_*.db")}
    assert len(pids) == 2  # both workers wrote figures, and the sum above spans them
    beats = list((folder / "run" / "workers").glob("*.json"))
    assert {int(b.stem) for b in beats} == pids  # and both post heartbeats on the process board
