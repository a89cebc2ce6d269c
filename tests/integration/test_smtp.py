"""The mail adapters against a real SMTP server (aiosmtpd) and the file system; no database needed."""

from __future__ import annotations

import logging
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from shop.domain.errors import InvalidValue
from shop.domain.messages import Email
from shop.infrastructure.email.files import FileMailSender
from shop.infrastructure.email.message import Sender
from shop.infrastructure.email.rendering import JinjaMailTemplates
from shop.infrastructure.email.smtp import SmtpConfig, SmtpSender
from shop.services.email_delivery import DeliveryFailed
from tests.integration.smtp_server import free_port, smtp_server

TOKEN = "tok_9f8e7d6c5b4a3210fedcba9876543210"
LINK = f"https://shop.test/verify-email?token={TOKEN}"
PASSWORD = "correct-horse-battery-staple"
SHOP = Sender("shop@shop.test", "Acme & Co")


def verify_email(to: str | list[str] = "ann@example.com") -> Email:
    return JinjaMailTemplates(shop_name="Acme & Co").render("verify-email", to=to, link=LINK, name="Ann <3")


def plain_smtp(port: int, **options: object) -> SmtpSender:
    return SmtpSender(SmtpConfig("127.0.0.1", port, starttls=False, timeout=5, **options), SHOP)  # type: ignore[arg-type]


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


async def test_the_verify_email_message_reaches_a_real_smtp_server_with_text_and_html() -> None:
    with smtp_server() as inbox:
        await plain_smtp(inbox.port).send(verify_email(["ann@example.com", "bob@example.com"]))
    [received] = inbox.received
    message = received.message
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    assert received.mail_from == "shop@shop.test"
    assert message["To"] == "ann@example.com, bob@example.com"
    assert message["From"] == "Acme & Co <shop@shop.test>"
    assert message["Subject"] == "Confirm your e-mail address for Acme & Co"
    assert message["Message-ID"].endswith("@shop.test>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert LINK in body["text/plain"] and "Hello Ann <3," in body["text/plain"]
    assert f'href="{LINK}"' in body["text/html"] and "Hello Ann &lt;3," in body["text/html"]


async def test_the_password_reset_message_has_its_link_in_both_parts() -> None:
    link = "https://shop.test/password-reset?token=abc&amp;x"
    email = JinjaMailTemplates().render("password-reset", to="ann@example.com", link=link)
    with smtp_server() as inbox:
        await plain_smtp(inbox.port).send(email)
    body = parts(inbox.received[0].message)
    assert link in body["text/plain"]
    assert "https://shop.test/password-reset?token=abc&amp;amp;x" in body["text/html"]  # escaped once more


def test_templates_refuse_a_link_that_is_not_http_and_a_missing_link() -> None:
    templates = JinjaMailTemplates()
    with pytest.raises(InvalidValue, match="http"):
        templates.render("verify-email", to="ann@example.com", link="javascript:alert(1)")
    with pytest.raises(Exception, match="'link' is undefined"):
        templates.render("verify-email", to="ann@example.com")
    with pytest.raises(KeyError):
        templates.render("../../etc/passwd", to="ann@example.com", link=LINK)


async def test_a_refused_connection_is_a_temporary_failure_naming_the_server() -> None:
    port = free_port()
    with pytest.raises(DeliveryFailed) as failed:
        await plain_smtp(port).send(verify_email())
    assert not failed.value.permanent
    assert f"127.0.0.1:{port}" in failed.value.reason


async def test_a_recipient_the_server_does_not_know_is_a_permanent_failure() -> None:
    with smtp_server() as inbox:
        inbox.refuse["nobody@example.com"] = "550 5.1.1 No such user"
        with pytest.raises(DeliveryFailed) as failed:
            await plain_smtp(inbox.port).send(verify_email("nobody@example.com"))
    assert failed.value.permanent and "550" in failed.value.reason
    assert inbox.received == []


async def test_a_full_mailbox_is_a_temporary_failure() -> None:
    with smtp_server() as inbox:
        inbox.refuse["full@example.com"] = "452 4.2.2 Mailbox full"
        with pytest.raises(DeliveryFailed) as failed:
            await plain_smtp(inbox.port).send(verify_email("full@example.com"))
    assert not failed.value.permanent


async def test_a_refused_login_never_shows_the_password_or_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(refuse_logins=True) as inbox:
        sender = plain_smtp(inbox.port, username="shop", password=PASSWORD)
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(verify_email())
    assert "refused the SMTP login (SMTP 535)" in failed.value.reason and not failed.value.permanent
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    for text in (str(failed.value), repr(failed.value), caplog.text, repr(sender._config)):
        assert PASSWORD not in text and TOKEN not in text


def test_smtp_settings_refuse_a_password_in_clear_over_the_network() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        SmtpConfig("smtp.example.com", 25, username="shop", password=PASSWORD, starttls=False)
    with pytest.raises(ValueError, match="not both"):
        SmtpConfig("smtp.example.com", 465, starttls=True, implicit_tls=True)
    SmtpConfig("127.0.0.1", 25, username="shop", password=PASSWORD, starttls=False)  # a local relay is fine


async def test_the_file_sender_writes_a_parseable_eml(tmp_path: Path) -> None:
    sender = FileMailSender(tmp_path / "mail", SHOP)
    await sender.send(verify_email())
    [path] = (tmp_path / "mail").iterdir()
    assert path.suffix == ".eml" and path.stat().st_mode & 0o077 == 0
    raw = path.read_bytes()
    assert b"\r\n" in raw  # RFC 5322 line endings
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "ann@example.com" and message["From"] == "Acme & Co <shop@shop.test>"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"} and LINK in body["text/plain"]


async def test_the_file_sender_reports_an_unwritable_folder_as_temporary(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with pytest.raises(DeliveryFailed) as failed:
        await FileMailSender(blocked / "mail", SHOP).send(verify_email())
    assert not failed.value.permanent
