"""`MailSender` for development: each e-mail becomes an RFC 5322 `.eml` file under `var/mail/`.

Open one with any mail client, or `python -m email` tools; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import secrets
from email.policy import SMTP
from pathlib import Path

from shop.domain.messages import Email
from shop.infrastructure.db.types import utcnow
from shop.infrastructure.email.message import Sender, build_message
from shop.infrastructure.private_files import write_private
from shop.services.email_delivery import DeliveryFailed


class FileMailSender:
    def __init__(self, directory: Path, sender: Sender) -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, email: Email) -> None:
        data = build_message(email, self._sender).as_bytes(policy=SMTP)
        name = f"{utcnow():%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
        try:
            await asyncio.to_thread(write_private, self.directory / name, data)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to {self.directory}: {exc.strerror or type(exc).__name__}") from None
