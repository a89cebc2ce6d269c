"""The mixed-load benchmark's shoppers: a checkout stream at a fixed rate (open loop) and the staleness probe,
which buys one unit of a product only it buys and reads that product's page until every worker shows the sale.

Used by bench/mixed.py; see bench/README.md ("The mixed-load benchmark").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from bench import catalog, database, servers
from bench.checkout import _TRANSPORT_ERRORS, TIMEOUT_S, RawConnection, Sample, _checkout_body, _problem_type
from bench.database import BenchDatabase

DETAIL_PATH = catalog.DETAIL_PATH
PROBE_EVERY_S = 0.5  # one probe sale about this often
POLL_EVERY_S = 0.005  # after it, a read of the page on a new connection this often
PROBE_READS = 4  # ... with at most this many in flight
CONFIRM_S = 0.1  # ... until reads issued over this long have all shown the sale
GIVE_UP_S = 5.0
MAX_IN_FLIGHT = 256  # orders of the stream open at once; beyond, a due order is skipped (and counted)

# ---- the catalogue the loads use ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Product:
    slug: str
    sku: str  # the one SKU of it that is bought


@dataclass(frozen=True, slots=True)
class Catalogue:
    detail: list[Product]  # the detail rotation
    hot: list[Product]  # bought by the checkout stream; also in the detail rotation
    probe: list[Product]  # bought by the probe alone; in both rotations
    words: list[str]  # searched for; taken from the products' titles


class HttpConnection(RawConnection):
    """bench.checkout's connection (one request at a time, kept alive; as cheap for the generator as wrk), for any
    method, with headers, and closed after the answer if asked."""

    async def request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
                      close: bool = False) -> tuple[int, dict[bytes, bytes], bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(servers.HOST, self._port)
        reader, writer = self._streams
        sent = [f"{method} {path} HTTP/1.1", f"Host: {self._host.decode()}",
                *(f"{name}: {value}" for name, value in (headers or {}).items())]
        if method != "GET":
            sent += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if close:
            sent.append("Connection: close")
        writer.write(("\r\n".join(sent) + "\r\n\r\n").encode() + body)
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].split(b"\r\n")
            fields = {name.strip().lower(): value.strip() for name, value in (ln.split(b":", 1) for ln in lines[1:])}
            content = await reader.readexactly(int(fields.get(b"content-length", b"0")))  # the shop never chunks
        except BaseException:
            await self.close()
            raise
        if close or fields.get(b"connection") == b"close":
            await self.close()
        return int(lines[0][9:12]), fields, content


@dataclass(slots=True)
class Read:
    issued: float
    status: int
    available: int | None
    cache: str  # the answer's x-cache: hit, miss, or empty


@dataclass(slots=True)
class Sale:
    """One of the probe's sales and the reads of the product's page that followed it."""

    slug: str
    sku: str
    sold_at: float  # when the checkout's 201 was read (perf_counter)
    before: int  # the availability before the sale, and the one every read after it must show
    after: int
    cached_before: bool  # a read just before the sale was answered from the response cache
    reads: list[Read] = field(default_factory=list)

    def stale(self) -> list[Read]:
        return [r for r in self.reads if r.status == 200 and r.available != self.after]

    def settled_at(self) -> float | None:
        """When the first read was issued after which no read showed anything but the sale (None: none yet)."""
        last_stale = max((r.issued for r in self.stale()), default=None)
        later = [r.issued for r in self.reads if r.status == 200 and (last_stale is None or r.issued > last_stale)]
        return min(later) if later else None

    @property
    def staleness_s(self) -> float | None:
        settled = self.settled_at()
        return None if settled is None else max(0.0, settled - self.sold_at)


@dataclass(slots=True)
class Load:
    """What the checkout stream and the probe did in one phase, warm-up included."""

    samples: list[Sample] = field(default_factory=list)  # every request, by kind: "stream checkout", "probe read"...
    problems: Counter[str] = field(default_factory=Counter)  # "kind status problem type" of the failed ones
    sales: list[Sale] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight_max: int = 0
    skipped: int = 0  # orders due while MAX_IN_FLIGHT were open, not started
    late_max_s: float = 0.0  # how far behind its schedule the stream started an order, at the worst

    async def call(self, conn: HttpConnection, kind: str, method: str, path: str, body: bytes = b"",
                   headers: Mapping[str, str] | None = None, *, close: bool = False,
                   ) -> tuple[int, dict[bytes, bytes], bytes]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT_S):
                status, fields, content = await conn.request(method, path, body, headers, close=close)
        except _TRANSPORT_ERRORS as exc:
            await conn.close()
            status, fields, content = 0, {}, type(exc).__name__.encode()
        ended = time.perf_counter()
        self.samples.append(Sample(kind, ended, ended - started, status))
        if status != (200 if method == "GET" else 201):
            self.problems[f"{kind} {status} {_problem_type(content)}"] += 1
        return status, fields, content


async def buy(conn: HttpConnection, load: Load, who: str, sku: str, quantity: int) -> int:
    """What a shopper does: a cart, the SKU put in it, checkout with the test card under an Idempotency-Key; the
    checkout's status (or that of the step that failed)."""
    status, _, content = await load.call(conn, f"{who} cart", "POST", "/api/v1/carts")
    if status != 201:
        return status
    cart_id = orjson.loads(content)["id"]
    status, _, _ = await load.call(conn, f"{who} item", "POST", f"/api/v1/carts/{cart_id}/items",
                                   orjson.dumps({"sku": sku, "quantity": quantity}))
    if status != 201:
        return status
    status, _, _ = await load.call(conn, f"{who} checkout", "POST", "/api/v1/checkout", _checkout_body(cart_id),
                                   {"Idempotency-Key": uuid.uuid4().hex})
    return status


