"""`SmsSender` for development: each text message becomes a file under `var/sms/`; nothing leaves the machine."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from shop.infrastructure.db.types import utcnow
from shop.services.phone_verification import SmsNotSent


class FileSmsSender:
    def __init__(self, directory: Path, *, sender: str = "shop") -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, to: str, body: str) -> None:
        data = f"To: {to}\nFrom: {self._sender}\nDate: {utcnow().isoformat()}\n\n{body}\n".encode()
        name = f"{utcnow():%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.txt"
        try:
            await asyncio.to_thread(self._write, self.directory / name, data)
        except OSError as exc:
            raise SmsNotSent(f"cannot write to {self.directory}: {exc.strerror or type(exc).__name__}") from None

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # written aside and renamed, so a reader never sees half a message
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        # readable by the shop's user only: a message holds a verification code
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
            file.write(data)
        partial.replace(path)
