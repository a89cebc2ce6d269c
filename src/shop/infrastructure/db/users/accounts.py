"""Users, credentials and refresh tokens on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shop.domain.catalog import Page
from shop.domain.sessions import Consumed, Outcome, RefreshToken, TwoFactorState
from shop.domain.users import EmailTaken, Role, User, UserStatus
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.types import utcnow
from shop.infrastructure.db.users.tables import credentials, refresh_tokens, users

_BY_ID = select(users).where(users.c.id == bindparam("id"))
_BY_KEY = (select(users, credentials.c.password_hash)
           .join(credentials, credentials.c.user_id == users.c.id)
           .where(users.c.email_key == bindparam("key")))


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, email_key=row.email_key, name=row.name,
                roles=frozenset(Role(r) for r in row.roles), status=UserStatus(row.status),
                created_at=row.created_at, email_verified_at=row.email_verified_at, phone=row.phone,
                phone_verified_at=row.phone_verified_at, totp_enabled_at=row.totp_enabled_at)


class SqlUsers:
    """UserRepository over the users store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, user: User, *, password_hash: str) -> None:
        try:
            async with self._store.write() as conn:
                await conn.execute(insert(users).values(
                    id=user.id, email=user.email, email_key=user.email_key, name=user.name,
                    roles=sorted(r.value for r in user.roles), status=user.status.value, phone=user.phone,
                    email_verified_at=user.email_verified_at, phone_verified_at=user.phone_verified_at,
                    created_at=user.created_at or utcnow()))
                await conn.execute(insert(credentials).values(user_id=user.id, password_hash=password_hash,
                                                              updated_at=utcnow()))
        except IntegrityError:  # two registrations raced for the same address
            raise EmailTaken() from None

    async def by_email_key(self, email_key: str) -> tuple[User, str] | None:
        async with self._store.read() as conn:
            row = (await conn.execute(_BY_KEY, {"key": email_key})).first()
        return (_user(row), row.password_hash) if row else None

    async def by_id(self, user_id: str) -> User | None:
        async with self._store.read() as conn:
            row = (await conn.execute(_BY_ID, {"id": user_id})).first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(credentials).where(credentials.c.user_id == user_id)
                               .values(password_hash=password_hash, updated_at=utcnow()))

    async def mark_email_verified(self, user_id: str, *, at: datetime) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(email_verified_at=at))

    async def set_roles(self, user_id: str, roles: frozenset[Role]) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id)
                               .values(roles=sorted(r.value for r in roles)))

    async def set_phone(self, user_id: str, phone: str | None, *, verified_at: datetime | None) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id)
                               .values(phone=phone, phone_verified_at=verified_at))

    async def set_status(self, user_id: str, status: UserStatus) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(status=status.value))

    async def find(self, *, email: str = "", roles: frozenset[Role] = frozenset(), page: int = 1,
                   limit: int = 25) -> Page[User]:
        where = []
        if email:
            where.append(users.c.email_key.contains(email.casefold(), autoescape=True))
        if roles:
            # roles are a JSON list of words: its text holds "staff" in quotes exactly when the list does
            text = cast(users.c.roles, String)
            where.append(or_(*(text.contains(f'"{role.value}"') for role in sorted(roles))))
        async with self._store.read() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(users).where(*where)) or 0)
            rows = await conn.execute(select(users).where(*where).order_by(users.c.created_at.desc(), users.c.id)
                                      .limit(limit).offset((page - 1) * limit))
            return Page(items=[_user(r) for r in rows], total=total, page=page, limit=limit)


