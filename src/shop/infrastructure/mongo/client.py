"""A store on MongoDB: its URL, an async client built on first use, the store's indexes, and a ping for /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl, unquote

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure

from shop.services.ports import StoreUnavailable

SCHEMES = ("mongodb", "mongodb+srv")
_BAD_NAME = set('/\\. "$*<>:|?')  # what MongoDB refuses in a database name
_NOT_ALLOWED = {13, 18}  # Unauthorized, AuthenticationFailed: the store cannot be used, like a refused login

Document = dict[str, Any]


class MongoUrlError(ValueError):
    """A MongoDB URL that cannot be used; the message is one line for a person to read."""


@dataclass(frozen=True, slots=True)
class MongoUrl:
    raw: str
    hosts: tuple[str, ...]
    database: str
    options: frozenset[str]  # the options the URL sets, lower-cased: the URL wins over our defaults

    @property
    def host(self) -> str:
        return ",".join(self.hosts)


def is_mongo_url(raw: str) -> bool:
    return raw.strip().lower().startswith(tuple(f"{scheme}://" for scheme in SCHEMES))


def _masked(raw: str) -> str:
    return raw.split("://", 1)[0] + "://…" if "@" in raw else raw


def parse_mongo_url(raw: str) -> MongoUrl:
    """Check a `mongodb://` or `mongodb+srv://` URL without connecting (an SRV name is looked up on first use)."""
    text = raw.strip()
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in SCHEMES:
        raise MongoUrlError(f"{_masked(raw)!r} is not a MongoDB URL; use mongodb://host:27017/database")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    hosts = tuple(h for h in netloc.rpartition("@")[2].split(",") if h)
    if not hosts:
        raise MongoUrlError(f"{_masked(raw)!r} names no host")
    if scheme.lower() == "mongodb+srv" and (len(hosts) > 1 or ":" in hosts[0].rsplit("]", 1)[-1]):
        raise MongoUrlError(f"{_masked(raw)!r}: mongodb+srv:// takes one host name without a port")
    path, _, query = tail.partition("?")
    database = unquote(path.removeprefix("/"))
    if not database:
        raise MongoUrlError(f"{_masked(raw)!r} names no database; add it as the path, e.g. "
                            f"{scheme}://{hosts[0]}/shop")
    if len(database) > 63 or _BAD_NAME & set(database):
        raise MongoUrlError(f"{database!r} is not a MongoDB database name (at most 63 characters, none of "
                            f"{''.join(sorted(_BAD_NAME))})")
    options = frozenset(key.lower() for key, _ in parse_qsl(query, keep_blank_values=True))
    return MongoUrl(raw=text, hosts=hosts, database=database, options=options)


def short_reason(exc: BaseException) -> str:
    """The first line of what PyMongo said, without its topology description."""
    message = str(exc).strip().split(", Timeout:", 1)[0].split(", Topology Description:", 1)[0]
    return (message.splitlines()[0] if message else type(exc).__name__)[:300]


class MongoStore:
    """One store on MongoDB. Nothing connects until first used; its indexes are made once per process then,
    so a unique key holds even where `shop migrate` was never run."""

    def __init__(self, name: str, url: MongoUrl, *, indexes: Mapping[str, Sequence[IndexModel]],
                 pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.name = name
        self.url = url
        self.host = url.host
        self._indexes = indexes
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._client: AsyncMongoClient[Document] | None = None
        self._indexed = False
        self._indexing = asyncio.Lock()

    @property
    def index_count(self) -> int:
        return sum(len(models) for models in self._indexes.values())

    def _database(self) -> AsyncDatabase[Document]:
        if self._client is None:
            # times are stored as UTC and come back timezone-aware, like the SQL stores' UTCDateTime
            options: dict[str, Any] = {"tz_aware": True, "tzinfo": UTC, "appname": "shop"}
            defaults = {"serverSelectionTimeoutMS": int(self._connect_timeout * 1000),
                        "connectTimeoutMS": int(self._connect_timeout * 1000),
                        # as many as an SQL engine's pool and overflow
                        "maxPoolSize": self._pool_size + max(2, self._pool_size // 2)}
            options.update({key: value for key, value in defaults.items() if key.lower() not in self.url.options})
            self._client = AsyncMongoClient(self.url.raw, **options)
        return self._client[self.url.database]

    @asynccontextmanager
    async def unavailable_as_error(self) -> AsyncIterator[None]:
        """Turn a server that cannot be reached (or refuses our login) into StoreUnavailable naming the store."""
        try:
            yield
        except (ConnectionFailure, ConfigurationError) as exc:
            raise StoreUnavailable(self.name, self.host, short_reason(exc)) from None
        except OperationFailure as exc:
            if exc.code in _NOT_ALLOWED:
                raise StoreUnavailable(self.name, self.host, short_reason(exc)) from None
            raise

    @asynccontextmanager
    async def collection(self, name: str) -> AsyncIterator[AsyncCollection[Document]]:
        """One of the store's collections, its indexes made first; an unreachable server is StoreUnavailable."""
        async with self.unavailable_as_error():
            if not self._indexed:
                async with self._indexing:
                    if not self._indexed:
                        await self._create_indexes()
                        self._indexed = True
            yield self._database()[name]

    async def ensure_indexes(self) -> int:
        """Create the store's indexes where missing (safe to run again); how many were missing."""
        async with self.unavailable_as_error():
            missing = await self._create_indexes()
        self._indexed = True
        return missing

    async def _create_indexes(self) -> int:
        database, missing = self._database(), 0
        for name, models in self._indexes.items():
            collection = database[name]
            present = {tuple(index["key"].items()) async for index in await collection.list_indexes()}
            missing += sum(tuple(model.document["key"].items()) not in present for model in models)
            # createIndexes is idempotent; an index of the same keys with other options fails loudly here
            await collection.create_indexes(list(models))
        return missing

    async def ping(self, *, within: float = 2.0) -> None:
        """Return when the server answers; raise StoreUnavailable naming the store and host otherwise."""
        try:
            async with asyncio.timeout(within), self.unavailable_as_error():
                await self._database().command("ping")
        except TimeoutError:
            raise StoreUnavailable(self.name, self.host, "no answer in time") from None

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._indexed = self._client, None, False
            self._indexing = asyncio.Lock()  # a client and its lock serve one event loop
            await client.close()


__all__ = ["MongoStore", "MongoUrl", "MongoUrlError", "is_mongo_url", "parse_mongo_url"]
