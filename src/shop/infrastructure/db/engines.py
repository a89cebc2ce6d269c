"""One async engine per distinct database URL; the three stores share an engine when they share a URL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shop.infrastructure.db.failures import connection_lost
from shop.infrastructure.mongo.client import MongoStore, MongoUrlError, is_mongo_url, parse_mongo_url
from shop.infrastructure.mongo.users import INDEXES as USERS_INDEXES
from shop.services.ports import StoreBusy, StoreUnavailable

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}
_SUPPORTED = {"sqlite+aiosqlite", "postgresql+asyncpg", "mysql+asyncmy", "mysql+aiomysql", "mariadb+asyncmy",
              "mariadb+aiomysql"}
log = logging.getLogger(__name__)
T = TypeVar("T")
MONGO_STORES = {"users": USERS_INDEXES}  # the stores that may live on MongoDB, and the indexes each needs there


class StoreConfigError(Exception):
    """A store URL that cannot be used; the message is one line for a person to read."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"{store} store: {message}")
        self.store = store


def _masked(raw: str) -> str:
    return raw.split("://", 1)[0] + "://…" if "@" in raw else raw


def parse_store_url(store: str, raw: str) -> URL:
    """A SQLAlchemy async URL from what a person wrote, with the async driver filled in."""
    if is_mongo_url(raw):
        raise StoreConfigError(store, f"MongoDB can hold only the {', '.join(MONGO_STORES)} store; "
                                      "use a SQL database URL")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        raise StoreConfigError(store, f"{_masked(raw)!r} is not a database URL ({exc})") from None
    drivername = _DRIVERS.get(url.drivername, url.drivername)
    if drivername not in _SUPPORTED:
        raise StoreConfigError(
            store, f"unsupported database {url.drivername!r}; use sqlite://, postgresql:// or mysql:// (MariaDB)")
    url = url.set(drivername=drivername)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise StoreConfigError(store, "SQLite needs a file path, e.g. sqlite:///var/shop.db")
    elif not url.host:
        raise StoreConfigError(store, f"{_masked(raw)!r} names no host")
    elif not url.database:
        raise StoreConfigError(store, f"{_masked(raw)!r} names no database")
    if url.get_backend_name() == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def host_of(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return f"{url.host}:{url.port}" if url.port else str(url.host)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                   "cache_size=-16000", "temp_store=MEMORY"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
    # transactions are begun by `_sqlite_begin` below, not by the driver, so a writer can take the lock up front
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    """BEGIN IMMEDIATE for write transactions: one that read first and wrote later could otherwise fail with
    "database is locked" when another writer committed in between; taking the write lock up front makes it wait
    (busy_timeout) instead."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "BEGIN")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: URL, *, pool_size: int, connect_timeout: float) -> AsyncEngine:
    backend = url.get_backend_name()
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if backend == "sqlite":
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # overflow connections are closed when returned; a pool that fits the usual concurrency avoids reconnecting
    options.update(pool_size=pool_size, max_overflow=max(2, pool_size // 2), pool_recycle=1800)
    if backend == "postgresql":
        # jit only slows the short queries a shop runs
        options["connect_args"] = {"timeout": connect_timeout, "server_settings": {"jit": "off"}}
    else:
        options["connect_args"] = {"connect_timeout": int(max(1, connect_timeout))}
        # the level PostgreSQL runs at: REPEATABLE READ (MariaDB's default) also locks the gaps between index
        # records that a write searched, so shoppers adding carts or lines side by side deadlock one another
        # (docs/decisions/2026-12-07-mariadb-read-committed.md). Set once per connection, when it is made.
        options["isolation_level"] = "READ COMMITTED"
        # the server's notes (e.g. "name ignored for PRIMARY key") are not problems worth a log line
        logging.getLogger("asyncmy").setLevel(logging.ERROR)
    return create_async_engine(url, **options)


class Store:
    """Connections to one store; failing to connect raises StoreUnavailable naming the store and its host."""

    def __init__(self, name: str, engine: AsyncEngine, host: str) -> None:
        self.name = name
        self.engine = engine
        self.host = host
        self.backend = engine.dialect.name
        # PostgreSQL reads need no transaction: autocommit saves a BEGIN and a ROLLBACK per read.
        # (MariaDB would pay two round trips to switch it, so it keeps the implicit transaction.)
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if self.backend == "postgresql" \
            else engine
        self._writer = engine.execution_options(sqlite_write=True) if self.backend == "sqlite" else engine

    async def _open(self, engine: AsyncEngine) -> AsyncConnection:
        try:
            return await engine.connect().start()
        except (OSError, DBAPIError, TimeoutError) as exc:
            raise StoreUnavailable(self.name, self.host, short_reason(exc)) from None
        except Exception as exc:
            # a pooled connection that went away while being set up (e.g. MariaDB's isolation level is set on
            # checkout): the driver's own error, which SQLAlchemy lets through there
            if connection_lost(exc) or _database_error(exc) is not None:
                raise StoreUnavailable(self.name, self.host, short_reason(exc)) from None
            raise

    async def _failed(self, conn: AsyncConnection, exc: BaseException) -> BaseException | None:
        """What a failure inside a connection's block becomes: StoreUnavailable when the connection or the server
        went away (the connection is thrown away, never pooled again; so is one whose statement was cancelled
        halfway), StoreBusy when a concurrent transaction won; None to let it through as it is."""
        lost = isinstance(exc, Exception) and connection_lost(exc)
        if lost or isinstance(exc, asyncio.CancelledError):
            if not conn.invalidated:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
            return StoreUnavailable(self.name, self.host, short_reason(exc)) if lost else None
        if isinstance(exc, Exception) and transient(exc):
            return StoreBusy(self.name)
        return None

    @staticmethod
    async def _close(conn: AsyncConnection) -> None:
        try:
            await conn.close()
        except Exception:  # a connection that broke on its way back to the pool: thrown away instead
            with contextlib.suppress(Exception):
                await conn.invalidate()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        conn = await self._open(self._reader)
        try:
            yield conn
        except BaseException as exc:
            failure = await self._failed(conn, exc)
            if failure is not None:
                raise failure from None
            raise
        finally:
            await self._close(conn)

    @asynccontextmanager
    async def one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a single writing statement that is its own transaction (PostgreSQL: autocommit, so no
        BEGIN and COMMIT round trips; elsewhere an ordinary write transaction)."""
        async with self._connection(self._reader if self.backend == "postgresql" else self._writer,
                                    begin=self.backend != "postgresql") as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends without an error."""
        async with self._connection(self._writer, begin=True) as conn:
            yield conn

    async def transaction(self, unit: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 3) -> T:
        """`unit` run in a write transaction, as `write()` runs a block; run again on a fresh transaction, up to
        `attempts` times in all, if the database chose it as a deadlock's victim (it rolled back, so nothing of it
        stays). Only for a unit whose one effect is its transaction: what it sent elsewhere would go again."""
        for attempt in range(1, attempts + 1):
            victim = False
            try:
                async with self.write() as conn:
                    try:
                        return await unit(conn)
                    except Exception as exc:
                        victim = deadlock_victim(exc)
                        raise
            except StoreBusy:
                # a lock wait that timed out is not retried: the lock is held by something slow, not by a twin
                if not victim or attempt == attempts:
                    raise
            log.info("%s store: a deadlock rolled back attempt %d of %d; running it again", self.name, attempt,
                     attempts)
            await asyncio.sleep(random.uniform(*_RETRY_PAUSE) * 2 ** (attempt - 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @asynccontextmanager
    async def _connection(self, engine: AsyncEngine, *, begin: bool) -> AsyncIterator[AsyncConnection]:
        conn = await self._open(engine)
        try:
            if begin:
                async with conn.begin():
                    yield conn
            else:
                yield conn
        except BaseException as exc:
            failure = await self._failed(conn, exc)
            if failure is not None:
                raise failure from None
            raise
        finally:
            await self._close(conn)


def _mongo_store(store: str, raw: str, *, pool_size: int, connect_timeout: float) -> MongoStore:
    try:
        url = parse_mongo_url(raw)
    except MongoUrlError as exc:
        raise StoreConfigError(store, str(exc)) from None
    return MongoStore(store, url, indexes=MONGO_STORES[store], pool_size=pool_size, connect_timeout=connect_timeout)


class Databases:
    """The engines of the three stores, created lazily; nothing connects until first used. A store that may live
    on MongoDB and is given a mongodb:// URL gets a MongoStore instead of an engine."""

    def __init__(self, urls: Mapping[str, str], *, pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.mongo = {store: _mongo_store(store, raw, pool_size=pool_size, connect_timeout=connect_timeout)
                      for store, raw in urls.items() if store in MONGO_STORES and is_mongo_url(raw)}
        self.urls = {store: parse_store_url(store, raw) for store, raw in urls.items() if store not in self.mongo}
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._engines: dict[str, AsyncEngine] = {}

    def _key(self, store: str) -> str:
        if store in self.mongo:
            raise StoreConfigError(store, "is on MongoDB and has no SQL engine")
        return self.urls[store].render_as_string(hide_password=False)

    def is_mongo(self, store: str) -> bool:
        return store in self.mongo

    def mongo_store(self, store: str) -> MongoStore:
        return self.mongo[store]

    def engine(self, store: str) -> AsyncEngine:
        key = self._key(store)
        if key not in self._engines:
            self._engines[key] = create_engine(self.urls[store], pool_size=self._pool_size,
                                               connect_timeout=self._connect_timeout)
        return self._engines[key]

    def store(self, store: str) -> Store:
        return Store(store, self.engine(store), self.host(store))

    def backend(self, store: str) -> str:
        return "mongodb" if store in self.mongo else self.urls[store].get_backend_name()

    def distinct_engines(self) -> int:
        return len({self._key(store) for store in self.urls})

    def host(self, store: str) -> str:
        return self.mongo[store].host if store in self.mongo else host_of(self.urls[store])

    async def ping(self, store: str, *, within: float | None = None) -> None:
        """Run SELECT 1 on the store; raise StoreUnavailable naming the store and host if it fails."""
        if store in self.mongo:
            await self.mongo[store].ping(within=within or self._connect_timeout + 1)
            return
        try:
            async with asyncio.timeout(within or self._connect_timeout + 1):
                async with self.engine(store).connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            raise StoreUnavailable(store, self.host(store), "no answer in time") from None
        except (OSError, DBAPIError, NoSuchModuleError) as exc:
            raise StoreUnavailable(store, self.host(store), short_reason(exc)) from None

    async def dispose(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        for mongo in self.mongo.values():
            await mongo.close()


_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_TRANSIENT_MYSQL = {1205, 1213}  # lock wait timeout, deadlock
_VICTIM_SQLSTATES = {"40001", "40P01"}  # the database rolled this transaction back so that another could go on
_VICTIM_MYSQL = {1213}
_RETRY_PAUSE = (0.005, 0.02)  # seconds before a second attempt, doubled before each further one


_DRIVER_MODULES = ("asyncpg", "asyncmy", "aiomysql", "pymysql", "aiosqlite", "sqlite3")


def _database_error(exc: BaseException) -> BaseException | None:
    """What the database said: the driver's error under SQLAlchemy's, or the driver's own (the checkout's
    driver-level writes); None for anything else (a domain error raised inside a transaction)."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    return exc if type(exc).__module__.startswith(_DRIVER_MODULES) else None


def _coded(original: BaseException, sqlstates: set[str], mysql_codes: set[int]) -> bool:
    """Whether the database's error carries one of these SQLSTATEs (PostgreSQL) or error numbers (MariaDB)."""
    if getattr(original, "sqlstate", None) in sqlstates or getattr(original, "pgcode", None) in sqlstates:
        return True
    args: tuple[Any, ...] = getattr(original, "args", ())
    return bool(args) and args[0] in mysql_codes


def transient(exc: BaseException) -> bool:
    """Whether the database refused the transaction only because of a concurrent one."""
    original = _database_error(exc)
    if original is None:
        return False
    return _coded(original, _TRANSIENT_SQLSTATES, _TRANSIENT_MYSQL) or "database is locked" in str(original)


def deadlock_victim(exc: BaseException) -> bool:
    """Whether the database rolled the transaction back to break a deadlock (or a serialization conflict)."""
    original = _database_error(exc)
    return original is not None and _coded(original, _VICTIM_SQLSTATES, _VICTIM_MYSQL)


def short_reason(exc: BaseException) -> str:
    """The first line of what the driver said, without SQLAlchemy's background links."""
    original = getattr(exc, "orig", None) or exc
    message = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return message[:300]


class SqlStoreProbe:
    """StoreProbe over one SQL store."""

    def __init__(self, databases: Databases, store: str) -> None:
        self.name = store
        self._databases = databases

    async def ping(self) -> None:
        await self._databases.ping(self.name, within=2.0)
