"""Hand-written fakes of the ports AuthService needs (src/shop/services/ports.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from shop.domain.sessions import AccessClaims, Consumed, Outcome, RefreshToken
from shop.domain.users import EmailTaken, InvalidToken, Role, TooManyAttempts, User, UserStatus


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class FakeUsers:
    """UserRepository in memory; like the SQL one, a second account for the same e-mail key is EmailTaken."""

    def __init__(self) -> None:
        self.rows: dict[str, User] = {}
        self.hashes: dict[str, str] = {}

    async def add(self, user: User, *, password_hash: str) -> None:
        if any(u.email_key == user.email_key for u in self.rows.values()):
            raise EmailTaken()
        self.rows[user.id] = user
        self.hashes[user.id] = password_hash

    async def by_email_key(self, email_key: str) -> tuple[User, str] | None:
        for user in self.rows.values():
            if user.email_key == email_key:
                return user, self.hashes[user.id]
        return None

    async def by_id(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.hashes[user_id] = password_hash

    async def set_roles(self, user_id: str, roles: frozenset[Role]) -> None:
        self.rows[user_id].roles = roles

    # for tests
    def disable(self, user_id: str) -> None:
        self.rows[user_id] = dataclasses.replace(self.rows[user_id], status=UserStatus.DISABLED)

    def delete(self, user_id: str) -> None:
        del self.rows[user_id]
        del self.hashes[user_id]


@dataclasses.dataclass
class _Row:
    token: RefreshToken
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class FakeRefreshTokens:
    """RefreshTokenStore and EndedSessions in memory with the SQL store's consume: once only; used or revoked is
    `reused`; a family has ended once a token of it is revoked."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}

    async def add(self, token: RefreshToken) -> None:
        assert token.token_hash not in self.rows
        self.rows[token.token_hash] = _Row(token)

    async def consume(self, token_hash: str, *, now: datetime) -> Consumed:
        row = self.rows.get(token_hash)
        if row is None:
            return Consumed(Outcome.UNKNOWN)
        if row.used_at is None and row.revoked_at is None and row.token.expires_at > now:
            row.used_at = now
            return Consumed(Outcome.OK, row.token)
        if row.used_at is not None or row.revoked_at is not None:
            return Consumed(Outcome.REUSED, row.token)
        return Consumed(Outcome.EXPIRED, row.token)

    async def revoke_family(self, family_id: str, *, now: datetime) -> None:
        for row in self.rows.values():
            if row.token.family_id == family_id and row.revoked_at is None:
                row.revoked_at = now

    async def revoke_user(self, user_id: str, *, now: datetime) -> None:
        for row in self.rows.values():
            if row.token.user_id == user_id and row.revoked_at is None:
                row.revoked_at = now

    async def ended_since(self, since: datetime) -> Sequence[tuple[str, datetime]]:
        ended: dict[str, datetime] = {}
        for row in self.rows.values():
            if row.revoked_at is not None and row.revoked_at >= since:
                ended[row.token.family_id] = max(row.revoked_at, ended.get(row.token.family_id, row.revoked_at))
        return list(ended.items())

    async def has_ended(self, session_id: str) -> bool:
        return session_id in self.revoked_families()

    # for tests
    def revoked_families(self) -> set[str]:
        return {r.token.family_id for r in self.rows.values() if r.revoked_at is not None}


class FakeHasher:
    """PasswordHasher that is fast and readable: the hash is "h:" + password; counts every verify."""

    def __init__(self, *, prefix: str = "h:") -> None:
        self.prefix = prefix
        self.hashed: list[str] = []  # the passwords hashed, in order
        self.verified: list[str] = []  # the hashes checked, in order
        self.outdated = False  # when set, every hash without the current prefix needs a rehash

    def hash(self, password: str) -> str:
        self.hashed.append(password)
        return self.prefix + password

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash.split(":", 1)[1] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return self.outdated and not password_hash.startswith(self.prefix)


class FakeAccessTokens:
    """AccessTokens as plain text: "access:<user id>:<session id>:<expiry timestamp>"."""

    def __init__(self, *, ttl_seconds: int = 900) -> None:
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User, *, session_id: str, now: datetime) -> str:
        return f"access:{user.id}:{session_id}:{int(now.timestamp()) + self.ttl_seconds}"

    def read(self, token: str, *, now: datetime) -> AccessClaims:
        kind, _, rest = token.partition(":")
        user_id, _, rest = rest.partition(":")
        session_id, _, expires = rest.partition(":")
        if kind != "access" or not user_id or not session_id or not expires.isdigit() \
                or int(expires) <= now.timestamp():
            raise InvalidToken()
        return AccessClaims(user_id=user_id, session_id=session_id)


class FakeThrottle:
    """Throttle that counts failures per key; a key with `limit` failures is refused (no window)."""

    def __init__(self, *, limit: int = 3, retry_after: int = 60) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.failures: dict[str, int] = {}
        self.checked: list[list[str]] = []

    async def check(self, keys: Sequence[str]) -> None:
        self.checked.append(list(keys))
        if any(self.failures.get(k, 0) >= self.limit for k in keys):
            raise TooManyAttempts(retry_after=self.retry_after)

    async def failed(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.failures[key] = self.failures.get(key, 0) + 1

    async def clear(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.failures.pop(key, None)
