"""SecretBox with cryptography's MultiFernet: the first key seals, every key opens, so a key is rotated by putting
a new one first and re-sealing (`shop totp rekey`) before the old one is dropped.

A sealed value is "fernet:" and the Fernet token. 2FA secrets stored before sealing began are base32 (A-Z, 2-7),
which never holds a colon: such a value is read as it is until `shop totp rekey` seals it."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shop.services.ports import SecretUnreadable

PREFIX = "fernet:"


def new_key() -> str:
    """A new random key: 32 bytes, URL-safe base64, as SHOP_TOTP_KEYS takes them."""
    return Fernet.generate_key().decode()


class FernetSecretBox:
    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("a secret box needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, secret: str) -> str:
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX)).decode()
        except (InvalidToken, ValueError):  # no key fits, or not a token at all: say neither which nor the value
            raise SecretUnreadable() from None

    def reseal(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        try:
            return PREFIX + self._fernet.rotate(stored.removeprefix(PREFIX)).decode()
        except (InvalidToken, ValueError):
            raise SecretUnreadable() from None
