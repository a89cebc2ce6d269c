"""The benchmark's database (PostgreSQL, or MariaDB for the mixed-load benchmark): dropped, recreated, migrated and
seeded with `shop` itself."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncmy
import asyncmy.errors
import asyncpg
from asyncmy.cursors import DictCursor

from bench.servers import base_env

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench"
URL_ENV = "SHOP_BENCH_PG_URL"
PRODUCTS = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SHOP_TIMEOUT_S = 900  # migrate and seed; seeding 10,000 products takes seconds
_MARIADB_SCHEMES = ("mysql", "mariadb")
_UNKNOWN_DATABASE, _NO_SUCH_TABLE = 1049, 1146  # MariaDB's error codes
# what the drivers raise when a database cannot be reached or a statement fails
DRIVER_ERRORS: tuple[type[Exception], ...] = (OSError, asyncpg.PostgresError, asyncmy.errors.MySQLError)


class DatabaseError(RuntimeError):
    """The benchmark database cannot be prepared; the message is one line."""


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    url: str  # what the shop is given (SHOP_MAIN_DB_URL)
    name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BenchDatabase:
        """The PostgreSQL database named by SHOP_BENCH_PG_URL (or the default)."""
        url = environ.get(URL_ENV) or DEFAULT_URL
        parts = urlsplit(url)
        if not parts.scheme.startswith(("postgresql", "postgres")):
            raise DatabaseError(f"{URL_ENV} must be a postgresql:// URL, not {parts.scheme}://")
        return cls.from_url(url, setting=URL_ENV)

    @classmethod
    def from_url(cls, url: str, *, setting: str) -> BenchDatabase:
        """A PostgreSQL or MariaDB (mysql://) database; `setting` names where the URL came from, for errors."""
        parts = urlsplit(url)
        if not parts.scheme.startswith(("postgresql", "postgres", *_MARIADB_SCHEMES)):
            raise DatabaseError(f"{setting} must be a postgresql:// or mysql:// URL, not {parts.scheme}://")
        name = parts.path.lstrip("/")
        if not _NAME.fullmatch(name):
            raise DatabaseError(f"{setting} must name a plain database, e.g. /shop_bench (got {name!r})")
        if "bench" not in name:  # it is dropped: refuse anything that does not look like a benchmark database
            raise DatabaseError(f"refusing to drop {name!r}: a benchmark database's name contains 'bench'")
        return cls(url=url, name=name)

    @property
    def kind(self) -> str:
        """postgresql or mariadb."""
        return "mariadb" if urlsplit(self.url).scheme.startswith(_MARIADB_SCHEMES) else "postgresql"

    @property
    def label(self) -> str:
        return "MariaDB" if self.kind == "mariadb" else "PostgreSQL"

    def _dsn(self, database: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(scheme="postgresql", path=f"/{database}"))

    @property
    def dsn(self) -> str:
        """For asyncpg: the same URL without a SQLAlchemy driver name."""
        return self._dsn(self.name)

    @property
    def admin_dsn(self) -> str:
        return self._dsn("postgres")

    @property
    def masked_url(self) -> str:
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


class Connection(Protocol):
    """The few calls the benchmarks make on a connection: asyncpg's, which MariaDB's connection mimics."""

    async def execute(self, statement: str) -> Any: ...
    async def fetch(self, query: str) -> Sequence[Mapping[str, Any]]: ...
    async def fetchval(self, query: str) -> Any: ...
    async def close(self) -> None: ...


class _MariaDBConnection:
    """An asyncmy connection in autocommit, answering like asyncpg's."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, statement: str) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.execute(statement)

    async def fetch(self, query: str) -> list[dict[str, Any]]:
        async with self._conn.cursor(DictCursor) as cursor:
            await cursor.execute(query)
            return list(await cursor.fetchall())

    async def fetchval(self, query: str) -> Any:
        async with self._conn.cursor() as cursor:
            await cursor.execute(query)
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def close(self) -> None:
        self._conn.close()


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


async def connect(db: BenchDatabase, *, admin: bool = False) -> Connection:
    """A connection to the benchmark database (or, with `admin`, to the server outside it), in autocommit."""
    if db.kind == "postgresql":
        conn: Connection = await _connect(db.admin_dsn if admin else db.dsn)
        return conn
    # the server's notes (e.g. that DROP DATABASE IF EXISTS found none) are not problems worth a log line
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    parts = urlsplit(db.url)
    raw = await asyncmy.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                                user=parts.username or "root", password=parts.password or "",
                                database=None if admin else db.name, charset="utf8mb4", autocommit=True,
                                connect_timeout=10)
    return _MariaDBConnection(raw)


def _missing(exc: Exception) -> bool:
    """The database or its products table does not exist."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.UndefinedTableError):
        return True
    return isinstance(exc, asyncmy.errors.MySQLError) and bool(exc.args) \
        and exc.args[0] in (_UNKNOWN_DATABASE, _NO_SUCH_TABLE)


async def product_count(db: BenchDatabase) -> int | None:
    """How many products the database has; None if it or its products table does not exist."""
    try:
        conn = await connect(db)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM products"))
        finally:
            await conn.close()
    except DRIVER_ERRORS as exc:
        if _missing(exc):
            return None
        raise


async def server_version(db: BenchDatabase) -> str:
    conn = await connect(db, admin=True)
    try:
        return str(await conn.fetchval("SHOW server_version" if db.kind == "postgresql" else "SELECT VERSION()"))
    finally:
        await conn.close()


async def _recreate(db: BenchDatabase) -> None:
    conn = await connect(db, admin=True)
    try:
        if db.kind == "postgresql":
            await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{db.name}"')
        else:
            await conn.execute(f"DROP DATABASE IF EXISTS `{db.name}`")
            await conn.execute(f"CREATE DATABASE `{db.name}`")
    finally:
        await conn.close()


async def _analyze(db: BenchDatabase) -> None:
    """Fresh statistics, so the plans do not change when autovacuum gets round to the new tables mid-run."""
    conn = await connect(db)
    try:
        if db.kind == "postgresql":
            await conn.execute("VACUUM ANALYZE")
            return
        tables = await conn.fetch("SELECT table_name AS name FROM information_schema.tables "
                                  "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
        if tables:  # MariaDB has no VACUUM; its persistent statistics are what ANALYZE refreshes
            await conn.fetch("ANALYZE TABLE " + ", ".join(f"`{t['name']}`" for t in tables))
    finally:
        await conn.close()


async def forget_requests(db: BenchDatabase) -> None:
    """Empty the request log, which every measured request writes to: a reused database would otherwise carry
    millions of rows from earlier runs, and autovacuum working through them competes with the run measured."""
    conn = await connect(db)
    try:
        await conn.execute("TRUNCATE request_log")
    finally:
        await conn.close()


async def stock_and_sales(db: BenchDatabase) -> tuple[dict[str, tuple[int, int]], dict[str, int], dict[str, int]]:
    """Every stock level (on hand, reserved), units sold per SKU on paid orders, and orders by status."""
    conn = await connect(db)
    try:
        levels = {r["sku"]: (int(r["on_hand"]), int(r["reserved"]))
                  for r in await conn.fetch("SELECT sku, on_hand, reserved FROM stock_levels")}
        sold = {r["sku"]: int(r["units"]) for r in await conn.fetch(
            "SELECT l.sku, sum(l.quantity) AS units FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "WHERE o.status = 'paid' GROUP BY l.sku")}
        statuses = {r["status"]: int(r["n"])
                    for r in await conn.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")}
    finally:
        await conn.close()
    return levels, sold, statuses


def shop_command() -> str:
    """The `shop` script of the interpreter running the benchmark."""
    script = Path(sys.executable).with_name("shop")
    if not script.exists():
        raise DatabaseError(f"no `shop` command beside {sys.executable}; run `pip install -e .` first")
    return str(script)


def shop_env(db: BenchDatabase, **extra: str) -> dict[str, str]:
    """The environment for a `shop` subprocess: every store on the benchmark database, no inherited SHOP_*."""
    env = base_env()
    # users and posts would default to the main URL anyway; naming them keeps a stray .env from splitting them
    env.update(SHOP_MAIN_DB_URL=db.url, SHOP_USERS_DB_URL=db.url, SHOP_POSTS_DB_URL=db.url, **extra)
    return env


def _shop(args: list[str], *, env: Mapping[str, str], cwd: Path) -> str:
    try:
        done = subprocess.run([shop_command(), *args], env=dict(env), cwd=cwd, capture_output=True, text=True,
                              timeout=_SHOP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DatabaseError(f"`shop {' '.join(args)}` did not finish within {_SHOP_TIMEOUT_S}s") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise DatabaseError(f"`shop {' '.join(args)}` failed: {lines[-1] if lines else done.returncode}")
    return done.stdout.strip()


@dataclass(frozen=True, slots=True)
class Prepared:
    reused: bool
    products: int
    seconds: float


def prepare(db: BenchDatabase, *, reuse: bool, cwd: Path) -> Prepared:
    """A migrated database with exactly PRODUCTS products: reused if asked and possible, else made anew."""
    started = time.monotonic()
    env = shop_env(db)
    try:
        if reuse and asyncio.run(product_count(db)) == PRODUCTS:
            _shop(["migrate"], env=env, cwd=cwd)  # a no-op when up to date; catches a schema that moved on
            asyncio.run(forget_requests(db))
            return Prepared(reused=True, products=PRODUCTS, seconds=time.monotonic() - started)
        asyncio.run(_recreate(db))
        _shop(["migrate"], env=env, cwd=cwd)
        _shop(["seed", "--products", str(PRODUCTS)], env=env, cwd=cwd)
        asyncio.run(_analyze(db))
        count = asyncio.run(product_count(db))
    except DRIVER_ERRORS as exc:
        raise DatabaseError(f"{db.label} at {db.masked_url}: {str(exc).strip().splitlines()[0]}") from None
    if count != PRODUCTS:
        raise DatabaseError(f"seeding left {count} products in {db.name}, expected {PRODUCTS}")
    return Prepared(reused=False, products=count, seconds=time.monotonic() - started)
