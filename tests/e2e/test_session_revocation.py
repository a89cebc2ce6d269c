"""An access token dies with its session (ASVS 7.4.1/7.4.2): after a sign-out, a refresh token used twice, a
password reset, an account switched off or a staff role taken away, a bearer token issued before is refused (401)
within a second — on every users store, SQL and MongoDB. (tests/e2e/test_session_revocation_serve.py checks the
same across the workers of a real `shop serve`.)"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy import select

from shop.bootstrap import build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import outbox
from tests.conftest import make_settings, migrate_all, open_client
from tests.databases import DatabaseFactory
from tests.e2e.shopping import PASSWORD, signed_in
from tests.e2e.test_admin_manage import post, sign_in

BOUND = 1.0  # seconds: the contract
PROBLEM = "application/problem+json"


@pytest_asyncio.fixture(scope="module")
async def users_settings(users_backend: str, db_factory: DatabaseFactory,
                         request: pytest.FixtureRequest) -> Settings:
    """A migrated shop whose users store is on `users_backend` (main and posts on SQLite beside MongoDB)."""
    if users_backend == "mongodb":
        mongo = request.getfixturevalue("mongo")
        settings = make_settings(await db_factory.url("sqlite", "revoke"), users=mongo.url("revoke"),
                                 response_cache=False)
    else:
        settings = make_settings(await db_factory.url(users_backend, "revoke"), response_cache=False)
    await migrate_all(settings)
    return settings


@pytest_asyncio.fixture
async def shop(users_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(users_settings):
        yield client


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _refused_within_the_bound(client: httpx.AsyncClient, bearer: dict[str, str]) -> None:
    """From now on the token is refused within BOUND seconds, and stays refused."""
    start = time.monotonic()
    while True:
        me = await client.get("/api/v1/me", headers=bearer)
        if me.status_code == 401:
            break
        waited = time.monotonic() - start
        assert waited < BOUND, f"the token still answered {me.status_code} {waited:.2f} s after its session ended"
        await asyncio.sleep(0.02)
    assert me.headers["content-type"] == PROBLEM and me.headers["www-authenticate"] == "Bearer"
    await asyncio.sleep(0.3)
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401


async def test_signing_out_ends_the_access_token_of_the_session(shop: httpx.AsyncClient,
                                                                users_settings: Settings) -> None:
    email, _ = await signed_in(shop, users_settings)
    tokens, other = await _login(shop, email), await _login(shop, email)
    assert (await shop.get("/api/v1/me", headers=_bearer(tokens))).status_code == 200
    out = await shop.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    await _refused_within_the_bound(shop, _bearer(tokens))
    assert (await shop.get("/api/v1/me", headers=_bearer(other))).status_code == 200, \
        "the account's other session goes on"


async def test_a_refreshed_sessions_older_access_tokens_end_with_it(shop: httpx.AsyncClient,
                                                                    users_settings: Settings) -> None:
    email, _ = await signed_in(shop, users_settings)
    first = await _login(shop, email)
    renewed = (await shop.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    await shop.post("/api/v1/auth/logout", json={"refresh_token": renewed["refresh_token"]})
    await _refused_within_the_bound(shop, _bearer(first))
    await _refused_within_the_bound(shop, _bearer(renewed))


async def test_reusing_a_refresh_token_ends_the_access_tokens_of_its_session(shop: httpx.AsyncClient,
                                                                            users_settings: Settings) -> None:
    email, _ = await signed_in(shop, users_settings)
    stolen = await _login(shop, email)
    renewed = (await shop.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})).json()
    replayed = await shop.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert replayed.status_code == 401
    await _refused_within_the_bound(shop, _bearer(renewed))


async def _reset_token(settings: Settings, email: str) -> str:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            mails = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "email")
                                        .order_by(outbox.c.id.desc()).limit(20))).scalars().all()
    finally:
        await databases.dispose()
    text = next(m["text"] for m in mails if email in m["to"])
    found = re.search(r"/account/password-reset\?token=(\S+)", text)
    assert found, text
    return found.group(1)


async def test_a_password_reset_ends_every_access_token_of_the_account(shop: httpx.AsyncClient,
                                                                       users_settings: Settings) -> None:
    email, _ = await signed_in(shop, users_settings)
    phone, laptop = await _login(shop, email), await _login(shop, email)
    assert (await shop.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 202
    token = await _reset_token(users_settings, email)
    reset = await shop.post("/api/v1/auth/password-reset/confirm",
                            json={"token": token, "password": "a-brand-new-password-2"})
    assert reset.status_code == 204, reset.text
    await _refused_within_the_bound(shop, _bearer(phone))
    await _refused_within_the_bound(shop, _bearer(laptop))
    fresh = await _login(shop, email, "a-brand-new-password-2")
    assert (await shop.get("/api/v1/me", headers=_bearer(fresh))).status_code == 200, \
        "a sign-in after the reset is a new session"


async def _storefront_session(settings: Settings, shop: httpx.AsyncClient, email: str) -> httpx.AsyncClient:
    """Another browser, signed in to the storefront as `email`."""
    browser = httpx.AsyncClient(transport=shop._transport, base_url=str(shop.base_url))
    page = await browser.get("/account/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert csrf
    signed = await browser.post("/account/login", data={"csrf": csrf.group(1), "email": email, "password": PASSWORD})
    assert signed.status_code == 303, signed.text
    assert (await browser.get("/account")).status_code == 200
    return browser


async def _signed_out(browser: httpx.AsyncClient) -> bool:
    page = await browser.get("/account")
    return page.status_code == 303 and page.headers["location"].startswith("/account/login")


async def test_switching_an_account_off_ends_its_access_tokens_and_storefront_sessions(
        shop: httpx.AsyncClient, users_settings: Settings) -> None:
    email, bearer = await signed_in(shop, users_settings)
    browser = await _storefront_session(users_settings, shop, email)
    customer = (await shop.get("/api/v1/me", headers=bearer)).json()["id"]
    await sign_in(shop, users_settings, Role.STAFF)
    done = await post(shop, f"/admin/customers/{customer}/disable", {}, page=f"/admin/customers/{customer}")
    assert done.status_code == 303, done.text
    await _refused_within_the_bound(shop, bearer)
    assert await _signed_out(browser)
    await browser.aclose()


async def test_taking_a_staff_role_away_ends_the_accounts_access_tokens_and_storefront_sessions(
        shop: httpx.AsyncClient, users_settings: Settings) -> None:
    email, bearer = await signed_in(shop, users_settings, Role.STAFF)
    browser = await _storefront_session(users_settings, shop, email)
    assert (await browser.get("/admin/")).status_code == 200
    staff = (await shop.get("/api/v1/me", headers=bearer)).json()["id"]
    await sign_in(shop, users_settings, Role.ADMIN)
    taken = await post(shop, f"/admin/staff/{staff}/revoke", {"role": "staff"}, page="/admin/staff")
    assert taken.status_code == 303, taken.text
    await _refused_within_the_bound(shop, bearer)
    assert await _signed_out(browser)
    await browser.aclose()
    again = await _login(shop, email)
    me = await shop.get("/api/v1/me", headers=_bearer(again))
    assert me.status_code == 200 and me.json()["roles"] == ["customer"]


async def test_a_token_that_names_no_session_is_refused(shop: httpx.AsyncClient, users_settings: Settings) -> None:
    """Signed by the shop, but it could not be ended early: such a token (as made before sessions were named) is
    no longer accepted; its client refreshes."""
    _, bearer = await signed_in(shop, users_settings)
    claims = jwt.decode(bearer["Authorization"].split()[1], options={"verify_signature": False})
    del claims["sid"]
    forged = jwt.encode(claims, users_settings.signing_secret(), algorithm="HS256")
    assert (await shop.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
