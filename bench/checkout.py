"""Checkout benchmark: orders placed per second on PostgreSQL with 2 workers, and no unit sold twice.

Run from the repository root: `.venv/bin/python -m bench.checkout [--duration 20] [--flow-duration 10]`.
See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
import orjson
import uvloop
from rich.console import Console

from bench import database, report, servers
from bench.cpu import CpuMeter
from bench.database import BenchDatabase, DatabaseError
from bench.servers import Server, ServerError
from shop.domain.cart import Cart
from shop.domain.inventory import StockLevel
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.carts import insert_cart
from shop.infrastructure.db.main.stock import SqlStock
from shop.services.cart import new_cart_id, new_line_id

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
URL_ENV = "SHOP_BENCH_CHECKOUT_PG_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench_checkout"
WORKERS = 2
FLOOR_ORDERS_PER_S = 300.0  # the floor: sustained, at 16 connections, p99 under 100 ms, nothing oversold
P99_LIMIT_MS = 100.0
PGSTAT_FLUSH_S = 11  # PostgreSQL 15 backends report their counters within 10 s of going idle
JSON_HEADERS = {"content-type": "application/json"}
TIMEOUT_S = 30.0  # an answer slower than this counts as a transport error (status 0)
ADDRESS = {"name": "Ada Lovelace", "line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115",
           "country": "DE"}
console = Console(width=None if sys.stdout.isatty() else 150)


def _say(message: str) -> None:
    console.print(message, highlight=False)


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.checkout", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--duration", type=int, default=20, help="measured checkout window in seconds (default 20)")
    add("--warmup", type=int, default=6, help="discarded warm-up before it, same load (default 6)")
    add("--flow-duration", type=int, default=10,
        help="measured window of the second scenario, cart + items + checkout per order (default 10; 0 skips it)")
    add("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    add("--products", type=int, default=1000, help="products seeded (default 1,000)")
    add("--hot", type=int, default=100, help="SKUs given large stock that ordinary carts buy (default 100)")
    add("--scarce-stock", type=int, default=50, help="units of the one scarce SKU (default 50)")
    add("--scarce-share", type=float, default=0.25,
        help="share of checkouts in the measured window whose cart also holds the scarce SKU, until its three "
             "times as many carts as units are used up (default 0.25)")
    add("--max-rate", type=float, default=2 * FLOOR_ORDERS_PER_S,
        help="orders/s the carts made beforehand are enough for (default 600); faster runs out and says so")
    add("--client", choices=("raw", "httpx"), default="raw",
        help="raw: one plain keep-alive HTTP/1.1 connection per client (default); httpx: httpx.AsyncClient")
    add("--output", type=Path, default=None, help="default bench/results/<UTC date>-checkout.json")
    options = parser.parse_args(argv)
    if options.duration < 1 or options.warmup < 0 or options.flow_duration < 0 or options.connections < 1:
        parser.error("durations must be positive and connections at least 1")
    if not 0 <= options.scarce_share <= 1 or options.hot < 1 or options.scarce_stock < 0:
        parser.error("--scarce-share is between 0 and 1, --hot at least 1, --scarce-stock at least 0")
    return options


# ---- the database ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Shelf:
    hot: list[str]
    scarce: str
    hot_stock: int
    scarce_stock: int
    hot_carts: list[str]  # each ready for one checkout
    scarce_carts: list[str]  # the same, with one unit of the scarce SKU
    carts_seconds: float


async def _published_skus(db: BenchDatabase) -> list[str]:
    conn = await asyncpg.connect(db.dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT v.sku FROM variants v JOIN products p ON p.id = v.product_id "
                                "WHERE p.published ORDER BY v.sku")
    finally:
        await conn.close()
    return [r["sku"] for r in rows]


async def _stock_up(db: BenchDatabase, levels: list[StockLevel]) -> None:
    databases = Databases({"main": db.url}, pool_size=1)
    try:
        await SqlStock(databases.store("main")).set_levels(levels)
    finally:
        await databases.dispose()


async def _fill_carts(db: BenchDatabase, wanted: Sequence[Sequence[tuple[str, int]]]) -> list[str]:
    """Open guest carts with these lines, written by the shop's own cart code, 500 to a transaction."""
    databases = Databases({"main": db.url}, pool_size=1)
    made: list[str] = []
    try:
        store = databases.store("main")
        for start in range(0, len(wanted), 500):
            async with store.write() as conn:
                for lines in wanted[start:start + 500]:
                    now = datetime.now(UTC)
                    cart = Cart(id=new_cart_id(), customer_id=None, created_at=now, updated_at=now)
                    for sku, quantity in lines:
                        cart.add(sku, quantity, new_line_id=new_line_id())
                    await insert_cart(conn, cart)
                    made.append(cart.id)
    finally:
        await databases.dispose()
    return made


