"""Account flows that go through e-mail: verifying an address and resetting a forgotten password.

Links carry signed, expiring tokens. They are single-use without any stored state: a verification token names
the address it verifies (used once the address is verified), and a reset token carries a fingerprint of the
password hash it may replace (used once the password has changed). A token that does not work counts against the
client that sent it (shop.services.guesses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlencode

from shop.domain.errors import InvalidValue
from shop.domain.users import InvalidToken, User, check_password, normalize_email
from shop.services.clock import Clock, utc_now
from shop.services.email_delivery import MailTemplates
from shop.services.guesses import guess_keys
from shop.services.ports import MailQueue, PasswordHasher, RefreshTokenStore, SignedTokens, Throttle, UserRepository

VERIFY_EMAIL = "verify-email"
PASSWORD_RESET = "password-reset"  # noqa: S105 - a template and token purpose, not a secret


def _duration(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


class AccountFlows:
    def __init__(self, *, users: UserRepository, refresh_tokens: RefreshTokenStore, hasher: PasswordHasher,
                 tokens: SignedTokens, templates: MailTemplates, mail: MailQueue, public_url: str, throttle: Throttle,
                 verify_ttl: timedelta = timedelta(days=2), reset_ttl: timedelta = timedelta(hours=1),
                 end_web_sessions: Callable[[str], Awaitable[int]] | None = None, clock: Clock = utc_now) -> None:
        self._end_web_sessions = end_web_sessions
        self._throttle = throttle  # counts link tokens that did not work, per client
        self._users = users
        self._refresh = refresh_tokens
        self._hasher = hasher
        self._tokens = tokens
        self._templates = templates
        self._mail = mail
        self._public_url = public_url.rstrip("/")
        self._verify_ttl = verify_ttl
        self._reset_ttl = reset_ttl
        self._clock = clock

    def _link(self, page: str, token: str) -> str:
        return f"{self._public_url}/account/{page}?{urlencode({'token': token})}"

    async def send_verification(self, user: User) -> None:
        """E-mail the user a link that proves they own their address."""
        token = self._tokens.sign(VERIFY_EMAIL, {"sub": user.id, "email": user.email_key},
                                  ttl_seconds=int(self._verify_ttl.total_seconds()), now=self._clock())
        await self._mail.queue(self._templates.render(
            VERIFY_EMAIL, to=user.email, name=user.name, link=self._link("verify-email", token),
            expires_in=_duration(self._verify_ttl)))

    async def verify_email(self, token: str, *, client: str) -> User:
        """Mark the address in the token as verified; a token works once."""
        keys = guess_keys(client=client)
        await self._throttle.check(keys)
        try:
            return await self._verify_email(token)
        except InvalidToken:
            await self._throttle.failed(keys)
            raise

    async def _verify_email(self, token: str) -> User:
        claims = self._tokens.read(VERIFY_EMAIL, token, now=self._clock())
        user = await self._users.by_id(claims["sub"])
        if user is None or user.email_key != claims["email"]:
            raise InvalidToken()
        if user.email_verified_at is not None:
            raise InvalidToken("this link was already used; the address is verified")
        now = self._clock()
        await self._users.mark_email_verified(user.id, at=now)
        user.email_verified_at = now
        return user

    async def request_password_reset(self, email: str) -> None:
        """E-mail a reset link if the address has an account; say nothing either way (no account probing)."""
        try:
            _, key = normalize_email(email)
        except InvalidValue:
            return
        found = await self._users.by_email_key(key)
        if found is None or not found[0].is_active:
            return
        user, password_hash = found
        token = self._tokens.sign(PASSWORD_RESET, {"sub": user.id, "pw": _fingerprint(password_hash)},
                                  ttl_seconds=int(self._reset_ttl.total_seconds()), now=self._clock())
        await self._mail.queue(self._templates.render(
            PASSWORD_RESET, to=user.email, name=user.name, link=self._link("password-reset", token),
            expires_in=_duration(self._reset_ttl)))

    async def reset_password(self, token: str, new_password: str, *, client: str) -> None:
        """Set a new password with a reset token; every session of the account ends."""
        keys = guess_keys(client=client)
        await self._throttle.check(keys)
        try:
            await self._reset_password(token, new_password)
        except InvalidToken:
            await self._throttle.failed(keys)
            raise

    async def _reset_password(self, token: str, new_password: str) -> None:
        claims = self._tokens.read(PASSWORD_RESET, token, now=self._clock())
        user = await self._users.by_id(claims["sub"])
        found = await self._users.by_email_key(user.email_key) if user else None
        if found is None or _fingerprint(found[1]) != claims["pw"]:
            raise InvalidToken("this link was already used or has expired; ask for a new one")
        user = found[0]
        check_password(new_password, email=user.email, name=user.name)
        await self._users.set_password_hash(user.id, self._hasher.hash(new_password))
        await self._refresh.revoke_user(user.id, now=self._clock())
        if self._end_web_sessions is not None:  # the storefront's sessions end too
            await self._end_web_sessions(user.id)
