"""`MailSender` over SMTP with aiosmtplib: STARTTLS (the default), implicit TLS, or plain on a trusted relay.

What it raises never holds the password: reasons are built from exception types, SMTP codes and the server's
first response line, with the password scrubbed from that line in case a server echoes what it was sent.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from shop.domain.messages import Email
from shop.infrastructure.email.message import Sender, build_message
from shop.infrastructure.network import is_loopback
from shop.services.email_delivery import DeliveryFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True  # upgrade a plain connection; refuse to go on if the server cannot
    implicit_tls: bool = False  # TLS from the first byte (usually port 465)
    timeout: float = 30.0
    validate_certs: bool = True

    def __post_init__(self) -> None:
        if self.starttls and self.implicit_tls:
            raise ValueError("SMTP: choose STARTTLS or implicit TLS, not both")
        if not 0 < self.port < 65536:
            raise ValueError("SMTP: the port must be between 1 and 65535")
        if self.timeout <= 0:
            raise ValueError("SMTP: the timeout must be positive")
        if (self.username or self.password) and not (self.starttls or self.implicit_tls) \
                and not is_loopback(self.host):
            raise ValueError("SMTP: a password would cross the network unencrypted; enable STARTTLS or TLS")


class SmtpSender:
    """Sends each e-mail on its own connection: simple, and a broken connection costs one message at most."""

    def __init__(self, config: SmtpConfig, sender: Sender, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._sender = sender
        self._tls_context = tls_context

    @property
    def where(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    async def send(self, email: Email) -> None:
        config = self._config
        message = build_message(email, self._sender)
        try:
            errors, _ = await aiosmtplib.send(
                message, hostname=config.host, port=config.port, username=config.username or None,
                password=config.password or None, use_tls=config.implicit_tls,
                start_tls=config.starttls if not config.implicit_tls else False, timeout=config.timeout,
                validate_certs=config.validate_certs, tls_context=self._tls_context)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            permanent = all(500 <= code < 600 for code in codes)
            raise DeliveryFailed(f"{self.where} refused every recipient (SMTP {', '.join(map(str, codes))})",
                                 permanent=permanent) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            # a configuration problem: retried, so the mail goes out once the credentials are fixed
            raise DeliveryFailed(f"{self.where} refused the SMTP login (SMTP {exc.code})") from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx after the recipients were accepted means the message itself was refused (size, content);
            # a refused sender is our configuration, so it is retried like a temporary failure
            permanent = isinstance(exc, aiosmtplib.SMTPDataError) and 500 <= exc.code < 600
            raise DeliveryFailed(f"{self.where} answered SMTP {exc.code}: {self._scrub(exc.message)}",
                                 permanent=permanent) from None
        except aiosmtplib.SMTPException as exc:
            raise DeliveryFailed(f"{self.where}: {type(exc).__name__}: {self._scrub(str(exc))}") from None
        except (OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"cannot reach {self.where}: {exc.strerror or type(exc).__name__}"
                                 if isinstance(exc, OSError) else f"{self.where} did not answer in time") from None
        if errors:
            # some recipients accepted: the message is out and cannot be unsent, so it counts as sent
            log.warning("%s refused %d of %d recipients", self.where, len(errors), len(email.to))

    def _scrub(self, text: str) -> str:
        line = text.strip().splitlines()[0] if text.strip() else ""
        password = self._config.password
        if password and password in line:
            line = line.replace(password, "***")
        return line[:200]
