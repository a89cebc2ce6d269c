"""Mixed-load benchmark: catalogue reads at 32 connections while a checkout stream buys from the same products, and
how soon a sale shows on the product's cached page.

Run from the repository root: `.venv/bin/python -m bench.mixed [--database mariadb] [--duration 15] [--rate 60]`.
See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from rich.table import Table

from bench import catalog, database, report, servers, wrk
from bench.catalog import Target
from bench.checkout import (
    Shelf,
    _stock_up,
    latency_ms,
    oversell_checks,
    percentile,
)
from bench.cpu import CpuMeter
from bench.database import DRIVER_ERRORS, BenchDatabase, DatabaseError
from bench.report import Run
from bench.servers import Server, ServerError
from bench.shoppers import (
    CONFIRM_S,
    GIVE_UP_S,
    POLL_EVERY_S,
    PROBE_EVERY_S,
    Catalogue,
    HttpConnection,
    Load,
    Product,
    Sale,
    checkout_stream,
    probe,
)
from bench.wrk import WrkError, WrkResult
from shop.domain.inventory import StockLevel

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PATHS_SCRIPT = REPO / "bench" / "paths.lua"
URLS = {"postgresql": ("SHOP_BENCH_MIXED_PG_URL", "postgresql://postgres@127.0.0.1:5432/shop_bench_mixed"),
        "mariadb": ("SHOP_BENCH_MIXED_MARIADB_URL", "mysql://root@127.0.0.1:3306/shop_bench_mixed")}
WORKERS = 2
LIST_PATH = catalog.LIST_PATH
DETAIL_PATH = catalog.DETAIL_PATH
DETAIL_PRODUCTS = 1_000  # the detail run's rotation, spread over the catalogue
HOT_EVERY = 5  # every fifth product of that rotation is hot: the checkout stream buys one SKU of each
PROBE_PRODUCTS = 4  # bought by the probe alone, so the availability its pages must show after each sale is exact
HOT_STOCK = 1_000_000  # never sells out: every sale moves the availability, none is refused
PROBE_STOCK = 100_000
SEARCH_WORDS = 24
# the floors (issue 13, item 3)
STALENESS_MAX_S = 1.0
RATIO_FLOOR = 0.40
P99_LIMIT_MS = report.P99_LIMIT_MS
ORDERS_FLOOR = 50.0
SETUP_ERRORS: tuple[type[Exception], ...] = (WrkError, DatabaseError, *DRIVER_ERRORS)
PHASE_ERRORS: tuple[type[Exception], ...] = (*SETUP_ERRORS, KeyError, ValueError)
console, _say = catalog.console, catalog._say


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--database", choices=tuple(URLS), default="postgresql",
        help="where the shop's stores live (default postgresql; the URL from SHOP_BENCH_MIXED_PG_URL or "
             "SHOP_BENCH_MIXED_MARIADB_URL)")
    add("--duration", type=catalog._seconds(300), default=15, metavar="SECONDS",
        help="length of each measured run (default 15, at most 300)")
    add("--warmup", type=catalog._seconds(60), default=3, metavar="SECONDS",
        help="discarded warm-up before each phase, all loads running (default 3)")
    add("--rounds", type=int, choices=range(1, 11), default=3, metavar="N",
        help="interleaved rounds of bare app, list phase and detail phase; verdicts use the median (default 3)")
    add("--rate", type=float, default=52.0,
        help="orders/s the checkout stream starts, open loop (default 52: the floor's 50 and a margin)")
    add("--reuse", action="store_true", help="keep the database if it has exactly 10,000 products")
    add("--output", type=Path, default=None,
        help="where to write the JSON (default bench/results/<UTC date>-mixed-<database>.json)")
    options = parser.parse_args(argv)
    if not 1 <= options.rate <= 1000:
        parser.error("--rate is between 1 and 1,000 orders/s")
    return options


# ---- the catalogue the loads use ---------------------------------------------------------------------------

async def _choose(db: BenchDatabase) -> Catalogue:
    """Products spread evenly over the published catalogue, one SKU each, and words of their titles. Only products
    the catalogue already lists as in stock: giving a SKU stock directly (SqlStock.set_levels) does not move that
    flag, and a flag put right later would move the catalogue version, which empties every cache."""
    conn = await database.connect(db)
    try:
        rows = await conn.fetch("SELECT p.slug, p.title, v.sku FROM products p JOIN variants v ON v.product_id = p.id "
                                "WHERE p.published AND p.in_stock ORDER BY p.id, v.sku")
    finally:
        await conn.close()
    first: dict[str, Product] = {}
    for row in rows:
        first.setdefault(row["slug"], Product(row["slug"], row["sku"]))
    listed = list(first.values())
    if len(listed) < DETAIL_PRODUCTS:
        raise DatabaseError(f"only {len(listed)} products in stock for a rotation of {DETAIL_PRODUCTS}")
    detail = [listed[i * len(listed) // DETAIL_PRODUCTS] for i in range(DETAIL_PRODUCTS)]
    probe = [detail[i * DETAIL_PRODUCTS // PROBE_PRODUCTS + 2] for i in range(PROBE_PRODUCTS)]  # never hot
    words = sorted({w.lower() for row in rows for w in row["title"].split() if w.isalpha() and len(w) >= 4})
    return Catalogue(detail=detail, hot=detail[::HOT_EVERY], probe=probe,
                     words=[words[i * len(words) // SEARCH_WORDS] for i in range(min(SEARCH_WORDS, len(words)))])


def _since(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """What was added to each count (a reused database holds the orders of earlier runs)."""
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}


def list_paths(catalogue: Catalogue) -> list[str]:
    """The list phase's rotation: most of it the first page, then other pages, the category tree, searches, and the
    probe's products, whose pages must be in both workers' caches when the probe sells one."""
    paths = [LIST_PATH] * 60 + [f"{LIST_PATH}&page={page}" for page in range(2, 12) for _ in range(2)]
    paths += ["/api/v1/categories"] * 8 + [f"/api/v1/products?q={word}" for word in catalogue.words[:8]]
    paths += [DETAIL_PATH.format(slug=p.slug) for p in catalogue.probe]
    random.Random(3).shuffle(paths)
    return paths


def detail_paths(catalogue: Catalogue) -> list[str]:
    """The detail phase's rotation: every product of the rotation once, in a shuffled order, with a search after
    every ninth (a tenth of the requests)."""
    details = [DETAIL_PATH.format(slug=p.slug) for p in catalogue.detail]
    random.Random(5).shuffle(details)
    words = itertools.cycle(catalogue.words)
    paths: list[str] = []
    for n, path in enumerate(details, start=1):
        paths += [path, f"/api/v1/products?q={next(words)}"] if n % 9 == 0 else [path]
    return paths


# ---- the servers and where their CPU goes ------------------------------------------------------------------

@dataclass(slots=True)
class Shop:
    server: Server
    info: dict[str, Any]


def start_shop(db: BenchDatabase, stack: contextlib.ExitStack, *, workdir: Path) -> Shop:
    """`shop serve` with the response cache on, as `make run` serves it (the background worker too), in a folder of
    its own, no SHOP_* inherited."""
    home = workdir / "shop"
    home.mkdir(exist_ok=True)
    env = database.shop_env(db, SHOP_RESPONSE_CACHE="true")
    port = servers.free_port()
    argv = [database.shop_command(), "serve", "--workers", str(WORKERS), "--host", servers.HOST, "--port", str(port)]
    info: dict[str, Any] = {
        "argv": ["shop", *argv[1:]], "workers": WORKERS,
        "env": {"SHOP_RESPONSE_CACHE": "true", "SHOP_MAIN_DB_URL": db.masked_url},
        "config": catalog._shop_config(env, home), "background_worker": "run by `shop serve` itself"}
    _say(f"[bold]shop[/] (response cache on; the background worker run by `shop serve`) on port {port}")
    server = stack.enter_context(Server("shop", argv, port=port, ready_path="/readyz", env=env, cwd=home,
                                        log_path=workdir / "shop.log"))
    return Shop(server, info)


class Account:
    """bench.cpu's account of a measured run, with two more shares taken out of `other`: the rest of the shop
    (`shop serve` starts gunicorn and the background worker in sessions of their own, so gunicorn's process group,
    `server`, holds the web workers alone) and MariaDB (bench.cpu knows PostgreSQL's processes only)."""

    def __init__(self, web: int | None, more: Mapping[str, Sequence[int]]) -> None:
        self._web = CpuMeter(web)
        self._more = {name: [CpuMeter(group) for group in groups] for name, groups in more.items()}

    @classmethod
    def of(cls, shop: Shop, db: BenchDatabase) -> Account:
        groups = shop.server.process_groups()
        web = next((g for g, argvs in groups.items() if any("gunicorn" in a for a in argvs)), None)
        more = {"shop_rest": [g for g in groups if g != web]}
        if db.kind == "mariadb":
            found = subprocess.run(["pgrep", "-x", "mariadbd|mysqld"], capture_output=True, text=True, check=False)
            more["mariadb"] = sorted({os.getpgid(int(pid)) for pid in found.stdout.split()})
        return cls(web, more)

    def start(self) -> None:
        for meter in [self._web, *itertools.chain(*self._more.values())]:
            meter.start()

    def stop(self, requests: int) -> dict[str, Any]:
        account = self._web.stop(requests)
        capacity = account["wall_s"] * (os.cpu_count() or 1)
        seconds, share = account["seconds"], account["share"]
        for name, meters in self._more.items():
            used = sum(meter.stop(requests)["seconds"]["server"] for meter in meters)
            seconds[name], seconds["other"] = round(used, 2), round(max(0.0, seconds["other"] - used), 2)
            share[name], share["other"] = round(used / capacity, 3), round(seconds["other"] / capacity, 3)
            account["ms_per_request"][name] = round(1000 * used / requests, 3) if requests else None
        return account


# ---- the phases --------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Phase:
    """A catalogue read load, measured with the checkout stream and the probe running beside it, once a round."""

    target: Target  # bench.catalog's: the run, the server, the wrk script and its path file, each round's figures
    loads: list[dict[str, Any]] = field(default_factory=list)  # each round's stream and probe figures
    sales: list[Sale] = field(default_factory=list)  # the probe's sales inside the measured runs
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # every request, warm-ups included
    problems: Counter[str] = field(default_factory=Counter)


async def run_phase(phase: Phase, *, db: BenchDatabase, catalogue: Catalogue, account: Account, wrk_path: str,
                    options: argparse.Namespace) -> tuple[WrkResult, str, dict[str, Any]]:
    """Warm-up, then the measured wrk run, with the stream and the probe running from the start to the end."""
    target, load = phase.target, Load()
    port, url = target.server.port, target.server.url("/")
    loads = [asyncio.create_task(checkout_stream(port, catalogue.hot, options.rate, load)),
             asyncio.create_task(probe(db, port, catalogue.probe, load))]
    try:
        await asyncio.to_thread(wrk.run, wrk_path, url, duration_s=options.warmup, script=target.script,
                                script_args=target.script_args)
        await asyncio.to_thread(account.start)
        start = time.perf_counter()
        result, text = await asyncio.to_thread(wrk.run, wrk_path, url, duration_s=options.duration,
                                               script=target.script, script_args=target.script_args)
        end = time.perf_counter()
        cpu = await asyncio.to_thread(account.stop, result.requests)
    finally:
        load.stopping.set()
        await asyncio.gather(*loads)
    phase.answers.update((s.kind, s.status) for s in load.samples)
    phase.problems.update(load.problems)
    phase.sales += [s for s in load.sales if start <= s.sold_at < end]
    phase.loads.append(load_figures(load, start, end, options.rate))
    return result, text, cpu


def load_figures(load: Load, start: float, end: float, rate: float) -> dict[str, Any]:
    """The stream's and the probe's figures over a measured run."""
    window = [s for s in load.samples if start <= s.end < end]
    checkouts = [s for s in window if s.kind == "stream checkout"]
    orders = sum(1 for s in checkouts if s.status == 201)
    return {
        "window_s": round(end - start, 2), "rate_asked": rate, "orders": orders,
        "orders_per_s": round(orders / (end - start), 1),
        "checkout_latency_ms": latency_ms(checkouts),
        "by_kind_and_status": {f"{kind} {status}": n for (kind, status), n in
                               sorted(Counter((s.kind, s.status) for s in window).items())},
        "in_flight_max": load.in_flight_max, "skipped": load.skipped, "late_max_ms": round(1000 * load.late_max_s, 1),
        "staleness": staleness([s for s in load.sales if start <= s.sold_at < end]),
    }


def staleness(sales: Sequence[Sale]) -> dict[str, Any]:
    """Count and percentiles of the probe's staleness, in ms; `never_fresh` sales had no settled read in time."""
    values = sorted(round(1000 * s.staleness_s, 1) for s in sales if s.staleness_s is not None)
    stale = [r for s in sales for r in s.stale()]
    return {"count": len(sales), "never_fresh": sum(1 for s in sales if s.staleness_s is None),
            "cached_before": sum(1 for s in sales if s.cached_before),
            "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "max_ms": values[-1] if values else None,
            "mean_ms": round(sum(values) / len(values), 1) if values else None,
            "reads": sum(len(s.reads) for s in sales), "stale_reads": len(stale),
            "stale_reads_by_x_cache": dict(Counter(r.cache or "none" for r in stale))}


def _measure_phase(phase: Phase, runner: asyncio.Runner, round_no: int, **kwargs: Any) -> None:
    """One round of a phase; a failure is kept on its run and the phase is measured no more (as bench.catalog)."""
    run = phase.target.run
    try:
        measured = runner.run(run_phase(phase, **kwargs))
    except PHASE_ERRORS as exc:
        run.error = f"round {round_no}: {type(exc).__name__}: {exc}"
        _say(f"  {run.label}: [red]{run.error}[/]")
        return
    phase.target.measured.append(measured)
    result, found = measured[0], phase.loads[-1]
    late = found["staleness"]
    _say(f"  round {round_no}, {run.label}: {result.requests_per_sec:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
         f"p99 {result.p99_ms:.2f} ms, {result.non_2xx} non-2xx, {result.socket_error_total} socket errors; "
         f"checkout {found['orders_per_s']} orders/s, p99 {_ms(found['checkout_latency_ms']['p99'])} ms; staleness "
         f"n={late['count']} ({late['cached_before']} cached before), p50 {_ms(late['p50_ms'])}, "
         f"max {_ms(late['max_ms'])} ms")
    other = measured[2]["share"]["other"]
    if other is not None and other > catalog.OTHER_CPU_WARNING:
        _say(f"  [yellow]warning: other processes used {other:.0%} of the machine's CPU during this run[/]")


async def check_paths(port: int, paths: Sequence[str]) -> Counter[int]:
    """Every distinct path of the rotations once, before any load (which also fills the caches): their statuses."""
    load, queue = Load(), deque(dict.fromkeys(paths))

    async def reader() -> None:
        conn = HttpConnection(port)
        while queue:
            await load.call(conn, "check", "GET", queue.popleft())
        await conn.close()

    await asyncio.gather(*(reader() for _ in range(4)))
    return Counter(s.status for s in load.samples)


# ---- verdicts, table, JSON ---------------------------------------------------------------------------------

def shopper_errors(phases: Sequence[Phase]) -> int:
    """Answers to the stream's and the probe's requests that were not what a shopper expects: 201 for a cart, an
    item and a checkout (the SKUs never sell out), 200 for a read; 0 is no answer at all. Warm-ups included."""
    return sum(n for phase in phases for (kind, status), n in phase.answers.items()
               if status != (200 if kind.endswith("read") else 201))


def verdicts(phases: Sequence[Phase], checks: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The floors: each phase against its own, then the probe's worst staleness, the shoppers' errors, the stock."""
    found: list[dict[str, Any]] = []

    def check(name: str, run: str, value: float | None, limit: float, passed: bool) -> None:
        found.append({"run": run, "check": name, "value": value, "limit": limit, "passed": bool(passed)})

    for phase in phases:
        run = phase.target.run
        whole = run.error is None  # a round that could not be measured fails every check of its phase
        check("ratio", run.target, run.ratio_median, RATIO_FLOOR,
              whole and run.ratio_median is not None and run.ratio_median >= RATIO_FLOOR)
        check("p99_ms", run.target, run.p99_median_ms, P99_LIMIT_MS,
              whole and run.p99_median_ms is not None and run.p99_median_ms < P99_LIMIT_MS)
        check("errors", run.target, run.errors_total, 0, whole and run.errors_total == 0)
        slowest = min((load["orders_per_s"] for load in phase.loads), default=None)
        check("orders_per_s", run.target, slowest, ORDERS_FLOOR,
              whole and slowest is not None and slowest >= ORDERS_FLOOR)
    late = staleness([sale for phase in phases for sale in phase.sales])
    check("staleness_max_ms", "probe", late["max_ms"], 1000 * STALENESS_MAX_S,
          late["count"] > 0 and not late["never_fresh"] and late["max_ms"] <= 1000 * STALENESS_MAX_S)
    errors = shopper_errors(phases)
    check("shopper_errors", "checkout", errors, 0, errors == 0)
    check("oversold", "checkout", checks["oversold"], 0, checks["passed"])
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_table(bare: Run, phases: Sequence[Phase], found: Sequence[dict[str, Any]], title: str) -> None:
    grid = Table(title=title, title_justify="left")
    for name in ("run", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx", "sock err", "orders/s", "checkout p50/p99",
                 "staleness p50/p99/max", "other CPU", "verdict"):
        grid.add_column(name, justify="left" if name in ("run", "verdict") else "right")
    failed = {(v["run"], v["check"]) for v in found if not v["passed"]}
    for run, phase in [(bare, None), *((p.target.run, p) for p in phases)]:
        result = run.result
        if result is None:
            grid.add_row(run.label, *["-"] * 10, f"[red]{run.error or 'not run'}[/]")
            continue
        ratios = [r["ratio_to_bare"] for r in run.rounds if r.get("ratio_to_bare") is not None]
        ratio = "-" if phase is None or run.ratio_median is None else (
            f"{run.ratio_median:.2f}" + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""))
        orders = checkout = late = verdict = "-"
        if phase is not None:
            load = phase.loads[next(i for i, m in enumerate(phase.target.measured) if m[0] is result)]
            orders = f"{min(lo['orders_per_s'] for lo in phase.loads):.1f}"  # the lowest round: what the floor checks
            checkout = f"{_ms(load['checkout_latency_ms']['p50'])} / {_ms(load['checkout_latency_ms']['p99'])}"
            found_late = staleness(phase.sales)
            late = " / ".join(_ms(found_late[k]) for k in ("p50_ms", "p99_ms", "max_ms"))
            mine = sorted(check for name, check in failed if name == run.target)
            verdict = "[green]PASS[/]" if not mine else f"[bold red]FAIL[/] ({', '.join(mine)})"
        other = run.cpu.get("share", {}).get("other")
        grid.add_row(run.label, f"{result.requests_per_sec:,.0f}", f"{result.p50_ms:.2f}",
                     f"{run.p99_median_ms or result.p99_ms:.2f}", ratio, str(result.non_2xx),
                     str(result.socket_error_total), orders, checkout, late,
                     "-" if other is None else f"{other:.0%}", verdict)
    console.print(grid)
    for v in found:
        if v["run"] in ("probe", "checkout"):
            _say(f"{v['run']} {v['check']}: {v['value']} (limit {v['limit']}) "
                 f"{'[green]PASS[/]' if v['passed'] else '[bold red]FAIL[/]'}")
    passed = bool(found) and all(v["passed"] for v in found)
    _say(f"floors: {'[green]all PASS[/]' if passed else '[bold red]FAIL[/]'} "
         f"({sum(v['passed'] for v in found)}/{len(found)} checks)")


def _sale_dict(sale: Sale, phase: str) -> dict[str, Any]:
    stale = sale.stale()
    return {"phase": phase, "slug": sale.slug, "available_after": sale.after, "cached_before": sale.cached_before,
            "staleness_ms": None if sale.staleness_s is None else round(1000 * sale.staleness_s, 1),
            "reads": len(sale.reads), "stale_reads": len(stale),
            "last_stale_read_issued_ms": round(1000 * (max(r.issued for r in stale) - sale.sold_at), 1) if stale
            else None, "stale_x_cache": dict(Counter(r.cache or "none" for r in stale))}


def phase_dict(phase: Phase) -> dict[str, Any]:
    out = report.run_dict(phase.target.run, None)
    out.update(load_rounds=phase.loads, staleness=staleness(phase.sales),
               answers={f"{kind} {status}": n for (kind, status), n in sorted(phase.answers.items())},
               problems=dict(phase.problems))
    return out


NOTES = [
    "Each round: the bare app alone, then the list phase, then the detail phase; one more bare run closes the last "
    "round. A phase's ratio is its req/s over the mean of the bare runs before and after it; the verdicts use the "
    "median round (bench.catalog.summarise), the orders/s check the lowest round.",
    "In a phase, wrk (-t2 -c32, bench/paths.lua over the phase's path file), the checkout stream and the probe run "
    "together from the start of the warm-up to the end of the measured run; only what falls inside the measured run "
    "is counted in its figures. The stream and the probe run in this process (uvloop); their CPU is `harness`.",
    "The stream is open loop: an order is started every 1/rate s whatever the answers, on a free keep-alive "
    "connection or a new one (in_flight_max, skipped, late_max_ms say whether it kept to its schedule).",
    "Staleness: the probe buys one unit of one of its own products, takes the time the checkout's 201 was read, then "
    "reads the product's page on a new connection every 5 ms until the reads issued over 100 ms have all shown the "
    "new availability (a later stale read extends it). A sale's staleness runs from the 201 to the first read issued "
    "after which no read showed anything else. A read cannot choose its worker: the two workers accept new "
    "connections as they come.",
    "CPU: `server` is gunicorn's process group (the web workers); `shop_rest` the rest of the shop (`shop serve` "
    "itself and the background worker, in sessions of their own); `postgres` every PostgreSQL process and `mariadb` "
    "MariaDB's, including what other users of the same database servers did meanwhile.",
]


# ---- the run -----------------------------------------------------------------------------------------------

def _write_paths(workdir: Path, name: str, paths: Sequence[str]) -> Path:
    path = workdir / f"{name}-paths.txt"
    path.write_text("\n".join(paths) + "\n")
    return path


def measure(db: BenchDatabase, catalogue: Catalogue, *, wrk_path: str, workdir: Path, options: argparse.Namespace,
            meta: dict[str, Any]) -> tuple[Run, list[Phase]]:
    """Start the bare app and the shop, then the rounds; a server that did not start is an error in `meta`."""
    runs = {"list": list_paths(catalogue), "detail": detail_paths(catalogue)}
    bare: Target | Run = Run(target=report.BASELINE, label="bare ASGI", path="/")
    phases: list[Phase] = []
    with contextlib.ExitStack() as stack, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            bare = catalog.start_reference(catalog.REFERENCES[0], stack, workdir=workdir)
            shop = start_shop(db, stack, workdir=workdir)
            meta["server"] = shop.info
            statuses = runner.run(check_paths(shop.server.port, [*runs["list"], *runs["detail"]]))
            if set(statuses) != {200}:
                raise ServerError(f"the rotations' paths answered {dict(statuses)} before any load")
            account = Account.of(shop, db)
        except (ServerError, OSError) as exc:
            meta["error"] = f"{type(exc).__name__}: {exc}"
            _say(f"  [red]{meta['error']}[/]")
            return bare if isinstance(bare, Run) else bare.run, phases
        if isinstance(bare, Run):
            meta["error"] = f"the bare app: {bare.error}"
            return bare, phases
        for name, paths in runs.items():
            run = Run(target=name, label=name, path=LIST_PATH if name == "list" else DETAIL_PATH,
                      response_cache=True, server={"paths": len(paths), "distinct_paths": len(set(paths))})
            phases.append(Phase(Target(run, shop.server, script=PATHS_SCRIPT,
                                       script_args=[str(_write_paths(workdir, name, paths))], probe_path=paths[0])))
        _say(f"{len(runs['detail'])} detail-phase paths ({len(catalogue.detail)} products, {len(catalogue.hot)} hot, "
             f"{len(catalogue.probe)} probed); {len(runs['list'])} list-phase paths; all answered 200")
        for round_no in range(1, options.rounds + 2):
            _say(f"[bold]round {round_no} of {options.rounds}[/]" if round_no <= options.rounds
                 else "[bold]closing bare run[/]")
            catalog.measure_round(bare, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration,
                                  round_no=round_no)
            for phase in phases if round_no <= options.rounds else ():
                if phase.target.run.error is None:
                    _measure_phase(phase, runner, round_no, db=db, catalogue=catalogue, account=account,
                                   wrk_path=wrk_path, options=options)
        for phase in phases:
            with contextlib.suppress(ServerError, OSError):
                phase.target.run.server["probe"] = catalog._probe(shop.server, phase.target.probe_path)
    catalog.summarise([bare, *(phase.target for phase in phases)])
    meta["server"]["exit_code"] = shop.server.exit_code
    return bare.run, phases


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started, t0 = datetime.now(UTC), time.monotonic()
    setting, default = URLS[options.database]
    try:
        wrk_path = wrk.require_wrk()
        db = BenchDatabase.from_url(os.environ.get(setting) or default, setting=setting)
        if db.kind != options.database:
            raise DatabaseError(f"{setting} names a {db.label} database, not {options.database}")
        version = asyncio.run(database.server_version(db))
    except SETUP_ERRORS as exc:
        catalog._error(str(exc))
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-mixed-"))
    meta: dict[str, Any] = {
        "benchmark": "mixed", "started_at": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench.mixed", *(sys.argv[1:] if argv is None else argv)],
        "machine": {**report.machine(REPO), "wrk": wrk.wrk_version(wrk_path), db.kind: version},
        "load_average_at_start": report.load_average(),
    }
    try:
        _say(f"database {db.masked_url}: {'reusing' if options.reuse else 'rebuilding'} "
             f"({database.PRODUCTS:,} products)")
        prepared = database.prepare(db, reuse=options.reuse, cwd=workdir)
        catalogue = asyncio.run(_choose(db))
        asyncio.run(_stock_up(db, [StockLevel(p.sku, HOT_STOCK) for p in catalogue.hot]
                              + [StockLevel(p.sku, PROBE_STOCK) for p in catalogue.probe]))
        before = asyncio.run(database.stock_and_sales(db))
        _say(f"  {'reused' if prepared.reused else 'rebuilt and seeded'} in {prepared.seconds:.1f}s")
    except SETUP_ERRORS as exc:
        catalog._error(str(exc))
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {
        "connections": wrk.CONNECTIONS, "threads": wrk.THREADS, "wrk_timeout_s": wrk.TIMEOUT_S,
        "rounds": options.rounds, "warmup_s": options.warmup, "duration_s": options.duration, "workers": WORKERS,
        "products": database.PRODUCTS, "database": db.masked_url, "database_kind": db.kind,
        "database_reused": prepared.reused, "database_seconds": round(prepared.seconds, 1),
        "checkout_rate_asked": options.rate, "detail_products": len(catalogue.detail),
        "hot_products": len(catalogue.hot), "hot_stock_each": HOT_STOCK,
        "probe_products": [p.slug for p in catalogue.probe], "probe_stock_each": PROBE_STOCK,
        "search_words": catalogue.words, "probe_every_s": PROBE_EVERY_S,
        "probe_poll_every_s": POLL_EVERY_S, "probe_confirm_s": CONFIRM_S, "probe_give_up_s": GIVE_UP_S,
        "order": "a cart, 1-2 units of one hot SKU, checkout with tok_visa and an Idempotency-Key",
    }
    bare, phases = measure(db, catalogue, wrk_path=wrk_path, workdir=workdir, options=options, meta=meta)
    after = asyncio.run(database.stock_and_sales(db))  # the servers have stopped: nothing is in flight
    created = sum(n for phase in phases for (kind, status), n in phase.answers.items()
                  if kind.endswith("checkout") and status == 201)
    checks = oversell_checks(before[0], after[0], _since(after[1], before[1]), _since(after[2], before[2]),
                             created=created, scarce_attempts=0,
                             shelf=Shelf(hot=[p.sku for p in catalogue.hot], scarce="", hot_stock=HOT_STOCK,
                                         scarce_stock=0, hot_carts=[], scarce_carts=[], carts_seconds=0.0))
    checks.pop("scarce")  # bench.checkout's scarce SKU: this benchmark has none
    found = verdicts(phases, checks) if phases else []
    document = {
        **meta, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_end": report.load_average(),
        "runs": [report.run_dict(bare, None), *(phase_dict(phase) for phase in phases)],
        "staleness": {**staleness([s for p in phases for s in p.sales]),
                      "sales": [_sale_dict(s, p.target.run.target) for p in phases for s in p.sales]},
        "shopper_errors": shopper_errors(phases), "oversell_checks": checks, "oversold": checks["oversold"],
        "floors": {"staleness_max_ms": 1000 * STALENESS_MAX_S, "ratio_to_bare": RATIO_FLOOR,
                   "p99_ms_below": P99_LIMIT_MS, "orders_per_s": ORDERS_FLOOR, "errors": 0, "oversold": 0},
        "verdicts": found, "passed": bool(found) and all(v["passed"] for v in found), "notes": NOTES,
    }
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-mixed-{db.kind}.json"
    report.save(output, document)
    console.print()
    print_table(bare, phases, found, f"mixed-load benchmark on {db.label}: wrk -t2 -c32 with {options.rate:g} "
                                     f"orders/s and the staleness probe; median of {options.rounds} rounds")
    _say(f"database checks: paid orders {checks['paid_orders']} / 201 answers {created}, oversold "
         f"{checks['oversold']}, reserved left {checks['reserved_left']}")
    _say(f"results: {output}")
    if "error" in meta or any(p.target.run.error for p in phases):
        _say(f"server logs kept in {workdir}")
        return 1 if "error" in meta else 0
    shutil.rmtree(workdir, ignore_errors=True)
    _say(f"done in {time.monotonic() - t0:.0f}s")
    return 0  # a measurement: the verdicts are in the JSON and the table, not in the exit code


if __name__ == "__main__":
    raise SystemExit(main())
