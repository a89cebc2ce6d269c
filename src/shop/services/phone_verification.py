"""Phone verification: text a six-digit code to a number, and take the number as the user's once it comes back.

Codes are kept only as HMAC-SHA256 hashes under a server key (six digits are too few for a plain hash to hide
them), last ten minutes, may be tried five times, and a new code replaces the one before. Sends are limited per
number and per user; wrong codes count against the account and the client (shop.services.guesses), like every
other guessed secret. Nothing here logs or raises with a code or a full number in it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.domain.errors import InvalidValue
from shop.domain.phones import CODE_DIGITS, CODE_TTL, MAX_TRIES, PhoneCode, check_code_format
from shop.domain.users import User
from shop.services.clock import Clock, utc_now
from shop.services.guesses import guess_keys
from shop.services.ports import Throttle, UserRepository

NUMBER_PREFIX = "sms-number"  # throttle keys: texts sent to one number
USER_PREFIX = "sms-user"  # and texts one user asked for


class SmsNotSent(Exception):
    """The SMS system did not take the message. `reason` is short and holds no secret, code or full number."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:300]


class PhoneNumbers(Protocol):
    def normalize(self, raw: str) -> str:
        """The number in E.164 form (+4915123456789); raise InvalidValue("phone", …) if it cannot take texts."""
        ...


class SmsSender(Protocol):
    async def send(self, to: str, body: str) -> None:
        """Hand one text message for `to` (E.164) to the SMS system; raise SmsNotSent if it was not accepted."""
        ...


class PhoneCodeStore(Protocol):
    """Codes sent to phone numbers (the users store)."""

    async def add(self, code: PhoneCode) -> None:
        """Keep a new code; the user's earlier codes that were not used stop working."""
        ...

    async def latest(self, user_id: str) -> PhoneCode | None:
        """The user's newest code, used or not."""
        ...

    async def take_try(self, code_id: str, *, now: datetime) -> int | None:
        """Count one try at a live code, atomically: the tries so far, including this one; None if the code is
        used, expired at `now`, or already tried MAX_TRIES times."""
        ...

    async def purge(self, *, expired_before: datetime) -> int:
        """Forget codes that expired before then (used ones included: the user record keeps the verification)."""
        ...

    async def use(self, code_id: str, *, now: datetime) -> bool:
        """Mark the code used, once: False if it already was."""
        ...


@dataclass(frozen=True, slots=True)
class CodeSent:
    phone: str
    expires_at: datetime


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class PhoneVerification:
    def __init__(self, *, codes: PhoneCodeStore, users: UserRepository, numbers: PhoneNumbers, sms: SmsSender,
                 throttle: Throttle, guesses: Throttle, key: str, shop_name: str, clock: Clock = utc_now) -> None:
        self._codes = codes
        self._guesses = guesses
        self._users = users
        self._numbers = numbers
        self._sms = sms
        self._throttle = throttle
        # a key of its own, derived from the shop's secret: a code hash cannot be checked with the secret's
        # other uses, nor the other way round
        self._key = hmac.new(key.encode(), b"shop phone verification codes", hashlib.sha256).digest()
        self._shop_name = shop_name
        self._clock = clock

    def _hash(self, code_id: str, code: str) -> str:
        return hmac.new(self._key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _throttle_keys(self, user: User, number: str) -> Sequence[str]:
        # the number is hashed: the limiter's storage (memory or Redis) holds no phone numbers
        return [f"{NUMBER_PREFIX}:{hashlib.sha256(number.encode()).hexdigest()[:32]}", f"{USER_PREFIX}:{user.id}"]

    async def send_code(self, user: User, phone: str) -> CodeSent:
        """Text a new six-digit code to the number; it replaces any code sent before."""
        number = self._numbers.normalize(phone)
        keys = self._throttle_keys(user, number)
        await self._throttle.check(keys)
        # the throttle counts texts here, not failures: every send uses one up, delivered or not
        await self._throttle.failed(keys)
        now = self._clock()
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        code_id = str(uuid.uuid4())
        row = PhoneCode(id=code_id, user_id=user.id, phone=number, code_hash=self._hash(code_id, code),
                        created_at=now, expires_at=now + CODE_TTL)
        await self._codes.add(row)
        await self._sms.send(number, f"{code} is your {self._shop_name} verification code. "
                                     f"It expires in {_minutes(CODE_TTL.total_seconds())}.")
        return CodeSent(phone=number, expires_at=row.expires_at)

    async def verify(self, user: User, code: str, *, client: str) -> User:
        """Check the code last sent to the user; if it is right, their number is verified."""
        keys = guess_keys(account=user.id, client=client)
        await self._guesses.check(keys)
        typed = check_code_format(code)
        now = self._clock()
        latest = await self._codes.latest(user.id)
        if latest is None:
            raise InvalidValue("code", "no code was sent to you; ask for one first")
        refusal = latest.refusal(now)
        if refusal is not None:
            raise InvalidValue("code", refusal)
        tries = await self._codes.take_try(latest.id, now=now)
        if tries is None:  # another request used it up meanwhile
            raise InvalidValue("code", "no longer works; ask for a new code")
        if not hmac.compare_digest(latest.code_hash, self._hash(latest.id, typed)):
            await self._guesses.failed(keys)
            left = MAX_TRIES - tries
            raise InvalidValue("code", f"is wrong; {left} {'try' if left == 1 else 'tries'} left" if left
                               else "is wrong, and that was the last try; ask for a new code")
        if not await self._codes.use(latest.id, now=now):
            raise InvalidValue("code", "was already used; ask for a new code")
        await self._users.set_phone(user.id, latest.phone, verified_at=now)
        return dataclasses.replace(user, phone=latest.phone, phone_verified_at=now)
