"""The users store under test: one contract, run on every SQL database and on MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shop.bootstrap import UsersStore, build_databases, build_users_store
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.engines import Databases
from tests.conftest import make_settings
from tests.databases import DatabaseFactory


@pytest_asyncio.fixture
async def users_databases(users_backend: str, db_factory: DatabaseFactory,
                          request: pytest.FixtureRequest) -> AsyncIterator[Databases]:
    """Databases whose users store is new, migrated (on MongoDB: indexed) and empty, on `users_backend`."""
    if users_backend == "mongodb":
        mongo = request.getfixturevalue("mongo")
        settings = make_settings(await db_factory.url("sqlite", "main"), users=mongo.url("users"))
    else:
        settings = make_settings(await db_factory.url(users_backend, "users"))
    databases = build_databases(settings)
    await migrations.migrate(databases, "users")
    yield databases
    await databases.dispose()


@pytest.fixture
def users_store(users_databases: Databases) -> UsersStore:
    """The users store's adapters as the app wires them: SQL or MongoDB, by the users store's URL."""
    return build_users_store(users_databases)
