"""The `shop` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shop.bootstrap import (
    Databases,
    StoreConfigError,
    build_auth,
    build_catalog,
    build_databases,
    build_delivery,
    build_process_board,
    build_seeder,
    build_totp_rekey,
    migrate_store,
    new_totp_key,
    short_reason,
    store_migrated,
)
from shop.config import STORES, Settings
from shop.domain.errors import InvalidValue
from shop.domain.users import EmailTaken
from shop.runtime.serve import ServeOptions, exec_gunicorn, run_with_worker
from shop.runtime.worker import serve_worker
from shop.services.ports import StoreUnavailable

app = typer.Typer(help="shop: run, migrate, seed and inspect an online shop.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
DEMO_PRODUCTS = 240


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "SHOP_" + "_".join(str(p) for p in first["loc"]).upper()
        _fail(f"{field}: {first['msg']}", 2)
        raise AssertionError("unreachable") from None


def _databases(settings: Settings) -> Databases:
    try:
        return build_databases(settings)
    except StoreConfigError as exc:
        _fail(str(exc), 2)
        raise AssertionError("unreachable") from None


def _run(work: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command; a store that fails is reported in one line, never as a traceback."""

    @wraps(work)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(work(*args, **kwargs))
        except StoreUnavailable as exc:
            _fail(str(exc))
        except StoreConfigError as exc:
            _fail(str(exc), 2)
        except OSError as exc:
            _fail(f"cannot reach a database: {short_reason(exc)}")
        except Exception as exc:
            if type(exc).__module__.startswith(("sqlalchemy", "asyncpg", "asyncmy", "aiosqlite", "sqlite3",
                                                "pymongo")):
                _fail(f"database error: {short_reason(exc)}")
            raise
        raise AssertionError("unreachable")

    return wrapper


async def _with_databases(settings: Settings, stores: tuple[str, ...],
                          work: Callable[[Databases], Awaitable[T]]) -> T:
    databases = _databases(settings)
    try:
        for store in stores:
            await databases.ping(store)
        return await work(databases)
    finally:
        await databases.dispose()


@app.command("config")
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Print the effective settings, passwords masked."""
    view = _settings().public_view()
    if as_json:
        out.print_json(json.dumps(view, default=str))
        return
    for key, value in view.items():
        out.print(f"[bold]{key}[/] = {value}", highlight=False, soft_wrap=True)


@app.command()
def migrate(
    store: Annotated[list[str] | None, typer.Option("--store", help="main, users or posts (default: all)")] = None,
) -> None:
    """Bring every store's schema up to date (safe to run again)."""
    chosen = tuple(store or STORES)
    unknown = [s for s in chosen if s not in STORES]
    if unknown:
        _fail(f"unknown store {unknown[0]!r}; choose from {', '.join(STORES)}", 2)
    settings = _settings()

    async def work(databases: Databases) -> None:
        for name in chosen:
            before, after = await migrate_store(databases, name)
            state = "up to date" if before == after else f"{before or 'empty'} → {after}"
            out.print(f"{name:6} {databases.host(name)}: {state}", highlight=False)

    _run(_with_databases)(settings, chosen, work)


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="the demo shop, only into an empty catalogue")] = False,
    products: Annotated[int, typer.Option("--products", min=0, max=5_000_000, help="add N generated products")] = 0,
) -> None:
    """Fill the catalogue: the demo shop, or many products for benchmarks."""
    if demo == bool(products):
        _fail("say either --demo or --products N", 2)
    count = DEMO_PRODUCTS if demo else products
    settings = _settings()

    async def work(databases: Databases) -> None:
        for name in ("main", "posts"):
            if not await store_migrated(databases, name):
                _fail(f"the {name} store is not migrated; run `shop migrate` first", 2)
        seed_catalog = build_seeder(settings, databases)
        with Progress(TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out, transient=not sys.stdout.isatty()) as bar:
            task = bar.add_task("products", total=count)
            report = await seed_catalog(products=count, only_if_empty=demo, progress=lambda n: bar.advance(task, n))
        if report.skipped:
            total = await build_catalog(settings, databases).reader.count_products()
            out.print(f"the catalogue already has {total} products; the demo was not added")
        else:
            out.print(f"added {report.categories} categories and {report.products} products")

    _run(_with_databases)(settings, ("main", "posts"), work)


