"""Every request, logged: found by its id in the database and the file within a second, secrets redacted, ids and
client addresses believed only from trusted proxies, records kept while the database is away."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text

from shop.bootstrap import build_databases, create_asgi_app
from shop.config import Settings
from shop.infrastructure.db.main.tables import request_log
from tests.e2e.shopping import PASSWORD, signed_in

PEER = ("127.0.0.1", 50_000)  # loopback: a trusted proxy by default
OUTSIDER = ("203.0.113.50", 40_000)


@asynccontextmanager
async def serving(settings: Settings, *, peer: tuple[str, int] = PEER) -> AsyncIterator[httpx.AsyncClient]:
    app = create_asgi_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app, client=peer)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield client


def logged_settings(settings: Settings, tmp_path: Path, **changes: Any) -> Settings:
    return settings.model_copy(update={"var_dir": tmp_path / "var", "run_dir": tmp_path / "run", **changes})


def log_text(settings: Settings) -> str:
    folder = settings.var_dir / "log"
    return "".join(p.read_text() for p in sorted(folder.glob("requests-*.log"))) if folder.is_dir() else ""


def filed(settings: Settings) -> dict[str, dict[str, Any]]:
    lines = log_text(settings).splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


async def stored(settings: Settings, ids: list[str]) -> dict[str, Any]:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            rows = await conn.execute(select(request_log).where(request_log.c.id.in_(ids)))
            return {row.id: row for row in rows}
    finally:
        await databases.dispose()


async def found_within(settings: Settings, ids: list[str], seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The records of `ids` in the database and the file, waiting at most `seconds` for all of them."""
    deadline = time.monotonic() + seconds
    while True:
        rows, lines = await stored(settings, ids), filed(settings)
        if (set(ids) <= rows.keys() and set(ids) <= lines.keys()) or time.monotonic() > deadline:
            return rows, lines
        await asyncio.sleep(0.05)


async def test_every_request_is_found_by_its_id_in_the_database_and_the_file_within_a_second(
        demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path)  # response cache on: a hit is logged too
    async with serving(settings) as client:
        slug = (await client.get("/api/v1/products", params={"limit": 1})).json()["items"][0]["slug"]
        responses = [await client.get("/api/v1/products", params={"limit": 3}),
                     await client.get("/api/v1/products", params={"limit": 3}),
                     await client.get(f"/api/v1/products/{slug}"),
                     await client.get("/no/such/page"),
                     await client.post("/api/v1/auth/login", content=b"{not json", headers={
                         "content-type": "application/json", "user-agent": "tester/1.0"})]
        answered = time.monotonic()
        ids = [r.headers["x-request-id"] for r in responses]
        rows, lines = await found_within(settings, ids, 1.0)
        assert time.monotonic() - answered < 1.0 or (set(ids) <= rows.keys() and set(ids) <= lines.keys())
    assert set(ids) <= rows.keys() and set(ids) <= lines.keys()
    assert len(set(ids)) == 5 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert responses[1].headers["x-cache"] == "hit"
    hit = rows[ids[1]]
    assert (hit.method, hit.path, hit.route, hit.query, hit.status) == ("GET", "/api/v1/products",
                                                                       "/api/v1/products", "limit=3", 200)
    assert hit.bytes_out == len(responses[1].content) and hit.details["response_headers"]["x-cache"] == "hit"
    assert rows[ids[2]].route == "/api/v1/products/{slug}" and rows[ids[2]].path == f"/api/v1/products/{slug}"
    assert rows[ids[3]].status == 404 and rows[ids[3]].route is None
    bad = rows[ids[4]]
    assert bad.status == 422 and bad.bytes_in == 9 and bad.user_agent == "tester/1.0" and bad.client_ip == "127.0.0.1"
    assert bad.details["body"] == "[unreadable]" and bad.pool == "main" and bad.worker_pid > 0
    assert lines[ids[2]]["route"] == "/api/v1/products/{slug}" and lines[ids[4]]["status"] == 422
    assert all(row.at.tzinfo is not None and row.duration_ms >= 0 for row in rows.values())


