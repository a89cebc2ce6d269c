"""Codes texted to phone numbers, kept as hashes, on SQL (the users store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, case, delete, insert, select, update

from shop.domain.phones import MAX_TRIES, PhoneCode
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.types import UTCDateTime
from shop.infrastructure.db.users.tables import metadata

phone_codes = Table(
    "phone_codes", metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("phone", String(20), nullable=False),  # E.164
    Column("code_hash", String(64), nullable=False),  # HMAC-SHA256 of the code under a server key
    Column("expires_at", UTCDateTime, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index("ix_phone_codes_user", "user_id", "created_at"),
)


def _code(row: Any) -> PhoneCode:
    return PhoneCode(id=row.id, user_id=row.user_id, phone=row.phone, code_hash=row.code_hash,
                     created_at=row.created_at, expires_at=row.expires_at, tries=row.tries, used_at=row.used_at)


class SqlPhoneCodes:
    """PhoneCodeStore over the users store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def purge(self, *, expired_before: datetime) -> int:
        async with self._store.write() as conn:
            result = await conn.execute(delete(phone_codes).where(phone_codes.c.expires_at < expired_before))
        return int(result.rowcount or 0)

    async def add(self, code: PhoneCode) -> None:
        async with self._store.write() as conn:
            # only the newest code works: older unused ones go (used ones stay, as the record of a verification)
            await conn.execute(delete(phone_codes).where(phone_codes.c.user_id == code.user_id,
                                                         phone_codes.c.used_at.is_(None)))
            await conn.execute(insert(phone_codes).values(
                id=code.id, user_id=code.user_id, phone=code.phone, code_hash=code.code_hash,
                expires_at=code.expires_at, tries=code.tries, created_at=code.created_at, used_at=code.used_at))

    async def latest(self, user_id: str) -> PhoneCode | None:
        async with self._store.read() as conn:
            # the unused code first: MariaDB keeps whole seconds, so a used code may share its created_at
            row = (await conn.execute(select(phone_codes).where(phone_codes.c.user_id == user_id)
                                      .order_by(case((phone_codes.c.used_at.is_(None), 0), else_=1),
                                                phone_codes.c.created_at.desc())
                                      .limit(1))).first()
        return _code(row) if row else None

    async def take_try(self, code_id: str, *, now: datetime) -> int | None:
        async with self._store.write() as conn:
            # the conditional update is the lock: however many tries race, at most MAX_TRIES change the row
            taken = await conn.execute(
                update(phone_codes)
                .where(phone_codes.c.id == code_id, phone_codes.c.used_at.is_(None),
                       phone_codes.c.expires_at > now, phone_codes.c.tries < MAX_TRIES)
                .values(tries=phone_codes.c.tries + 1))
            if taken.rowcount != 1:
                return None
            tries: int = (await conn.execute(select(phone_codes.c.tries).where(phone_codes.c.id == code_id))
                          ).scalar_one()
        return tries

    async def use(self, code_id: str, *, now: datetime) -> bool:
        async with self._store.write() as conn:
            used = await conn.execute(update(phone_codes)
                                      .where(phone_codes.c.id == code_id, phone_codes.c.used_at.is_(None))
                                      .values(used_at=now))
        return bool(used.rowcount == 1)


__all__ = ["SqlPhoneCodes", "phone_codes"]
