"""Two-factor sign-in over HTTP: enrol with an authenticator, log in with codes or recovery codes, staff rule."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest_asyncio

from shop.config import Settings
from shop.domain.users import Role
from tests.conftest import open_client
from tests.e2e.test_api_catalog_admin import PASSWORD, _account, _new

PROBLEM = "application/problem+json"


def _next(secret: str) -> str:
    """The code of the next 30-second step: still accepted (one step of drift), and not used yet."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def _login(client: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})


async def _enrol(client: httpx.AsyncClient, email: str) -> tuple[str, list[str], dict[str, str]]:
    bearer = {"Authorization": f"Bearer {(await _login(client, email)).json()['access_token']}"}
    setup = await client.post("/api/v1/auth/2fa/setup", headers=bearer)
    assert setup.status_code == 200 and setup.headers["cache-control"] == "no-store"
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    wrong = await client.post("/api/v1/auth/2fa/confirm", json={"code": "000000"}, headers=bearer)
    assert wrong.status_code == 401
    confirmed = await client.post("/api/v1/auth/2fa/confirm", json={"code": pyotp.TOTP(secret).now()},
                                  headers=bearer)
    assert confirmed.status_code == 200
    return secret, confirmed.json()["recovery_codes"], bearer


async def test_a_customer_turns_on_two_factor_and_then_needs_a_code(client: httpx.AsyncClient,
                                                                    demo_settings: Settings) -> None:
    email = await _account(demo_settings, Role.CUSTOMER)
    secret, recovery, bearer = await _enrol(client, email)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert (await client.get("/api/v1/me", headers=bearer)).json()["two_factor"] is True

    missing = await _login(client, email)
    assert missing.status_code == 401 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"] == "urn:shop:problem:otp-required" and missing.json()["errors"][0]["field"] == "otp"
    assert (await _login(client, email, otp="123456")).status_code == 401
    assert (await _login(client, email, otp=pyotp.TOTP(secret).now())).status_code == 401, \
        "the confirmation code of this 30-second step was already used"
    next_code = _next(secret)
    assert (await _login(client, email, otp=next_code)).status_code == 200
    assert (await _login(client, email, otp=next_code)).status_code == 401, "a code works once"
    # a recovery code works once
    assert (await _login(client, email, otp=recovery[0])).status_code == 200
    assert (await _login(client, email, otp=recovery[0])).status_code == 401
    assert (await _login(client, email, otp=recovery[1].upper())).status_code == 200


async def test_two_factor_is_switched_off_only_with_a_code(client: httpx.AsyncClient,
                                                           demo_settings: Settings) -> None:
    email = await _account(demo_settings, Role.CUSTOMER)
    secret, _, bearer = await _enrol(client, email)
    assert (await client.post("/api/v1/auth/2fa/disable", json={"code": "999999"}, headers=bearer)
            ).status_code == 401
    assert (await client.post("/api/v1/auth/2fa/disable", json={"code": _next(secret)}, headers=bearer)
            ).status_code == 204
    assert (await _login(client, email)).status_code == 200


@pytest_asyncio.fixture
async def strict_client(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_client(demo_settings.model_copy(update={"response_cache": False,
                                                                "require_staff_2fa": True})):
        yield c


async def test_staff_can_be_required_to_use_two_factor(strict_client: httpx.AsyncClient,
                                                        demo_settings: Settings) -> None:
    email = await _account(demo_settings, Role.STAFF)
    bearer = {"Authorization": f"Bearer {(await _login(strict_client, email)).json()['access_token']}"}
    refused = await strict_client.post("/api/v1/products", json=_new(), headers=bearer)
    assert refused.status_code == 403 and "two-factor" in refused.json()["detail"]
    secret, _, _ = await _enrol(strict_client, email)
    token = (await _login(strict_client, email, otp=_next(secret))).json()["access_token"]
    allowed = await strict_client.post("/api/v1/products", json=_new(),
                                       headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 201, allowed.text
    customer_email = f"c-{uuid.uuid4().hex[:6]}@example.com"
    await strict_client.post("/api/v1/auth/register", json={"email": customer_email, "password": PASSWORD})
    customer = (await _login(strict_client, customer_email)).json()["access_token"]
    me = await strict_client.get("/api/v1/me", headers={"Authorization": f"Bearer {customer}"})
    assert me.status_code == 200, "customers are not held to the staff rule"
