"""Storefront benchmark: server render time of the server-rendered product page on PostgreSQL.

Run from the repository root: `.venv/bin/python -m bench.storefront [--duration 10] [--reuse]`.
See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from markupsafe import escape
from rich.console import Console
from rich.table import Table

from bench import database, report, servers, wrk
from bench.catalog import _seconds, _shop_config
from bench.cpu import CpuMeter
from bench.database import BenchDatabase, DatabaseError, Prepared
from bench.servers import Server, ServerError
from bench.wrk import WrkError, WrkResult

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PAGES_SCRIPT = REPO / "bench" / "pages.lua"
URL_ENV = "SHOP_BENCH_STOREFRONT_PG_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench_storefront"
DEMO_PRODUCTS = 240  # `shop seed --demo` (shop.cli.DEMO_PRODUCTS)
WORKERS = 2
SLUGS = 200
SEARCH = "linen"
FLOOR_P50_MS = 10.0  # the floor: server render time p50 of the product page on PostgreSQL
FLOOR_TARGET = "product-c1"
OTHER_CPU_WARNING = 0.10
FORM_MARK = '<form method="post" action="/cart/add"'
LATENCY_LABEL = "server render time (single connection, loopback)"
_STATUSES = re.compile(r"^statuses:(?P<counts>( \d+=\d+)*)\s*$", re.MULTILINE)

console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass(slots=True)
class Target:
    key: str
    label: str
    path: str  # as shown; `{slug}` is rotated over the slugs
    connections: int
    threads: int
    paths: list[str] = field(default_factory=list)
    server: str = "shop"  # or "bare": the reference ASGI app
    result: WrkResult | None = None
    statuses: dict[str, int] = field(default_factory=dict)  # measured run, from bench/pages.lua
    warmup_statuses: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    wrk_report: str = ""
    cpu: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    load_average_before: list[float] = field(default_factory=list)

    @property
    def non_200(self) -> int | None:
        if self.result is None or not self.statuses:
            return None
        return sum(count for status, count in self.statuses.items() if status != "200")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "path": self.path, "server": self.server,
                               "connections": self.connections, "threads": self.threads,
                               "distinct_paths": len(self.paths), "error": self.error}
        if self.result is not None:
            out.update(self.result.as_dict())
            out["p50_ms"] = self.result.p50_ms
            out["p90_ms"] = self.result.latency_ms.get("p90")
            out["p99_ms"] = self.result.p99_ms
            out["socket_error_total"] = self.result.socket_error_total
        out["statuses"] = self.statuses
        out["non_200"] = self.non_200
        out["warmup_statuses"] = self.warmup_statuses
        out["load_average_before"] = self.load_average_before
        out["cpu"] = self.cpu
        out["probe"] = self.probe
        out["wrk_report"] = self.wrk_report
        return out


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.storefront", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_seconds(300), default=10, metavar="SECONDS",
                        help="length of each measured run (default 10, at most 300)")
    parser.add_argument("--warmup", type=_seconds(60), default=3, metavar="SECONDS",
                        help="length of the discarded warm-up before each measured run (default 3)")
    parser.add_argument("--connections", type=int, default=wrk.CONNECTIONS, metavar="N",
                        help=f"connections of the throughput runs (default {wrk.CONNECTIONS})")
    parser.add_argument("--reuse", action="store_true",
                        help=f"keep the database if it has exactly {DEMO_PRODUCTS} products (else it is rebuilt)")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the JSON (default bench/results/<UTC date>-storefront.json)")
    return parser.parse_args(argv)


def _say(message: str) -> None:
    console.print(message, highlight=False)


def _error(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


# ---- database ---------------------------------------------------------------------------------------------

def prepare(db: BenchDatabase, *, reuse: bool, cwd: Path) -> Prepared:
    """The demo shop (`shop seed --demo`) in its own database: reused if asked and it has the demo's size."""
    started = time.monotonic()
    env = database.shop_env(db)
    try:
        if reuse and asyncio.run(database.product_count(db)) == DEMO_PRODUCTS:
            database._shop(["migrate"], env=env, cwd=cwd)
            return Prepared(reused=True, products=DEMO_PRODUCTS, seconds=time.monotonic() - started)
        asyncio.run(database._recreate(db))
        database._shop(["migrate"], env=env, cwd=cwd)
        database._shop(["seed", "--demo"], env=env, cwd=cwd)
        asyncio.run(database._analyze(db))
        count = asyncio.run(database.product_count(db))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"PostgreSQL at {db.masked_url}: {str(exc).strip().splitlines()[0]}") from None
    if count != DEMO_PRODUCTS:
        raise DatabaseError(f"seeding the demo left {count} products in {db.name}, expected {DEMO_PRODUCTS}")
    return Prepared(reused=False, products=count, seconds=time.monotonic() - started)


