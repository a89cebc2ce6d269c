"""The users store on MongoDB beyond the shared contract: its URL, lazy connecting, unreachable servers, indexes.

Tests that need a server run on the nx-27017 emulator (`[mongodb-emulator]`) unless SHOP_TEST_MONGODB_URL names a
real mongod (`[mongodb]`); see tests/mongo_server.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient

from shop.bootstrap import build_databases, build_users_store
from shop.domain.users import EmailTaken, User
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.engines import StoreConfigError
from shop.infrastructure.mongo.client import MongoUrlError, parse_mongo_url
from shop.services.ports import StoreUnavailable
from tests.conftest import make_settings
from tests.mongo_server import MongoServer

SQLITE = "sqlite+aiosqlite:///var/never-opened.db"  # the main store, unused here


def _user(email: str) -> User:
    return User(id=str(uuid.uuid4()), email=email, email_key=email.casefold(), name="Ada",
                created_at=datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC))


@pytest.mark.parametrize(("url", "hosts", "database"), [
    ("mongodb://127.0.0.1:27017/shop", ("127.0.0.1:27017",), "shop"),
    ("mongodb://ada:s%40cret@db1:27017,db2:27018/shop_users?replicaSet=rs0&authSource=admin",
     ("db1:27017", "db2:27018"), "shop_users"),
    ("mongodb+srv://ada:pw@cluster0.example.net/shop?retryWrites=true", ("cluster0.example.net",), "shop"),
    ("  mongodb://[::1]:27017/shop  ", ("[::1]:27017",), "shop"),
], ids=["one-host", "replica-set", "srv", "ipv6"])
def test_a_mongodb_url_names_its_hosts_and_database(url: str, hosts: tuple[str, ...], database: str) -> None:
    parsed = parse_mongo_url(url)
    assert (parsed.hosts, parsed.database) == (hosts, database)


def test_options_in_the_url_win_over_the_shops_defaults() -> None:
    assert parse_mongo_url("mongodb://h/shop?serverSelectionTimeoutMS=100&maxPoolSize=3").options == {
        "serverselectiontimeoutms", "maxpoolsize"}


@pytest.mark.parametrize(("url", "words"), [
    ("mongodb://127.0.0.1:27017", ["users store", "names no database", "mongodb://127.0.0.1:27017/shop"]),
    ("mongodb://127.0.0.1:27017/?replicaSet=rs0", ["users store", "names no database"]),
    ("mongodb://ada:hunter2@127.0.0.1:27017/", ["users store", "names no database"]),
    ("mongodb:///shop", ["users store", "names no host"]),
    ("mongodb+srv://cluster0.example.net:27017/shop", ["users store", "one host name without a port"]),
    ("mongodb://127.0.0.1/sh.op", ["users store", "not a MongoDB database name"]),
])
def test_a_bad_mongodb_url_is_one_clear_line(url: str, words: list[str]) -> None:
    with pytest.raises(StoreConfigError) as refused:
        build_databases(make_settings(SQLITE, users=url))
    message = str(refused.value)
    assert all(w in message for w in words) and "\n" not in message and "hunter2" not in message, message


def test_not_a_mongodb_url_is_refused_by_the_parser() -> None:
    with pytest.raises(MongoUrlError, match="not a MongoDB URL"):
        parse_mongo_url("postgresql://db/shop")


@pytest.mark.parametrize("store", ["main", "posts"])
def test_only_the_users_store_may_live_on_mongodb(store: str) -> None:
    mongo = "mongodb://127.0.0.1:27017/shop"
    settings = make_settings(mongo, users=mongo) if store == "main" else make_settings(SQLITE, posts=mongo)
    with pytest.raises(StoreConfigError) as refused:
        build_databases(settings)
    assert str(refused.value) == f"{store} store: MongoDB can hold only the users store; use a SQL database URL"


async def test_nothing_connects_until_used_and_an_unreachable_server_is_store_unavailable() -> None:
    settings = make_settings(SQLITE, users="mongodb://127.0.0.1:1/shop", db_connect_timeout=1)
    databases = build_databases(settings)  # no server there: building touches nothing
    try:
        assert databases.is_mongo("users") and databases.backend("users") == "mongodb"
        assert databases.host("users") == "127.0.0.1:1" and not databases.is_mongo("main")
        with pytest.raises(StoreConfigError, match="users store: is on MongoDB and has no SQL engine"):
            databases.engine("users")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as ping:
            await databases.ping("users", within=5)
        assert (ping.value.store, ping.value.host) == ("users", "127.0.0.1:1") and time.monotonic() - started < 4
        assert "Topology" not in ping.value.reason and len(ping.value.reason) <= 300
        with pytest.raises(StoreUnavailable) as used:
            await build_users_store(databases).users.by_email_key("ada@example.com")
        assert (used.value.store, used.value.host) == ("users", "127.0.0.1:1")
    finally:
        await databases.dispose()


async def test_migrate_makes_the_indexes_once_and_the_address_key_is_unique(mongodb: MongoServer) -> None:
    url = mongodb.url("indexes")
    databases = build_databases(make_settings(SQLITE, users=url))
    try:
        assert await migrations.migrate(databases, "users") == ("0 of 5 indexes", "5 of 5 indexes")
        assert await migrations.migrate(databases, "users") == ("5 of 5 indexes", "5 of 5 indexes")
    finally:
        await databases.dispose()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        indexes = [index async for index in await client.get_default_database().users.list_indexes()]
    finally:
        await client.close()
    assert any(dict(index["key"]) == {"email_key": 1} and index.get("unique") for index in indexes), indexes


async def test_without_migrate_the_first_use_makes_the_indexes_so_an_address_stays_unique(
        mongodb: MongoServer) -> None:
    databases = build_databases(make_settings(SQLITE, users=mongodb.url("unmigrated")))
    try:
        users = build_users_store(databases).users
        results = await asyncio.gather(*(users.add(_user("Race@Example.com"), password_hash="h") for _ in range(5)),
                                       return_exceptions=True)
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, EmailTaken) for r in results if r is not None)
        assert await migrations.migrate(databases, "users") == ("5 of 5 indexes", "5 of 5 indexes")
    finally:
        await databases.dispose()


async def test_times_are_kept_in_utc_and_come_back_timezone_aware(mongodb: MongoServer) -> None:
    databases = build_databases(make_settings(SQLITE, users=mongodb.url("times")))
    try:
        users = build_users_store(databases).users
        ada = _user("ada@example.com")
        await users.add(ada, password_hash="h")
        berlin = datetime(2026, 11, 25, 14, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
        await users.mark_email_verified(ada.id, at=berlin)
        stored = await users.by_id(ada.id)
        assert stored is not None and stored.created_at is not None and stored.email_verified_at is not None
        # MongoDB keeps milliseconds
        assert stored.created_at == datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
        assert stored.email_verified_at == berlin and stored.email_verified_at.utcoffset() == timedelta(0)
    finally:
        await databases.dispose()
