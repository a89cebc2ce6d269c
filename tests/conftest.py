"""Shared fixtures: the databases under test, migrated stores, a seeded demo shop, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from shop.bootstrap import build_databases, create_asgi_app
from shop.config import STORES, Settings
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.engines import Databases
from tests.databases import ADMIN_URLS, DatabaseFactory, select_databases

SELECTION = select_databases()


def pytest_report_header(config: pytest.Config) -> list[str]:
    how = ("named by SHOP_TEST_DATABASES; each must answer" if SELECTION.required
           else "SQLite plus what answered on localhost; SHOP_TEST_DATABASES=sqlite,postgresql,mariadb requires them")
    return [f"databases under test: {', '.join(SELECTION.databases)} ({how})"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if SELECTION.missing:
        where = "; ".join(f"{name} at {ADMIN_URLS[name]}" for name in SELECTION.missing)
        pytest.exit(f"SHOP_TEST_DATABASES names databases that do not answer: {where}", returncode=3)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", SELECTION.databases, scope="session")


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
    from shop.bootstrap import build_catalog
    from shop.infrastructure.db.main.stock import SqlStock
    from shop.services.seeding import seed_catalog

    settings = make_settings(await db_factory.url(backend, "demo"), catalog_poll_interval=0.1)
    await migrate_all(settings)
    databases = build_databases(settings)
    try:
        catalog = build_catalog(settings, databases)
        await seed_catalog(reader=catalog, writer=catalog, stock=SqlStock(databases.store("main")), products=240,
                           only_if_empty=True)
    finally:
        await databases.dispose()
    return settings


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