async def test_secrets_never_reach_the_database_or_the_file(demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path, response_cache=False)
    secrets = ["QuerySecret-77", "CardNumber-4242424242424242", "Cvc-987", "ApiKey-xyz", "ResetToken-abc", PASSWORD]
    async with serving(settings) as client:
        _, bearer = await signed_in(client, settings)
        me = await client.get("/api/v1/me", headers=bearer)
        user_id = me.json()["id"]
        ids = [me.headers["x-request-id"]]
        for response in [
            await client.get("/api/v1/products", params={"limit": 1, "token": secrets[0], "Password": secrets[0]},
                             headers={"X-Api-Key": secrets[3], "Cookie": f"shop_session={secrets[4]}"}),
            await client.post("/api/v1/checkout", json={"cart_id": "c" * 10, "email": "a@b.test",
                                                        "card": {"number": secrets[1], "cvc": secrets[2]},
                                                        "payment": {"token": secrets[1]}}),
            await client.post("/api/v1/auth/password-reset/confirm", data={"token": secrets[4], "password": "x"}),
        ]:
            ids.append(response.headers["x-request-id"])
        # the storefront: a form sign-in (password and CSRF token in the body), then pages with the session cookie
        page = await client.get("/account/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert csrf is not None
        email = (await client.get("/api/v1/me", headers=bearer)).json()["email"]
        login = await client.post("/account/login", data={"csrf": csrf.group(1), "email": email, "password": PASSWORD})
        account = await client.get("/account")
        ids += [page.headers["x-request-id"], login.headers["x-request-id"], account.headers["x-request-id"]]
        cookie_values = [c.value for c in client.cookies.jar]
        rows, _ = await found_within(settings, ids, 1.0)
    assert "set-cookie" in {k.lower() for k in login.headers} and cookie_values
    raw = log_text(settings)
    database = json.dumps([{k: v for k, v in row._mapping.items() if k != "at"} for row in rows.values()])
    token = bearer["Authorization"].split()[1]
    for secret in [*secrets, token, csrf.group(1), *cookie_values]:
        assert secret not in raw, secret
        assert secret not in database, secret
    assert len(rows) == len(ids) and all(i in raw for i in ids)
    assert rows[ids[0]].user_id == user_id and rows[ids[0]].details["request_headers"]["authorization"] == \
        "[redacted]"
    assert rows[ids[1]].query == "limit=1&token=[redacted]&Password=[redacted]"
    assert rows[ids[2]].details["body"]["card"] == "[redacted]" and rows[ids[2]].details["body"]["email"] == "a@b.test"
    assert rows[ids[3]].details["body"] == {"token": "[redacted]", "password": "[redacted]"}
    assert rows[ids[5]].details["body"]["email"] == email and rows[ids[5]].details["body"]["password"] == "[redacted]"
    assert rows[ids[5]].details["response_headers"]["set-cookie"] == "[redacted]"
    assert rows[ids[6]].user_id == user_id  # a storefront page knows its signed-in customer
    assert rows[ids[4]].user_id is None


async def test_ids_and_forwarded_addresses_are_believed_only_from_trusted_proxies(
        demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path)
    forwarded = {"X-Request-ID": "nginx-4f2a.9:1", "X-Forwarded-For": "1.2.3.4, 198.51.100.7"}
    async with serving(settings) as client:
        trusted = await client.get("/healthz", headers=forwarded)
        insane = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})
        spaced = await client.get("/healthz", headers={"X-Request-ID": "two words"})
    async with serving(settings, peer=OUTSIDER) as client:
        outside = await client.get("/healthz", headers=forwarded)
    assert trusted.headers["x-request-id"] == "nginx-4f2a.9:1"
    for answer in (insane, spaced, outside):
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    ids = [r.headers["x-request-id"] for r in (trusted, insane, outside)]
    rows, lines = await found_within(settings, ids, 1.0)
    assert rows[ids[0]].client_ip == "198.51.100.7" and lines[ids[0]]["client_ip"] == "198.51.100.7"
    assert rows[ids[1]].client_ip == "127.0.0.1"
    assert rows[ids[2]].client_ip == "203.0.113.50"  # an outsider's X-Forwarded-For is its own claim


