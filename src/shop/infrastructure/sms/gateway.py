"""`SmsSender` over a Twilio-style REST gateway: POST {base_url}/Accounts/{account}/Messages.json with the form
fields To, From and Body, signed in with HTTP basic auth (account, token).

What it raises never holds the token, the number or the message: reasons are built from the gateway's host,
the HTTP status and the gateway's numeric error code only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx

from shop.infrastructure.network import is_loopback
from shop.services.phone_verification import SmsNotSent

log = logging.getLogger(__name__)
TWILIO = "https://api.twilio.com/2010-04-01"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    account: str
    token: str = field(repr=False)
    sender: str  # the From number (E.164) or an alphanumeric sender id the gateway allows
    base_url: str = TWILIO
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("SMS gateway: the base URL must be an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("SMS gateway: the token would cross the network unencrypted; use an https URL")
        if not self.account or not self.token or not self.sender:
            raise ValueError("SMS gateway: the account, the token and the sender are all needed")
        if self.timeout <= 0:
            raise ValueError("SMS gateway: the timeout must be positive")

    @property
    def where(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _error_code(response: httpx.Response) -> str:
    """The gateway's numeric error code (Twilio's `code`), if it sent one; its message may quote the number."""
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return ""
    return f" (error {code})" if isinstance(code, int) and not isinstance(code, bool) else ""


class HttpSmsGateway:
    """Sends each message with its own short-lived client: texts are few, and nothing is left open on shutdown."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._url = f"{config.base_url.rstrip('/')}/Accounts/{quote(config.account, safe='')}/Messages.json"

    async def send(self, to: str, body: str) -> None:
        config = self._config
        try:
            async with httpx.AsyncClient(timeout=config.timeout, follow_redirects=False) as client:
                response = await client.post(self._url, data={"To": to, "From": config.sender, "Body": body},
                                             auth=(config.account, config.token))
        except httpx.TimeoutException:
            raise SmsNotSent(f"the SMS gateway {config.where} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SmsNotSent(f"cannot reach the SMS gateway {config.where}: {type(exc).__name__}") from None
        if not response.is_success:
            raise SmsNotSent(f"the SMS gateway {config.where} answered HTTP {response.status_code}"
                             f"{_error_code(response)}")
        log.info("text message accepted by %s", config.where)
