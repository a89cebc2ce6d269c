"""The benchmark's PostgreSQL database: dropped, recreated, migrated and seeded with `shop` itself."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.servers import base_env

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/shop_bench"
URL_ENV = "SHOP_BENCH_PG_URL"
PRODUCTS = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SHOP_TIMEOUT_S = 900  # migrate and seed; seeding 10,000 products takes seconds


class DatabaseError(RuntimeError):
    """The benchmark database cannot be prepared; the message is one line."""


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    url: str  # what the shop is given (SHOP_MAIN_DB_URL)
    name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BenchDatabase:
        url = environ.get(URL_ENV) or DEFAULT_URL
        parts = urlsplit(url)
        if not parts.scheme.startswith(("postgresql", "postgres")):
            raise DatabaseError(f"{URL_ENV} must be a postgresql:// URL, not {parts.scheme}://")
        name = parts.path.lstrip("/")
        if not _NAME.fullmatch(name):
            raise DatabaseError(f"{URL_ENV} must name a plain database, e.g. /shop_bench (got {name!r})")
        if "bench" not in name:  # it is dropped: refuse anything that does not look like a benchmark database
            raise DatabaseError(f"refusing to drop {name!r}: a benchmark database's name contains 'bench'")
        return cls(url=url, name=name)

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


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


async def product_count(db: BenchDatabase) -> int | None:
    """How many products the database has; None if it or its products table does not exist."""
    try:
        conn = await _connect(db.dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        return int(await conn.fetchval("SELECT count(*) FROM products"))
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


async def server_version(db: BenchDatabase) -> str:
    conn = await _connect(db.admin_dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def _recreate(db: BenchDatabase) -> None:
    conn = await _connect(db.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{db.name}"')
    finally:
        await conn.close()


async def _analyze(db: BenchDatabase) -> None:
    """Fresh statistics, so the plans do not change when autovacuum gets round to the new tables mid-run."""
    conn = await _connect(db.dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def forget_requests(db: BenchDatabase) -> None:
    """Empty the request log, which every measured request writes to: a reused database would otherwise carry
    millions of rows from earlier runs, and autovacuum working through them competes with the run measured."""
    conn = await _connect(db.dsn)
    try:
        await conn.execute("TRUNCATE request_log")
    finally:
        await conn.close()


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
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"PostgreSQL at {db.masked_url}: {str(exc).strip().splitlines()[0]}") from None
    if count != PRODUCTS:
        raise DatabaseError(f"seeding left {count} products in {db.name}, expected {PRODUCTS}")
    return Prepared(reused=False, products=count, seconds=time.monotonic() - started)
