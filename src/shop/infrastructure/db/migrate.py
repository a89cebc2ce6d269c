"""Run each store's Alembic tree to its head; safe to run again and again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from shop.infrastructure.db.engines import Databases

TREES = Path(__file__).parent / "migrations"


def alembic_config(store: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(TREES / store))
    config.attributes["store"] = store
    return config


def version_table(store: str) -> str:
    return f"alembic_version_{store}"


def _upgrade(connection: Any, store: str) -> None:
    config = alembic_config(store)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Any, store: str) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table(store)})
    return context.get_current_revision()


def head(store: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(store)).get_current_head()


async def migrate(databases: Databases, store: str) -> tuple[str | None, str | None]:
    """Upgrade one store; returns the revision before and after (on MongoDB: how many of its indexes exist)."""
    if databases.is_mongo(store):  # no schema to upgrade there: what a store on MongoDB needs made is its indexes
        mongo = databases.mongo_store(store)
        missing, total = await mongo.ensure_indexes(), mongo.index_count
        return f"{total - missing} of {total} indexes", f"{total} of {total} indexes"
    engine = databases.engine(store)
    async with engine.begin() as conn:
        before = await conn.run_sync(_current, store)
        await conn.run_sync(_upgrade, store)
        after = await conn.run_sync(_current, store)
    return before, after


async def current(databases: Databases, store: str) -> str | None:
    async with databases.engine(store).connect() as conn:
        return await conn.run_sync(_current, store)
