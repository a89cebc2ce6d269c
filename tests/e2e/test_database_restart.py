"""A database that goes away never costs a customer an order or its confirmation.

A real `shop serve` with two workers (and its background worker) on a private PostgreSQL or MariaDB server of its
own. Four buyers (cart, item, checkout with an Idempotency-Key; each request retried as a client should: after a
503 or a 409 "still being processed", when Retry-After says) and two browsers (the storefront's pages and the
API) shop while the server is stopped for ten seconds and started again, and later while every connection the
shop holds is cut. Nobody gets a 500; every order that was paid was answered 201 to its buyer; no cart became two
orders; every request that was answered is in the request log, in the database and in the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy import select

from shop.bootstrap import build_databases
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import orders, request_log
from tests.conftest import SELECTION, make_settings, migrate_all
from tests.db_servers import PrivateServer, private_server
from tests.e2e.shopping import checkout_body, signed_in
from tests.e2e.test_serve import start_serve, stop_serve

SERVERS = [kind for kind in ("postgresql", "mariadb") if kind in SELECTION.sql]
DOWN_AT, UP_AT, CUT_AT, QUIET_AT = 4.0, 14.0, 20.0, 26.0  # seconds into the run
GIVE_UP_AFTER = 90.0  # a request still without a final answer by then is a failure


@dataclass
class Seen:
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # 500s, a 503 without Retry-After, transport errors
    request_ids: set[str] = field(default_factory=set)
    paid: dict[str, str] = field(default_factory=dict)  # order number → cart, from the 201s buyers got
    unfinished: list[str] = field(default_factory=list)

    def answer(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        self.request_ids.add(response.headers["x-request-id"])
        if response.status_code >= 500 and (response.status_code != 503 or "retry-after" not in response.headers):
            self.failures.append(f"{response.request.method} {response.request.url.path}: "
                                 f"{response.status_code} {response.text[:200]}")


@pytest.fixture(params=SERVERS)
def database(request: pytest.FixtureRequest) -> Iterator[PrivateServer]:
    with private_server(request.param) as server:
        yield server


@pytest_asyncio.fixture
async def shop(database: PrivateServer, tmp_path: Path) -> AsyncIterator[tuple[str, Any, Path]]:
    settings = make_settings(database.url)
    await migrate_all(settings)
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": database.url, "SHOP_LOG_LEVEL": "warning",
                                           "SHOP_SECRET_KEY": "restart-" + "k" * 32}, "--workers", "2")
    try:
        yield base, settings, tmp_path / "var" / "log"
    finally:
        stop_serve(process)


async def _send(client: httpx.AsyncClient, seen: Seen, method: str, path: str, *, final: set[int],
                started: float, **kwargs: Any) -> httpx.Response | None:
    """Send until an answer in `final` comes back, as a careful client does; None if none came in time."""
    while time.monotonic() - started < GIVE_UP_AFTER:
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            seen.failures.append(f"{method} {path}: {type(exc).__name__} {exc}")
            await asyncio.sleep(0.5)
            continue
        seen.answer(response)
        if response.status_code in final:
            return response
        if response.status_code == 503 or (response.status_code == 409 and "retry-after" in response.headers):
            await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 2.0))
            continue
        seen.failures.append(f"{method} {path}: unexpected {response.status_code} {response.text[:200]}")
        return None
    seen.unfinished.append(f"{method} {path}")
    return None


async def _buyer(base: str, sku: str, seen: Seen, started: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() - started < QUIET_AT:
            cart = await _send(client, seen, "POST", "/api/v1/carts", final={201}, started=started)
            if cart is None:
                return
            cart_id = cart.json()["id"]
            added = await _send(client, seen, "POST", f"/api/v1/carts/{cart_id}/items", final={201},
                                started=started, json={"sku": sku, "quantity": 1})
            if added is None:
                return
            placed = await _send(client, seen, "POST", "/api/v1/checkout", final={201}, started=started,
                                 json=checkout_body(cart_id, email=f"buyer-{uuid.uuid4().hex[:8]}@example.com"),
                                 headers={"Idempotency-Key": str(uuid.uuid4())})
            if placed is None:
                return
            seen.paid[placed.json()["number"]] = cart_id


async def _browser(base: str, slug: str, seen: Seen, started: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() - started < QUIET_AT:
            for path in ("/", f"/p/{slug}", "/api/v1/products?limit=5", f"/api/v1/products/{slug}"):
                try:
                    seen.answer(await client.get(path))
                except httpx.TransportError as exc:
                    seen.failures.append(f"GET {path}: {type(exc).__name__} {exc}")
            await asyncio.sleep(0.05)


async def _operator(database: PrivateServer, started: float, events: list[str]) -> None:
    async def at(moment: float) -> None:
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))

    await at(DOWN_AT)
    await asyncio.to_thread(database.stop)
    events.append(f"stopped at {time.monotonic() - started:.1f} s")
    await at(UP_AT)
    await asyncio.to_thread(database.start)
    events.append(f"started at {time.monotonic() - started:.1f} s")
    await at(CUT_AT)
    events.append(f"cut {await asyncio.to_thread(database.cut_connections)} connections at "
                  f"{time.monotonic() - started:.1f} s")


async def test_a_restart_and_cut_connections_cost_no_order_and_no_answer(shop: tuple[str, Any, Path],
                                                                        database: PrivateServer) -> None:
    base, settings, log_dir = shop
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        staff = (await signed_in(client, settings, Role.STAFF))[1]
        sku = f"R-{uuid.uuid4().hex[:10].upper()}"
        created = await client.post("/api/v1/products", headers=staff, json={
            "title": f"Restart Mug {sku}", "description": "Sold through a restart.", "published": True,
            "variants": [{"sku": sku, "price": "12.00", "stock": 100_000}]})
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]

    seen, events = Seen(), []
    started = time.monotonic()
    await asyncio.gather(*(_buyer(base, sku, seen, started) for _ in range(4)),
                         *(_browser(base, slug, seen, started) for _ in range(2)),
                         _operator(database, started, events))

    assert [e.split()[0] for e in events] == ["stopped", "started", "cut"], events
    assert seen.statuses[503] > 0, f"the outage was never seen: {dict(seen.statuses)}; {events}"
    assert not seen.failures, f"{len(seen.failures)} failures, e.g. {seen.failures[:5]}; {dict(seen.statuses)}"
    assert not seen.unfinished, seen.unfinished
    assert len(seen.paid) >= 8, f"only {len(seen.paid)} orders in the run: {dict(seen.statuses)}"

    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            rows = (await conn.execute(select(orders.c.number, orders.c.cart_id, orders.c.status))).all()
        by_cart = Counter(row.cart_id for row in rows)
        assert max(by_cart.values()) == 1, "a cart became two orders"
        paid = {row.number: row.cart_id for row in rows if row.status == "paid"}
        assert paid == seen.paid, "a paid order's buyer never got its 201, or a 201 has no paid order"
        assert all(row.status == "paid" for row in rows), [tuple(row) for row in rows if row.status != "paid"]

        # every answered request is in the request log: the writers kept what came in while it was away
        deadline = time.monotonic() + 30
        while True:
            async with databases.store("main").read() as conn:
                logged = {r for (r,) in await conn.execute(select(request_log.c.id))}
            missing = seen.request_ids - logged
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not missing, f"{len(missing)} of {len(seen.request_ids)} answered requests never reached the table"
    finally:
        await databases.dispose()
    in_files = set()
    for path in log_dir.glob("requests-*.log"):
        with contextlib.suppress(orjson.JSONDecodeError):
            in_files |= {orjson.loads(line)["id"] for line in path.read_bytes().splitlines()}
    assert seen.request_ids <= in_files, f"{len(seen.request_ids - in_files)} answered requests not in the file"