def cart_lines(rng: random.Random, hot: Sequence[str]) -> list[tuple[str, int]]:
    """1-3 different hot SKUs, 1-2 units of each."""
    return [(sku, rng.randint(1, 2)) for sku in rng.sample(hot, rng.randint(1, 3))]


def prepare(db: BenchDatabase, options: argparse.Namespace, workdir: Path) -> Shelf:
    """Recreate, migrate and seed the database, then give the hot SKUs plenty of stock and the scarce one little."""
    env = database.shop_env(db)
    asyncio.run(database._recreate(db))
    database._shop(["migrate"], env=env, cwd=workdir)
    database._shop(["seed", "--products", str(options.products)], env=env, cwd=workdir)
    skus = asyncio.run(_published_skus(db))
    if len(skus) < options.hot + 1:
        raise DatabaseError(f"only {len(skus)} published SKUs for {options.hot} hot ones and a scarce one")
    step = len(skus) // (options.hot + 1)  # spread over the catalogue, not the first product's variants
    hot = [skus[i * step] for i in range(options.hot)]
    scarce = skus[options.hot * step + step // 2]
    hot_stock = 1_000_000  # never runs out: the checks count what was sold, not what was refused
    asyncio.run(_stock_up(db, [StockLevel(s, hot_stock) for s in hot] + [StockLevel(scarce, options.scarce_stock)]))
    # enough carts for max_rate orders/s; the scarce ones, three per unit, only go to the measured window, where
    # they sell it out at any rate above ~10 orders/s and add no more than twice its stock of 409s
    rng = random.Random(7)
    hot_wanted = math.ceil(options.max_rate * (options.warmup + options.duration))
    scarce_wanted = 3 * options.scarce_stock if options.scarce_share else 0
    wanted = [cart_lines(rng, hot) for _ in range(hot_wanted)]
    wanted += [[(scarce, 1), *cart_lines(rng, hot)[:rng.randint(0, 2)]] for _ in range(scarce_wanted)]
    started = time.monotonic()
    made = asyncio.run(_fill_carts(db, wanted))
    seconds = time.monotonic() - started
    asyncio.run(database._analyze(db))  # before the server starts: no plan is made for an empty carts table
    return Shelf(hot=hot, scarce=scarce, hot_stock=hot_stock, scarce_stock=options.scarce_stock,
                 hot_carts=made[:hot_wanted], scarce_carts=made[hot_wanted:], carts_seconds=seconds)


async def _sql(db: BenchDatabase, statement: str) -> None:
    conn = await asyncpg.connect(db.dsn, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _pg_counters(db: BenchDatabase) -> dict[str, int]:
    """PostgreSQL's own counters for the database: transactions, rows, and sequential scans per table."""
    conn = await asyncpg.connect(db.dsn, timeout=10)
    try:
        row = await conn.fetchrow("SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, "
                                  "tup_updated, tup_deleted FROM pg_stat_database WHERE datname = current_database()")
        tables = await conn.fetch("SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables")
    finally:
        await conn.close()
    counters = {key: int(value) for key, value in dict(row or {}).items()}
    for t in tables:
        counters[f"seq_scan.{t['relname']}"] = int(t["seq_scan"])
        counters[f"seq_tup_read.{t['relname']}"] = int(t["seq_tup_read"])
    return counters


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


def _per(delta: dict[str, int], count: int) -> dict[str, float]:
    """Per request, leaving out tables nobody scanned."""
    return {key: round(value / count, 2) for key, value in delta.items()
            if count and (value or not key.startswith("seq_"))}


def oversell_checks(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], sold: dict[str, int],
                    statuses: dict[str, int], *, created: int, shelf: Shelf, scarce_attempts: int) -> dict[str, Any]:
    """What the database says after the run, against what the load generator was told."""
    negative = sorted(sku for sku, (on_hand, reserved) in after.items() if on_hand < 0 or reserved < 0)
    def drop(sku: str) -> int:
        return before.get(sku, (0, 0))[0] - after.get(sku, (0, 0))[0]

    mismatched = {sku: {"sold": sold.get(sku, 0), "on_hand_drop": drop(sku)}
                  for sku in set(before) | set(after) | set(sold) if sold.get(sku, 0) != drop(sku)}
    oversold = sum(max(0, units - before.get(sku, (0, 0))[0]) for sku, units in sold.items())
    scarce_sold = sold.get(shelf.scarce, 0)
    scarce_expected = min(shelf.scarce_stock, scarce_attempts)
    paid = statuses.get("paid", 0)
    reserved_left = sum(r for _, r in after.values())
    checks: dict[str, Any] = {
        "paid_orders": paid, "created_201": created, "paid_equals_201": paid == created,
        "orders_by_status": statuses,
        "skus_negative": negative, "reserved_left": reserved_left,
        "skus_where_sold_differs_from_on_hand_drop": dict(sorted(mismatched.items())[:20]),
        "scarce": {"sku": shelf.scarce, "initial_on_hand": shelf.scarce_stock, "attempts": scarce_attempts,
                   "sold": scarce_sold, "expected": scarce_expected,
                   "final_on_hand": after.get(shelf.scarce, (0, 0))[0],
                   "sold_out_under_load": scarce_attempts > shelf.scarce_stock,
                   "passed": scarce_sold == scarce_expected},
        "oversold": oversold,
    }
    checks["passed"] = (paid == created and not negative and reserved_left == 0 and not mismatched
                        and oversold == 0 and scarce_sold == scarce_expected)
    return checks


# ---- the load ----------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Sample:
    kind: str  # checkout, cart, item, flow (a whole cart + items + checkout)
    end: float  # perf_counter when the answer was read
    latency_s: float
    status: int  # 0: no answer (a transport error)
    scarce: bool = False


@dataclass(slots=True)
class Load:
    """One scenario's samples; the measured window is [start, end) of perf_counter, answers counted by when read."""

    start: float = 0.0
    end: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)  # "status type" of answers other than 201
    ran_out_at: float | None = None
    cpu: dict[str, Any] = field(default_factory=dict)
    spread: dict[str, int] = field(default_factory=dict)  # open connections per worker pid, 1 s into the window

    def window(self, kind: str) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind and self.start <= s.end < self.end]


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest rank: the smallest value with at least pct % of the values at or below it."""
    if not sorted_values:
        return None
    rank = math.ceil(round(pct * len(sorted_values) / 100, 9))  # round: 99.9 % of 1,000 is 999, not 999.0000001
    return sorted_values[max(0, rank - 1)]


def latency_ms(samples: Sequence[Sample]) -> dict[str, float | None]:
    values = sorted(s.latency_s * 1000 for s in samples)
    out: dict[str, float | None] = {f"p{p}": percentile(values, p) for p in (50, 90, 95, 99, 99.9)}
    out["max"] = values[-1] if values else None
    out["mean"] = sum(values) / len(values) if values else None
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


class Client(Protocol):
    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...


class RawConnection:
    """One keep-alive HTTP/1.1 connection, one request at a time, as wrk's are: it costs the generator about as
    little CPU per request as wrk, where httpx costs nearly a hundred times more on this machine (see NOTES)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._host = f"{servers.HOST}:{port}".encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(servers.HOST, self._port)
        reader, writer = self._streams
        writer.write(b"POST %b HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                     % (path.encode(), self._host, len(body), body))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            fields = dict(line.split(b":", 1) for line in head[:-4].split(b"\r\n")[1:])
            headers = {name.strip().lower(): value.strip() for name, value in fields.items()}
            content = await reader.readexactly(int(headers[b"content-length"]))  # the shop never sends chunked
        except BaseException:
            await self.close()
            raise
        if headers.get(b"connection") == b"close":
            await self.close()
        return int(head[9:12]), content

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HttpxClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body, headers=JSON_HEADERS)
        return response.status_code, response.content


