"""Authentication: register, log in, rotate refresh tokens with reuse detection, log out, who is calling."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from shop.domain.errors import InvalidValue
from shop.domain.sessions import Outcome, RefreshToken
from shop.domain.users import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    Role,
    SecondFactorRequired,
    User,
    UserStatus,
    check_password,
    normalize_email,
)
from shop.services.clock import Clock, utc_now
from shop.services.ports import (
    AccessTokens,
    EndedSessions,
    PasswordHasher,
    RefreshTokenStore,
    Throttle,
    UserRepository,
)


class SecondFactor(Protocol):
    async def check(self, user: User, code: str, *, client: str) -> bool:
        """Whether the code is right; raise TooManyAttempts while the account or client is throttled."""
        ...


class SessionCheck(Protocol):
    """Whether the session an access token names has ended (shop.services.session_watch)."""

    async def has_ended(self, session_id: str) -> bool: ...


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256 hashes: a copy of the database cannot be used to sign in."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    access_token: str
    expires_in: int
    refresh_token: str


class AuthService:
    def __init__(self, *, users: UserRepository, refresh_tokens: RefreshTokenStore, ended_sessions: EndedSessions,
                 hasher: PasswordHasher, access: AccessTokens, throttle: Throttle,
                 refresh_ttl: timedelta = timedelta(days=30), second_factor: SecondFactor | None = None,
                 sessions: SessionCheck | None = None, clock: Clock = utc_now) -> None:
        self._users = users
        self._refresh = refresh_tokens
        self._ended = ended_sessions
        # what an access token's session is checked against: a worker's watched copy (SessionWatcher) where one
        # runs, the store otherwise
        self._sessions = sessions or ended_sessions
        self._hasher = hasher
        self._access = access
        self._throttle = throttle
        self._refresh_ttl = refresh_ttl
        self._second_factor = second_factor
        self._clock = clock
        # verified against when the e-mail is unknown, so both failures take the same time
        self._decoy_hash = hasher.hash(secrets.token_urlsafe(16))

    async def register(self, *, email: str, password: str, name: str = "",
                       roles: frozenset[Role] = frozenset({Role.CUSTOMER})) -> User:
        """Create an account; the e-mail must be new and the password strong enough."""
        address, key = normalize_email(email)
        name = " ".join(name.split())
        if len(name) > 200:
            raise InvalidValue("name", "at most 200 characters")
        check_password(password, email=address, name=name)
        if await self._users.by_email_key(key) is not None:
            raise EmailTaken()
        user = User(id=str(uuid.uuid4()), email=address, email_key=key, name=name, roles=roles,
                    created_at=self._clock())
        await self._users.add(user, password_hash=self._hasher.hash(password))
        return user

    async def login(self, *, email: str, password: str, client: str, otp: str | None = None) -> Session:
        """Check the password (and the second factor, where enabled) and open a session.

        Failures are throttled per account and per client address."""
        try:
            _, key = normalize_email(email)
        except InvalidValue:
            raise InvalidCredentials() from None
        keys = [f"account:{key}", f"client:{client}"]
        await self._throttle.check(keys)
        found = await self._users.by_email_key(key)
        password_hash = found[1] if found else self._decoy_hash
        if not self._hasher.verify(password_hash, password) or found is None:
            await self._throttle.failed(keys)
            raise InvalidCredentials()
        user = found[0]
        if not user.is_active:
            raise AccountDisabled()
        if user.has_two_factor:
            if not otp:
                raise SecondFactorRequired()
            if self._second_factor is None or not await self._second_factor.check(user, otp, client=client):
                await self._throttle.failed(keys)
                raise InvalidCredentials()
        await self._throttle.clear(keys[:1])
        if self._hasher.needs_rehash(password_hash):
            await self._users.set_password_hash(user.id, self._hasher.hash(password))
        return await self._open(user, family_id=str(uuid.uuid4()))

    async def refresh(self, refresh_token: str) -> Session:
        """Trade a refresh token for a new pair; a token used twice revokes its whole family."""
        now = self._clock()
        consumed = await self._refresh.consume(hash_token(refresh_token), now=now)
        if consumed.outcome is Outcome.REUSED and consumed.token is not None:
            await self._refresh.revoke_family(consumed.token.family_id, now=now)
            raise InvalidToken("this refresh token was already used; sign in again")
        if consumed.outcome is not Outcome.OK or consumed.token is None:
            raise InvalidToken()
        family_id = consumed.token.family_id
        user = await self._users.by_id(consumed.token.user_id)
        if user is None or not user.is_active:
            await self._refresh.revoke_family(family_id, now=now)
            raise InvalidToken()
        session = await self._open(user, family_id=family_id)
        # a sign-out or reset that ended the session while this refresh ran revoked the rows before the new one:
        # the new one goes too, or it would carry the ended session on
        if await self._ended.has_ended(family_id):
            await self._refresh.revoke_family(family_id, now=self._clock())
            raise InvalidToken("this session has ended; sign in again")
        return session

    async def logout(self, refresh_token: str) -> None:
        """End the session the refresh token belongs to; unknown tokens are ignored."""
        now = self._clock()
        consumed = await self._refresh.consume(hash_token(refresh_token), now=now)
        if consumed.token is not None:
            await self._refresh.revoke_family(consumed.token.family_id, now=now)

    async def user_for(self, access_token: str) -> User:
        """The active user an access token belongs to, while its session lasts."""
        claims = self._access.read(access_token, now=self._clock())
        if await self._sessions.has_ended(claims.session_id):
            raise InvalidToken("this session has ended; sign in again")
        user = await self._users.by_id(claims.user_id)
        if user is None:
            raise InvalidToken()
        if not user.is_active:
            raise AccountDisabled()
        return user

    async def active_user(self, user_id: str) -> User | None:
        """The user behind a storefront session, while their account is active."""
        user = await self._users.by_id(user_id)
        return user if user is not None and user.status is UserStatus.ACTIVE else None

    async def create_admin(self, *, email: str, password: str, name: str = "") -> User:
        """The first admin (or another one): an account with every role."""
        return await self.register(email=email, password=password, name=name,
                                   roles=frozenset({Role.CUSTOMER, Role.STAFF, Role.ADMIN}))

    async def _open(self, user: User, *, family_id: str) -> Session:
        now = self._clock()
        token = secrets.token_urlsafe(32)
        await self._refresh.add(RefreshToken(token_hash=hash_token(token), user_id=user.id, family_id=family_id,
                                             created_at=now, expires_at=now + self._refresh_ttl))
        return Session(user=user, access_token=self._access.issue(user, session_id=family_id, now=now),
                       expires_in=self._access.ttl_seconds, refresh_token=token)
