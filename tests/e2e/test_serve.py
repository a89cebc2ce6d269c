"""`shop serve`: gunicorn with uvicorn workers, really started, really requested."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shop.bootstrap import build_catalog, build_databases
from shop.config import Settings
from shop.domain.catalog import Product, Variant
from shop.domain.money import Money


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(demo_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(SHOP_MAIN_DB_URL=demo_settings.main_db_url, SHOP_CATALOG_POLL_INTERVAL="0.5")
    process = subprocess.Popen([sys.executable, "-m", "shop", "serve", "--workers", "2", "--port", str(port)],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready in 30 s"
            time.sleep(0.1)
        yield base, process.pid  # `shop serve` execs gunicorn: this is its master
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _children(pid: int) -> set[int]:
    table = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    return {int(child) for child, parent in (line.split() for line in table.splitlines()) if int(parent) == pid}


async def test_serve_runs_the_requested_workers_and_answers(server: tuple[str, int]) -> None:
    base, master = server
    assert len(_children(master)) == 2
    async with httpx.AsyncClient(base_url=base) as client:
        responses = await asyncio.gather(*(client.get("/api/v1/products", params={"limit": 24}) for _ in range(40)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1


async def test_an_edit_reaches_every_worker_within_a_second(server: tuple[str, int],
                                                            demo_settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=server[0]) as client:
        async def totals() -> set[int]:
            pages = await asyncio.gather(*(client.get("/api/v1/products", params={"limit": 2}) for _ in range(30)))
            return {p.json()["total"] for p in pages}

        before = await totals()
        assert len(before) == 1
        databases = build_databases(demo_settings)
        try:
            catalog = build_catalog(demo_settings, databases)
            _, next_id = await catalog.next_ids()
            await catalog.add_products([Product(
                id=next_id, slug=f"served-{next_id}", title="Served Lamp", description="", category_id=None,
                variants=[Variant(sku=f"SERVED-{next_id}", price=Money.of("3.00", "EUR"))])], available={})
        finally:
            await databases.dispose()
        edited = time.monotonic()
        await asyncio.sleep(1.0 - (time.monotonic() - edited))
        assert await totals() == {before.pop() + 1}