async def checkout_stream(port: int, hot: Sequence[Product], rate: float, load: Load) -> None:
    """Orders started at a fixed rate whatever the answers (open loop), 1-2 units of a hot SKU each, on a free
    keep-alive connection or a new one."""
    rng = random.Random(11)
    free: deque[HttpConnection] = deque()  # first in, first out: none sits idle past the server's keep-alive
    running: set[asyncio.Task[None]] = set()

    async def order(sku: str, quantity: int) -> None:
        conn = free.popleft() if free else HttpConnection(port)
        try:
            await buy(conn, load, "stream", sku, quantity)
        finally:
            free.append(conn)

    started = time.perf_counter()
    for n in itertools.count():
        behind = time.perf_counter() - (started + n / rate)
        if behind < 0:
            await asyncio.sleep(-behind)
        load.late_max_s = max(load.late_max_s, behind)
        if load.stopping.is_set():
            break
        if len(running) >= MAX_IN_FLIGHT:
            load.skipped += 1
            continue
        task = asyncio.create_task(order(rng.choice(hot).sku, rng.randint(1, 2)))
        running.add(task)
        task.add_done_callback(running.discard)
        load.in_flight_max = max(load.in_flight_max, len(running))
    await asyncio.gather(*running)
    for conn in free:
        await conn.close()


def _available(content: bytes, sku: str) -> int | None:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return next((int(v["available"]) for v in orjson.loads(content)["variants"] if v["sku"] == sku), None)
    return None


async def read_page(port: int, load: Load, product: Product) -> Read:
    """The product's page on a new connection, so either worker may answer."""
    issued = time.perf_counter()
    status, fields, content = await load.call(HttpConnection(port), "probe read", "GET",
                                              DETAIL_PATH.format(slug=product.slug), close=True)
    return Read(issued, status, _available(content, product.sku) if status == 200 else None,
                fields.get(b"x-cache", b"").decode())


async def watch(port: int, product: Product, sale: Sale, load: Load) -> None:
    """Read the product's page every POLL_EVERY_S from the sale on (at most PROBE_READS at once, so a slow server is
    not flooded), until the reads issued over CONFIRM_S have all shown the sale and none is left in flight, or
    GIVE_UP_S has passed."""
    running: set[asyncio.Task[None]] = set()

    async def read() -> None:
        sale.reads.append(await read_page(port, load, product))

    tick = time.perf_counter()
    while (now := time.perf_counter()) - sale.sold_at < GIVE_UP_S:
        settled = sale.settled_at()
        confirmed = settled is not None and now - settled >= CONFIRM_S
        if confirmed and not running:  # a read still in flight may yet be stale, and move `settled` on
            break
        if not confirmed and len(running) < PROBE_READS:
            task = asyncio.create_task(read())
            running.add(task)
            task.add_done_callback(running.discard)
        tick = max(tick + POLL_EVERY_S, now)
        await asyncio.sleep(tick - now)
    await asyncio.gather(*running)


async def _availability(db: BenchDatabase, skus: Sequence[str]) -> dict[str, int]:
    """What the main store says can be bought of these SKUs (quoted: they come from that store)."""
    conn = await database.connect(db)
    try:
        rows = await conn.fetch("SELECT sku, on_hand - reserved AS available FROM stock_levels WHERE sku IN ("
                                + ", ".join(f"'{sku}'" for sku in skus) + ")")
    finally:
        await conn.close()
    return {r["sku"]: int(r["available"]) for r in rows}


async def probe(db: BenchDatabase, port: int, products: Sequence[Product], load: Load) -> None:
    """About twice a second: read the page of the next probe product (was it cached?), buy one unit of it, then
    watch its page until it shows the sale."""
    expected = await _availability(db, [p.sku for p in products])  # nothing else buys them
    conn = HttpConnection(port)
    for product in itertools.cycle(products):
        if load.stopping.is_set():
            break
        started = time.perf_counter()
        before = expected[product.sku]
        cached = (await read_page(port, load, product)).cache == "hit"
        if await buy(conn, load, "probe", product.sku, 1) == 201:
            sale = Sale(product.slug, product.sku, time.perf_counter(), before, before - 1, cached)
            expected[product.sku] = sale.after
            await watch(port, product, sale, load)
            load.sales.append(sale)
        else:  # the sale may or may not have happened: ask the store
            expected.update(await _availability(db, [product.sku]))
        await asyncio.sleep(max(0.0, started + PROBE_EVERY_S - time.perf_counter()))
    await conn.close()
