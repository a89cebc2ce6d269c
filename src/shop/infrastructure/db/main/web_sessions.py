"""Storefront sessions in the main store, keyed by the hash of their id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.dialects import dialect_for
from shop.infrastructure.db.main.tables import web_sessions
from shop.services.web_sessions import WebSession

_w = web_sessions.c


def _data(session: WebSession) -> dict[str, object]:
    return {"user_id": session.user_id, "cart_id": session.cart_id, "refresh_token": session.refresh_token,
            "order_keys": [list(pair) for pair in session.order_keys]}


class SqlWebSessions:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._insert = dialect_for(store.backend).insert_ignoring(web_sessions)

    async def get(self, key: str, *, now: datetime) -> WebSession | None:
        async with self._store.read() as conn:
            row = (await conn.execute(select(_w.data, _w.created_at, _w.expires_at)
                                      .where(_w.key == key, _w.expires_at > now))).first()
        if row is None:
            return None
        data = row.data
        return WebSession(user_id=data.get("user_id"), cart_id=data.get("cart_id"), created_at=row.created_at,
                          expires_at=row.expires_at, refresh_token=data.get("refresh_token"),
                          order_keys=tuple((str(n), str(k)) for n, k in data.get("order_keys", ())))

    async def put(self, key: str, session: WebSession) -> None:
        values = {"key": key, "user_id": session.user_id, "data": _data(session), "created_at": session.created_at,
                  "expires_at": session.expires_at}

        async def store(conn: AsyncConnection) -> None:
            changed = await conn.execute(update(web_sessions).where(_w.key == key).values(
                user_id=session.user_id, data=values["data"], expires_at=session.expires_at))
            if changed.rowcount == 0:
                await conn.execute(self._insert.values(**values))

        await self._store.transaction(store)

    async def delete(self, key: str) -> None:
        await self._store.transaction(lambda conn: conn.execute(delete(web_sessions).where(_w.key == key)))

    async def delete_user(self, user_id: str) -> int:
        result = await self._store.transaction(
            lambda conn: conn.execute(delete(web_sessions).where(_w.user_id == user_id)))
        return int(result.rowcount or 0)

    async def purge(self, *, now: datetime) -> int:
        result = await self._store.transaction(
            lambda conn: conn.execute(delete(web_sessions).where(_w.expires_at <= now)))
        return int(result.rowcount or 0)
