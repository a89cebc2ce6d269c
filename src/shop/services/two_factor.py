"""Two-factor authentication with an authenticator app (TOTP), and single-use recovery codes.

Every code checked (to switch 2FA on or off, or at sign-in) counts against the account and the client when it is
wrong (shop.services.guesses); while either is throttled, no code is even looked at.

Secrets reach the store sealed by a SecretBox; one that no configured key opens fails closed: its authenticator codes
are refused (recovery codes, kept as hashes, still work) and the error is logged by user id."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from shop.domain.sessions import TwoFactorState
from shop.domain.users import InvalidCredentials, User
from shop.services.clock import Clock, utc_now
from shop.services.guesses import guess_keys
from shop.services.ports import (
    OneTimePasswords,
    SecretBox,
    SecretUnreadable,
    Throttle,
    TwoFactorSecrets,
    TwoFactorStore,
)

RECOVERY_CODES = 10
REKEY_BATCH = 200
log = logging.getLogger(__name__)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


class TwoFactor:
    def __init__(self, *, store: TwoFactorStore, otp: OneTimePasswords, box: SecretBox, issuer: str,
                 throttle: Throttle, clock: Clock = utc_now) -> None:
        self._store = store
        self._otp = otp
        self._box = box
        self._throttle = throttle
        self._issuer = issuer
        self._clock = clock

    async def begin(self, user: User) -> Enrolment:
        """A new secret to scan into an authenticator app; not in force until `confirm`."""
        if user.has_two_factor:
            raise InvalidCredentials()  # replacing a working factor needs `disable` with a code first
        secret = self._otp.new_secret()
        await self._store.save(user.id, TwoFactorState(secret=self._box.seal(secret)))
        return Enrolment(secret=secret, uri=self._otp.provisioning_uri(secret, account=user.email,
                                                                      issuer=self._issuer))

    async def confirm(self, user: User, code: str, *, client: str) -> list[str]:
        """Switch 2FA on with a first code from the app; returns recovery codes, shown this once."""
        keys = guess_keys(account=user.id, client=client)
        await self._throttle.check(keys)
        state = await self._store.state(user.id)
        secret = self._open(user, state.secret) if state is not None and state.enabled_at is None else None
        step = self._otp.verify(secret, code, now=self._clock()) if secret is not None else None
        if secret is None or step is None:
            await self._throttle.failed(keys)
            raise InvalidCredentials()
        codes = ["-".join(secrets.token_hex(4)[i:i + 4] for i in (0, 4)) for _ in range(RECOVERY_CODES)]
        # sealed afresh: a pending secret kept in plain text from before sealing began is sealed from now on
        await self._store.save(user.id, TwoFactorState(secret=self._box.seal(secret), enabled_at=self._clock(),
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
        secret = self._open(user, state.secret)
        step = self._otp.verify(secret, code, now=self._clock()) if secret is not None else None
        if step is not None:
            return await self._store.use_step(user.id, step)  # a code seen before is refused
        return await self._store.use_recovery(user.id, _hash(code))

    def _open(self, user: User, stored: str) -> str | None:
        try:
            return self._box.open(stored)
        except SecretUnreadable:
            log.error("two-factor: the secret of user %s opens with none of the configured keys (a key retired "
                      "before its secrets were re-sealed?); their authenticator codes are refused", user.id)
            return None

    async def disable(self, user: User, code: str, *, client: str) -> None:
        """Switch 2FA off; needs a current code or a recovery code."""
        if not await self.check(user, code, client=client):
            raise InvalidCredentials()
        await self._store.save(user.id, None)


@dataclass(frozen=True, slots=True)
class Resealed:
    """What `reseal_secrets` did: secrets sealed under the current key (those that were plain text among them), and
    secrets no key opens, left as they were."""

    resealed: int
    were_plain: int
    unreadable: int


async def reseal_secrets(*, store: TwoFactorSecrets, box: SecretBox,
                         progress: Callable[[int], None] | None = None) -> Resealed:
    """Seal every stored 2FA secret under the box's current key: the step that lets an old key be retired, and that
    seals secrets stored in plain text. Safe beside a running shop and safe to repeat."""
    resealed = were_plain = unreadable = 0
    after = ""
    while batch := await store.secrets_after(after, limit=REKEY_BATCH):
        for user_id, stored in batch:
            try:
                plain = box.open(stored) == stored  # only a value kept in plain text opens to itself
                now = box.reseal(stored)
            except SecretUnreadable:
                log.error("two-factor: the secret of user %s opens with none of the configured keys; left as it is",
                          user_id)
                unreadable += 1
                continue
            # compare-and-swap: a secret replaced meanwhile (a new enrolment) was sealed with the current key anyway
            if await store.replace_secret(user_id, was=stored, now=now):
                resealed += 1
                were_plain += plain
        after = batch[-1][0]
        if progress is not None:
            progress(len(batch))
    return Resealed(resealed=resealed, were_plain=were_plain, unreadable=unreadable)
