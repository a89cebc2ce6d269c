"""Storefront sessions: server-side, named by a random id that only the visitor's cookie holds (the store keeps
its hash). A sign-in starts a new session (a fixed session id cannot be planted); sign-out destroys it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from shop.services.clock import Clock, utc_now


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: str | None
    cart_id: str | None
    created_at: datetime
    expires_at: datetime
    refresh_token: str | None = None  # the API session the sign-in opened; revoked at sign-out
    order_keys: tuple[tuple[str, str], ...] = ()  # (order number, access key) of this visitor's guest orders


class WebSessionStore(Protocol):
    async def get(self, key: str, *, now: datetime) -> WebSession | None:
        """The unexpired session stored under `key` (the hash of its id)."""
        ...

    async def put(self, key: str, session: WebSession) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_user(self, user_id: str) -> int:
        """End every session the user is signed in with."""
        ...

    async def purge(self, *, now: datetime) -> int: ...


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class WebSessions:
    def __init__(self, store: WebSessionStore, *, lifetime: timedelta = timedelta(days=14),
                 clock: Clock = utc_now) -> None:
        self._store = store
        self._lifetime = lifetime
        self._clock = clock

    async def load(self, session_id: str | None) -> WebSession | None:
        """The session a cookie names, if it exists and has not expired."""
        if not session_id or len(session_id) > 100:
            return None
        return await self._store.get(session_key(session_id), now=self._clock())

    async def start(self, **values: object) -> tuple[str, WebSession]:
        """A new session with a new random id (256 bits)."""
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        session = replace(WebSession(user_id=None, cart_id=None, created_at=now, expires_at=now + self._lifetime),
                          **values)  # type: ignore[arg-type]
        await self._store.put(session_key(session_id), session)
        return session_id, session

    async def save(self, session_id: str, session: WebSession) -> WebSession:
        """Store a changed session; every change also extends it."""
        session = replace(session, expires_at=self._clock() + self._lifetime)
        await self._store.put(session_key(session_id), session)
        return session

    async def rotate(self, old_id: str | None, **values: object) -> tuple[str, WebSession]:
        """Sign-in: the old session ends and a new one, with a new id, carries its cart and `values` on."""
        old = await self.load(old_id)
        if old_id:
            await self._store.delete(session_key(old_id))
        carried: dict[str, object] = {"cart_id": old.cart_id, "order_keys": old.order_keys} if old else {}
        return await self.start(**{**carried, **values})

    async def destroy(self, session_id: str | None) -> WebSession | None:
        """Sign-out: the session is gone from the store; returns what it was."""
        old = await self.load(session_id)
        if session_id:
            await self._store.delete(session_key(session_id))
        return old

    async def end_all(self, user_id: str) -> int:
        """Sign the user out everywhere (after a password reset)."""
        return await self._store.delete_user(user_id)

    async def purge(self) -> int:
        return await self._store.purge(now=self._clock())
