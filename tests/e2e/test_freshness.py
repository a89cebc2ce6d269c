"""What a shopper sees is true within a second, in every worker, whatever moved the stock.

A real `shop serve` with two gunicorn workers (and its background worker) on each database. Before every change
both workers hold the product's page in their response cache (checked against the request log, which names the
worker of each request); after it, every read issued a second later or more — on fresh connections, so both workers
answer — must show the new stock: the API's product page, the list's in-stock flag and the server-rendered page.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest_asyncio
from sqlalchemy import select, update

from shop.bootstrap import build_databases, build_services
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import orders
from shop.infrastructure.db.types import utcnow
from tests.conftest import make_settings, migrate_all
from tests.databases import DatabaseFactory
from tests.e2e.shopping import checkout_body, signed_in
from tests.e2e.test_serve import start_serve, stop_serve

BOUND = 1.0  # seconds: the freshness contract
WATCH = 1.6  # how long reads go on after a change


@dataclass
class Read:
    at: float  # monotonic, when the request was sent
    request_id: str
    available: int
    in_stock: bool
    cache: str


@dataclass
class Served:
    base: str
    settings: Settings
    log_dir: Path
    staff: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        # no kept-alive connections: each request is accepted by whichever worker takes it
        return httpx.AsyncClient(base_url=self.base, timeout=10,
                                 limits=httpx.Limits(max_keepalive_connections=0))

    def pids(self, request_ids: set[str]) -> dict[str, int]:
        """The worker of each request, from the request log's file (written every half second)."""
        found: dict[str, int] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for path in self.log_dir.glob("requests-*.log"):
                for line in path.read_bytes().splitlines():
                    record = orjson.loads(line)
                    if record["id"] in request_ids:
                        found[record["id"]] = record["worker_pid"]
            if len(found) == len(request_ids):
                return found
            time.sleep(0.2)
        raise AssertionError(f"{len(request_ids) - len(found)} requests missing from the request log")


@pytest_asyncio.fixture
async def served(backend: str, db_factory: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Served]:
    settings = make_settings(await db_factory.url(backend, "fresh"))
    await migrate_all(settings)
    # the shop's own defaults for every poll and cache: the contract is what a merchant gets
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": settings.main_db_url, "SHOP_LOG_LEVEL": "warning",
                                           "SHOP_SECRET_KEY": "fresh-" + "k" * 32}, "--workers", "2")
    try:
        shop = Served(base=base, settings=settings, log_dir=tmp_path / "var" / "log")
        async with shop.client() as client:
            shop.staff = (await signed_in(client, settings, Role.STAFF))[1]
        yield shop
    finally:
        stop_serve(process)


async def _detail(client: httpx.AsyncClient, slug: str, sku: str) -> Read:
    sent = time.monotonic()
    response = await client.get(f"/api/v1/products/{slug}")
    assert response.status_code == 200, response.text
    body = response.json()
    variant = next(v for v in body["variants"] if v["sku"] == sku)
    return Read(at=sent, request_id=response.headers["x-request-id"], available=variant["available"],
                in_stock=body["in_stock"], cache=response.headers.get("x-cache", ""))


async def _listed(client: httpx.AsyncClient, slug: str) -> bool:
    response = await client.get("/api/v1/products", params={"sort": "newest", "limit": 5})
    assert response.status_code == 200, response.text
    return bool(next(card for card in response.json()["items"] if card["slug"] == slug)["in_stock"])


async def _page(client: httpx.AsyncClient, slug: str) -> str:
    response = await client.get(f"/p/{slug}")
    assert response.status_code == 200, response.text
    text = response.text
    return next(label for label in ("Sold out", "Only", "In stock") if f'class="stock">{label}' in text)


async def _warm(shop: Served, slug: str, sku: str) -> None:
    """Both workers hold the product's page and the list in their caches."""
    async with shop.client() as client:
        for _ in range(3):
            reads = [await _detail(client, slug, sku) for _ in range(30)]
            for _ in range(5):
                await _listed(client, slug)
            hits = {r.request_id for r in reads if r.cache == "hit"}
            workers = set(shop.pids({r.request_id for r in reads}).values())
            if len(workers) == 2 and len(set(shop.pids(hits).values())) == 2:
                return
    raise AssertionError("could not get both workers to cache the product's page")


