"""The SMS adapters against a real HTTP gateway (uvicorn on 127.0.0.1) and the file system; no database needed."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shop.infrastructure.sms.files import FileSmsSender
from shop.infrastructure.sms.gateway import GatewayConfig, HttpSmsGateway
from shop.services.phone_verification import SmsNotSent
from tests.integration.smtp_server import free_port

ACCOUNT = "AC0123456789abcdef"
TOKEN = "tok_5ecret_d0_not_leak_9f8e7d6c"
NUMBER = "+4915123456789"
BODY = "604219 is your Acme verification code. It expires in 10 minutes."


@dataclass
class Received:
    path: str
    authorization: str
    content_type: str
    form: dict[str, list[str]]


@dataclass
class Gateway:
    """A Twilio-style gateway: keeps every request and answers with `status` and `answer` (after `delay`)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    status: int = 201
    answer: dict[str, object] = field(default_factory=lambda: {"sid": "SM1", "status": "queued"})
    delay: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/2010-04-01"

    async def messages(self, request: Request) -> Response:
        self.received.append(Received(request.url.path, request.headers.get("authorization", ""),
                                      request.headers.get("content-type", ""),
                                      parse_qs((await request.body()).decode())))
        await asyncio.sleep(self.delay)
        return JSONResponse(self.answer, status_code=self.status)


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    fake = Gateway(port=free_port())
    app = Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", fake.messages,
                                  methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=fake.port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the test gateway did not start"
        await asyncio.sleep(0.01)
    yield fake
    server.should_exit = True
    await serving


def _sender(gateway: Gateway, **extra: object) -> HttpSmsGateway:
    options: dict[str, object] = {"base_url": gateway.base_url, "timeout": 5.0, **extra}
    return HttpSmsGateway(GatewayConfig(account=ACCOUNT, token=TOKEN, sender="+15005550006",
                                        **options))  # type: ignore[arg-type]


def _assert_nothing_leaks(failed: SmsNotSent, caplog: pytest.LogCaptureFixture) -> None:
    # no chained httpx error (which would carry the request, and its Authorization header, into a traceback)
    assert failed.__cause__ is None and (failed.__context__ is None or failed.__suppress_context__)
    for text in (str(failed), repr(failed), failed.reason, caplog.text):
        assert TOKEN not in text and NUMBER not in text and "604219" not in text


async def test_a_text_reaches_the_gateway_as_a_form_post_with_basic_auth(gateway: Gateway) -> None:
    await _sender(gateway).send(NUMBER, BODY)
    [received] = gateway.received
    assert received.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert received.content_type == "application/x-www-form-urlencoded"
    scheme, _, credentials = received.authorization.partition(" ")
    assert scheme == "Basic" and base64.b64decode(credentials).decode() == f"{ACCOUNT}:{TOKEN}"
    assert received.form == {"To": [NUMBER], "From": ["+15005550006"], "Body": [BODY]}


async def test_a_gateway_error_is_a_clear_failure_without_the_token(gateway: Gateway,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.status, gateway.answer = 500, {"message": f"internal error for {NUMBER} with {TOKEN}"}
    with pytest.raises(SmsNotSent) as failed:
        await _sender(gateway).send(NUMBER, BODY)
    assert failed.value.reason == f"the SMS gateway 127.0.0.1:{gateway.port} answered HTTP 500"
    _assert_nothing_leaks(failed.value, caplog)


async def test_a_refused_number_reports_the_gateways_error_code_but_not_its_message(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.status = 400
    gateway.answer = {"code": 21211, "message": f"The 'To' number {NUMBER} is not a valid phone number."}
    with pytest.raises(SmsNotSent) as failed:
        await _sender(gateway).send(NUMBER, BODY)
    assert failed.value.reason.endswith("answered HTTP 400 (error 21211)")
    _assert_nothing_leaks(failed.value, caplog)


async def test_a_wrong_token_is_a_401_failure(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    gateway.status, gateway.answer = 401, {"code": 20003, "message": "Authenticate"}
    with pytest.raises(SmsNotSent, match=r"HTTP 401 \(error 20003\)") as failed:
        await _sender(gateway).send(NUMBER, BODY)
    _assert_nothing_leaks(failed.value, caplog)


async def test_a_gateway_that_does_not_answer_in_time_is_a_failure(gateway: Gateway,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    gateway.delay = 1.0
    with pytest.raises(SmsNotSent, match="did not answer in time") as failed:
        await _sender(gateway, timeout=0.3).send(NUMBER, BODY)
    _assert_nothing_leaks(failed.value, caplog)


async def test_an_unreachable_gateway_is_a_failure_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    sender = HttpSmsGateway(GatewayConfig(account=ACCOUNT, token=TOKEN, sender="+15005550006",
                                          base_url=f"http://127.0.0.1:{port}", timeout=2))
    with pytest.raises(SmsNotSent, match=f"cannot reach the SMS gateway 127.0.0.1:{port}") as failed:
        await sender.send(NUMBER, BODY)
    _assert_nothing_leaks(failed.value, caplog)


def test_gateway_settings_refuse_a_token_in_clear_over_the_network_and_hide_it() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        GatewayConfig(account=ACCOUNT, token=TOKEN, sender="+15005550006", base_url="http://sms.example.com")
    with pytest.raises(ValueError, match="all needed"):
        GatewayConfig(account=ACCOUNT, token="", sender="+15005550006")
    with pytest.raises(ValueError, match="http"):
        GatewayConfig(account=ACCOUNT, token=TOKEN, sender="+15005550006", base_url="ftp://sms.example.com")
    config = GatewayConfig(account=ACCOUNT, token=TOKEN, sender="+15005550006")
    assert TOKEN not in repr(config) and config.where == "api.twilio.com"


async def test_the_file_sender_writes_one_private_file_per_message(tmp_path: Path) -> None:
    sender = FileSmsSender(tmp_path / "sms")
    await sender.send(NUMBER, BODY)
    await sender.send(NUMBER, "second")
    files = sorted((tmp_path / "sms").iterdir())
    assert len(files) == 2 and all(f.suffix == ".txt" and f.stat().st_mode & 0o077 == 0 for f in files)
    head, _, body = files[0].read_text().partition("\n\n")
    assert f"To: {NUMBER}" in head.splitlines() and body == BODY + "\n"


async def test_the_file_sender_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with pytest.raises(SmsNotSent, match="cannot write"):
        await FileSmsSender(blocked / "sms").send(NUMBER, BODY)
