"""Watches the users store for sessions that ended, so every worker refuses their access tokens within a second.

An access token names its session (the refresh-token family its sign-in began). A session ends when its refresh
tokens are revoked — sign-out, a refresh token used twice, a password reset, an account disabled, a staff role
taken away — and the revocation stamps each of its rows. Each worker keeps the sessions that ended within an access
token's lifetime (an older session's tokens have all expired) in memory, refreshed by a poll every `interval`: an
authenticated request is checked without a round trip to the store.

Each poll reads the sessions stamped since the previous good poll began, less an overlap: a revocation stamps its
rows before it commits, so a row stamped before the previous poll may only have become visible after it (the same
bound as the stock watcher's). A session read again within the overlap is simply known already.

While the copy is not known to be fresh — no good poll began within `fresh_for` (before the first poll, while the
store is away, while the worker was too busy to poll) — a token whose session is not in the copy is checked
against the store itself: a revoked token never passes for want of a poll, and if the store cannot answer either
the request fails (503) rather than letting the token through.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from shop.services.clock import Clock, utc_now
from shop.services.polling import Poller
from shop.services.ports import EndedSessions

log = logging.getLogger(__name__)


class SessionWatcher(Poller[int]):
    what = "ended sessions"

    def __init__(self, store: EndedSessions, *, token_lifetime: timedelta, interval: float = 0.25,
                 fresh_for: float = 0.9, overlap: timedelta = timedelta(seconds=3), clock: Clock = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval=interval, log=log)
        self._store = store
        self._keep = token_lifetime + overlap  # a session that ended before this has no live token left
        self._fresh_for = fresh_for
        self._overlap = overlap
        self._clock = clock
        self._monotonic = monotonic
        # session id -> when it ended (its revocation's stamp), oldest first near enough: a session is forgotten
        # once its stamp and those before it are older than any live token
        self._ended: OrderedDict[str, datetime] = OrderedDict()
        self._last_poll: datetime | None = None  # when the last good poll began, by this worker's clock
        self._fresh_until = float("-inf")  # time.monotonic() until which the copy is known to be fresh

    @property
    def fresh(self) -> bool:
        """Whether a good poll began within `fresh_for`: every session that ended before it is in the copy."""
        return self._monotonic() < self._fresh_until

    async def _poll(self) -> int:
        """Read the sessions that ended since the last good poll; returns how many were new to this worker."""
        began, now = self._monotonic(), self._clock()
        oldest = now - self._keep
        # after a failed poll the window still starts at the last good one: nothing that ended meanwhile is missed
        since = max(self._last_poll - self._overlap, oldest) if self._last_poll is not None else oldest
        rows = await self._store.ended_since(since)
        new = 0
        for session_id, at in sorted(rows, key=lambda row: row[1]):
            if session_id not in self._ended:
                new += 1
                self._ended[session_id] = at
        while self._ended and next(iter(self._ended.values())) < oldest:
            self._ended.popitem(last=False)
        self._last_poll = now
        self._fresh_until = began + self._fresh_for
        return new

    async def has_ended(self, session_id: str) -> bool:
        """Whether the session has ended: from this worker's copy while it is fresh, from the store otherwise."""
        if session_id in self._ended:
            return True
        if self.fresh:
            return False
        return await self._store.has_ended(session_id)
