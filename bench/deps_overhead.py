"""What looking services up through `Depends` costs the storefront's product page, against reading app.state directly.

Run from the repository root: `.venv/bin/python -m bench.deps_overhead [--rounds 12] [--requests 400]`.
In one process, on a seeded SQLite shop (response cache and request log off, so every request reaches the route):
the product page as the shop serves it (`catalog: CatalogDep`, and the visitor with `WebSessionsDep` and `AuthDep`)
and the same page with the three services read from `request.app.state.services`, in alternating rounds; then a
route with no database answering with and without three such dependencies. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

from shop.bootstrap import build_catalog, build_databases, create_asgi_app
from shop.config import STORES, Settings
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.main.stock import SqlStock
from shop.services.seeding import seed_catalog
from shop.web.deps import AuthDep, CatalogDep, WebSessionsDep
from shop.web.storefront import catalogue
from shop.web.storefront.visitor import Visitor, visitor

PRODUCTS = 240
SLUGS = 50


async def _visitor_direct(request: Request) -> Visitor:
    services = request.app.state.services
    return await visitor(request, services.web_sessions, services.auth)


async def _product_direct(request: Request, slug: str,
                          guest: Annotated[Visitor, Depends(_visitor_direct)]) -> Response:
    """The product page as it was before web/deps.py: the services read from app.state."""
    detail = await request.app.state.services.catalog.product_detail(slug)
    return request.app.state.pages.render(guest, "product.html", detail=detail, product=detail.product)


def _fastapi_of(app: Any) -> FastAPI:
    while not isinstance(app, FastAPI):
        app = app.app  # the middlewares create_app wraps it in each keep the next app as `.app`
    return app


async def _seeded(folder: Path) -> Settings:
    settings = Settings(_env_file=None, main_db_url=f"sqlite+aiosqlite:///{folder}/shop.db",
                        response_cache=False, request_log=False, metrics=False)
    databases = build_databases(settings)
    try:
        for store in STORES:
            await migrations.migrate(databases, store)
        catalog = build_catalog(settings, databases)
        await seed_catalog(reader=catalog.reader, writer=catalog.writer, stock=SqlStock(databases.store("main")),
                           products=PRODUCTS)
    finally:
        await databases.dispose()
    return settings


Run = Callable[[int], Awaitable[tuple[float, float]]]


def _runner(client: httpx.AsyncClient, paths: list[str]) -> Run:
    async def run(count: int) -> tuple[float, float]:
        """(wall, CPU) microseconds per request over `count` requests, one at a time."""
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(count):
            answer = await client.get(paths[n % len(paths)])
            if answer.status_code != 200:
                raise SystemExit(f"{paths[n % len(paths)]} answered {answer.status_code}")
        return ((time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6)
    return run


async def _compare(label: str, runs: dict[str, Run], *, rounds: int, requests: int) -> None:
    for run in runs.values():
        await run(requests // 4)  # warm-up: templates compiled, connections pooled
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for n in range(rounds):
        for name in names if n % 2 == 0 else reversed(names):  # alternate which goes first
            figures[name].append(await runs[name](requests))
    print(f"\n{label}: {rounds} rounds x {requests} requests each, µs per request (median round; min-max)")
    for name, values in figures.items():
        wall, cpu = [w for w, _ in values], [c for _, c in values]
        print(f"  {name:<10} wall {statistics.median(wall):8.1f} ({min(wall):.1f}-{max(wall):.1f})"
              f"   CPU {statistics.median(cpu):8.1f} ({min(cpu):.1f}-{max(cpu):.1f})")
    first, second = names
    deltas = [a[1] - b[1] for a, b in zip(figures[first], figures[second], strict=True)]
    print(f"  CPU {first} - {second} per round: median {statistics.median(deltas):+.1f} µs "
          f"({min(deltas):+.1f} to {max(deltas):+.1f})")


def _bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/none")
    async def without(request: Request) -> Response:
        return PlainTextResponse("ok")

    @app.get("/three")
    async def with_three(request: Request, catalog: CatalogDep, sessions: WebSessionsDep, auth: AuthDep) -> Response:
        return PlainTextResponse("ok")

    app.state.services = type("Services", (), {"catalog": 1, "web_sessions": 2, "auth": 3})()
    return app


async def main(rounds: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = await _seeded(Path(folder))
        shop: ASGIApp = create_asgi_app(settings)
        app = _fastapi_of(shop)
        app.add_api_route("/bench-deps/p/{slug}", catalogue.product_page)
        app.add_api_route("/bench-direct/p/{slug}", _product_direct)
        async with LifespanManager(shop) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
                listing = (await client.get("/api/v1/products", params={"limit": SLUGS})).json()
                slugs = [item["slug"] for item in listing["items"]]
                runs = {"deps": _runner(client, [f"/bench-deps/p/{s}" for s in slugs]),
                        "direct": _runner(client, [f"/bench-direct/p/{s}" for s in slugs])}
                await _compare("product page, SQLite", runs, rounds=rounds, requests=requests)
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=_bare_app()), base_url="http://bare.test")
    async with bare:
        runs = {"three": _runner(bare, ["/three"]), "none": _runner(bare, ["/none"])}
        await _compare("route without a database", runs, rounds=rounds, requests=requests * 5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=400, help="product page requests per variant and round")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