@asynccontextmanager
async def connect(kind: str, port: int, count: int) -> AsyncIterator[list[Client]]:
    """`count` clients, each with a connection of its own opened on first use, closed at the end."""
    if kind == "httpx":
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(base_url=f"http://{servers.HOST}:{port}", limits=limits, timeout=TIMEOUT_S,
                                     trust_env=False) as shared:
            yield [HttpxClient(shared)] * count
        return
    connections = [RawConnection(port) for _ in range(count)]
    try:
        yield list(connections)
    finally:
        for connection in connections:
            await connection.close()


_TRANSPORT_ERRORS = (httpx.HTTPError, OSError, EOFError, ValueError, KeyError, TimeoutError,
                     asyncio.LimitOverrunError)


async def _post(client: Client, load: Load, kind: str, path: str, body: bytes, *,
                scarce: bool = False) -> tuple[int, bytes]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            status, content = await client.post(path, body)
    except _TRANSPORT_ERRORS as exc:
        status, content = 0, type(exc).__name__.encode()
    ended = time.perf_counter()
    load.samples.append(Sample(kind, ended, ended - started, status, scarce))
    if status != 201:
        load.problems[f"{kind} {status} {_problem_type(content)}"] += 1
    return status, content


def _problem_type(content: bytes) -> str:
    """The `type` of a problem answer, else the start of whatever came back."""
    try:
        return str(orjson.loads(content).get("type", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return content[:60].decode(errors="replace")


def _checkout_body(cart_id: str) -> bytes:
    return orjson.dumps({"cart_id": cart_id, "email": "bench@example.com", "shipping_address": ADDRESS,
                         "shipping_method": "standard", "payment": {"token": "tok_visa"}})


async def _fill_cart(client: Client, load: Load, lines: Sequence[tuple[str, int]]) -> str | None:
    status, content = await _post(client, load, "cart", "/api/v1/carts", b"")
    if status != 201:
        return None
    cart_id: str = orjson.loads(content)["id"]
    for sku, quantity in lines:
        status, _ = await _post(client, load, "item", f"/api/v1/carts/{cart_id}/items",
                                orjson.dumps({"sku": sku, "quantity": quantity}))
        if status != 201:
            return None
    return cart_id


def spread_over_workers(port: int) -> dict[str, int]:
    """Open connections to the server per worker pid: a worker that holds them all is the only one working."""
    try:
        done = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                              text=True, timeout=10, check=False)
    except OSError:
        return {}
    return dict(Counter(re.findall(r"pid=(\d+)", done.stdout)))


def _meter(load: Load, meter: CpuMeter, port: int, counted: Callable[[], int]) -> Callable[[], Awaitable[None]]:
    """Start the CPU account when the measured window opens and stop it when it closes."""
    async def run() -> None:
        await asyncio.sleep(max(0.0, load.start - time.perf_counter()))
        meter.start()
        await asyncio.sleep(min(1.0, max(0.0, load.end - time.perf_counter())))
        load.spread = await asyncio.to_thread(spread_over_workers, port)
        await asyncio.sleep(max(0.0, load.end - time.perf_counter()))
        load.cpu = meter.stop(counted())
    return run


async def checkout_load(clients: Sequence[Client], hot: deque[str], scarce: deque[str], *, db: BenchDatabase,
                        port: int, server_pgid: int | None, options: argparse.Namespace) -> Load:
    """`connections` clients each checking out one ready cart after another: warm-up, then the window."""
    now = time.perf_counter()
    load = Load(start=now + options.warmup, end=now + options.warmup + options.duration)
    ramp = min(1.0, options.warmup / 2)  # connections opened one after another, as shoppers arrive

    async def shopper(number: int, client: Client) -> None:
        rng = random.Random(number)
        await asyncio.sleep(ramp * number / len(clients))
        while (now := time.perf_counter()) < load.end:
            use_scarce = now >= load.start and bool(scarce) and rng.random() < options.scarce_share
            carts = scarce if use_scarce else hot
            if not carts:
                load.ran_out_at = load.ran_out_at or now
                return
            await _post(client, load, "checkout", "/api/v1/checkout", _checkout_body(carts.popleft()),
                        scarce=use_scarce)

    async def analyze() -> None:
        """Statistics for the orders the warm-up placed, so no plan is made for empty tables (autovacuum may be
        off, and a prepared statement keeps its plan until the statistics change)."""
        if options.warmup:
            await asyncio.sleep(options.warmup * 0.8)  # late enough for orders to fill more than a page or two
            await _sql(db, "ANALYZE")

    account = _meter(load, CpuMeter(server_pgid), port, lambda: len(load.window("checkout")))
    await asyncio.gather(account(), analyze(), *(shopper(n, c) for n, c in enumerate(clients)))
    if load.ran_out_at is not None and load.ran_out_at < load.end:
        load.end = max(load.start, load.ran_out_at)  # what came after was not the full load
    return load


async def flow_load(clients: Sequence[Client], hot: Sequence[str], *, port: int, server_pgid: int | None,
                    options: argparse.Namespace) -> Load:
    """Each client makes a cart, adds 1-3 hot SKUs and checks it out, again and again."""
    now = time.perf_counter()
    warmup = min(options.warmup, 3)
    load = Load(start=now + warmup, end=now + warmup + options.flow_duration)

    async def shopper(number: int, client: Client) -> None:
        rng = random.Random(1000 + number)
        await asyncio.sleep(min(1.0, warmup / 2) * number / len(clients))
        while time.perf_counter() < load.end:
            started = time.perf_counter()
            cart_id = await _fill_cart(client, load, cart_lines(rng, hot))
            status = 0
            if cart_id is not None:
                status, _ = await _post(client, load, "checkout", "/api/v1/checkout", _checkout_body(cart_id))
            ended = time.perf_counter()
            load.samples.append(Sample("flow", ended, ended - started, status))

    account = _meter(load, CpuMeter(server_pgid), port, lambda: len(load.window("flow")))
    await asyncio.gather(account(), *(shopper(n, c) for n, c in enumerate(clients)))
    return load


# ---- figures -----------------------------------------------------------------------------------------------

def _per_second(samples: Sequence[Sample], load: Load) -> list[int]:
    seconds = [0] * max(1, math.floor(load.end - load.start))
    for s in samples:
        slot = int(s.end - load.start)
        if s.status == 201 and slot < len(seconds):
            seconds[slot] += 1
    return seconds


def figures(load: Load, kind: str) -> dict[str, Any]:
    window = load.window(kind)
    orders = [s for s in window if s.status == 201]
    seconds = load.end - load.start
    per_second = _per_second(window, load)
    generator_s = load.cpu.get("seconds", {}).get("harness")
    return {
        "window_s": round(seconds, 2),
        "requests": len(window), "orders": len(orders),
        "orders_per_s": round(len(orders) / seconds, 1) if seconds else None,
        "requests_per_s": round(len(window) / seconds, 1) if seconds else None,
        "orders_per_whole_second": {"min": min(per_second), "max": max(per_second), "series": per_second},
        "latency_ms": latency_ms(window), "latency_ms_201": latency_ms(orders),
        "by_status": {str(k): v for k, v in sorted(Counter(s.status for s in window).items())},
        "ran_out_of_carts": load.ran_out_at is not None and load.ran_out_at < load.end + 1,
        "connections_per_worker": load.spread,
        "cpu": load.cpu,
        "generator_cpu": {  # the load generator is this process: bench.cpu counts it as the harness
            "seconds": generator_s, "share_of_machine": load.cpu.get("share", {}).get("harness"),
            "ms_per_request": round(1000 * generator_s / len(window), 3) if generator_s and window else None},
    }


def all_answers(load: Load) -> dict[str, dict[str, int]]:
    """Every request of a load, in its window or not, by kind and status: what the database checks count."""
    counts = Counter((s.kind, str(s.status)) for s in load.samples)
    out: dict[str, dict[str, int]] = {}
    for (kind, status), n in sorted(counts.items()):
        out.setdefault(kind, {})[status] = n
    return out


def verdicts(checkout: dict[str, Any], checks: dict[str, Any]) -> list[dict[str, Any]]:
    found = [v for v in (checkout["latency_ms"]["p99"], checkout["latency_ms_201"]["p99"]) if v is not None]
    p99 = max(found) if found else None  # over all checkout answers and over the 201s alone, the worse
    unexpected = sum(n for status, n in checkout["by_status"].items() if status not in ("201", "409"))
    rate = checkout["orders_per_s"] or 0.0
    return [
        {"check": "orders_per_s", "value": rate, "limit": FLOOR_ORDERS_PER_S, "passed": rate >= FLOOR_ORDERS_PER_S
         and not checkout["ran_out_of_carts"]},
        {"check": "p99_ms", "value": p99, "limit": P99_LIMIT_MS, "passed": p99 is not None and p99 < P99_LIMIT_MS},
        {"check": "unexpected_errors", "value": unexpected, "limit": 0, "passed": unexpected == 0},
        {"check": "oversold", "value": checks["oversold"], "limit": 0, "passed": checks["passed"]},
    ]


# ---- the run -----------------------------------------------------------------------------------------------

def _shop_config(env: dict[str, str], cwd: Path) -> Any:
    done = subprocess.run([database.shop_command(), "config", "--json"], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return done.stdout.strip() or done.stderr.strip()


async def drive(db: BenchDatabase, port: int, shelf: Shelf, server_pgid: int | None,
                options: argparse.Namespace) -> dict[str, Any]:
    """The checkout load on the carts made beforehand, then the whole-flow load; the figures of each."""
    out: dict[str, Any] = {}
    hot, scarce = deque(shelf.hot_carts), deque(shelf.scarce_carts)
    before = await _pg_counters(db)
    _say(f"  checkout: {options.connections} connections, {options.warmup}s warm-up, {options.duration}s window")
    async with connect(options.client, port, options.connections) as clients:  # fresh: see spread_over_workers
        load = await checkout_load(clients, hot, scarce, db=db, port=port, server_pgid=server_pgid, options=options)
    await asyncio.sleep(PGSTAT_FLUSH_S)
    placed = sum(1 for s in load.samples if s.kind == "checkout")
    out["checkout"] = figures(load, "checkout")
    out["checkout"].update(
        answers=all_answers(load), problems=dict(load.problems), unused_carts=len(hot),
        scarce_attempts=sum(1 for s in load.samples if s.scarce and s.status in (201, 409)),
        scarce_201=sum(1 for s in load.samples if s.scarce and s.status == 201),
        postgres_per_checkout_request=_per(_delta(before, await _pg_counters(db)), placed))
    out["created_201"] = sum(1 for s in load.samples if s.kind == "checkout" and s.status == 201)
    _summary("checkout", out["checkout"])
    if options.flow_duration:
        _say(f"  flow (cart + items + checkout): {options.connections} connections, {options.flow_duration}s")
        async with connect(options.client, port, options.connections) as clients:
            flow = await flow_load(clients, shelf.hot, port=port, server_pgid=server_pgid, options=options)
        out["flow"] = figures(flow, "flow")
        out["flow"].update(
            requests_by_kind={kind: {"count": len(flow.window(kind)), "latency_ms": latency_ms(flow.window(kind))}
                              for kind in ("cart", "item", "checkout")},
            http_requests_per_s=round(sum(len(flow.window(kind)) for kind in ("cart", "item", "checkout"))
                                      / (flow.end - flow.start), 1),
            answers=all_answers(flow), problems=dict(flow.problems))
        out["created_201"] += sum(1 for s in flow.samples if s.kind == "checkout" and s.status == 201)
        _summary("flow", out["flow"])
    return out


def _summary(name: str, found: dict[str, Any]) -> None:
    latency, cpu = found["latency_ms"], found["cpu"].get("share", {})
    _say(f"  {name}: [bold]{found['orders_per_s']:,.1f} orders/s[/] ({found['requests_per_s']:,.1f} requests/s), "
         f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms; statuses {found['by_status']}; "
         f"CPU server {cpu.get('server')}, postgres {cpu.get('postgres')}, generator {cpu.get('harness')}, "
         f"other {cpu.get('other')}")


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started = datetime.now(UTC)
    try:
        db = BenchDatabase.from_env({database.URL_ENV: os.environ.get(URL_ENV) or DEFAULT_URL})
        postgres = asyncio.run(database.server_version(db))
    except (DatabaseError, OSError, asyncpg.PostgresError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-checkout-"))
    meta: dict[str, Any] = {
        "benchmark": "checkout", "started_at": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench.checkout", *(sys.argv[1:] if argv is None else argv)],
        "machine": {**report.machine(REPO), "postgresql": postgres},
        "load_average_at_start": report.load_average(),
    }
    try:
        _say(f"database {db.masked_url}: rebuilding with {options.products:,} products")
        t0 = time.monotonic()
        shelf = prepare(db, options, workdir)
        before, _, _ = asyncio.run(database.stock_and_sales(db))
        _say(f"  ready in {time.monotonic() - t0:.1f}s; {len(shelf.hot)} hot SKUs with {shelf.hot_stock:,} each, "
             f"scarce {shelf.scarce} with {shelf.scarce_stock}; {len(shelf.hot_carts):,} carts with hot SKUs and "
             f"{len(shelf.scarce_carts):,} with the scarce one ({shelf.carts_seconds:.0f}s)")
    except (DatabaseError, OSError, asyncpg.PostgresError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {
        "workers": WORKERS, "connections": options.connections, "warmup_s": options.warmup,
        "duration_s": options.duration, "flow_duration_s": options.flow_duration, "products": options.products,
        "hot_skus": len(shelf.hot), "hot_stock_each": shelf.hot_stock, "scarce_sku": shelf.scarce,
        "scarce_stock": shelf.scarce_stock, "scarce_share": options.scarce_share, "max_rate": options.max_rate,
        "generator_client": options.client, "database": db.masked_url,
        "cart_lines": "1-3 distinct hot SKUs, 1-2 units each; a scarce cart: 1 scarce unit and 0-2 hot lines",
    }
    meta["cart_setup"] = {"hot_carts": len(shelf.hot_carts), "scarce_carts": len(shelf.scarce_carts),
                          "seconds": round(shelf.carts_seconds, 1),
                          "how": "before the server starts, with the shop's own Cart and insert_cart, in the database"}
    port = servers.free_port()
    env = database.shop_env(db)
    # --no-worker: `shop serve` is gunicorn's master, its process group the server the CPU meter measures
    argv = [database.shop_command(), "serve", "--no-worker", "--workers", str(WORKERS), "--host", servers.HOST,
            "--port", str(port)]
    meta["server"] = {"argv": ["shop", *argv[1:]], "config": _shop_config(env, workdir)}
    results: dict[str, Any] = {}
    try:
        with Server("shop", argv, port=port, ready_path="/readyz", env=env, cwd=workdir,
                    log_path=workdir / "shop.log") as server:
            _say(f"shop serve --workers {WORKERS} on port {port}")
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(drive(db, port, shelf, server.pid, options))
        meta["server"]["exit_code"] = server.exit_code
    except (ServerError, OSError, ValueError, KeyError) as exc:
        meta["error"] = f"{type(exc).__name__}: {exc}"
        _say(f"  [red]{meta['error']}[/]; server log in {workdir}")
    after, sold, statuses = asyncio.run(database.stock_and_sales(db))  # the server has stopped: nothing is in flight
    checkout = results.get("checkout")
    checks = oversell_checks(before, after, sold, statuses, created=results.get("created_201", 0), shelf=shelf,
                             scarce_attempts=checkout["scarce_attempts"] if checkout else 0)
    found = verdicts(checkout, checks) if checkout else []
    document = {
        **meta, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_end": report.load_average(),
        **{k: v for k, v in results.items() if k != "created_201"},
        "oversell_checks": checks, "oversold": checks["oversold"],
        "floor": {"orders_per_s": FLOOR_ORDERS_PER_S, "p99_ms_below": P99_LIMIT_MS, "connections": 16,
                  "oversold": 0, "applies_to": "checkout"},
        "verdicts": found, "passed": bool(found) and all(v["passed"] for v in found),
        "notes": NOTES,
    }
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-checkout.json"
    report.save(output, document)
    _say(f"database checks: paid orders {checks['paid_orders']} / 201 answers {checks['created_201']}, "
         f"oversold {checks['oversold']}, scarce sold {checks['scarce']['sold']} of {shelf.scarce_stock} "
         f"({checks['scarce']['attempts']} attempts): {'[green]PASS[/]' if checks['passed'] else '[red]FAIL[/]'}")
    for v in found:
        _say(f"  {v['check']}: {v['value']} (limit {v['limit']}) {'[green]PASS[/]' if v['passed'] else '[red]FAIL[/]'}")
    _say(f"results: {output}")
    if "error" not in meta:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if "error" not in meta else 1


NOTES = [
    "Load generator: Python in the benchmark's own process (uvloop), on the same 2 cores as the 2 workers and "
    "PostgreSQL. With --client raw (the default) each of the 16 clients holds one plain HTTP/1.1 keep-alive "
    "connection and sends one request at a time, as wrk does, for about as little CPU per request "
    "(generator_cpu); httpx.AsyncClient (--client httpx) measured 2-4 ms of CPU per request on this machine and "
    "topped out at about 280 requests/s on a whole core against the bare ASGI app (plain connections: 0.04 ms, "
    "16,000 requests/s), below the floor it is to check. wrk is not used because every checkout needs its "
    "own cart, answers are told apart by status (201, 409), the 201s are checked against the database, and wrk "
    "abandons the requests in flight when it stops (their orders would be placed uncounted).",
    "Latency runs from just before a request is written to when its answer has been read; percentiles are exact "
    "(nearest rank over every answer in the window). Closed loop: when the server saturates, the percentiles "
    "understate what an open stream of shoppers would see.",
    "Carts are made in the database with the shop's own Cart and insert_cart before the server starts (over the "
    "API it would take ten minutes here); the flow scenario measures the cart API. Scarce carts are only used "
    "inside the measured window, so the race for its last units happens under full load.",
    "ANALYZE runs after the carts are made and again 80% into the warm-up: autovacuum is off on this machine, "
    "and a prepared statement planned on an empty table keeps its sequential scan until the statistics change.",
    "Stock levels are set with SqlStock.set_levels after seeding; the catalogue's in_stock projection of those "
    "products is not updated (checkout does not read it).",
]


if __name__ == "__main__":
    raise SystemExit(main())
