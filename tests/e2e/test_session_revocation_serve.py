"""A session ended in one worker is ended in every worker within a second: a real `shop serve` with two gunicorn
workers on each database. Before the change both workers accept the token (the request log names the worker of
each request); every request sent a second or more after it — on fresh connections, so both workers answer — is
refused with 401."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from tests.conftest import make_settings, migrate_all
from tests.databases import DatabaseFactory
from tests.e2e.test_freshness import Served
from tests.e2e.test_serve import start_serve, stop_serve
from tests.e2e.test_session_revocation import _reset_token

BOUND = 1.0  # seconds: the contract
WATCH = 1.6  # how long requests go on after the change
PASSWORD = "two-workers-password"


@pytest_asyncio.fixture
async def served(backend: str, db_factory: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Served]:
    settings = make_settings(await db_factory.url(backend, "ended"))
    await migrate_all(settings)
    # the shop's own defaults for the session poll: the contract is what a merchant gets
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": settings.main_db_url, "SHOP_LOG_LEVEL": "warning",
                                           "SHOP_SECRET_KEY": "ended-" + "k" * 32}, "--workers", "2")
    try:
        yield Served(base=base, settings=settings, log_dir=tmp_path / "var" / "log")
    finally:
        stop_serve(process)


async def _me(client: httpx.AsyncClient, bearer: dict[str, str]) -> tuple[float, int, str]:
    sent = time.monotonic()
    response = await client.get("/api/v1/me", headers=bearer)
    return sent, response.status_code, response.headers["x-request-id"]


async def _accepted_by_both_workers(shop: Served, bearer: dict[str, str]) -> None:
    async with shop.client() as client:
        for _ in range(5):
            reads = [await _me(client, bearer) for _ in range(20)]
            assert {status for _, status, _ in reads} == {200}
            if len(set(shop.pids({request_id for _, _, request_id in reads}).values())) == 2:
                return
    raise AssertionError("could not get both workers to answer")


async def _refused_everywhere(shop: Served, bearer: dict[str, str], *, since: float) -> None:
    """From `since` + BOUND on, every request with the token is refused, by both workers."""
    reads: list[tuple[float, int, str]] = []
    async with shop.client() as client:
        while time.monotonic() < since + WATCH:
            reads.append(await _me(client, bearer))
            await asyncio.sleep(0.01)
    late = [(at, status, request_id) for at, status, request_id in reads if at >= since + BOUND]
    accepted = [(round(at - since, 3), status) for at, status, _ in late if status != 401]
    assert not accepted, f"still accepted a second after the session ended: {accepted[:5]}"
    workers = set(shop.pids({request_id for _, _, request_id in late}).values())
    assert len(workers) == 2, f"only worker {workers} answered after the change; the test proves nothing"


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_an_ended_session_is_refused_by_every_worker_within_a_second(served: Served) -> None:
    shop = served
    email = f"two-workers-{uuid.uuid4().hex[:8]}@example.com"
    async with shop.client() as client:
        registered = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        phone, laptop = await _login(client, email), await _login(client, email)

    # a sign-out, answered by whichever worker took it
    await _accepted_by_both_workers(shop, _bearer(phone))
    async with shop.client() as client:
        out = await client.post("/api/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
        assert out.status_code == 204
    await _refused_everywhere(shop, _bearer(phone), since=time.monotonic())
    await _accepted_by_both_workers(shop, _bearer(laptop))  # the other session goes on

    # a password reset ends every session of the account
    async with shop.client() as client:
        assert (await client.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 202
        token = await _reset_token(shop.settings, email)
        reset = await client.post("/api/v1/auth/password-reset/confirm",
                                  json={"token": token, "password": "a-brand-new-password-3"})
        assert reset.status_code == 204, reset.text
    await _refused_everywhere(shop, _bearer(laptop), since=time.monotonic())