@app.command()
def createadmin(
    email: Annotated[str, typer.Option(prompt=True, help="the admin's e-mail address")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="SHOP_ADMIN_PASSWORD", help="or set SHOP_ADMIN_PASSWORD")],
    name: Annotated[str, typer.Option(help="shown in the control panel")] = "",
) -> None:
    """Create an admin account (staff and admin roles)."""
    settings = _settings()

    async def work(databases: Databases) -> None:
        # (on MongoDB the users store makes its indexes itself on first use)
        if not databases.is_mongo("users") and not await store_migrated(databases, "users"):
            _fail("the users store is not migrated; run `shop migrate` first", 2)
        try:
            user = await build_auth(settings, databases).create_admin(email=email, password=password, name=name)
        except InvalidValue as exc:
            _fail(f"{exc.field}: {exc.message}", 2)
        except EmailTaken as exc:
            _fail(str(exc), 2)
        else:
            out.print(f"admin {user.email} created (id {user.id})", highlight=False)

    _run(_with_databases)(settings, ("users",), work)


@app.command()
def worker(
    idle: Annotated[float, typer.Option(min=0.05, max=60, help="seconds to wait when nothing is due")] = 1.0,
) -> None:
    """The background worker on its own: the outbox (e-mail), expired reservations, in-stock flags, stray refunds,
    housekeeping; until SIGTERM or Ctrl-C. `shop serve` runs one itself unless --no-worker."""
    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def work(databases: Databases) -> None:
        if not await store_migrated(databases, "main"):
            _fail("the main store is not migrated; run `shop migrate` first", 2)
        try:
            deliver = build_delivery(settings, databases)
        except (ValueError, InvalidValue) as exc:
            _fail(f"mail settings: {exc}", 2)
            return
        where = f"files in {settings.var_dir / 'mail'}" if settings.mail_backend == "file" \
            else f"SMTP {settings.smtp_host}:{settings.smtp_port}"
        out.print(f"delivering e-mail to {where}; stop with Ctrl-C", highlight=False)
        handled = await serve_worker(deliver, idle_sleep=idle)
        out.print(f"stopped after {handled} outbox jobs", highlight=False)

    _run(_with_databases)(settings, ("main",), work)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535)] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="default: one per CPU core")] = None,
    bind: Annotated[str | None, typer.Option(help="gunicorn bind, e.g. unix:var/shop.sock")] = None,
    pools: Annotated[Path | None, typer.Option(help="one gunicorn per route pool behind nginx: a TOML file like "
                                                    "examples/pools.toml")] = None,
    backup: Annotated[str | None, typer.Option(help="with --pools: the backup server of every pool, host:port "
                                                    "or unix:/path")] = None,
    max_requests: Annotated[int, typer.Option(min=0, help="recycle a worker after N requests (0: never)")] = 0,
    max_requests_jitter: Annotated[int | None, typer.Option(min=0, help="default: a tenth of --max-requests")] = None,
    nginx: Annotated[str | None, typer.Option(help="with --pools: the nginx binary (default: nginx on PATH, then "
                                                   "/usr/sbin/nginx)")] = None,
    with_worker: Annotated[bool, typer.Option(
        "--worker/--no-worker",
        help="run the background worker (`shop worker`) beside the web workers; --no-worker where a process manager "
             "runs it apart")] = True,
) -> None:
    """Serve the shop (gunicorn and uvicorn workers) and run the background worker; with --pools, one gunicorn per
    route pool behind nginx."""
    settings = _settings()
    _databases(settings)  # a bad URL fails here, in one line, not in every worker
    if pools is not None:
        if workers or bind:
            _fail("--workers and --bind do not apply with --pools: each pool's min and max size it, on its own socket",
                  2)
        _serve_pools(settings, pools, host=host, port=port, backup=backup, max_requests=max_requests,
                     max_requests_jitter=max_requests_jitter, nginx=nginx, with_worker=with_worker)
        return
    if backup or nginx:
        _fail("--backup and --nginx need --pools: the backup server sits in nginx's upstreams", 2)
    options = ServeOptions(host=host or settings.host, port=port or settings.port,
                           workers=workers or settings.worker_count, log_level=settings.log_level, bind=bind,
                           run_dir=settings.run_dir, pool=settings.pool, max_requests=max_requests,
                           max_requests_jitter=max_requests_jitter)
    if not with_worker:
        out.print(f"serving on http://{options.address} with {options.workers} workers (no background worker)",
                  highlight=False)
        exec_gunicorn(options)  # this process becomes gunicorn's master
        return
    out.print(f"serving on http://{options.address} with {options.workers} workers and the background worker",
              highlight=False)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = run_with_worker(options)
    if code:
        raise typer.Exit(code)


