"""Two-factor authentication with an authenticator app (TOTP), and single-use recovery codes.

Every code checked (to switch 2FA on or off, or at sign-in) counts against the account and the client when it is
wrong (shop.services.guesses); while either is throttled, no code is even looked at."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from shop.domain.sessions import TwoFactorState
from shop.domain.users import InvalidCredentials, User
from shop.services.clock import Clock, utc_now
from shop.services.guesses import guess_keys
from shop.services.ports import OneTimePasswords, Throttle, TwoFactorStore

RECOVERY_CODES = 10


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


class TwoFactor:
    def __init__(self, *, store: TwoFactorStore, otp: OneTimePasswords, issuer: str, throttle: Throttle,
                 clock: Clock = utc_now) -> None:
        self._store = store
        self._otp = otp
        self._throttle = throttle
        self._issuer = issuer
        self._clock = clock

    async def begin(self, user: User) -> Enrolment:
        """A new secret to scan into an authenticator app; not in force until `confirm`."""
        if user.has_two_factor:
            raise InvalidCredentials()  # replacing a working factor needs `disable` with a code first
        secret = self._otp.new_secret()
        await self._store.save(user.id, TwoFactorState(secret=secret))
        return Enrolment(secret=secret, uri=self._otp.provisioning_uri(secret, account=user.email,
                                                                      issuer=self._issuer))

    async def confirm(self, user: User, code: str, *, client: str) -> list[str]:
        """Switch 2FA on with a first code from the app; returns recovery codes, shown this once."""
        keys = guess_keys(account=user.id, client=client)
        await self._throttle.check(keys)
        state = await self._store.state(user.id)
        step = self._otp.verify(state.secret, code, now=self._clock()) if state is not None else None
        if state is None or state.enabled_at is not None or step is None:
            await self._throttle.failed(keys)
            raise InvalidCredentials()
        codes = ["-".join(secrets.token_hex(4)[i:i + 4] for i in (0, 4)) for _ in range(RECOVERY_CODES)]
        await self._store.save(user.id, TwoFactorState(secret=state.secret, enabled_at=self._clock(),
                                                       recovery_hashes=tuple(_hash(c) for c in codes),
                                                       last_step=step))
        return codes

    async def check(self, user: User, code: str, *, client: str) -> bool:
        """A current code from the app, or an unused recovery code (which is then used up); TooManyAttempts while
        the account or the client is throttled."""
        keys = guess_keys(account=user.id, client=client)
        await self._throttle.check(keys)
        if not await self._right(user, code):
            await self._throttle.failed(keys)
            return False
        return True

    async def _right(self, user: User, code: str) -> bool:
        state = await self._store.state(user.id)
        if state is None or state.enabled_at is None:
            return False
        step = self._otp.verify(state.secret, code, now=self._clock())
        if step is not None:
            return await self._store.use_step(user.id, step)  # a code seen before is refused
        return await self._store.use_recovery(user.id, _hash(code))

    async def disable(self, user: User, code: str, *, client: str) -> None:
        """Switch 2FA off; needs a current code or a recovery code."""
        if not await self.check(user, code, client=client):
            raise InvalidCredentials()
        await self._store.save(user.id, None)
