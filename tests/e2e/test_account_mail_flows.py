"""E-mail flows end to end: register, the worker delivers to a real SMTP server, the link verifies the address;
a forgotten password is reset through the e-mailed link and every old session ends."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_databases, build_delivery
from shop.config import Settings
from tests.conftest import open_client
from tests.integration.smtp_server import Inbox, smtp_server

PASSWORD = "first-password-long"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_settings(demo_settings: Settings, inbox: Inbox) -> Settings:
    return demo_settings.model_copy(update={
        "mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_starttls": False,
        "response_cache": False, "public_url": "https://shop.example"})


@pytest_asyncio.fixture
async def mail_client(mail_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_client(mail_settings):
        yield client


async def _deliver(settings: Settings) -> int:
    """What `shop worker` does until nothing is due (the shared demo shop may hold other tests' e-mails)."""
    databases = build_databases(settings)
    try:
        deliver, handled = build_delivery(settings, databases), 0
        for _ in range(100):
            taken = await deliver()
            if not taken:
                return handled
            handled += taken
        raise AssertionError("the outbox never ran dry")
    finally:
        await databases.dispose()


def _token(inbox: Inbox, to: str, page: str) -> str:
    message = next(m for m in reversed(inbox.received) if to.lower() in [r.lower() for r in m.rcpt_tos]).message
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    link = re.search(rf"https://shop\.example/account/{page}\?token=(\S+)", text)
    assert link, text
    assert link.group(1) in html  # the same link in both parts
    return link.group(1)


async def test_a_new_customer_verifies_their_address_from_the_email(
        mail_client: httpx.AsyncClient, mail_settings: Settings, inbox: Inbox) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    registered = await mail_client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD,
                                                                        "name": "Grace"})
    assert registered.status_code == 201 and registered.json()["email_verified"] is False
    assert not any(email in m.rcpt_tos for m in inbox.received), "nothing is sent before the worker runs"
    assert await _deliver(mail_settings) >= 1
    token = _token(inbox, email, "verify-email")
    received = next(m for m in inbox.received if email in m.rcpt_tos).message
    assert "Confirm your e-mail address" in received["Subject"] and "Grace" in str(received)
    verified = await mail_client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True
    again = await mail_client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 401, "a verification link works once"
    tampered = await mail_client.post("/api/v1/auth/verify-email", json={"token": token[:-3] + "abc"})
    assert tampered.status_code == 401 and tampered.headers["content-type"] == "application/problem+json"


async def test_a_forgotten_password_is_reset_through_the_emailed_link(
        mail_client: httpx.AsyncClient, mail_settings: Settings, inbox: Inbox) -> None:
    email = f"forgetful-{uuid.uuid4().hex[:8]}@example.com"
    await mail_client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    old = (await mail_client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    asked = await mail_client.post("/api/v1/auth/password-reset", json={"email": email.upper()})
    unknown = await mail_client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.com"})
    assert asked.status_code == unknown.status_code == 202, "the answer does not tell who has an account"
    await _deliver(mail_settings)
    token = _token(inbox, email, "password-reset")
    weak = await mail_client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    done = await mail_client.post("/api/v1/auth/password-reset/confirm",
                                  json={"token": token, "password": "second-password-long"})
    assert done.status_code == 204
    reused = await mail_client.post("/api/v1/auth/password-reset/confirm",
                                    json={"token": token, "password": "third-password-long"})
    assert reused.status_code == 401, "a reset link works once"
    assert (await mail_client.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
            ).status_code == 401, "sessions opened before the reset are over"
    assert (await mail_client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            ).status_code == 401
    assert (await mail_client.post("/api/v1/auth/login", json={"email": email, "password": "second-password-long"})
            ).status_code == 200


async def test_a_verification_token_is_not_a_reset_token_or_an_access_token(
        mail_client: httpx.AsyncClient, mail_settings: Settings, inbox: Inbox) -> None:
    email = f"mixup-{uuid.uuid4().hex[:8]}@example.com"
    await mail_client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    await _deliver(mail_settings)
    token = _token(inbox, email, "verify-email")
    assert (await mail_client.post("/api/v1/auth/password-reset/confirm",
                                   json={"token": token, "password": "another-password-ok"})).status_code == 401
    assert (await mail_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
