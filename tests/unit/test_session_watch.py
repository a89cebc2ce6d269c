"""A worker's copy of the sessions that ended: read with an overlap, kept as long as a token lives, and never
trusted when it is not known to be fresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from shop.services.session_watch import SessionWatcher

T0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=15)


class FakeEndedSessions:
    """Ended sessions as the store keeps them: stamped when revoked; a stamp not yet committed is invisible."""

    def __init__(self) -> None:
        self.ended: dict[str, datetime] = {}
        self.pending: dict[str, datetime] = {}
        self.down = False
        self.lookups: list[str] = []

    def end(self, session_id: str, at: datetime, *, committed: bool = True) -> None:
        (self.ended if committed else self.pending)[session_id] = at

    def commit(self, session_id: str) -> None:
        self.ended[session_id] = self.pending.pop(session_id)

    async def ended_since(self, since: datetime) -> Sequence[tuple[str, datetime]]:
        if self.down:
            raise ConnectionError("users store unreachable")
        return [(sid, at) for sid, at in self.ended.items() if at >= since]

    async def has_ended(self, session_id: str) -> bool:
        self.lookups.append(session_id)
        if self.down:
            raise ConnectionError("users store unreachable")
        return session_id in self.ended


class Clocks:
    """The wall clock and the monotonic clock, moved together by hand."""

    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def store() -> FakeEndedSessions:
    return FakeEndedSessions()


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def watcher(store: FakeEndedSessions, clocks: Clocks) -> SessionWatcher:
    return SessionWatcher(store, token_lifetime=LIFETIME, overlap=timedelta(seconds=3), fresh_for=0.9,
                          clock=clocks.wall, monotonic=clocks.monotonic)


async def test_a_session_that_ended_is_refused_from_the_copy_without_asking_the_store(watcher, store,
                                                                                      clocks) -> None:
    await watcher.check()
    store.end("s1", clocks.now)
    clocks.advance(0.25)
    assert await watcher.check() == 1
    store.down = True
    assert await watcher.has_ended("s1") is True
    assert await watcher.has_ended("s2") is False
    assert store.lookups == []


async def test_the_first_read_takes_every_session_that_ended_within_a_tokens_lifetime(watcher, store,
                                                                                      clocks) -> None:
    store.end("recent", T0 - LIFETIME + timedelta(seconds=10))
    store.end("long-ago", T0 - LIFETIME - timedelta(minutes=1))
    assert await watcher.check() == 1
    assert await watcher.has_ended("recent") is True
    assert await watcher.has_ended("long-ago") is False, "its tokens have all expired"


async def test_a_revocation_committed_late_within_the_overlap_is_still_read(watcher, store, clocks) -> None:
    await watcher.check()
    store.end("late", clocks.now, committed=False)
    clocks.advance(0.25)
    await watcher.check()  # stamped before this poll began, not yet visible
    clocks.advance(2)
    store.commit("late")
    clocks.advance(0.25)
    assert await watcher.check() == 1
    assert await watcher.has_ended("late") is True


async def test_a_session_read_again_within_the_overlap_counts_once(watcher, store, clocks) -> None:
    await watcher.check()
    store.end("s1", clocks.now)
    clocks.advance(0.25)
    assert await watcher.check() == 1
    clocks.advance(0.25)
    assert await watcher.check() == 0


async def test_a_session_is_forgotten_once_no_token_of_it_can_be_alive(watcher, store, clocks) -> None:
    await watcher.check()
    store.end("s1", clocks.now)
    clocks.advance(0.25)
    await watcher.check()
    clocks.advance(LIFETIME.total_seconds() + 4)
    await watcher.check()
    # every token it had has expired by now, so the copy need not hold it any longer
    assert await watcher.has_ended("s1") is False
    assert store.lookups == []


async def test_before_the_first_read_every_token_is_checked_in_the_store(watcher, store) -> None:
    store.end("s1", T0)
    assert await watcher.has_ended("s1") is True
    assert await watcher.has_ended("s2") is False
    assert store.lookups == ["s1", "s2"]


async def test_a_copy_older_than_its_freshness_bound_is_not_trusted(watcher, store, clocks) -> None:
    await watcher.check()
    clocks.advance(0.95)  # no poll for longer than fresh_for: a busy worker, a slow store
    store.end("s1", clocks.now)
    assert await watcher.has_ended("s1") is True
    assert store.lookups == ["s1"]


async def test_while_the_store_is_away_a_token_is_neither_let_through_nor_guessed_at(watcher, store,
                                                                                    clocks) -> None:
    await watcher.check()
    store.down = True
    clocks.advance(0.25)
    with pytest.raises(ConnectionError):
        await watcher.check()
    clocks.advance(1)
    with pytest.raises(ConnectionError):  # the request fails (503); it is not let through
        await watcher.has_ended("s1")


async def test_after_a_failed_poll_the_next_one_reads_from_the_last_good_one(watcher, store, clocks) -> None:
    await watcher.check()
    store.down = True
    clocks.advance(0.25)
    with pytest.raises(ConnectionError):
        await watcher.check()
    store.end("meanwhile", clocks.now)
    clocks.advance(30)  # a long outage: far past the overlap
    store.down = False
    assert await watcher.check() == 1
    assert await watcher.has_ended("meanwhile") is True
