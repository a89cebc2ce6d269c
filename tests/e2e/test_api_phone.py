"""Phone verification over HTTP: text a code (to var/sms/ here), send it back, limits, bad numbers and codes."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import pytest_asyncio

from shop.config import Settings
from tests.conftest import open_client

PROBLEM = "application/problem+json"
PASSWORD = "a-long-enough-secret"
NUMBER = "+4915123456789"


@pytest_asyncio.fixture
async def shop(empty_settings: Settings, tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    """The real app, texting to files under a var/ of its own."""
    settings = empty_settings.model_copy(update={"var_dir": tmp_path / "var", "sms_backend": "file",
                                                 "response_cache": False})
    async for client in open_client(settings):
        yield SimpleNamespace(client=client, settings=settings)


async def _signed_in(client: httpx.AsyncClient) -> dict[str, str]:
    email = f"phone-{uuid.uuid4().hex[:10]}@example.com"
    assert (await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            ).status_code == 201
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _texts(settings: Settings) -> list[str]:
    folder = settings.var_dir / "sms"
    return [p.read_text() for p in sorted(folder.glob("*.txt"))] if folder.exists() else []


def _last_code(settings: Settings, number: str = NUMBER) -> str:
    text = [t for t in _texts(settings) if f"To: {number}\n" in t][-1]
    found = re.search(r"\n\n(\d{6}) is your ", text)
    assert found is not None, text
    return found.group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_a_customer_verifies_their_phone_with_the_texted_code(shop: SimpleNamespace) -> None:
    client, bearer = shop.client, await _signed_in(shop.client)
    sent = await client.post("/api/v1/auth/phone", json={"phone": "+49 1512 3456789"}, headers=bearer)
    assert sent.status_code == 202 and sent.headers["cache-control"] == "no-store"
    assert sent.json()["phone"] == NUMBER and sent.json()["expires_at"]
    before = (await client.get("/api/v1/me", headers=bearer)).json()
    assert before["phone_verified"] is False and before["phone"] is None
    verified = await client.post("/api/v1/auth/phone/verify", json={"code": _last_code(shop.settings)},
                                 headers=bearer)
    assert verified.status_code == 200
    assert verified.json()["phone"] == NUMBER and verified.json()["phone_verified"] is True
    me = (await client.get("/api/v1/me", headers=bearer)).json()
    assert me["phone"] == NUMBER and me["phone_verified"] is True
    again = await client.post("/api/v1/auth/phone/verify", json={"code": _last_code(shop.settings)},
                              headers=bearer)
    assert again.status_code == 422 and again.json()["errors"] == [
        {"field": "code", "message": "was already used; ask for a new code"}]


@pytest.mark.parametrize("body", [{"phone": "12"}, {"phone": "+1 555"}, {"phone": "abc"}, {"phone": ""},
                                  {"phone": "+49 30 123456"}, {"phone": 4915123456789}, {},
                                  {"phone": "+" + "9" * 100}])
async def test_bad_numbers_get_a_problem_naming_the_phone(shop: SimpleNamespace, body: dict[str, object]) -> None:
    response = await shop.client.post("/api/v1/auth/phone", json=body, headers=await _signed_in(shop.client))
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert {e["field"] for e in response.json()["errors"]} == {"phone"}
    assert _texts(shop.settings) == []


async def test_five_wrong_codes_and_then_even_the_right_one_fails(shop: SimpleNamespace) -> None:
    client, bearer = shop.client, await _signed_in(shop.client)
    await client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)
    code = _last_code(shop.settings)
    wrong = [await client.post("/api/v1/auth/phone/verify", json={"code": _wrong(code)}, headers=bearer)
             for _ in range(5)]
    assert [r.status_code for r in wrong] == [422] * 5
    assert wrong[0].json()["errors"] == [{"field": "code", "message": "is wrong; 4 tries left"}]
    right = await client.post("/api/v1/auth/phone/verify", json={"code": code}, headers=bearer)
    assert right.status_code == 422 and right.headers["content-type"] == PROBLEM
    assert right.json()["errors"][0]["field"] == "code" and "tried 5 times" in right.json()["detail"]
    assert (await client.get("/api/v1/me", headers=bearer)).json()["phone_verified"] is False


async def test_a_fourth_text_within_the_hour_is_refused_with_retry_after(shop: SimpleNamespace) -> None:
    client, bearer = shop.client, await _signed_in(shop.client)
    statuses = [(await client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)).status_code
                for _ in range(3)]
    assert statuses == [202] * 3
    fourth = await client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)
    assert fourth.status_code == 429 and fourth.headers["content-type"] == PROBLEM
    assert 0 < int(fourth.headers["retry-after"]) <= 3600
    assert len(_texts(shop.settings)) == 3
    # the number is protected from everyone, not just from this account
    other = await client.post("/api/v1/auth/phone", json={"phone": "+49 1512 3456789"},
                              headers=await _signed_in(client))
    assert other.status_code == 429


@pytest.mark.parametrize(("code", "message"), [("12ab56", "6 digits"), ("123", "6 digits"),
                                               ("123456", "no code was sent")])
async def test_bad_or_unasked_for_codes_get_a_problem_naming_the_code(shop: SimpleNamespace, code: str,
                                                                      message: str) -> None:
    response = await shop.client.post("/api/v1/auth/phone/verify", json={"code": code},
                                      headers=await _signed_in(shop.client))
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "code" and message in response.json()["detail"]


async def test_signing_in_comes_first(shop: SimpleNamespace) -> None:
    for path, body in (("/api/v1/auth/phone", {"phone": NUMBER}), ("/api/v1/auth/phone/verify", {"code": "123456"})):
        response = await shop.client.post(path, json=body)
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM


async def test_a_text_that_cannot_be_sent_is_a_503_not_a_500(shop: SimpleNamespace) -> None:
    bearer = await _signed_in(shop.client)
    (shop.settings.var_dir / "sms").write_text("a file where the folder should be")
    response = await shop.client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "30" and NUMBER not in response.text


async def test_no_code_or_number_reaches_the_log(shop: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    # the shop's own loggers at DEBUG, everything else at INFO: the SQLite driver's DEBUG log prints every query
    # parameter (the stored number included), as it does e-mail addresses
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="shop")
    client, bearer = shop.client, await _signed_in(shop.client)
    await client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)
    code = _last_code(shop.settings)
    await client.post("/api/v1/auth/phone/verify", json={"code": _wrong(code)}, headers=bearer)
    await client.post("/api/v1/auth/phone/verify", json={"code": code}, headers=bearer)
    assert code not in caplog.text and NUMBER not in caplog.text and "1512" not in caplog.text
