"""Faults under load, with real processes: `shop serve --pools` (gunicorn per pool, nginx in front) on loopback.

Load comes from this process (httpx, 2–4 clients, a few seconds). Each test is bounded and stops every process
group it started, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from shop.config import Settings
from tests.e2e.shopping import checkout_body
from tests.runtime.conftest import short_home
from tests.runtime.harness import (
    Load,
    Outcome,
    PoolsShop,
    free_port,
    hammer,
    launch,
    shop_env,
    start_pools_shop,
    wait_for,
    wait_until_ready,
)

pytestmark = pytest.mark.timeout(90)  # the slowest starts four gunicorns and nginx, then waits on restarts
CATALOGUE = "/api/v1/products?limit=24"
SHIPPING = "/api/v1/shipping-methods?country=DE"
# sizes pinned (min = max) so the autoscaler does not change them under the test
POOLS = """
[budget]
cores = 2
memory_mb = 4096
worker_memory_mb = 1024
[pools.catalog]
prefixes = ["/", "/api/v1/products", "/api/v1/categories"]
min = 2
max = 2
[pools.checkout]
prefixes = ["/api/v1/carts", "/api/v1/checkout", "/api/v1/orders", "/api/v1/shipping-methods"]
min = 1
max = 1
"""


@pytest.fixture(scope="module")
def shop(runtime_settings: Settings) -> Iterator[PoolsShop]:
    """One pools shop for the tests that leave it whole (they kill workers, not masters)."""
    home = short_home()
    running = start_pools_shop(home, POOLS, db_url=runtime_settings.main_db_url)
    try:
        yield running
    finally:
        code = running.serve.stop()
        assert code == 0, f"`shop serve --pools` did not stop cleanly ({code}):\n{running.serve.log_tail()}"
        assert not (home / "var" / "nginx" / "nginx.pid").exists(), "nginx left its pid file: it did not quit"


def test_each_request_reaches_its_pool_and_nginx_serves_the_static_files(shop: PoolsShop) -> None:
    offset = shop.access_log_size()
    assert httpx.get(f"{shop.url}{CATALOGUE}").status_code == 200
    assert httpx.get(f"{shop.url}{SHIPPING}").status_code == 200
    css = httpx.get(f"{shop.url}/static/css/shop.css")
    assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=300"
    assert httpx.get(f"{shop.url}/static/css/not-a-file.css").status_code == 404
    home = httpx.get(f"{shop.url}/")
    hashed = next(part.split('"')[0] for part in home.text.split('href="/static/')[1:] if ".css" in part)
    immutable = httpx.get(f"{shop.url}/static/{hashed}")
    assert immutable.status_code == 200 and "immutable" in immutable.headers["cache-control"]
    upstreams = shop.upstreams_since(offset)
    socket = {name: str(shop.home / "var" / "run" / "pools" / f"{name}.sock") for name in ("catalog", "checkout")}
    assert upstreams == [f"unix:{socket['catalog']}", f"unix:{socket['checkout']}", "-", "-",
                         f"unix:{socket['catalog']}", "-"]
    states = {p.name: p for p in shop.board.pools()}
    assert (states["catalog"].workers, states["checkout"].workers) == (2, 1)
    assert states["checkout"].prefixes[0] == "/api/v1/carts"


async def test_a_killed_worker_is_replaced_and_only_its_in_flight_requests_fail(shop: PoolsShop) -> None:
    before = shop.workers("catalog")
    assert len(before) == 2
    victim = min(before)
    killed_at = 0.0

    async def kill_one() -> None:
        nonlocal killed_at
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)

    clients = 3
    load, _ = await asyncio.gather(hammer(shop.url, CATALOGUE, clients=clients, seconds=4), kill_one())
    failed = load.failed()
    assert len(failed) <= clients, failed  # at most the requests the dead worker held
    assert all(o.started <= killed_at for o in failed), failed
    assert len(load.outcomes) > 100
    def replaced() -> set[int] | None:
        now = shop.workers("catalog")
        return now if len(now) == 2 and victim not in now else None

    after = wait_for(replaced, seconds=20, what="a new catalogue worker")
    assert len(after - before) == 1


async def test_sighup_replaces_every_worker_without_a_failed_request(shop: PoolsShop) -> None:
    before = {name: shop.workers(name) for name in ("catalog", "checkout")}
    masters = {name: shop.master(name) for name in before}
    background = shop.background_worker()
    assert background is not None

    async def hup() -> None:
        await asyncio.sleep(1.0)
        os.kill(shop.serve.pid, signal.SIGHUP)

    catalogue, shipping, _ = await asyncio.gather(hammer(shop.url, CATALOGUE, clients=3, seconds=7),
                                                  hammer(shop.url, SHIPPING, clients=1, seconds=7), hup())
    assert catalogue.failed() == [] and shipping.failed() == []
    assert {o.status for o in catalogue.outcomes + shipping.outcomes} == {200}
    for name, old in before.items():
        wait_for(lambda n=name, o=old: (w := shop.workers(n)) and len(w) == len(o) and not w & o, seconds=30,
                 what=f"new workers for {name}")
        assert shop.master(name) == masters[name]  # a reload, not a restart
    # and the background worker is a new one, on the new code
    wait_for(lambda: shop.background_worker() not in (None, background), seconds=30, what="a new background worker")


def test_the_background_worker_runs_beside_the_pools_and_is_started_again_when_it_dies(shop: PoolsShop) -> None:
    first = shop.background_worker()
    assert first is not None, "`shop serve --pools` runs no background worker"
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: shop.background_worker() not in (None, first), seconds=20, what="a new background worker")
    assert "background worker" in shop.serve.log_tail() and "exited with -9" in shop.serve.log_tail()


async def test_a_stuck_checkout_pool_leaves_the_catalogue_p99_alone(shop: PoolsShop) -> None:
    """Checkout's workers stopped (SIGSTOP) with requests piling up on them: the catalogue's p99 stays within 20%
    of what it is alone. Phases alternate so a neighbour's load on the machine falls on both."""
    alone, beside_stuck = Load(), Load()
    stuck = Load()
    for _ in range(3):
        await hammer(shop.url, CATALOGUE, clients=2, seconds=2, load=alone)
        workers = shop.workers("checkout")
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.gather(hammer(shop.url, CATALOGUE, clients=2, seconds=2, load=beside_stuck),
                                 *(_one_get(shop.url, SHIPPING, stuck, timeout=3.0) for _ in range(4)))
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
    assert stuck.outcomes and all(o.status is None for o in stuck.outcomes), "checkout was not stuck"
    assert alone.failed() == [] and beside_stuck.failed() == []
    p99_alone, p99_beside = alone.p99(), beside_stuck.p99()
    print(f"catalogue p99 alone {p99_alone * 1000:.1f} ms, beside a stuck checkout {p99_beside * 1000:.1f} ms "
          f"({len(alone.outcomes)} and {len(beside_stuck.outcomes)} requests)")
    assert p99_beside <= 1.2 * p99_alone


