"""Catalogue benchmark: the shop's product list and detail, response cache off and on, against reference apps.

Run from the repository root: `.venv/bin/python -m bench.catalog [--duration 10] [--reuse]`.
See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import database, report, servers, wrk
from bench.cpu import CpuMeter
from bench.database import BenchDatabase, DatabaseError
from bench.report import Run
from bench.servers import Server, ServerError
from bench.wrk import WrkError, WrkResult

OTHER_CPU_WARNING = 0.10  # share of the machine used by processes outside the benchmark during a run
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DETAIL_SCRIPT = REPO / "bench" / "detail.lua"
WORKERS = 2
SLUGS = 200
LIST_PATH = "/api/v1/products?limit=24"
DETAIL_PATH = "/api/v1/products/{slug}"


@dataclass(frozen=True, slots=True)
class Reference:
    target: str
    label: str
    app: str  # bench.apps attribute


REFERENCES = (
    Reference("bare", "bare ASGI", "bare"),
    Reference("hello", "FastAPI hello", "hello"),
    Reference("items", "FastAPI 24 items", "items"),
)

console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the whole table


def _seconds(most: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds") from None
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be between 1 and {most} seconds")
        return value

    return parse


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_seconds(300), default=6, metavar="SECONDS",
                        help="length of each measured run (default 6, at most 300)")
    parser.add_argument("--warmup", type=_seconds(60), default=3, metavar="SECONDS",
                        help="length of the discarded warm-up before each measured run (default 3)")
    parser.add_argument("--rounds", type=int, choices=range(1, 11), default=5, metavar="N",
                        help="interleaved measuring rounds; the verdicts use the median (default 5, at most 10)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database if it has exactly 10,000 products (else it is rebuilt)")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the JSON (default bench/results/<UTC date>-catalog.json)")
    return parser.parse_args(argv)


def _say(message: str) -> None:
    console.print(message, highlight=False)


def _error(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def measure(run: Run, server: Server, *, wrk_path: str, warmup_s: int, duration_s: int,
            script: Path | None = None, script_args: Sequence[str] = ()) -> None:
    """Warm up (discarded), then the measured run; a failure is kept on the run, never raised."""
    url = server.url(run.path if script is None else "/")
    try:
        wrk.run(wrk_path, url, duration_s=warmup_s, script=script, script_args=script_args)
        run.server["load_average_before"] = report.load_average()
        meter = CpuMeter(server.pid)
        meter.start()
        run.result, run.wrk_report = wrk.run(wrk_path, url, duration_s=duration_s, script=script,
                                             script_args=script_args)
        run.cpu = meter.stop(run.result.requests)
    except WrkError as exc:
        run.error = str(exc)
        _say(f"  {run.label}: [red]{exc}[/]")
        return
    _say_measured(run.label, run.result, run.cpu)


def _say_measured(label: str, result: WrkResult, cpu: dict[str, Any]) -> None:
    errors = ""
    if result.errors:
        errors = f", [red]{result.non_2xx} non-2xx, {result.socket_error_total} socket errors[/]"
    _say(f"  {label}: {result.requests_per_sec:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
         f"p99 {result.p99_ms:.2f} ms{errors}")
    other = cpu["share"]["other"]
    if other is not None and other > OTHER_CPU_WARNING:
        _say(f"  [yellow]warning: other processes used {other:.0%} of the machine's CPU during this run[/]")


@dataclass(slots=True)
class Target:
    """A run measured once per round on a server that stays up for the whole benchmark."""

    run: Run
    server: Server
    script: Path | None = None
    script_args: Sequence[str] = ()
    probe_path: str = "/"
    measured: list[tuple[WrkResult, str, dict[str, Any]]] = field(default_factory=list)


def measure_round(target: Target, *, wrk_path: str, warmup_s: int, duration_s: int, round_no: int) -> None:
    """One round: warm up (discarded; first round only), then the measured run. A failure is kept on the run,
    never raised, and the target is measured no more."""
    run, server = target.run, target.server
    url = server.url(run.path if target.script is None else "/")
    try:
        if round_no == 1:
            wrk.run(wrk_path, url, duration_s=warmup_s, script=target.script, script_args=target.script_args)
            run.server["load_average_before"] = report.load_average()
        meter = CpuMeter(server.pid)
        meter.start()
        result, text = wrk.run(wrk_path, url, duration_s=duration_s, script=target.script,
                               script_args=target.script_args)
        target.measured.append((result, text, meter.stop(result.requests)))
    except WrkError as exc:
        run.error = f"round {round_no}: {exc}"
        _say(f"  {run.label}: [red]{exc}[/]")
        return
    cache = "" if run.response_cache is None else f" (cache {'on' if run.response_cache else 'off'})"
    _say_measured(f"round {round_no}, {run.label}{cache}", result, target.measured[-1][2])


def summarise(targets: Sequence[Target]) -> None:
    """Each run's figures: per round, with its ratio to the bare app's req/s in that round (the mean of the bare
    runs opening and closing it, as the machine's speed drifts); the median round (by that ratio) becomes the
    run's result, and the verdicts use the median ratio and the median p99."""
    bare = next((t for t in targets if t.run.target == report.BASELINE), None)
    bare_rps = [m[0].requests_per_sec for m in bare.measured] if bare is not None else []
    baselines = [(x + y) / 2 for x, y in itertools.pairwise(bare_rps)]
    for target in targets:
        run = target.run
        if not target.measured:
            continue
        rounds: list[dict[str, Any]] = []
        for n, (result, _, cpu) in enumerate(target.measured):
            base = baselines[n] if n < len(baselines) else None
            rounds.append({"round": n + 1, "requests_per_sec": round(result.requests_per_sec, 1),
                           "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors,
                           "ratio_to_bare": round(result.requests_per_sec / base, 4) if base else None,
                           "cpu_ms_per_request": cpu.get("ms_per_request")})
        ratios = [r["ratio_to_bare"] for r in rounds if r["ratio_to_bare"] is not None]
        order = sorted(range(len(rounds)), key=lambda i: (rounds[i]["ratio_to_bare"] or 0.0,
                                                          rounds[i]["requests_per_sec"]))
        middle = order[(len(order) - 1) // 2]  # the lower middle when even: never flattering
        run.result, run.wrk_report, run.cpu = target.measured[middle]
        run.rounds = rounds
        if ratios and len(ratios) == len(rounds):
            run.ratio_median = statistics.median_low(ratios)
        run.p99_median_ms = statistics.median_low([r["p99_ms"] for r in rounds])
        run.errors_total = sum(r["errors"] for r in rounds)


def _probe(server: Server, path: str) -> dict[str, Any]:
    """One request after the run: its status, size and whether the response cache answered it."""
    status, headers, body = servers.get_full(server.port, path)
    return {"status": status, "bytes": len(body), "x_cache": headers.get("x-cache")}


def start_reference(ref: Reference, stack: contextlib.ExitStack, *, workdir: Path) -> Target | Run:
    run = Run(target=ref.target, label=ref.label, path="/")
    port = servers.free_port()
    argv = [sys.executable, "-m", "gunicorn", f"bench.apps:{ref.app}", "-k", "uvicorn_worker.UvicornWorker",
            "-w", str(WORKERS), "-b", f"{servers.HOST}:{port}"]
    run.server = {"argv": argv[1:], "workers": WORKERS}
    _say(f"[bold]{ref.label}[/] (bench.apps:{ref.app}) on port {port}")
    try:
        server = stack.enter_context(Server(ref.label, argv, port=port, ready_path="/", env=servers.base_env(),
                                            cwd=REPO, log_path=workdir / f"{ref.target}.log"))
    except (ServerError, OSError) as exc:
        run.error = str(exc)
        _say(f"  [red]{exc}[/]")
        return run
    return Target(run, server)


def fetch_slugs(port: int, count: int = SLUGS) -> list[str]:
    """`count` real product slugs spread over the whole catalogue, read from the API's list pages."""
    total = int(servers.get_json(port, "/api/v1/products?limit=1")["total"])
    per_page = 20
    pages = max(1, math.ceil(total / per_page))
    wanted = math.ceil(count / per_page)
    chosen = sorted({1 + i * (pages - 1) // max(1, wanted - 1) for i in range(wanted)})
    slugs: list[str] = []
    for page in chosen:
        body = servers.get_json(port, f"/api/v1/products?limit={per_page}&page={page}")
        slugs.extend(item["slug"] for item in body["items"] if item["slug"] not in slugs)
    if not slugs:
        raise ServerError("the product list is empty; was the database seeded?")
    return slugs[:count]


def _shop_config(env: dict[str, str], cwd: Path) -> Any:
    """The effective settings of the shop as served (`shop config --json`, passwords masked)."""
    done = subprocess.run([database.shop_command(), "config", "--json"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return done.stdout.strip() or done.stderr.strip()


def start_shop(db: BenchDatabase, stack: contextlib.ExitStack, *, response_cache: bool, workdir: Path,
               slug_file: Path) -> list[Target | Run]:
    state = "on" if response_cache else "off"
    runs = [Run(target="list", label="products list", path=LIST_PATH, response_cache=response_cache),
            Run(target="detail", label="product detail", path=DETAIL_PATH, response_cache=response_cache)]
    port = servers.free_port()
    # each server its own directory: its request log file, process board and metric files
    home = workdir / f"shop-cache-{state}"
    home.mkdir(exist_ok=True)
    env = database.shop_env(db, SHOP_RESPONSE_CACHE=str(response_cache).lower())
    # --no-worker: `shop serve` is gunicorn's master, its process group the server the CPU meter measures
    argv = [database.shop_command(), "serve", "--no-worker", "--workers", str(WORKERS), "--host", servers.HOST,
            "--port", str(port)]
    info: dict[str, Any] = {"argv": ["shop", *argv[1:]], "workers": WORKERS,
                            "env": {"SHOP_RESPONSE_CACHE": env["SHOP_RESPONSE_CACHE"],
                                    "SHOP_MAIN_DB_URL": db.masked_url},
                            "config": _shop_config(env, home)}
    _say(f"[bold]shop[/], response cache {state}, on port {port}")
    try:
        server = stack.enter_context(Server(f"shop (cache {state})", argv, port=port, ready_path="/readyz", env=env,
                                            cwd=home, log_path=workdir / f"shop-cache-{state}.log"))
        if not slug_file.exists():
            slugs = fetch_slugs(port)
            slug_file.write_text("\n".join(slugs) + "\n")
            _say(f"  {len(slugs)} slugs for the detail run, e.g. {slugs[0]}")
        slugs = slug_file.read_text().split()
    except (ServerError, OSError, ValueError, KeyError) as exc:
        for run in runs:
            run.error = f"{type(exc).__name__}: {exc}"
        _say(f"  [red]{exc}[/]")
        return list(runs)
    list_run, detail_run = runs
    list_run.server = dict(info)
    detail_run.server = dict(info, slugs=len(slugs))
    return [Target(list_run, server, probe_path=LIST_PATH),
            Target(detail_run, server, script=DETAIL_SCRIPT, script_args=[str(slug_file)],
                   probe_path=DETAIL_PATH.format(slug=slugs[0]))]


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    started = datetime.now(UTC)
    try:
        wrk_path = wrk.require_wrk()
        db = BenchDatabase.from_env()
    except (WrkError, DatabaseError) as exc:
        _error(str(exc))
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    meta: dict[str, Any] = {
        "benchmark": "catalog",
        "started_at": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench.catalog", *(sys.argv[1:] if argv is None else argv)],
        "machine": report.machine(REPO),
        "load_average_at_start": report.load_average(),
    }
    try:
        meta["machine"]["wrk"] = wrk.wrk_version(wrk_path)
        meta["machine"]["postgresql"] = asyncio.run(database.server_version(db))
        _say(f"database {db.masked_url}: {'reusing' if options.reuse else 'rebuilding'} "
             f"({database.PRODUCTS:,} products)")
        prepared = database.prepare(db, reuse=options.reuse, cwd=workdir)
        _say(f"  {'reused' if prepared.reused else 'rebuilt and seeded'} in {prepared.seconds:.1f}s")
    except (DatabaseError, OSError) as exc:
        _error(str(exc))
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    meta["settings"] = {
        "connections": wrk.CONNECTIONS, "threads": wrk.THREADS, "wrk_timeout_s": wrk.TIMEOUT_S,
        "rounds": options.rounds,
        "warmup_s": options.warmup, "duration_s": options.duration, "workers": WORKERS,
        "products": database.PRODUCTS, "detail_slugs": SLUGS, "database": db.masked_url,
        "database_reused": prepared.reused, "database_seconds": round(prepared.seconds, 1),
    }

    # Every server is up for the whole benchmark and the runs are interleaved, round after round: this machine's
    # speed drifts by 10-25 % over minutes, so a ratio is taken against the bare app measured in the same round,
    # and the verdicts use the median round.
    slug_file = workdir / "slugs.txt"
    with contextlib.ExitStack() as stack:
        servers_up: list[Target | Run] = []
        for ref in REFERENCES:
            servers_up.append(start_reference(ref, stack, workdir=workdir))
        for response_cache in (False, True):
            servers_up += start_shop(db, stack, response_cache=response_cache, workdir=workdir,
                                     slug_file=slug_file)
        targets = [t for t in servers_up if isinstance(t, Target)]
        bare = next((t for t in targets if t.run.target == report.BASELINE), None)
        for round_no in range(1, options.rounds + 1):
            _say(f"[bold]round {round_no} of {options.rounds}[/]")
            for target in targets:
                if target.run.error is None:
                    measure_round(target, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration,
                                  round_no=round_no)
        if bare is not None and bare.run.error is None:  # closes the last round: each is bracketed by two
            _say("[bold]closing bare run[/]")
            measure_round(bare, wrk_path=wrk_path, warmup_s=options.warmup, duration_s=options.duration,
                          round_no=options.rounds + 1)
        for target in targets:
            with contextlib.suppress(ServerError, OSError):
                target.run.server["probe"] = _probe(target.server, target.probe_path)
    summarise(targets)
    runs = [t.run if isinstance(t, Target) else t for t in servers_up]
    for target in targets:
        target.run.server["exit_code"] = target.server.exit_code

    found = report.verdicts(runs)
    meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["load_average_at_end"] = report.load_average()
    output = options.output or RESULTS / f"{started:%Y-%m-%d}-catalog.json"
    report.save(output, report.document(meta=meta, runs=runs, found=found))
    console.print()
    report.print_table(console, runs, found)
    _say(f"results: {output}")
    if any(run.error for run in runs):
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