class SqlTwoFactorState:
    """TwoFactorStore and TwoFactorSecrets over the users store; secrets arrive sealed (services.two_factor)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def state(self, user_id: str) -> TwoFactorState | None:
        async with self._store.read() as conn:
            row = (await conn.execute(select(users.c.totp_secret, users.c.totp_enabled_at, users.c.totp_recovery,
                                             users.c.totp_last_step).where(users.c.id == user_id))).first()
        if row is None or row.totp_secret is None:
            return None
        return TwoFactorState(secret=row.totp_secret, enabled_at=row.totp_enabled_at,
                              recovery_hashes=tuple(row.totp_recovery or ()), last_step=row.totp_last_step)

    async def save(self, user_id: str, state: TwoFactorState | None) -> None:
        values = {"totp_secret": None, "totp_enabled_at": None, "totp_recovery": None, "totp_last_step": None} \
            if state is None else {"totp_secret": state.secret, "totp_enabled_at": state.enabled_at,
                                   "totp_recovery": list(state.recovery_hashes), "totp_last_step": state.last_step}
        async with self._store.write() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(**values))

    async def use_step(self, user_id: str, step: int) -> bool:
        async with self._store.write() as conn:
            # conditional, so two logins racing with the same code cannot both pass
            used = await conn.execute(update(users).where(
                users.c.id == user_id, or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step))
                .values(totp_last_step=step))
            return bool(used.rowcount == 1)

    async def use_recovery(self, user_id: str, code_hash: str) -> bool:
        async with self._store.write() as conn:
            row = (await conn.execute(select(users.c.totp_recovery).where(users.c.id == user_id)
                                      .with_for_update())).first()
            left = list(row.totp_recovery or ()) if row else []
            if code_hash not in left:
                return False
            left.remove(code_hash)
            await conn.execute(update(users).where(users.c.id == user_id).values(totp_recovery=left))
            return True

    async def secrets_after(self, user_id: str, *, limit: int) -> Sequence[tuple[str, str]]:
        async with self._store.read() as conn:
            rows = (await conn.execute(select(users.c.id, users.c.totp_secret)
                                       .where(users.c.totp_secret.is_not(None), users.c.id > user_id)
                                       .order_by(users.c.id).limit(limit))).all()
        return [(row.id, row.totp_secret) for row in rows]

    async def replace_secret(self, user_id: str, *, was: str, now: str) -> bool:
        async with self._store.write() as conn:
            replaced = await conn.execute(update(users).where(users.c.id == user_id, users.c.totp_secret == was)
                                          .values(totp_secret=now))
            return bool(replaced.rowcount == 1)


_ENDED_SINCE = (select(refresh_tokens.c.family_id, func.max(refresh_tokens.c.revoked_at).label("ended_at"))
                .where(refresh_tokens.c.revoked_at >= bindparam("since"))
                .group_by(refresh_tokens.c.family_id))
_HAS_ENDED = (select(refresh_tokens.c.family_id)
              .where(refresh_tokens.c.family_id == bindparam("family"), refresh_tokens.c.revoked_at.is_not(None))
              .limit(1))


class SqlRefreshTokens:
    """RefreshTokenStore and EndedSessions over the users store: a session is a family of refresh tokens, and it
    has ended once they are revoked."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, token: RefreshToken) -> None:
        async with self._store.write() as conn:
            await conn.execute(insert(refresh_tokens).values(
                token_hash=token.token_hash, user_id=token.user_id, family_id=token.family_id,
                created_at=token.created_at, expires_at=token.expires_at))

    async def consume(self, token_hash: str, *, now: datetime) -> Consumed:
        async with self._store.write() as conn:
            # the conditional update is the lock: of two concurrent uses, exactly one changes the row
            used = await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None),
                       refresh_tokens.c.revoked_at.is_(None), refresh_tokens.c.expires_at > now)
                .values(used_at=now))
            row = (await conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
                   ).first()
        if row is None:
            return Consumed(Outcome.UNKNOWN)
        token = RefreshToken(token_hash=row.token_hash, user_id=row.user_id, family_id=row.family_id,
                             created_at=row.created_at, expires_at=row.expires_at)
        if used.rowcount == 1:
            return Consumed(Outcome.OK, token)
        if row.used_at is not None or row.revoked_at is not None:
            return Consumed(Outcome.REUSED, token)
        return Consumed(Outcome.EXPIRED, token)

    async def revoke_family(self, family_id: str, *, now: datetime) -> None:
        await self._revoke(refresh_tokens.c.family_id == family_id, now)

    async def revoke_user(self, user_id: str, *, now: datetime) -> None:
        await self._revoke(refresh_tokens.c.user_id == user_id, now)

    async def ended_since(self, since: datetime) -> Sequence[tuple[str, datetime]]:
        async with self._store.read() as conn:
            return [(row.family_id, row.ended_at) for row in await conn.execute(_ENDED_SINCE, {"since": since})]

    async def has_ended(self, session_id: str) -> bool:
        async with self._store.read() as conn:
            return (await conn.execute(_HAS_ENDED, {"family": session_id})).first() is not None

    async def _revoke(self, which: Any, now: datetime) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(refresh_tokens).where(and_(which, refresh_tokens.c.revoked_at.is_(None)))
                               .values(revoked_at=now))


__all__ = ["SqlRefreshTokens", "SqlUsers"]