# ---- runs -------------------------------------------------------------------------------------------------

def parse_statuses(report_text: str) -> dict[str, int]:
    """The `statuses: 200=N ...` line bench/pages.lua prints; empty if there is none."""
    match = _STATUSES.search(report_text)
    if match is None:
        return {}
    return {status: int(count) for status, count in (part.split("=") for part in match.group("counts").split())}


def measure(target: Target, server: Server, *, wrk_path: str, warmup_s: int, duration_s: int,
            workdir: Path) -> None:
    """Warm-up (discarded), then the measured run with the same script and connections; errors kept, not raised."""
    path_file = workdir / f"{target.key}.paths"
    path_file.write_text("\n".join(target.paths) + "\n")
    common: dict[str, Any] = {"script": PAGES_SCRIPT, "script_args": [str(path_file)],
                              "connections": target.connections, "threads": target.threads}
    url = server.url("/")
    try:
        _, warm = wrk.run(wrk_path, url, duration_s=warmup_s, **common)
        target.warmup_statuses = parse_statuses(warm)
        target.load_average_before = report.load_average()
        meter = CpuMeter(server.pid)
        meter.start()
        target.result, target.wrk_report = wrk.run(wrk_path, url, duration_s=duration_s, **common)
        target.cpu = meter.stop(target.result.requests)
        target.statuses = parse_statuses(target.wrk_report)
        if not target.statuses:
            target.error = "wrk printed no statuses line (bench/pages.lua)"
    except WrkError as exc:
        target.error = str(exc)
        _say(f"  {target.label}: [red]{exc}[/]")
        return
    status, headers, body = servers.get_full(server.port, target.paths[0])
    target.probe = {"path": target.paths[0], "status": status, "bytes": len(body),
                    "content_type": headers.get("content-type"), "x_cache": headers.get("x-cache")}
    result = target.result
    bad = ""
    if target.non_200 or result.socket_error_total:
        bad = f", [red]{target.non_200} not 200, {result.socket_error_total} socket errors[/]"
    _say(f"  {target.label} (c{target.connections}): {result.requests_per_sec:,.0f} req/s, "
         f"p50 {result.p50_ms:.2f} ms, p90 {result.latency_ms.get('p90', float('nan')):.2f} ms, "
         f"p99 {result.p99_ms:.2f} ms, server CPU {target.cpu['ms_per_request']['server']} ms/req{bad}")
    other = target.cpu["share"]["other"]
    if other is not None and other > OTHER_CPU_WARNING:
        _say(f"  [yellow]warning: other processes used {other:.0%} of the machine's CPU during this run[/]")


