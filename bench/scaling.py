"""Scaling benchmark: the catalogue list with 1 vs 2 workers on one gunicorn (response cache off and on), and the
same through `shop serve --pools` (nginx in front of a pool per route group) vs one gunicorn reached directly.

Run from the repository root: `.venv/bin/python -m bench.scaling [--duration 10] [--reuse]`.
wrk runs on the same 2 cores as the servers: a second worker competes with the load generator and with nginx, so
"2 workers" is not expected to double "1 worker". The pools run's CPU figure ("server") covers only the
supervisor's own process group; its gunicorns and nginx run in their own sessions and land in "other".
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, report, servers, wrk
from bench.catalog import LIST_PATH, _probe, _say, _seconds, _shop_config, console, measure
from bench.database import BenchDatabase, DatabaseError
from bench.report import Run
from bench.servers import Server, ServerError
from bench.wrk import WrkError

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
# its own database: the catalogue benchmark drops and rebuilds shop_bench, and may run at the same time
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench_scaling"
# the example's pools with the catalogue pinned at 2 workers, so it compares with a 2-worker gunicorn
POOLS = """
[budget]
cores = 2
worker_memory_mb = 512
[pools.catalog]
prefixes = ["/", "/api/v1/products", "/api/v1/categories", "/media"]
min = 2
max = 2
[pools.checkout]
prefixes = ["/api/v1/carts", "/api/v1/checkout", "/api/v1/orders", "/api/v1/shipping-methods", "/api/v1/payments"]
min = 1
max = 1
[pools.account]
prefixes = ["/api/v1/auth", "/api/v1/me"]
min = 1
max = 1
[pools.admin]
prefixes = ["/admin", "/metrics"]
min = 1
max = 1
"""


@dataclass(frozen=True, slots=True)
class Setup:
    key: str
    label: str
    workers: int
    response_cache: bool
    pools: bool = False


SETUPS = tuple(
    [Setup(f"gunicorn-{w}w-cache-{'on' if c else 'off'}", f"gunicorn {w} worker{'s' * (w > 1)}", w, c)
     for c in (False, True) for w in (1, 2)]
    + [Setup(f"pools-nginx-cache-{'on' if c else 'off'}", "pools via nginx (catalog 2 workers)", 2, c, pools=True)
       for c in (False, True)]
)


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_seconds(300), default=10, metavar="SECONDS")
    parser.add_argument("--warmup", type=_seconds(60), default=3, metavar="SECONDS")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it has 10,000 products")
    parser.add_argument("--output", type=Path, default=None,
                        help="default bench/results/<UTC date>-scaling.json")
    return parser.parse_args(argv)


def bench_setup(setup: Setup, db: BenchDatabase, *, wrk_path: str, options: argparse.Namespace,
                workdir: Path) -> Run:
    run = Run(target=setup.key, label=setup.label, path=LIST_PATH, response_cache=setup.response_cache)
    port = servers.free_port()
    env = database.shop_env(db, SHOP_RESPONSE_CACHE=str(setup.response_cache).lower(), SHOP_LOG_LEVEL="warning")
    home = workdir / setup.key
    home.mkdir()
    if setup.pools:
        (home / "pools.toml").write_text(POOLS)
        argv = [database.shop_command(), "serve", "--pools", "pools.toml", "--no-worker", "--host", servers.HOST,
                "--port", str(port)]
    else:  # --no-worker: `shop serve` is gunicorn's master, and neither setup has background work beside it
        argv = [database.shop_command(), "serve", "--no-worker", "--workers", str(setup.workers), "--host",
                servers.HOST, "--port", str(port)]
    run.server = {"argv": ["shop", *argv[1:]], "workers": setup.workers, "pools": setup.pools,
                  "env": {"SHOP_RESPONSE_CACHE": env["SHOP_RESPONSE_CACHE"], "SHOP_MAIN_DB_URL": db.masked_url},
                  "config": _shop_config(env, home)}
    if setup.pools:
        run.server["pools_toml"] = POOLS
    _say(f"[bold]{setup.label}[/], response cache {'on' if setup.response_cache else 'off'}, port {port}")
    try:
        with Server(setup.label, argv, port=port, ready_path="/readyz", env=env, cwd=home,
                    log_path=home / "server.log") as server:
            measure(run, server, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration)
            run.server["probe"] = _probe(server, LIST_PATH)
        run.server["exit_code"] = server.exit_code
    except (ServerError, OSError) as exc:
        run.error = str(exc)
        _say(f"  [red]{exc}[/]")
    return run


def _rps(runs: list[Run], key: str) -> float | None:
    run = next((r for r in runs if r.target == key), None)
    return None if run is None or run.result is None else run.result.requests_per_sec


def comparisons(runs: list[Run]) -> dict[str, Any]:
    """The figures the issue asks for, as ratios of throughput."""
    found: dict[str, Any] = {}
    for cache in ("off", "on"):
        one, two = _rps(runs, f"gunicorn-1w-cache-{cache}"), _rps(runs, f"gunicorn-2w-cache-{cache}")
        pools = _rps(runs, f"pools-nginx-cache-{cache}")
        found[f"cache_{cache}"] = {
            "one_worker_rps": one, "two_workers_rps": two, "pools_via_nginx_rps": pools,
            "two_over_one": round(two / one, 3) if one and two else None,
            "pools_over_direct": round(pools / two, 3) if pools and two else None,
        }
    return found


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started = datetime.now(UTC)
    try:
        wrk_path = wrk.require_wrk()
        db = BenchDatabase.from_env({database.URL_ENV: DEFAULT_URL})
    except (WrkError, DatabaseError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-scaling-", dir="/tmp"))  # short: Unix socket paths
    meta: dict[str, Any] = {
        "benchmark": "scaling",
        "started_at": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench.scaling", *(sys.argv[1:] if argv is None else argv)],
        "machine": report.machine(REPO),
        "load_average_at_start": report.load_average(),
    }
    try:
        meta["machine"]["wrk"] = wrk.wrk_version(wrk_path)
        meta["machine"]["postgresql"] = asyncio.run(database.server_version(db))
        prepared = database.prepare(db, reuse=options.reuse, cwd=workdir)
        _say(f"database {db.masked_url}: {'reused' if prepared.reused else 'rebuilt'} in {prepared.seconds:.1f}s")
    except (DatabaseError, OSError) as exc:
        _say(f"[red]{exc}[/]")
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {"connections": wrk.CONNECTIONS, "threads": wrk.THREADS, "warmup_s": options.warmup,
                        "duration_s": options.duration, "products": database.PRODUCTS, "database": db.masked_url,
                        "path": LIST_PATH}
    runs = [bench_setup(setup, db, wrk_path=wrk_path, options=options, workdir=workdir) for setup in SETUPS]
    meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["load_average_at_end"] = report.load_average()
    doc = {**meta, "comparisons": comparisons(runs), "runs": [report.run_dict(run, None) for run in runs]}
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-scaling.json"
    report.save(output, doc)
    for cache, figures in doc["comparisons"].items():
        _say(f"{cache}: {figures}")
    _say(f"results: {output}")
    if any(run.error for run in runs):
        _say(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    _say(f"done in {time.monotonic() - t0:.0f}s")
    raise SystemExit(code)
