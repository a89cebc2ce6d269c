"""Codes texted to a phone number to prove it is the user's: how long one lasts and how often it may be tried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shop.domain.errors import InvalidValue

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_TRIES = 5


def check_code_format(raw: str) -> str:
    """The code as typed, without spaces; anything but six digits cannot be a code we sent."""
    code = "".join(raw.split())
    if len(code) != CODE_DIGITS or not code.isascii() or not code.isdigit():
        raise InvalidValue("code", f"enter the {CODE_DIGITS} digits from the text message")
    return code


@dataclass(frozen=True, slots=True)
class PhoneCode:
    """One code sent to `phone` (E.164) for `user_id`; only its hash is kept."""

    id: str
    user_id: str
    phone: str
    code_hash: str
    created_at: datetime
    expires_at: datetime
    tries: int = 0
    used_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the code can no longer be tried, or None while it can."""
        if self.used_at is not None:
            return "was already used; ask for a new code"
        if now >= self.expires_at:
            return "has expired; ask for a new code"
        if self.tries >= MAX_TRIES:
            return f"was tried {MAX_TRIES} times, so it no longer works; ask for a new code"
        return None