def check_product_pages(port: int, slugs: Sequence[str]) -> dict[str, Any]:
    """Every product page in the rotation is a 200 HTML page with its product's title and the add-to-cart form."""
    failures: list[dict[str, Any]] = []
    sizes: list[int] = []
    for slug in slugs:
        title = servers.get_json(port, f"/api/v1/products/{quote(slug)}")["title"]
        status, headers, body = servers.get_full(port, f"/p/{quote(slug)}")
        text = body.decode("utf-8", errors="replace")
        problems = []
        if status != 200:
            problems.append(f"status {status}")
        if not (headers.get("content-type") or "").startswith("text/html"):
            problems.append(f"content-type {headers.get('content-type')}")
        if f"<h1>{escape(title)}</h1>" not in text:
            problems.append("no <h1> with the product's title")
        if FORM_MARK not in text:
            problems.append("no add-to-cart form")
        if problems:
            failures.append({"slug": slug, "problems": problems})
        sizes.append(len(body))
    return {"checked": len(slugs), "ok": len(slugs) - len(failures), "failures": failures[:10],
            "requires": ["status 200, text/html, <h1>{title}</h1> (escaped as the template does)", FORM_MARK],
            "bytes": {"min": min(sizes, default=0), "max": max(sizes, default=0),
                      "mean": round(sum(sizes) / len(sizes)) if sizes else 0}}


def check_page(port: int, path: str, *, must_contain: Sequence[str] = ()) -> dict[str, Any]:
    status, headers, body = servers.get_full(port, path)
    text = body.decode("utf-8", errors="replace")
    missing = [mark for mark in must_contain if mark not in text]
    return {"path": path, "status": status, "content_type": headers.get("content-type"), "bytes": len(body),
            "must_contain": list(must_contain), "missing": missing,
            "ok": status == 200 and (headers.get("content-type") or "").startswith("text/html") and not missing}