async def _one_get(url: str, path: str, load: Load, *, timeout: float) -> None:  # noqa: ASYNC109
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        try:
            status: int | None = (await client.get(path)).status_code
        except httpx.HTTPError:
            status = None
    load.outcomes.append(Outcome(started, time.monotonic() - started, status))


def _carts(url: str, count: int) -> list[str]:
    """`count` guest carts holding one unit of a different product each."""
    carts = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for product in client.get("/api/v1/products?in_stock=true&limit=40").json()["items"]:
            variants = client.get(f"/api/v1/products/{product['slug']}").json()["variants"]
            sku = next((v["sku"] for v in variants if v["available"] >= 2), None)
            if sku is None:
                continue
            cart = client.post("/api/v1/carts").json()["id"]
            added = client.post(f"/api/v1/carts/{cart}/items", json={"sku": sku, "quantity": 1})
            assert added.status_code == 201, added.text
            carts.append(cart)
            if len(carts) == count:
                return carts
    raise AssertionError(f"the demo catalogue has fewer than {count} products with 2 units in stock")


async def _check_out(client: httpx.AsyncClient, cart_id: str, deadline: float) -> tuple[str, int]:
    """One checkout, retried with its Idempotency-Key until it gets an answer: the order number, tries taken."""
    key, body, tries = str(uuid.uuid4()), checkout_body(cart_id, email=f"failover-{cart_id[:8]}@example.com"), 0
    while True:
        tries += 1
        try:
            response = await client.post("/api/v1/checkout", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 201:
            return str(response.json()["number"]), tries
        retry = response is None or response.status_code in (502, 503, 504) or (
            response.status_code == 409 and "still being processed" in response.text)
        assert retry, f"checkout of {cart_id} answered {response.status_code}: {response.text}"
        assert time.monotonic() < deadline, f"checkout of {cart_id} got no answer in time"
        await asyncio.sleep(0.2)


@pytest.fixture
def backup(runtime_settings: Settings) -> Iterator[str]:
    """A second, plain `shop serve` on the same database: the Backup server (Main's runs the background worker)."""
    home = short_home()
    port = free_port()
    server = launch("backup", [sys.executable, "-m", "shop", "serve", "--workers", "1", "--port", str(port),
                               "--no-worker"],
                    env=shop_env(runtime_settings.main_db_url, SHOP_POOL="backup"), cwd=home)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", server)
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


async def test_when_main_dies_the_backup_serves_and_no_order_is_lost_or_doubled(runtime_settings: Settings,
                                                                               backup: str) -> None:
    home = short_home()
    pools = POOLS.replace("min = 2\nmax = 2", "min = 1\nmax = 1")
    shop = start_pools_shop(home, pools, db_url=runtime_settings.main_db_url, extra_args=["--backup", backup])
    try:
        carts = await asyncio.to_thread(_carts, shop.url, 10)
        old_masters = {name: shop.master(name) for name in ("catalog", "checkout")}
        offset = shop.access_log_size()
        killed_at = 0.0

        async def kill_main() -> None:
            nonlocal killed_at
            await asyncio.sleep(1.0)
            killed_at = time.monotonic()
            for pid in old_masters.values():
                os.kill(pid, signal.SIGKILL)

        orders: dict[str, tuple[str, int]] = {}

        async def buyer(mine: list[str]) -> None:
            async with httpx.AsyncClient(base_url=shop.url, timeout=15) as client:
                for cart in mine:
                    orders[cart] = await _check_out(client, cart, time.monotonic() + 40)
                    await asyncio.sleep(0.3)

        gets, *_ = await asyncio.gather(hammer(shop.url, CATALOGUE, clients=2, seconds=7), kill_main(),
                                        buyer(carts[0::2]), buyer(carts[1::2]))

        assert gets.failed(after=killed_at) == [], gets.failed(after=killed_at)
        assert backup in shop.upstreams_since(offset), "the backup never served"
        database = runtime_settings.main_db_url.split(":///", 1)[1]
        with sqlite3.connect(database) as db:
            rows = db.execute(f"SELECT cart_id, number FROM orders WHERE cart_id IN ({','.join('?' * len(carts))})",
                              carts).fetchall()
        assert sorted(rows) == sorted((cart, number) for cart, (number, _) in orders.items())
        assert len(rows) == len(carts)  # none lost, none doubled
        print(f"{len(gets.outcomes)} GETs, {len(gets.failed())} failed (all before the kill); checkouts took "
              f"{sorted(t for _, t in orders.values())} tries; backup served "
              f"{shop.upstreams_since(offset).count(backup)} requests")
        for name, old in old_masters.items():
            wait_for(lambda n=name, o=old: shop.pool(n).master_pid not in (None, o), seconds=20,
                     what=f"a new master for {name}")
    finally:
        shop.serve.stop()
        shutil.rmtree(home, ignore_errors=True)
