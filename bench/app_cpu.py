"""CPU time per request of the whole ASGI app, in one process: the catalogue list and a product's detail answered
from the response cache, and the same two with the cache off (on SQLite, request log on, as `make run` serves).

Run from the repository root: `.venv/bin/python -m bench.app_cpu [--requests 8000] [--var DIR]`.
No server, no wrk, no network: process CPU per request is what is measured, so the figure moves little with other
load on the machine, and two source trees can be compared by running this with each on PYTHONPATH in turn
(bench/README.md, "Before and after a refactoring"). The garbage collector's heap is frozen after start-up, as
runtime/gunicorn_conf.py does in the served shop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP = 200


async def _get(app: Any, path: str, query: bytes = b"") -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"accept", b"application/json")],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000)}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def _cpu_per_request(app: Any, path: str, query: bytes, requests: int) -> float:
    for _ in range(WARMUP):
        status = await _get(app, path, query)
        if status != 200:
            raise SystemExit(f"error: GET {path}?{query.decode()} answered {status}")
    gc.collect()
    gc.freeze()
    started = time.process_time()
    for _ in range(requests):
        await _get(app, path, query)
    return (time.process_time() - started) / requests * 1e6


async def _measure(requests: int) -> dict[str, float]:
    from asgi_lifespan import LifespanManager

    from shop.bootstrap import create_asgi_app
    from shop.config import Settings

    figures: dict[str, float] = {}
    for cache in ("on", "off"):
        os.environ["SHOP_RESPONSE_CACHE"] = "true" if cache == "on" else "false"
        app = create_asgi_app(Settings())
        count = requests if cache == "on" else max(requests // 4, 50)
        async with LifespanManager(app):
            import httpx

            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
                slug = (await client.get("/api/v1/products", params={"limit": 1})).json()["items"][0]["slug"]
            figures[f"list, cache {cache}"] = await _cpu_per_request(app, "/api/v1/products", b"limit=24", count)
            figures[f"detail, cache {cache}"] = await _cpu_per_request(app, f"/api/v1/products/{slug}", b"", count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000, help="requests per cached figure (a quarter uncached)")
    parser.add_argument("--var", type=Path, default=None, help="a shop's var dir to reuse (seeded if new)")
    options = parser.parse_args()
    var = options.var or Path(tempfile.mkdtemp(prefix="shop-app-cpu-"))
    os.environ.update(SHOP_VAR_DIR=str(var), SHOP_MAIN_DB_URL=f"sqlite+aiosqlite:///{var}/shop.db",
                      SHOP_LOG_LEVEL="warning")
    if not (var / "shop.db").exists():
        var.mkdir(parents=True, exist_ok=True)
        shop = [sys.executable, "-m", "shop"]
        for step in (["migrate"], ["seed", "--demo"]):
            subprocess.run(shop + step, check=True, capture_output=True)
    figures = asyncio.run(_measure(options.requests))
    print(" ".join(f"{name}: {value:.1f} µs;" for name, value in figures.items()))


if __name__ == "__main__":
    main()