async def test_the_file_can_be_a_markdown_table(demo_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path, request_log_format="md")
    async with serving(settings) as client:
        first = await client.get("/healthz")
        second = await client.get("/api/v1/categories", params={"otp": "123456"})
        await asyncio.sleep(1.0)
        rows = await stored(settings, [second.headers["x-request-id"]])
    lines = log_text(settings).splitlines()
    assert lines[0].startswith("| at | id | method | path | route |") and lines[1].startswith("|---|")
    assert first.headers["x-request-id"] in lines[2] and "| /healthz |" in lines[2]
    assert second.headers["x-request-id"] in lines[3] and "otp=[redacted]" in lines[3] and "123456" not in lines[3]
    assert rows[second.headers["x-request-id"]].query == "otp=[redacted]"


async def _rename(settings: Settings, old: str, new: str) -> None:
    databases = build_databases(settings)
    try:
        async with databases.store("main").write() as conn:
            await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await databases.dispose()


async def test_records_wait_while_the_database_is_away_and_arrive_when_it_is_back(
        empty_settings: Settings, tmp_path: Path) -> None:
    settings = logged_settings(empty_settings, tmp_path)
    async with serving(settings) as client:
        await _rename(settings, "request_log", "request_log_away")
        try:
            ids = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
            await asyncio.sleep(1.2)  # the writer has tried and failed
            assert set(ids) <= filed(settings).keys()  # the file does not wait for the database
        finally:
            await _rename(settings, "request_log_away", "request_log")
        rows, _ = await found_within(settings, ids, 10.0)  # the next try, after a back-off of a few seconds
    assert sorted(rows) == sorted(ids)


async def test_a_full_queue_drops_records_and_says_so_in_the_log_and_the_metrics(
        empty_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = logged_settings(empty_settings, tmp_path, request_log_queue=2)

    def dropped(exposition: str) -> float:
        found = re.search(r"^shop_request_log_dropped_total (\S+)$", exposition, re.MULTILINE)
        assert found is not None, exposition[:500]
        return float(found.group(1))

    with caplog.at_level(logging.WARNING, "shop.services.request_log"):
        async with serving(settings) as client:
            before = dropped((await client.get("/metrics")).text)
            await _rename(settings, "request_log", "request_log_away")
            try:
                for _ in range(6):
                    await client.get("/healthz")
                after = dropped((await client.get("/metrics")).text)
            finally:
                await _rename(settings, "request_log_away", "request_log")
    assert after - before >= 4
    reports = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert reports and re.match(r"request log: \d+ records dropped", reports[-1])


async def test_a_request_refused_for_control_characters_is_still_logged(demo_settings: Settings,
                                                                         tmp_path: Path) -> None:
    settings = logged_settings(demo_settings, tmp_path)
    async with serving(settings) as client:
        responses = [await client.get("/api/v1/products/a%00b"),
                     await client.get("/api/v1/products", params={"q": "x\x01y"}),
                     await client.get("/api/v1/categories", headers={"user-agent": "bot\x7f/1"})]
        ids = [r.headers["x-request-id"] for r in responses]
        rows, lines = await found_within(settings, ids, 3.0)
    assert [r.status_code for r in responses] == [400, 400, 400]
    assert set(ids) <= rows.keys() and set(ids) <= lines.keys()  # PostgreSQL stores no NUL: written out instead
    assert rows[ids[0]].path == "/api/v1/products/a\\x00b" and lines[ids[0]]["path"] == "/api/v1/products/a\\x00b"
    assert rows[ids[1]].query == "q=x%01y" and rows[ids[2]].user_agent == "bot\\x7f/1"