def _serve_pools(settings: Settings, path: Path, *, host: str | None, port: int | None, backup: str | None,
                 max_requests: int, max_requests_jitter: int | None, nginx: str | None, with_worker: bool) -> None:
    from rich.markup import escape  # the messages quote [pools.<name>] tables, which are not markup

    from shop.runtime import supervisor
    from shop.runtime.nginx import NginxError, StaticFile, find_nginx
    from shop.runtime.pools import PoolsFileError, read_pools
    from shop.web.assets import Assets

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        plan = read_pools(path)
        if backup:
            plan = plan.with_backup(backup)
        if host or port:
            file_host, _, file_port = plan.listen.rpartition(":")
            plan = plan.with_listen(f"{host or file_host}:{port or file_port}")
        binary = find_nginx(nginx)
    except (PoolsFileError, NginxError) as exc:
        _fail(escape(str(exc)), 2)
        return
    for note in plan.notes:
        err.print(f"note: {note}", highlight=False, markup=False)
    def static() -> tuple[StaticFile, ...]:
        assets = Assets()
        manifest = assets.manifest()
        return supervisor.static_files({entry["file"]: assets.root / name for name, entry in manifest.items()},
                                       {name: assets.root / name for name in manifest})

    serving = supervisor.ServeSettings(run_dir=settings.run_dir, nginx_dir=settings.var_dir / "nginx",
                                       nginx_binary=binary, log_level=settings.log_level, max_requests=max_requests,
                                       max_requests_jitter=max_requests_jitter, static_files=static)
    try:
        supervisor.run(plan, serving, board=build_process_board(settings), with_worker=with_worker)
    except (supervisor.SupervisorError, NginxError) as exc:
        _fail(escape(str(exc)))


totp_app = typer.Typer(help="Two-factor secrets at rest: keys for SHOP_TOTP_KEYS, re-sealing under the first key.",
                       no_args_is_help=True)
app.add_typer(totp_app, name="totp")


@totp_app.command("new-key")
def totp_new_key() -> None:
    """Print a new key to put first in SHOP_TOTP_KEYS."""
    out.print(new_totp_key(), highlight=False)


@totp_app.command("rekey")
def totp_rekey() -> None:
    """Seal every stored 2FA secret under the first key of SHOP_TOTP_KEYS (and any kept in plain text); after it, the
    other keys may be removed. Safe while the shop runs, and to run again."""
    settings = _settings()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    async def work(databases: Databases) -> None:
        if not databases.is_mongo("users") and not await store_migrated(databases, "users"):
            _fail("the users store is not migrated; run `shop migrate` first", 2)
        with Progress(TextColumn("re-sealing"), TextColumn("{task.completed} secrets"), TimeElapsedColumn(),
                      console=out, transient=not sys.stdout.isatty()) as bar:
            task = bar.add_task("secrets", total=None)
            report = await build_totp_rekey(settings, databases, progress=lambda n: bar.advance(task, n))()
        out.print(f"{report.resealed} two-factor secrets sealed under the first key ({report.were_plain} of them "
                  f"were kept in plain text)", highlight=False)
        if report.unreadable:
            _fail(f"{report.unreadable} secrets open with none of the keys (user ids logged above): put back the key "
                  "they were sealed with and run this again; do not remove any key yet")

    _run(_with_databases)(settings, ("users",), work)


assets_app = typer.Typer(help="Static files: build the content-hashed copies and their manifest.",
                         no_args_is_help=True)
app.add_typer(assets_app, name="assets")


@assets_app.command("build")
def build_assets(
    out_dir: Annotated[Path, typer.Option("--out", help="where to write them")] = Path("var/assets"),
) -> None:
    """Write every static file under its content-hashed name, with manifest.json (for a CDN or static host)."""
    from shop.web.assets import Assets

    settings = _settings()
    try:
        assets = Assets(cdn=settings.assets_cdn)
    except ValueError as exc:
        _fail(str(exc), 2)
        return
    manifest = assets.build(out_dir)
    out.print(f"{len(assets.manifest())} files and {manifest}", highlight=False)


@app.command("export-spa")
def export_spa(
    directory: Annotated[Path, typer.Argument(help="folder to write (created if missing)")],
    api_url: Annotated[str, typer.Option("--api-url", help="where the shop's API answers, e.g. https://api.acme.shop")],
) -> None:
    """Write the backup shop as a folder any static host can serve (GitHub Pages, S3, nginx)."""
    from shop.web.spa_site import export_spa as write_spa

    try:
        files = write_spa(directory, api_url=api_url)
    except ValueError as exc:
        _fail(str(exc), 2)
        return
    out.print(f"wrote {len(files)} files to {directory}; allow the static host's origin in SHOP_CORS_ORIGINS",
              highlight=False)


def main() -> None:
    app()
