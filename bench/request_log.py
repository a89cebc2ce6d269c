"""Request-log overhead: catalogue-list throughput with the request log off and on, response cache off and on.

Run from the repository root: `.venv/bin/python -m bench.request_log [--duration 10] [--rounds 2] [--reuse]`.
Same stack and load as bench/catalog.py (PostgreSQL, `shop serve --workers 2`, wrk -t2 -c32). Each cache state
is measured with the log off and on, alternating for `--rounds` rounds so a drift in the machine's load falls on
both; a third variant has the metrics off too (the middleware then only numbers requests and counts them for
the heartbeat). The floor: the log costs ≤ 10 % of the throughput, response cache off. Requests/s move with
whatever else loads the machine, so the verdict is taken on the server's own CPU time per request (which is what
limits its throughput when it saturates the cores); both figures are saved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, report, servers, wrk
from bench.catalog import LIST_PATH, WORKERS, _error, _say, _seconds, measure
from bench.database import BenchDatabase, DatabaseError
from bench.report import Run
from bench.servers import Server, ServerError
from bench.wrk import WrkError

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
URL_ENV = "SHOP_BENCH_REQUEST_LOG_PG_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench_request_log"
FLOOR_LOSS = 0.10
VARIANTS = {  # name → the settings that differ
    "log off": {"SHOP_REQUEST_LOG": "false"},
    "log on": {"SHOP_REQUEST_LOG": "true"},
    "log and metrics off": {"SHOP_REQUEST_LOG": "false", "SHOP_METRICS": "false"},
}


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.request_log", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_seconds(300), default=10, metavar="SECONDS")
    parser.add_argument("--warmup", type=_seconds(60), default=3, metavar="SECONDS")
    parser.add_argument("--rounds", type=int, default=2, choices=range(1, 6), metavar="N",
                        help="off/on pairs per cache state (default 2)")
    parser.add_argument("--reuse", action="store_true", help="keep the database if it has 10,000 products")
    parser.add_argument("--output", type=Path, default=None,
                        help="default bench/results/<UTC date>-request-log.json")
    return parser.parse_args(argv)


def bench_variant(db: BenchDatabase, *, variant: str, response_cache: bool, wrk_path: str,
                  options: argparse.Namespace, workdir: Path) -> Run:
    cache = "on" if response_cache else "off"
    run = Run(target="list", label=f"products list, {variant}", path=LIST_PATH, response_cache=response_cache)
    extra = {"SHOP_RESPONSE_CACHE": str(response_cache).lower(), **VARIANTS[variant],
             "SHOP_VAR_DIR": str(workdir / "var"), "SHOP_RUN_DIR": str(workdir / "run")}
    env = database.shop_env(db, **extra)
    port = servers.free_port()
    # --no-worker: `shop serve` is gunicorn's master (the server the harness stops), no background work beside it
    argv = [database.shop_command(), "serve", "--no-worker", "--workers", str(WORKERS), "--host", servers.HOST,
            "--port", str(port)]
    run.server = {"argv": ["shop", *argv[1:]], "workers": WORKERS, "variant": variant,
                  "env": {k: v for k, v in extra.items() if not k.endswith("_DIR")}}
    _say(f"[bold]shop[/], response cache {cache}, {variant}, on port {port}")
    try:
        with Server(f"shop ({variant}, cache {cache})", argv, port=port, ready_path="/readyz", env=env, cwd=workdir,
                    log_path=workdir / f"shop-{cache}-{variant.replace(' ', '-')}.log") as server:
            measure(run, server, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration)
        run.server["exit_code"] = server.exit_code
    except (ServerError, OSError) as exc:
        run.error = str(exc)
        _say(f"  [red]{exc}[/]")
    return run


def _median(rows: list[dict[str, Any]], value: Any) -> float | None:
    found = [v for v in map(value, rows) if v is not None]
    return round(statistics.median(found), 3) if found else None


def _loss(base: float | None, other: float | None, *, cost: bool = False) -> float | None:
    if not base or other is None:
        return None
    return round(other / base - 1 if cost else 1 - other / base, 4)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per cache state and variant: median req/s and median server CPU per request; what the log costs.

    On a machine others are using, req/s moves with their load; the server's own CPU time per request (its
    process group only, from bench.cpu) barely does, so the overhead is stated both ways."""
    found: dict[str, Any] = {}
    for cache in (False, True):
        rates: dict[str, float | None] = {}
        cpu: dict[str, float | None] = {}
        for variant in VARIANTS:
            mine = [r for r in rows if r["response_cache"] is cache and r.get("variant") == variant]
            rates[variant] = _median(mine, lambda r: r.get("requests_per_sec"))
            cpu[variant] = _median(mine, lambda r: (r.get("cpu") or {}).get("ms_per_request", {}).get("server"))
        throughput_loss = _loss(rates["log off"], rates["log on"])
        cpu_cost = _loss(cpu["log off"], cpu["log on"], cost=True)
        found[f"cache {'on' if cache else 'off'}"] = {
            "median_requests_per_sec": rates, "median_server_cpu_ms_per_request": cpu,
            "throughput_loss_with_log_on": throughput_loss, "server_cpu_per_request_added_by_log": cpu_cost,
            "server_cpu_per_request_added_by_log_and_metrics": _loss(cpu["log and metrics off"], cpu["log on"],
                                                                     cost=True),
            "floor": FLOOR_LOSS if not cache else None,
            "passed": (cpu_cost is not None and cpu_cost <= FLOOR_LOSS) if not cache else None}
    return found


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started = datetime.now(UTC)
    try:
        wrk_path = wrk.require_wrk()
        db = BenchDatabase.from_env({database.URL_ENV: os.environ.get(URL_ENV, DEFAULT_URL)})
    except (WrkError, DatabaseError) as exc:
        _error(str(exc))
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-rl-"))
    meta: dict[str, Any] = {"benchmark": "request-log", "started_at": started.isoformat(timespec="seconds"),
                            "command": ["python", "-m", "bench.request_log", *(sys.argv[1:] if argv is None else argv)],
                            "machine": report.machine(REPO), "load_average_at_start": report.load_average()}
    try:
        meta["machine"]["wrk"] = wrk.wrk_version(wrk_path)
        meta["machine"]["postgresql"] = asyncio.run(database.server_version(db))
        prepared = database.prepare(db, reuse=options.reuse, cwd=workdir)
        _say(f"database {db.masked_url}: {'reused' if prepared.reused else 'rebuilt'} in {prepared.seconds:.1f}s")
    except (DatabaseError, OSError) as exc:
        _error(str(exc))
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {"connections": wrk.CONNECTIONS, "threads": wrk.THREADS, "warmup_s": options.warmup,
                        "duration_s": options.duration, "rounds": options.rounds, "workers": WORKERS,
                        "products": database.PRODUCTS, "path": LIST_PATH, "database": db.masked_url}
    runs: list[Run] = []
    for response_cache in (False, True):
        order = [v for _ in range(options.rounds) for v in ("log off", "log on")] + ["log and metrics off"]
        for variant in order:
            runs.append(bench_variant(db, variant=variant, response_cache=response_cache, wrk_path=wrk_path,
                                      options=options, workdir=workdir))
    rows = [{**report.run_dict(r, None), "variant": r.server.get("variant")} for r in runs]
    found = summary(rows)
    meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["load_average_at_end"] = report.load_average()
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-request-log.json"
    document = {**meta, "summary": found, "runs": rows}
    report.save(output, document)
    for state, figures in found.items():
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in figures["median_requests_per_sec"].items() if v)
        loss, cost = figures["throughput_loss_with_log_on"], figures["server_cpu_per_request_added_by_log"]
        verdict = "" if figures["passed"] is None else \
            f" (floor {FLOOR_LOSS:.0%}: {'passed' if figures['passed'] else 'MISSED'})"
        _say(f"response {state}: {rates} req/s; log on: throughput "
             f"{'n/a' if loss is None else f'-{loss:.1%}'}, server CPU per request "
             f"{'n/a' if cost is None else f'+{cost:.1%}'}{verdict}")
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
