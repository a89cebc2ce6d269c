"""Passwords hashed with argon2id (OWASP's minimum: 19 MiB, two passes, one lane)."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Passwords:
    """PasswordHasher with argon2-cffi; hashes made with older parameters are flagged for an upgrade."""

    def __init__(self, *, memory_kib: int = 19 * 1024, passes: int = 2, lanes: int = 1) -> None:
        self._argon2 = _Argon2(time_cost=passes, memory_cost=memory_kib, parallelism=lanes)

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError, ValueError):  # UnicodeEncodeError: a non-ASCII stored hash
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
