"""Accounts over HTTP: register, log in, who am I, refresh rotation and reuse, log out, bad input."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

PROBLEM = "application/problem+json"
PASSWORD = "a-long-enough-secret"


def _email() -> str:
    return f"shopper-{uuid.uuid4().hex[:10]}@Example.com"


async def _register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/register", json={"email": email, "password": password, "name": "Ada"})


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def _bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_a_customer_registers_logs_in_and_sees_themselves(client: httpx.AsyncClient) -> None:
    email = _email()
    registered = await _register(client, email)
    assert registered.status_code == 201
    assert registered.json()["email"] == email.replace("Example.com", "example.com")
    assert registered.json()["roles"] == ["customer"] and "password" not in registered.text
    login = await _login(client, email.upper())  # e-mail addresses are matched whatever their case
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    tokens = login.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = await client.get("/api/v1/me", headers=_bearer(tokens))
    assert me.status_code == 200 and me.json()["id"] == registered.json()["id"]


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    first = (await _login(client, email)).json()
    second = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and reused.headers["content-type"] == PROBLEM
    # the thief's reuse revoked the family: the legitimate newer token is dead too
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    tokens = (await _login(client, email)).json()
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
            ).status_code == 204
    refused = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401


async def test_unknown_email_and_wrong_password_get_the_same_answer(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    wrong = await _login(client, email, "not-the-password")
    unknown = await _login(client, _email(), PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == PROBLEM and wrong.headers["www-authenticate"] == "Bearer"


async def test_failed_logins_are_throttled_per_account_with_retry_after(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    statuses = [(await _login(client, email, "wrong-password-123")).status_code for _ in range(10)]
    assert statuses == [401] * 10
    blocked = await _login(client, email)  # even the right password waits now
    assert blocked.status_code == 429 and blocked.headers["content-type"] == PROBLEM
    assert int(blocked.headers["retry-after"]) > 0


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-email", "password": PASSWORD}, "email"),
    ({"email": "a@b.cd\r\nBcc: x@y.z", "password": PASSWORD}, "email"),
    ({"email": "short@example.com", "password": "short"}, "password"),
    ({"email": "common@example.com", "password": "password123"}, "password"),
    ({"email": "aaaa@example.com", "password": "aaaaaaaaaaaa"}, "password"),
    ({"email": "x@example.com"}, "password"),
    ({"email": "x@example.com", "password": PASSWORD, "roles": ["admin"]}, "roles"),
    ({"email": "x@example.com", "password": 1234567890123}, "password"),
])
async def test_bad_registrations_get_a_problem_naming_the_field(client: httpx.AsyncClient, body: dict[str, object],
                                                                field: str) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_an_address_can_have_only_one_account(client: httpx.AsyncClient) -> None:
    email = _email()
    assert (await _register(client, email)).status_code == 201
    again = await _register(client, email.lower())
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "email"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_tampered_tokens_are_refused(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    token = (await _login(client, email)).json()["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = {
        "no token": None,
        "garbage": "not.a.jwt",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered roles": f"{header}.{_b64({**claims, 'roles': ['admin']})}.{signature}",
        "wrong signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "basic scheme": "basic",
    }
    for name, value in forged.items():
        headers = {} if value is None else {"Authorization": f"Bearer {value}"}
        if value == "basic":
            headers = {"Authorization": "Basic dXNlcjpwYXNz"}
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == PROBLEM, name


async def test_no_password_or_token_reaches_the_log(client: httpx.AsyncClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    email = _email()
    await _register(client, email)
    tokens = (await _login(client, email)).json()
    await _login(client, email, "another-wrong-one")
    await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    logged = caplog.text
    assert PASSWORD not in logged and "another-wrong-one" not in logged
    assert tokens["refresh_token"] not in logged and tokens["access_token"] not in logged
