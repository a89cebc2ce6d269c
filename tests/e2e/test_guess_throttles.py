"""Every place a code or a secret can be guessed is throttled, per account and per client: authenticator codes (to
switch 2FA on or off, and at sign-in), recovery codes, texted codes, e-mailed links, passwords on the sign-in page,
the control panel's 2FA page. Past the limit the API answers 429 problem+json and the pages an HTML 429, both with
Retry-After; the right code is refused too until the window lets one go; a new client address does not help against
the account's count. The client is the address the trusted proxy (the in-process client, 127.0.0.1) vouches for
in X-Forwarded-For."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pyotp
import pytest_asyncio
from sqlalchemy import select

from shop.bootstrap import build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import outbox
from tests.conftest import open_client
from tests.e2e.test_admin_manage import csrf_of, sign_in

PROBLEM = "application/problem+json"
PASSWORD = "guess-me-not-password"
NUMBER = "+4915123456789"
ACCOUNT = 4  # wrong codes per account (SHOP_CODE_LIMIT_ACCOUNT here)
CLIENT = 6  # wrong codes and links per client address (SHOP_CODE_LIMIT_CLIENT here)
LOGINS = 10  # wrong passwords per account: the default SHOP_LOGIN_LIMIT_ACCOUNT
HERE = {"X-Forwarded-For": "203.0.113.10"}
ELSEWHERE = {"X-Forwarded-For": "198.51.100.20"}


@pytest_asyncio.fixture
async def shop(demo_settings: Settings, tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    settings = demo_settings.model_copy(update={
        "response_cache": False, "var_dir": tmp_path / "var", "sms_backend": "file",
        "code_limit_account": f"{ACCOUNT}/15 minutes", "code_limit_client": f"{CLIENT}/15 minutes"})
    async for client in open_client(settings):
        yield SimpleNamespace(client=client, settings=settings)


def throttled(response: httpx.Response, *, page: bool = False) -> None:
    """A 429 that says when to come back: problem+json from the API, an HTML page from the pages."""
    assert response.status_code == 429, (response.status_code, response.text[:300])
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    if page:
        assert response.headers["content-type"].startswith("text/html") and "Too many" in response.text
    else:
        assert response.headers["content-type"] == PROBLEM and response.json()["status"] == 429


async def _account(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"guess-{uuid.uuid4().hex[:10]}@example.com"
    assert (await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            ).status_code == 201
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return email, {"Authorization": f"Bearer {login.json()['access_token']}"}


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _next(secret: str) -> str:
    """The code of the next 30-second step: still accepted, and not used yet."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def _setup(client: httpx.AsyncClient, bearer: dict[str, str]) -> str:
    setup = await client.post("/api/v1/auth/2fa/setup", headers=bearer)
    assert setup.status_code == 200
    return str(setup.json()["secret"])


async def _enrolled(client: httpx.AsyncClient) -> tuple[str, dict[str, str], str, list[str]]:
    email, bearer = await _account(client)
    secret = await _setup(client, bearer)
    confirmed = await client.post("/api/v1/auth/2fa/confirm", json={"code": pyotp.TOTP(secret).now()},
                                  headers={**bearer, **HERE})
    assert confirmed.status_code == 200
    return email, bearer, secret, confirmed.json()["recovery_codes"]


# the API


async def test_switching_two_factor_on_is_throttled_per_account(shop: SimpleNamespace) -> None:
    client = shop.client
    _, bearer = await _account(client)
    secret = await _setup(client, bearer)
    right = pyotp.TOTP(secret).now()
    for _ in range(ACCOUNT):
        wrong = await client.post("/api/v1/auth/2fa/confirm", json={"code": _wrong(right)}, headers={**bearer, **HERE})
        assert wrong.status_code == 401
    throttled(await client.post("/api/v1/auth/2fa/confirm", json={"code": right}, headers={**bearer, **HERE}))
    throttled(await client.post("/api/v1/auth/2fa/confirm", json={"code": right}, headers={**bearer, **ELSEWHERE}))
    assert (await client.get("/api/v1/me", headers=bearer)).json()["two_factor"] is False


async def test_switching_two_factor_off_is_throttled_per_account(shop: SimpleNamespace) -> None:
    client = shop.client
    _, bearer, secret, recovery = await _enrolled(client)
    right = _next(secret)
    for _ in range(ACCOUNT):
        wrong = await client.post("/api/v1/auth/2fa/disable", json={"code": _wrong(right)},
                                  headers={**bearer, **HERE})
        assert wrong.status_code == 401
    throttled(await client.post("/api/v1/auth/2fa/disable", json={"code": right}, headers={**bearer, **HERE}))
    throttled(await client.post("/api/v1/auth/2fa/disable", json={"code": recovery[0]},
                                headers={**bearer, **ELSEWHERE}))
    assert (await client.get("/api/v1/me", headers=bearer)).json()["two_factor"] is True


