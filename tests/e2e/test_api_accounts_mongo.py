"""The shop with its users store on MongoDB (SHOP_USERS_DB_URL=mongodb://…): accounts over HTTP, /readyz, and the
`shop` command. On the nx-27017 emulator (`[mongodb-emulator]`) unless SHOP_TEST_MONGODB_URL names a real mongod."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from tests.conftest import make_settings, migrate_all, open_client
from tests.databases import DatabaseFactory
from tests.e2e.test_cli import shop
from tests.mongo_server import MongoServer

PROBLEM = "application/problem+json"
PASSWORD = "a-long-enough-secret"


@pytest_asyncio.fixture
async def users_on_mongodb(mongodb: MongoServer, db_factory: DatabaseFactory) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a shop whose main and posts stores are on SQLite and whose users store is on MongoDB."""
    settings = make_settings(await db_factory.url("sqlite", "main"), users=mongodb.url("api"), response_cache=False)
    await migrate_all(settings)
    async for c in open_client(settings):
        yield c


async def test_a_customer_registers_logs_in_and_sees_themselves(users_on_mongodb: httpx.AsyncClient) -> None:
    email = f"shopper-{uuid.uuid4().hex[:10]}@Example.com"
    registered = await users_on_mongodb.post("/api/v1/auth/register",
                                             json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert registered.status_code == 201 and registered.json()["roles"] == ["customer"]
    assert registered.json()["email"] == email.replace("Example.com", "example.com")
    again = await users_on_mongodb.post("/api/v1/auth/register", json={"email": email.lower(), "password": PASSWORD})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "email"
    login = await users_on_mongodb.post("/api/v1/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.json()
    me = await users_on_mongodb.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == registered.json()["id"]
    rotated = await users_on_mongodb.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    reused = await users_on_mongodb.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401 and reused.headers["content-type"] == PROBLEM
    after = await users_on_mongodb.post("/api/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
    assert after.status_code == 401, "reusing a token ended its whole family"
    wrong = await users_on_mongodb.post("/api/v1/auth/login", json={"email": email, "password": "not-the-password"})
    assert wrong.status_code == 401


async def test_readyz_asks_the_users_store_on_mongodb(users_on_mongodb: httpx.AsyncClient) -> None:
    ready = await users_on_mongodb.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "stores": {"main": "ok", "users": "ok", "posts": "ok"}}


async def test_an_unreachable_mongodb_is_a_503_naming_the_users_store(db_factory: DatabaseFactory) -> None:
    settings = make_settings(await db_factory.url("sqlite", "main"), users="mongodb://127.0.0.1:1/shop",
                             db_connect_timeout=1, response_cache=False)
    await migrate_all(make_settings(settings.main_db_url))
    async for client in open_client(settings):
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["content-type"] == PROBLEM
        assert ready.json()["stores"]["main"] == "ok" and "127.0.0.1:1" in ready.json()["stores"]["users"]
        login = await client.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert login.status_code == 503 and login.headers["content-type"] == PROBLEM
        assert "users store" in login.json()["detail"] and login.headers["retry-after"]


def test_shop_migrate_makes_the_indexes_and_createadmin_uses_mongodb(mongodb: MongoServer, tmp_path: Path) -> None:
    env = {"SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/shop.db", "SHOP_USERS_DB_URL": mongodb.url("cli"),
           "SHOP_ADMIN_PASSWORD": "a-strong-admin-secret"}
    first = shop("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    users_line = next(line for line in first.stdout.splitlines() if line.startswith("users"))
    assert users_line.endswith(": 0 of 5 indexes → 5 of 5 indexes"), users_line
    again = shop("migrate", "--store", "users", env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip().endswith(": up to date"), again.stdout
    made = shop("createadmin", "--email", "Boss@Example.com", env=env, cwd=tmp_path)
    assert made.returncode == 0 and "admin Boss@example.com created" in made.stdout, made.stderr
    twice = shop("createadmin", "--email", "boss@example.com", env=env, cwd=tmp_path)
    assert twice.returncode != 0 and "already exists" in twice.stderr and "Traceback" not in twice.stderr


def test_shop_config_masks_the_mongodb_password(tmp_path: Path) -> None:
    result = shop("config", "--json", env={"SHOP_USERS_DB_URL": "mongodb://shop:hunter2@mongo.example:27017/users"
                                                                "?authSource=admin"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert '"users_db_url": "mongodb://shop:***@mongo.example:27017/users?authSource=admin"' in result.stdout
    srv = shop("config", "--json", env={"SHOP_USERS_DB_URL": "mongodb+srv://shop:hunter2@cluster0.example.net/u",
                                        "SHOP_MAIN_DB_URL": "mongodb://a:hunter2@h1:27017,h2:27017/x"},
               cwd=tmp_path)
    assert srv.returncode == 0 and "hunter2" not in srv.stdout, srv.stdout
    assert "mongodb+srv://shop:***@cluster0.example.net/u" in srv.stdout


def test_shop_migrate_refuses_mongodb_for_the_main_store_in_one_line(tmp_path: Path) -> None:
    result = shop("migrate", env={"SHOP_MAIN_DB_URL": "mongodb://127.0.0.1:27017/shop"}, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "main store: MongoDB can hold only the users store" in lines[0]
