"""Shared fixtures: the databases under test, migrated stores, a seeded demo shop, an HTTP client."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from shop.bootstrap import build_databases, create_asgi_app
from shop.config import STORES, Settings
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.engines import Databases
from shop.runtime.nginx import NginxError, find_nginx
from tests import mongo_server
from tests.databases import DatabaseFactory, select_databases, where

SELECTION = select_databases()


def pytest_report_header(config: pytest.Config) -> list[str]:
    how = ("named by SHOP_TEST_DATABASES; each must answer" if SELECTION.required
           else "SQLite plus what answered on localhost; SHOP_TEST_DATABASES=sqlite,postgresql,mariadb,mongodb "
                "requires them")
    header = [f"databases under test: {', '.join(SELECTION.databases)} ({how})"]
    if "mongodb" in SELECTION.databases:
        header.append(f"mongodb (the users store only): {mongo_server.describe()}")
    return header + skipped_groups()


def skipped_groups() -> list[str]:
    """Every group of tests this run skips (or fails for want of a tool), and why: nothing is skipped unsaid."""
    lines = []
    for name in ("postgresql", "mariadb"):
        if name not in SELECTION.databases:
            why = "not among SHOP_TEST_DATABASES" if SELECTION.required else \
                f"nothing answered {where(name)} (SHOP_TEST_DATABASES=sqlite,{name} requires it)"
            lines.append(f"skipped: the {name} cases of the database tests — {why}")
    if "mongodb" not in SELECTION.databases:
        lines.append("skipped: mongodb tests (the users store on MongoDB) — mongodb is not among the databases "
                     "under test (SHOP_TEST_DATABASES=…,mongodb, with nx-27017 or SHOP_TEST_MONGODB_URL)")
    if "sqlite" in SELECTION.sql:
        lines.append("skipped on purpose: 4 SQLite cases that cannot arise there — a claimer skipping the rows "
                     "another holds (test_outbox) and 2 deadlocks retried (test_store_busy): one writer at a time; "
                     "a connection the server cuts mid-write (test_driver_writes): no server")
    # CI (SHOP_TEST_DATABASES set) fails these instead of skipping them
    outcome = "FAILS" if SELECTION.required else "skipped"
    chromium = os.environ.get("SHOP_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.path.isfile(chromium):
        lines.append(f"{outcome}: browser tests (tests/browser) — no Chromium at {chromium}: "
                     "scripts/ensure-test-tools installs it")
    elif importlib.util.find_spec("playwright") is None:
        lines.append(f"{outcome}: browser tests (tests/browser) — no playwright: pip install -e '.[dev]'")
    from tests.deploy.test_deploy_files import BIN, LINTERS  # the tools its tests require, named where they are

    tools = [t for t in (*LINTERS, "kubectl") if not ((BIN / t).exists() or shutil.which(t))]
    if tools:
        lines.append(f"{outcome}: deployment-file tests (tests/deploy/test_deploy_files.py) — missing "
                     f"{', '.join(tools)} (dev extras; kubectl 1.27+)")
    from tests.db_servers import missing_binaries  # the restart test makes private servers from them

    servers = missing_binaries(tuple(kind for kind in ("postgresql", "mariadb") if kind in SELECTION.sql))
    if servers:
        lines.append(f"FAILS: tests/e2e/test_database_restart.py (it stops and starts private database servers) — "
                     f"no server binaries: apt-get install {' '.join(servers)}")
    try:
        find_nginx(None)
    except NginxError:
        lines.append("FAILS: tests/runtime (`shop serve --pools` puts nginx in front) — no nginx on PATH or at "
                     "/usr/sbin/nginx: scripts/ensure-test-tools installs it")
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    if SELECTION.missing:
        missing = "; ".join(f"{name} ({where(name)})" for name in SELECTION.missing)
        pytest.exit(f"SHOP_TEST_DATABASES names databases that do not answer: {missing}", returncode=3)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", SELECTION.sql, scope="session")
    if "users_backend" in metafunc.fixturenames:  # the users store may also live on MongoDB
        metafunc.parametrize("users_backend", SELECTION.databases, scope="session",
                             ids=[mongo_server.param_id() if n == "mongodb" else n for n in SELECTION.databases])


def make_settings(main: str, *, users: str | None = None, posts: str | None = None, **extra: Any) -> Settings:
    return Settings(_env_file=None, main_db_url=main, users_db_url=users, posts_db_url=posts,  # type: ignore[call-arg]
                    **extra)


async def migrate_all(settings: Settings) -> None:
    databases = build_databases(settings)
    try:
        for store in STORES:
            await migrations.migrate(databases, store)
    finally:
        await databases.dispose()


@pytest_asyncio.fixture(scope="session")
async def db_factory(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mongo_server.MongoServer]:
    """The MongoDB server of this run: SHOP_TEST_MONGODB_URL's, or the nx-27017 emulator started for it."""
    with mongo_server.mongo_server(tmp_path_factory.mktemp("mongodb")) as server:
        yield server


@pytest.fixture(params=[pytest.param("mongodb", id=mongo_server.param_id())])
def mongodb(request: pytest.FixtureRequest) -> mongo_server.MongoServer:
    """The MongoDB server, for a test of the users store on MongoDB; skipped when mongodb is not under test."""
    if "mongodb" not in SELECTION.databases:
        pytest.skip("mongodb is not among the databases under test (SHOP_TEST_DATABASES)")
    server: mongo_server.MongoServer = request.getfixturevalue("mongo")
    return server


@pytest_asyncio.fixture
async def empty_settings(backend: str, db_factory: DatabaseFactory) -> Settings:
    """Settings for a new, migrated, empty shop on one database of `backend`."""
    settings = make_settings(await db_factory.url(backend, "empty"))
    await migrate_all(settings)
    return settings


@pytest_asyncio.fixture
async def databases(empty_settings: Settings) -> AsyncIterator[Databases]:
    databases = build_databases(empty_settings)
    yield databases
    await databases.dispose()


@pytest_asyncio.fixture(scope="session")
async def demo_settings(backend: str, db_factory: DatabaseFactory) -> Settings:
    """A migrated shop seeded with the demo catalogue, shared read-only by the tests of one backend."""
    settings = make_settings(await db_factory.url(backend, "demo"), catalog_poll_interval=0.1)
    await migrate_all(settings)
    await seed_demo(settings)
    return settings


async def seed_demo(settings: Settings) -> None:
    """The demo catalogue (240 products with stock) into a migrated, empty shop."""
    from shop.bootstrap import build_catalog
    from shop.infrastructure.db.main.stock import SqlStock
    from shop.services.seeding import seed_catalog

    databases = build_databases(settings)
    try:
        catalog = build_catalog(settings, databases)
        await seed_catalog(reader=catalog.reader, writer=catalog.writer, stock=SqlStock(databases.store("main")),
                           products=240, only_if_empty=True)
    finally:
        await databases.dispose()


async def open_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_asgi_app(settings)
    # generous timeouts: on a busy CI machine a MariaDB pool can take seconds to close
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield client


@pytest_asyncio.fixture
async def client(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the demo shop, response cache off, so every request reaches the database."""
    async for c in open_client(demo_settings.model_copy(update={"response_cache": False})):
        yield c


@pytest_asyncio.fixture
async def cached_client(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_client(demo_settings):
        yield c