async def test_the_code_step_of_signing_in_is_throttled_for_app_and_recovery_codes(shop: SimpleNamespace) -> None:
    client = shop.client
    email, _, secret, recovery = await _enrolled(client)
    for guess in ("0000-0000", "1234-abcd", _wrong(_next(secret)), "ffff-ffff"):  # recovery-shaped and app codes
        wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, "otp": guess},
                                  headers=HERE)
        assert wrong.status_code == 401
    throttled(await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD,
                                                             "otp": recovery[0]}, headers=HERE))
    throttled(await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD,
                                                             "otp": _next(secret)}, headers=ELSEWHERE))


async def test_a_texted_code_is_throttled_per_account(shop: SimpleNamespace) -> None:
    client = shop.client
    _, bearer = await _account(client)
    assert (await client.post("/api/v1/auth/phone", json={"phone": NUMBER}, headers=bearer)).status_code == 202
    right = _texted_code(shop.settings)
    for _ in range(ACCOUNT):  # fewer than the five tries a code has: the throttle is what stops the next one
        wrong = await client.post("/api/v1/auth/phone/verify", json={"code": _wrong(right)},
                                  headers={**bearer, **HERE})
        assert wrong.status_code == 422
    throttled(await client.post("/api/v1/auth/phone/verify", json={"code": right}, headers={**bearer, **HERE}))
    throttled(await client.post("/api/v1/auth/phone/verify", json={"code": right}, headers={**bearer, **ELSEWHERE}))
    assert (await client.get("/api/v1/me", headers=bearer)).json()["phone_verified"] is False


async def test_one_client_guessing_for_many_accounts_is_throttled(shop: SimpleNamespace) -> None:
    client = shop.client
    accounts = [await _account(client) for _ in range(2)]
    secrets = [await _setup(client, bearer) for _, bearer in accounts]
    for (_, bearer), secret in zip(accounts, secrets, strict=True):
        for _ in range(CLIENT // 2):  # under each account's limit
            wrong = await client.post("/api/v1/auth/2fa/confirm", json={"code": _wrong(pyotp.TOTP(secret).now())},
                                      headers={**bearer, **HERE})
            assert wrong.status_code == 401
    _, bearer = await _account(client)  # a third account, never guessed at
    secret = await _setup(client, bearer)
    throttled(await client.post("/api/v1/auth/2fa/confirm", json={"code": pyotp.TOTP(secret).now()},
                                headers={**bearer, **HERE}))
    assert (await client.post("/api/v1/auth/2fa/confirm", json={"code": pyotp.TOTP(secret).now()},
                              headers={**bearer, **ELSEWHERE})).status_code == 200, "another client is not held"


async def test_wrong_link_tokens_are_throttled_per_client(shop: SimpleNamespace) -> None:
    client = shop.client
    email, _ = await _account(client)
    for n in range(CLIENT):
        path = "/api/v1/auth/verify-email" if n % 2 else "/api/v1/auth/password-reset/confirm"
        body = {"token": f"forged.{n}.token"} | ({} if n % 2 else {"password": "a-brand-new-password"})
        wrong = await client.post(path, json=body, headers=HERE)
        assert wrong.status_code == 401, wrong.text
    token = await _mailed_token(shop.settings, email, "verify-email")
    throttled(await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=HERE))
    throttled(await client.post("/api/v1/auth/password-reset/confirm",
                                json={"token": token, "password": "a-brand-new-password"}, headers=HERE))
    # a link's token is signed: whose it is is not known before it proves right, so only its client is counted
    verified = await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=ELSEWHERE)
    assert verified.status_code == 200 and verified.json()["email_verified"] is True


# the pages


def _texted_code(settings: Settings) -> str:
    folder = settings.var_dir / "sms"
    text = [p.read_text() for p in sorted(folder.glob("*.txt"))][-1]
    found = re.search(r"\n\n(\d{6}) is your ", text)
    assert found is not None, text
    return found.group(1)


async def _mailed_token(settings: Settings, email: str, page: str) -> str:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            mails = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "email")
                                        .order_by(outbox.c.id.desc()).limit(50))).scalars().all()
    finally:
        await databases.dispose()
    text = next(m["text"] for m in mails if email in m["to"] and f"/account/{page}?" in m["text"])
    found = re.search(rf"/account/{page}\?token=(\S+)", text)
    assert found, text
    return found.group(1)


