"""`shop serve`: gunicorn with uvicorn workers, really started, really requested."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_catalog, build_databases
from shop.config import Settings
from shop.domain.catalog import Product, Variant
from shop.domain.money import Money
from tests.conftest import make_settings, migrate_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(cwd: Path, settings: dict[str, str], *args: str,
                within: float = 60) -> tuple[subprocess.Popen[str], str]:
    """`shop serve` on a free port with these SHOP_ settings (none of this process's), once /readyz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "PROMETHEUS_"))}
    env.update(settings)
    process = subprocess.Popen([sys.executable, "-m", "shop", "serve", "--port", str(port), *args], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + within  # workers importing the app at once on a busy machine
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        assert time.monotonic() < deadline, f"server did not become ready in {within:.0f} s"
        time.sleep(0.1)


def stop_serve(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as a process manager would; killed if it is not gone in 20 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server(demo_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int]]:
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": demo_settings.main_db_url,
                                           "SHOP_CATALOG_POLL_INTERVAL": "0.5"}, "--workers", "2", within=30)
    try:
        yield base, process.pid  # `shop serve` execs gunicorn: this is its master
    finally:
        stop_serve(process)


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
    # the shop's worker: a Date on every response, no Server header naming what to attack
    assert all("date" in r.headers and "server" not in r.headers for r in responses)


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


@pytest_asyncio.fixture
async def plain_shop(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A migrated, empty SQLite shop: for what `shop serve` does with its processes, whatever the data."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    await migrate_all(settings)
    yield tmp_path, settings.main_db_url


def _start(home: Path, db_url: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    return start_serve(home, {"SHOP_MAIN_DB_URL": db_url, "SHOP_LOG_LEVEL": "warning"}, *args, within=30)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_max_requests_recycles_a_worker_that_knows_its_pool(plain_shop: tuple[Path, str]) -> None:
    process, base = _start(*plain_shop, "--workers", "1", "--max-requests", "20", "--max-requests-jitter", "0")
    try:
        (first,) = _children(process.pid)
        assert b"SHOP_POOL=main\0" in Path(f"/proc/{first}/environ").read_bytes()
        with httpx.Client(base_url=base) as client:
            assert {client.get("/healthz").status_code for _ in range(30)} == {200}
        deadline = time.monotonic() + 20
        while (now := _children(process.pid)) in ({first}, set()):
            assert time.monotonic() < deadline, "the worker was not recycled after 20 requests"
            time.sleep(0.1)
        assert len(now) == 1
    finally:
        _kill_group(process)


async def test_sighup_brings_new_workers_without_a_failed_request_and_sigterm_ends_cleanly(
        plain_shop: tuple[Path, str]) -> None:
    process, base = _start(*plain_shop, "--workers", "2")
    try:
        before = _children(process.pid)
        assert len(before) == 2
        statuses: list[int | str] = []
        retries: list[str] = []

        async def client_loop(seconds: float) -> None:
            end = time.monotonic() + seconds
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                while time.monotonic() < end:
                    try:
                        statuses.append((await client.get("/healthz")).status_code)
                    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                        # An old worker closes its idle kept-alive connections as it leaves; a GET sent on one
                        # in that instant gets no answer at all (a disconnect or a reset), and HTTP/1.1 clients
                        # (browsers, nginx) send it again on a new connection (RFC 9112 §9.3.1). So does this
                        # one, once per such request.
                        retries.append(repr(exc))
                        try:
                            statuses.append((await client.get("/healthz")).status_code)
                        except httpx.HTTPError as again:
                            statuses.append(repr(again))
                    except httpx.HTTPError as exc:
                        statuses.append(repr(exc))

        async def hup() -> None:
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGHUP)

        await asyncio.gather(client_loop(5), client_loop(5), hup())
        # each of the two old workers can catch each client's connection at most once as it leaves
        assert set(statuses) == {200} and len(statuses) > 50 and len(retries) <= 4, retries
        deadline = time.monotonic() + 30
        while not ((now := _children(process.pid)) and len(now) == 2 and not now & before):
            assert time.monotonic() < deadline, f"workers not replaced: {before} → {now}"
            await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        _kill_group(process)