async def _fresh_everywhere(shop: Served, slug: str, sku: str, *, since: float, available: int) -> None:
    """From `since` + BOUND on, every read in every worker shows `available` units (and the flags that follow)."""
    label = "Sold out" if available == 0 else "Only" if available < 5 else "In stock"
    reads: list[Read] = []
    async with shop.client() as client:
        while time.monotonic() < since + WATCH:
            reads.append(await _detail(client, slug, sku))
            if reads[-1].at >= since + BOUND:
                assert await _listed(client, slug) is (available > 0)
                assert await _page(client, slug) == label
            await asyncio.sleep(0.01)
    late = [r for r in reads if r.at >= since + BOUND]
    stale = [(round(r.at - since, 3), r.available, r.cache) for r in late if r.available != available]
    assert not stale, f"still showing the old stock a second after the change: {stale[:5]}"
    assert all(r.in_stock is (available > 0) for r in late)
    workers = set(shop.pids({r.request_id for r in late}).values())
    assert len(workers) == 2, f"only worker {workers} answered after the change; the test proves nothing"


async def _checkout(client: httpx.AsyncClient, sku: str, units: int, token: str) -> tuple[int, dict[str, Any]]:
    cart = (await client.post("/api/v1/carts")).json()["id"]
    added = await client.post(f"/api/v1/carts/{cart}/items", json={"sku": sku, "quantity": units})
    assert added.status_code == 201, added.text
    placed = await client.post("/api/v1/checkout", json=checkout_body(cart, token=token))
    return placed.status_code, placed.json()


async def test_stock_moves_reach_every_cached_page_within_a_second(served: Served) -> None:
    shop = served
    sku = f"F-{uuid.uuid4().hex[:10].upper()}"
    async with shop.client() as client:
        created = await client.post("/api/v1/products", headers=shop.staff, json={
            "title": f"Fresh Lamp {sku}", "description": "Stock that moves.", "published": True,
            "variants": [{"sku": sku, "price": "30.00", "stock": 3}]})
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]

        # a sale of the last units, through the API
        await _warm(shop, slug, sku)
        status, sold = await _checkout(client, sku, 3, "tok_visa")
        assert status == 201, sold
        await _fresh_everywhere(shop, slug, sku, since=time.monotonic(), available=0)

        # staff cancel the paid order: refunded, back on the shelf
        await _warm(shop, slug, sku)
        canceled = await client.post(f"/api/v1/orders/{sold['number']}/cancel", headers=shop.staff)
        assert canceled.status_code == 200, canceled.text
        await _fresh_everywhere(shop, slug, sku, since=time.monotonic(), available=3)

    # staff count the shelf (the control panel's stock form): no flag flips, only the stock moves
    await _warm(shop, slug, sku)
    services = build_services(shop.settings)
    try:
        await services.catalog_admin.set_stock(slug, sku, 8)
        counted = time.monotonic()
    finally:
        await services.close()
    await _fresh_everywhere(shop, slug, sku, since=counted, available=8)

    # a payment waiting for 3-D Secure holds every unit; its reservation runs out and the worker lets them go
    await _warm(shop, slug, sku)
    async with shop.client() as client:
        status, pending = await _checkout(client, sku, 8, "tok_threeDSecure")
        assert status == 202, pending
    await _fresh_everywhere(shop, slug, sku, since=time.monotonic(), available=0)
    await _warm(shop, slug, sku)
    released = await _expire(shop.settings, pending["number"])
    await _fresh_everywhere(shop, slug, sku, since=released, available=8)


async def _expire(settings: Settings, number: str) -> float:
    """Move the order's reservation into the past; wait for the background worker to release it. Returns when
    it did (monotonic): from the time the worker stamped on the order, or, where that stamp has whole seconds only
    (MariaDB's DATETIME), from when the release was first seen here, less the 50 ms between looks."""
    databases = build_databases(settings)
    try:
        async with databases.store("main").write() as conn:
            await conn.execute(update(orders).where(orders.c.number == number)
                               .values(reservation_expires_at=utcnow() - timedelta(minutes=1)))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            async with databases.store("main").read() as conn:
                row = (await conn.execute(select(orders.c.status, orders.c.updated_at)
                                          .where(orders.c.number == number))).one()
            if row.status == "canceled":
                seen = time.monotonic()
                return max(seen - (utcnow() - row.updated_at).total_seconds(), seen - 0.05)
            await asyncio.sleep(0.05)
    finally:
        await databases.dispose()
    raise AssertionError(f"the background worker did not release order {number}'s reservation in 15 s")
