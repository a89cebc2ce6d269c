"""Idempotency keys in the main store."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.dialects import dialect_for
from shop.infrastructure.db.main.tables import idempotency_keys
from shop.services.commerce_ports import Claim

_k = idempotency_keys.c


class SqlIdempotency:
    """IdempotencyStore: a key is claimed by inserting it; whoever inserted it runs the request."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._insert = dialect_for(store.backend).insert_ignoring(idempotency_keys)

    async def claim(self, scope: str, key: str, fingerprint: str, *, now: datetime, lock_for: float,
                    keep_for: float) -> Claim:
        where = (_k.scope == scope, _k.key == key)
        fresh = {"fingerprint": fingerprint, "status_code": None, "response": None,
                 "locked_until": now + timedelta(seconds=lock_for), "created_at": now,
                 "expires_at": now + timedelta(seconds=keep_for), "order_number": None, "order_access_key": None}
        # the insert runs alone (PostgreSQL: in autocommit, no BEGIN/COMMIT): a transaction that also read or
        # deleted first would hold locks on what it read, and two requests with one new key could deadlock
        async with self._store.one_statement() as conn:
            claimed = await conn.execute(self._insert.values(scope=scope, key=key, **fresh))
        if claimed.rowcount == 1:
            return Claim("new")
        async with self._store.write() as conn:
            row = (await conn.execute(select(_k.fingerprint, _k.status_code, _k.response, _k.locked_until,
                                             _k.expires_at, _k.order_number, _k.order_access_key)
                                      .where(*where).with_for_update())).first()
            if row is None:  # purged between the two statements
                return Claim("running", locked_until=now + timedelta(seconds=1))
            if row.expires_at <= now:  # a key past its keeping time is as good as new
                await conn.execute(update(idempotency_keys).where(*where).values(**fresh))
                return Claim("new")
            if row.fingerprint != fingerprint:
                return Claim("mismatch")
            if row.status_code is not None:
                return Claim("done", status=int(row.status_code), body=row.response)
            if row.locked_until is not None and row.locked_until > now:
                return Claim("running", locked_until=row.locked_until)
            # the first request died without an answer: this one takes the key over, and its order if it made one
            await conn.execute(update(idempotency_keys).where(*where).values(locked_until=fresh["locked_until"]))
            if row.order_number is not None:
                return Claim("resume", order_number=row.order_number, access_key=row.order_access_key)
            return Claim("new")

    async def finish(self, scope: str, key: str, *, status: int, body: object) -> None:
        async with self._store.one_statement() as conn:
            await conn.execute(update(idempotency_keys).where(_k.scope == scope, _k.key == key).values(
                status_code=status, response=body, locked_until=None))

    async def release(self, scope: str, key: str) -> None:
        where = (_k.scope == scope, _k.key == key, _k.status_code.is_(None))
        async with self._store.write() as conn:
            await conn.execute(delete(idempotency_keys).where(*where, _k.order_number.is_(None)))
            await conn.execute(update(idempotency_keys).where(*where).values(locked_until=None))

    async def purge(self, *, now: datetime) -> int:
        async with self._store.write() as conn:
            result = await conn.execute(delete(idempotency_keys).where(_k.expires_at <= now))
        return int(result.rowcount or 0)
