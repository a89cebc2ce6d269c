"""The variant weight migration: variants stored before it weigh 0, and it can be taken back."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect, text

from shop.bootstrap import build_databases
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.posts.dialects import dialect_for
from shop.infrastructure.db.posts.reads import SqlCatalogReader
from tests.conftest import make_settings
from tests.databases import DatabaseFactory


def _to(revision: str, *, down: bool = False):  # type: ignore[no-untyped-def]
    def run(connection: Any) -> None:
        config = migrations.alembic_config("posts")
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    return run


def _variant_columns(connection: Any) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("variants")}


async def test_variants_stored_before_the_weight_column_weigh_nothing(backend: str,
                                                                      db_factory: DatabaseFactory) -> None:
    databases = build_databases(make_settings(await db_factory.url(backend, "weight")))
    try:
        engine = databases.engine("posts")
        async with engine.begin() as conn:
            await conn.run_sync(_to("posts_0001"))
            await conn.execute(text(
                "INSERT INTO products (id, slug, title, description, attributes, images, published, price_min, "
                "price_max, currency, in_stock, created_at, updated_at) VALUES (1, 'old-tee', 'Old Tee', '', '{}', "
                "'[]', :yes, 1500, 1500, 'EUR', :no, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"),
                {"yes": True, "no": False})
            await conn.execute(text(
                "INSERT INTO variants (product_id, sku, title, price, currency, options, position) "
                "VALUES (1, 'OLD-TEE', 'M', 1500, 'EUR', '{}', 0)"))

        assert await migrations.migrate(databases, "posts") == ("posts_0001", migrations.head("posts"))

        posts = databases.store("posts")
        catalog = SqlCatalogReader(posts, search=dialect_for(posts.backend), currency="EUR")
        product = await catalog.product("old-tee")
        assert product is not None and product.variants[0].weight_grams == 0
        assert (await catalog.offers(["OLD-TEE"]))["OLD-TEE"].weight_grams == 0
    finally:
        await databases.dispose()


async def test_the_weight_column_can_be_migrated_away_and_back(backend: str, db_factory: DatabaseFactory) -> None:
    databases = build_databases(make_settings(await db_factory.url(backend, "weight_down")))
    try:
        await migrations.migrate(databases, "posts")
        engine = databases.engine("posts")
        async with engine.begin() as conn:
            await conn.run_sync(_to("posts_0001", down=True))
            assert "weight_grams" not in await conn.run_sync(_variant_columns)
        assert await migrations.migrate(databases, "posts") == ("posts_0001", migrations.head("posts"))
        async with engine.connect() as conn:
            assert "weight_grams" in await conn.run_sync(_variant_columns)
    finally:
        await databases.dispose()
