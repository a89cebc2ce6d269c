"""Which databases the suite runs on, and fresh, empty databases on them for a test to use.

SHOP_TEST_DATABASES=sqlite,postgresql,mariadb,mongodb names them; each one named must answer or the run fails.
Unset, the suite runs on SQLite plus whichever of PostgreSQL and MariaDB answer on localhost, plus MongoDB when
tests/mongo_server.py has one (a real server named by SHOP_TEST_MONGODB_URL, or the nx-27017 emulator). MongoDB
can hold only the users store: the tests of that store run on it as well; every other test runs on the SQL ones.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests import mongo_server

KNOWN = ("sqlite", "postgresql", "mariadb", "mongodb")
ADMIN_URLS = {
    "postgresql": os.environ.get("SHOP_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("SHOP_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/mysql"),
}


@dataclass(frozen=True)
class Selection:
    databases: tuple[str, ...]
    required: bool
    missing: tuple[str, ...] = ()  # named but unreachable: the run must fail

    @property
    def sql(self) -> tuple[str, ...]:
        """The SQL databases: every store can live on them."""
        return tuple(n for n in self.databases if n != "mongodb")


def where(backend: str) -> str:
    """Where a database under test is looked for, for a person to read."""
    return mongo_server.describe() if backend == "mongodb" else f"at {ADMIN_URLS[backend]}"


def _answers(backend: str) -> bool:
    from sqlalchemy.engine import make_url

    if backend == "mongodb":
        return mongo_server.available()
    url = make_url(ADMIN_URLS[backend])
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or (5432 if backend == "postgresql"
                                                                                 else 3306)), timeout=1):
            return True
    except OSError:
        return False


def select_databases() -> Selection:
    raw = os.environ.get("SHOP_TEST_DATABASES", "").strip()
    if raw:
        names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
        unknown = [n for n in names if n not in KNOWN]
        if unknown:
            raise SystemExit(f"SHOP_TEST_DATABASES: unknown database {unknown[0]!r}; choose from {', '.join(KNOWN)}")
        missing = tuple(n for n in names if n != "sqlite" and not _answers(n))
        return Selection(names, required=True, missing=missing)
    found = ("sqlite", *(n for n in ("postgresql", "mariadb", "mongodb") if _answers(n)))
    return Selection(found, required=False)


class DatabaseFactory:
    """Creates empty databases for tests and drops them at the end of the session."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._created: list[tuple[str, str]] = []
        self._run = uuid.uuid4().hex[:6]

    async def url(self, backend: str, label: str) -> str:
        """The URL of a new empty database on `backend`."""
        name = f"shop_t_{self._run}_{label}_{len(self._created)}"
        if backend == "sqlite":
            path = self._tmp / f"{name}.db"
            self._created.append((backend, str(path)))
            return f"sqlite+aiosqlite:///{path}"
        base = ADMIN_URLS[backend].rsplit("/", 1)[0]
        await _admin(backend, [f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"])
        self._created.append((backend, name))
        scheme = "postgresql+asyncpg" if backend == "postgresql" else "mysql+asyncmy"
        return f"{scheme}://{base.split('://', 1)[1]}/{name}"

    async def drop_all(self) -> None:
        for backend, name in self._created:
            if backend != "sqlite":
                force = " WITH (FORCE)" if backend == "postgresql" else ""
                await _admin(backend, [f"DROP DATABASE IF EXISTS {name}{force}"])
        self._created.clear()


async def _admin(backend: str, statements: list[str]) -> None:
    """Run statements outside a transaction on the server's admin database."""
    from sqlalchemy.engine import make_url

    url = make_url(ADMIN_URLS[backend])
    if backend == "postgresql":
        import asyncpg

        pg = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                   password=url.password, database=url.database or "postgres")
        try:
            for statement in statements:
                await pg.execute(statement)
        finally:
            await pg.close()
        return
    import asyncmy

    my = await asyncmy.connect(host=url.host, port=url.port or 3306, user=url.username or "root",
                               password=url.password or "")
    try:
        async with my.cursor() as cursor:
            for statement in statements:
                await cursor.execute(statement)
    finally:
        my.close()
