"""Fixtures of the fault tests: one SQLite shop with the demo catalogue, and short-pathed homes for servers.

The fault tests are about processes (gunicorn masters, workers, nginx, a backup server), not about the database,
so they run on SQLite alone: it needs no server, and two `shop serve` sharing one file is the simplest honest
"Main and Backup on one database". Running them on every backend would multiply minutes of process churn for no
new coverage; the backends are covered by tests/e2e and tests/integration.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from shop.config import Settings
from tests.conftest import make_settings, migrate_all, seed_demo
from tests.databases import DatabaseFactory


@pytest_asyncio.fixture(scope="session")
async def runtime_settings(db_factory: DatabaseFactory) -> Settings:
    """A migrated SQLite shop with the demo catalogue, shared by the fault tests (they may buy from it)."""
    settings = make_settings(await db_factory.url("sqlite", "runtime"))
    await migrate_all(settings)
    await seed_demo(settings)
    return settings


def short_home() -> Path:
    # a Unix socket path holds at most 107 bytes: pytest's tmp_path can be longer than that
    return Path(tempfile.mkdtemp(prefix="shop-rt-", dir="/tmp"))


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)
