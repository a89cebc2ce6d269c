"""`SmsSender` for development: each text message becomes a file under `var/sms/`; nothing leaves the machine."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from shop.infrastructure.db.types import utcnow
from shop.infrastructure.private_files import write_private
from shop.services.phone_verification import SmsNotSent


class FileSmsSender:
    def __init__(self, directory: Path, *, sender: str = "shop") -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, to: str, body: str) -> None:
        data = f"To: {to}\nFrom: {self._sender}\nDate: {utcnow().isoformat()}\n\n{body}\n".encode()
        name = f"{utcnow():%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.txt"
        try:
            await asyncio.to_thread(write_private, self.directory / name, data)
        except OSError as exc:
            raise SmsNotSent(f"cannot write to {self.directory}: {exc.strerror or type(exc).__name__}") from None
