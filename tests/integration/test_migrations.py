"""Migrations: every store on every database, on one database or three, run as often as you like."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from shop.bootstrap import build_databases
from shop.config import STORES
from shop.infrastructure.db import migrate as migrations
from tests.conftest import make_settings, migrate_all
from tests.databases import DatabaseFactory


async def _tables(databases, store: str) -> set[str]:  # type: ignore[no-untyped-def]
    async with databases.engine(store).connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_migrating_twice_changes_nothing_the_second_time(backend: str, db_factory: DatabaseFactory) -> None:
    settings = make_settings(await db_factory.url(backend, "twice"))
    databases = build_databases(settings)
    try:
        first = [await migrations.migrate(databases, store) for store in STORES]
        second = [await migrations.migrate(databases, store) for store in STORES]
        heads = [migrations.head(store) for store in STORES]
        assert first == [(None, head) for head in heads]
        assert second == [(head, head) for head in heads]
    finally:
        await databases.dispose()


async def test_three_stores_share_one_database_with_their_own_version_tables(
        backend: str, db_factory: DatabaseFactory) -> None:
    settings = make_settings(await db_factory.url(backend, "shared"))
    await migrate_all(settings)
    databases = build_databases(settings)
    try:
        assert databases.distinct_engines() == 1
        tables = await _tables(databases, "main")
        assert {"alembic_version_main", "alembic_version_users", "alembic_version_posts"} <= tables
        assert {"stock_levels", "users", "products", "variants", "categories"} <= tables
    finally:
        await databases.dispose()


async def test_three_stores_on_three_databases_keep_their_tables_apart(
        backend: str, db_factory: DatabaseFactory) -> None:
    urls = {store: await db_factory.url(backend, store) for store in STORES}
    settings = make_settings(urls["main"], users=urls["users"], posts=urls["posts"])
    await migrate_all(settings)
    databases = build_databases(settings)
    try:
        assert databases.distinct_engines() == 3
        main, users, posts = [await _tables(databases, s) for s in STORES]
        assert "stock_levels" in main and "products" not in main and "users" not in main
        assert "users" in users and "stock_levels" not in users
        assert "products" in posts and "stock_levels" not in posts and "users" not in posts
    finally:
        await databases.dispose()


@pytest.mark.parametrize("other", ["sqlite"])
async def test_stores_may_live_on_different_kinds_of_database(
        backend: str, other: str, db_factory: DatabaseFactory) -> None:
    settings = make_settings(await db_factory.url(other, "main"), posts=await db_factory.url(backend, "posts"))
    await migrate_all(settings)
    databases = build_databases(settings)
    try:
        assert databases.backend("posts") == {"mariadb": "mysql"}.get(backend, backend)
        assert "products" in await _tables(databases, "posts")
        assert "stock_levels" in await _tables(databases, "main")
    finally:
        await databases.dispose()