def product_slugs(port: int, count: int = SLUGS) -> list[str]:
    """`count` published products spread evenly over the whole (small) catalogue, newest first, from the API.

    bench.catalog.fetch_slugs samples list pages of a 10,000-product catalogue; the demo's 236 published
    products are few enough to list them all and pick every n-th.
    """
    slugs: list[str] = []
    page = 1
    while True:
        body = servers.get_json(port, f"/api/v1/products?limit=100&page={page}")
        slugs.extend(item["slug"] for item in body["items"])
        if not body["items"] or len(slugs) >= int(body["total"]):
            break
        page += 1
    if not slugs:
        raise ServerError("the product list is empty; was the database seeded?")
    if len(slugs) <= count:
        return slugs
    return [slugs[i * len(slugs) // count] for i in range(count)]


def root_category(port: int) -> dict[str, Any]:
    """The first top-level category: its listing covers its sub-categories' products."""
    items = servers.get_json(port, "/api/v1/categories")["items"]
    roots = [c for c in items if c["parent_id"] is None]
    if not roots:
        raise ServerError("the shop has no categories; was the database seeded?")
    return dict(roots[0])


def shop_targets(slugs: Sequence[str], category: str, connections: int) -> list[Target]:
    product = [f"/p/{quote(s)}" for s in slugs]
    api = [f"/api/v1/products/{quote(s)}" for s in slugs]
    return [
        Target(FLOOR_TARGET, "product page", "/p/{slug}", 1, 1, product),
        Target("api-detail-c1", "API product detail", "/api/v1/products/{slug}", 1, 1, api),
        Target("home-c1", "home", "/", 1, 1, ["/"]),
        Target("category-c1", "category listing", f"/c/{category}", 1, 1, [f"/c/{quote(category)}"]),
        Target("search-c1", "search", f"/search?q={SEARCH}", 1, 1, [f"/search?q={quote(SEARCH)}"]),
        Target(f"product-c{connections}", "product page", "/p/{slug}", connections, wrk.THREADS, product),
        Target(f"api-detail-c{connections}", "API product detail", "/api/v1/products/{slug}", connections,
               wrk.THREADS, api),
    ]


def bench_bare(*, wrk_path: str, options: argparse.Namespace, workdir: Path) -> Target:
    """The bare ASGI app at one connection: loopback, wrk and the server stack, with no app work at all."""
    target = Target("bare-c1", "bare ASGI", "/", 1, 1, ["/"], server="bare")
    port = servers.free_port()
    argv = [sys.executable, "-m", "gunicorn", "bench.apps:bare", "-k", "uvicorn_worker.UvicornWorker",
            "-w", str(WORKERS), "-b", f"{servers.HOST}:{port}"]
    target.probe = {"argv": argv[1:]}
    _say(f"[bold]bare ASGI[/] (bench.apps:bare) on port {port}")
    try:
        with Server("bare ASGI", argv, port=port, ready_path="/", env=servers.base_env(), cwd=REPO,
                    log_path=workdir / "bare.log") as server:
            measure(target, server, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration,
                    workdir=workdir)
    except (ServerError, OSError) as exc:
        target.error = str(exc)
        _say(f"  [red]{exc}[/]")
    return target


def bench_shop(db: BenchDatabase, *, wrk_path: str, options: argparse.Namespace,
               workdir: Path) -> tuple[list[Target], dict[str, Any]]:
    port = servers.free_port()
    env = database.shop_env(db, SHOP_RESPONSE_CACHE="false")
    # --no-worker: `shop serve` is gunicorn's master, its process group the server the CPU meter measures
    argv = [database.shop_command(), "serve", "--no-worker", "--workers", str(WORKERS), "--host", servers.HOST,
            "--port", str(port)]
    info: dict[str, Any] = {"argv": ["shop", *argv[1:]], "workers": WORKERS,
                            "env": {"SHOP_RESPONSE_CACHE": "false", "SHOP_MAIN_DB_URL": db.masked_url},
                            "config": _shop_config(env, workdir)}
    targets: list[Target] = []
    _say(f"[bold]shop[/], response cache off, on port {port}")
    try:
        with Server("shop", argv, port=port, ready_path="/readyz", env=env, cwd=workdir,
                    log_path=workdir / "shop.log") as server:
            slugs = product_slugs(port, SLUGS)
            category = root_category(port)
            info["slugs"] = {"count": len(slugs), "first": slugs[:3]}
            info["category"] = {"slug": category["slug"], "name": category["name"]}
            _say(f"  {len(slugs)} product slugs, e.g. {slugs[0]}; category {category['slug']}")
            info["page_checks"] = {
                "product_pages": check_product_pages(port, slugs),
                "home": check_page(port, "/"),
                "category": check_page(port, f"/c/{quote(category['slug'])}",
                                       must_contain=[f"{escape(category['name'])}"]),
                "search": check_page(port, f"/search?q={quote(SEARCH)}", must_contain=["<mark>"]),
            }
            product_checks = info["page_checks"]["product_pages"]
            _say(f"  product pages checked: {product_checks['ok']}/{product_checks['checked']} are the product "
                 f"page ({product_checks['bytes']['mean']:,} bytes on average)")
            targets = shop_targets(slugs, category["slug"], options.connections)
            for target in targets:
                measure(target, server, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration,
                        workdir=workdir)
        info["exit_code"] = server.exit_code
    except (ServerError, OSError, ValueError, KeyError) as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        for target in targets:
            if target.result is None and target.error is None:
                target.error = info["error"]
        _say(f"  [red]{exc}[/]")
    return targets, info


# ---- verdicts, table, JSON --------------------------------------------------------------------------------

def _by_key(targets: Sequence[Target]) -> dict[str, Target]:
    return {t.key: t for t in targets}


def verdicts(targets: Sequence[Target], shop: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    floor = _by_key(targets).get(FLOOR_TARGET)
    p50 = floor.result.p50_ms if floor and floor.result else None
    found.append({"run": FLOOR_TARGET, "check": "p50_ms", "value": p50, "limit": FLOOR_P50_MS,
                  "passed": p50 is not None and p50 < FLOOR_P50_MS})
    for target in targets:
        errors = None
        if target.result is not None and target.non_200 is not None:
            errors = target.non_200 + target.result.socket_error_total
        found.append({"run": target.key, "check": "not_200_or_socket_errors", "value": errors, "limit": 0,
                      "passed": errors == 0})
    checks = shop.get("page_checks", {})
    products = checks.get("product_pages", {})
    found.append({"run": "page_checks", "check": "product_pages_are_the_product_page",
                  "value": products.get("ok"), "limit": products.get("checked"),
                  "passed": bool(products) and products.get("ok") == products.get("checked")})
    for name in ("home", "category", "search"):
        one = checks.get(name, {})
        found.append({"run": "page_checks", "check": f"{name}_is_a_200_html_page", "value": one.get("status"),
                      "limit": 200, "passed": bool(one.get("ok"))})
    return found


def comparison(targets: Sequence[Target]) -> dict[str, Any]:
    """What the HTML costs over the JSON of the same product, and over an app that does nothing."""
    runs = _by_key(targets)

    def figure(key: str, name: str) -> float | None:
        run = runs.get(key)
        if run is None or run.result is None:
            return None
        if name == "server_cpu_ms":
            value = run.cpu.get("ms_per_request", {}).get("server")
            return float(value) if value is not None else None
        return run.result.latency_ms.get(name)

    def minus(a: str, b: str, name: str) -> float | None:
        x, y = figure(a, name), figure(b, name)
        return None if x is None or y is None else round(x - y, 3)

    out: dict[str, Any] = {}
    for name in ("p50", "p90", "p99", "server_cpu_ms"):
        out[name] = {"product_page": figure(FLOOR_TARGET, name), "api_detail": figure("api-detail-c1", name),
                     "bare_asgi": figure("bare-c1", name),
                     "template_cost (product page - API detail)": minus(FLOOR_TARGET, "api-detail-c1", name),
                     "above_transport (product page - bare ASGI)": minus(FLOOR_TARGET, "bare-c1", name)}
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(targets: Sequence[Target], found: Sequence[dict[str, Any]]) -> None:
    grid = Table(title=f"storefront benchmark: shop serve --workers {WORKERS}, PostgreSQL, response cache off",
                 title_justify="left")
    for name in ("target", "path", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms", "not 200", "sock err",
                 "server CPU ms/req", "other CPU"):
        grid.add_column(name, justify="left" if name in ("target", "path") else "right")
    for t in targets:
        r = t.result
        if r is None:
            grid.add_row(t.label, t.path, str(t.connections), "-", "-", "-", "-", "-", "-", "-",
                         f"[red]{t.error or 'not run'}[/]")
            continue
        other = t.cpu.get("share", {}).get("other")
        grid.add_row(t.label, t.path, str(t.connections), f"{r.requests_per_sec:,.0f}", _ms(r.p50_ms),
                     _ms(r.latency_ms.get("p90")), _ms(r.p99_ms), str(t.non_200), str(r.socket_error_total),
                     _ms(t.cpu.get("ms_per_request", {}).get("server")),
                     "-" if other is None else f"{other:.0%}")
    console.print(grid)
    floor = found[0]
    mark = "[green]PASS[/]" if floor["passed"] else "[bold red]FAIL[/]"
    _say(f"floor: {LATENCY_LABEL} of /p/{{slug}} p50 < {FLOOR_P50_MS:.0f} ms: {_ms(floor['value'])} ms {mark}")
    failed = [f"{v['run']} {v['check']}" for v in found if not v["passed"]]
    passed = not failed
    _say(f"all checks: {'[green]PASS[/]' if passed else '[bold red]FAIL[/]'} "
         f"({sum(v['passed'] for v in found)}/{len(found)})" + (f"; failed: {', '.join(failed)}" if failed else ""))


NOTES = [
    f"'{LATENCY_LABEL}' is wrk's latency at one connection (wrk -t1 -c1): from writing a request to reading its "
    "whole answer. It is the server's time to parse the request, run the route (queries and template) and write "
    "the answer, plus the loopback round trip and wrk's own parsing; the bare-c1 run measures that fixed part "
    "with an app that does nothing.",
    "One connection keeps one request in flight, so only one of the two workers is busy at a time and there is "
    "no queueing: the percentiles are service times, not waits.",
    "Each request is a first visit (no cookies): no session is loaded, and the page sets a new CSRF cookie.",
    "The shop runs with SHOP_RESPONSE_CACHE=false; that cache only ever covers /api/v1/products and "
    "/api/v1/categories, so the pages are rendered for every request either way and the API detail it is "
    "compared with is computed for every request too.",
    "server CPU ms/req is the CPU time of the gunicorn master and workers per request over the measured run "
    "(bench.cpu), which changes little when the machine is busy; latency changes a lot.",
]


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started = datetime.now(UTC)
    try:
        wrk_path = wrk.require_wrk()
        db = BenchDatabase.from_env({database.URL_ENV: os.environ.get(URL_ENV) or DEFAULT_URL})
        postgres = asyncio.run(database.server_version(db))
    except (WrkError, DatabaseError, OSError, asyncpg.PostgresError) as exc:
        _error(str(exc))
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-storefront-"))
    meta: dict[str, Any] = {
        "benchmark": "storefront",
        "started_at": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench.storefront", *(sys.argv[1:] if argv is None else argv)],
        "machine": {**report.machine(REPO), "wrk": wrk.wrk_version(wrk_path), "postgresql": postgres},
        "load_average_at_start": report.load_average(),
    }
    try:
        _say(f"database {db.masked_url}: {'reusing' if options.reuse else 'rebuilding'} (the demo shop)")
        prepared = prepare(db, reuse=options.reuse, cwd=workdir)
        _say(f"  {'reused' if prepared.reused else 'rebuilt and seeded'} in {prepared.seconds:.1f}s")
    except (DatabaseError, OSError) as exc:
        _error(str(exc))
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {
        "warmup_s": options.warmup, "duration_s": options.duration, "workers": WORKERS,
        "latency_runs": "wrk -t1 -c1", "throughput_runs": f"wrk -t{wrk.THREADS} -c{options.connections}",
        "wrk_timeout_s": wrk.TIMEOUT_S, "products": prepared.products, "seed": "shop seed --demo",
        "product_slugs": SLUGS, "search": SEARCH, "database": db.masked_url,
        "database_reused": prepared.reused, "database_seconds": round(prepared.seconds, 1),
    }
    bare = bench_bare(wrk_path=wrk_path, options=options, workdir=workdir)
    shop_runs, shop = bench_shop(db, wrk_path=wrk_path, options=options, workdir=workdir)
    targets = [*shop_runs, bare]
    found = verdicts(targets, shop)
    floor = found[0]
    doc = {
        **meta,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_end": report.load_average(),
        "server": shop,
        "floor": {"what": f"{LATENCY_LABEL}: p50 of GET /p/{{slug}} over {SLUGS} products, wrk -t1 -c1",
                  "p50_ms_below": FLOOR_P50_MS, "run": FLOOR_TARGET, "p50_ms": floor["value"],
                  "passed": floor["passed"]},
        "comparison_single_connection": comparison(targets),
        "runs": [t.as_dict() for t in targets],
        "verdicts": found,
        "passed": all(v["passed"] for v in found),
        "notes": NOTES,
    }
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-storefront.json"
    report.save(output, doc)
    console.print()
    print_table(targets, found)
    _say(f"results: {output}")
    if any(t.error for t in targets) or "error" in shop:
        _say(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0  # a measurement: the verdicts are in the JSON and the table, not in the exit code


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    if code == 0:
        _say(f"done in {time.monotonic() - t0:.0f}s")
    raise SystemExit(code)