async def _sign_in_page(client: httpx.AsyncClient, headers: dict[str, str], **form: str) -> httpx.Response:
    csrf = csrf_of((await client.get("/account/login", headers=headers)).text)
    return await client.post("/account/login", data={"csrf": csrf, **form}, headers=headers)


async def test_the_sign_in_page_answers_429_with_retry_after_once_an_account_is_guessed_at(
        shop: SimpleNamespace) -> None:
    client = shop.client
    email, _ = await _account(client)
    for _ in range(LOGINS):
        wrong = await _sign_in_page(client, HERE, email=email, password="not-the-password")
        assert wrong.status_code == 401
    throttled(await _sign_in_page(client, HERE, email=email, password=PASSWORD), page=True)
    throttled(await _sign_in_page(client, ELSEWHERE, email=email, password=PASSWORD), page=True)
    assert (await client.get("/account")).status_code == 303, "not signed in"


async def test_the_code_step_of_the_sign_in_page_is_throttled(shop: SimpleNamespace) -> None:
    client = shop.client
    email, _, secret, _ = await _enrolled(client)
    right = _next(secret)
    for _ in range(ACCOUNT):
        wrong = await _sign_in_page(client, HERE, email=email, password=PASSWORD, otp=_wrong(right))
        assert wrong.status_code == 401
    throttled(await _sign_in_page(client, HERE, email=email, password=PASSWORD, otp=right), page=True)
    refused = await _sign_in_page(client, ELSEWHERE, email=email, password=PASSWORD, otp=right)
    throttled(refused, page=True)
    assert 'name="otp"' in refused.text, "the page still asks for the code"


async def test_the_control_panels_two_factor_page_is_throttled(shop: SimpleNamespace) -> None:
    client = shop.client
    await sign_in(client, shop.settings, Role.STAFF)
    page = await client.get("/admin/two-factor")
    secret = re.search(r"data-secret>([A-Z2-7]+)<", page.text)
    assert secret, page.text
    right = pyotp.TOTP(secret.group(1)).now()

    async def confirm(code: str, headers: dict[str, str]) -> httpx.Response:
        form = {"csrf": csrf_of(page.text), "secret": secret.group(1), "uri": "otpauth://totp/x", "code": code}
        return await client.post("/admin/two-factor", data=form, headers=headers)

    for _ in range(ACCOUNT):
        assert (await confirm(_wrong(right), HERE)).status_code == 422
    throttled(await confirm(right, HERE), page=True)
    refused = await confirm(right, ELSEWHERE)
    throttled(refused, page=True)
    assert secret.group(1) in refused.text, "the same secret is offered again"


async def test_the_phone_page_is_throttled(shop: SimpleNamespace) -> None:
    client = shop.client
    email, _ = await _account(client)
    await _sign_in_page(client, HERE, email=email, password=PASSWORD)
    csrf = csrf_of((await client.get("/account/phone")).text)
    assert (await client.post("/account/phone", data={"csrf": csrf, "phone": NUMBER})).status_code == 200
    right = _texted_code(shop.settings)
    for _ in range(ACCOUNT):
        wrong = await client.post("/account/phone/verify", data={"csrf": csrf, "code": _wrong(right)}, headers=HERE)
        assert wrong.status_code == 422
    throttled(await client.post("/account/phone/verify", data={"csrf": csrf, "code": right}, headers=HERE),
              page=True)
    throttled(await client.post("/account/phone/verify", data={"csrf": csrf, "code": right}, headers=ELSEWHERE),
              page=True)


async def test_the_link_pages_are_throttled_per_client(shop: SimpleNamespace) -> None:
    client = shop.client
    email, _ = await _account(client)
    csrf = csrf_of((await client.get("/account/verify-email?token=x")).text)
    for n in range(CLIENT):
        wrong = await client.post("/account/verify-email", data={"csrf": csrf, "token": f"forged.{n}"}, headers=HERE)
        assert wrong.status_code == 400
    token = await _mailed_token(shop.settings, email, "verify-email")
    throttled(await client.post("/account/verify-email", data={"csrf": csrf, "token": token}, headers=HERE),
              page=True)
    throttled(await client.post("/account/password-reset/confirm", headers=HERE,
                                data={"csrf": csrf, "token": token, "password": "a-brand-new-password"}), page=True)
    done = await client.post("/account/verify-email", data={"csrf": csrf, "token": token}, headers=ELSEWHERE)
    assert done.status_code == 200 and "confirmed" in done.text
