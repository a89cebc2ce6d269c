"""The stock watcher reports each stock move once, late commits included, and everything after it lost track."""

from __future__ import annotations

from collections.abc import Hashable, Sequence, Set
from datetime import UTC, datetime, timedelta

import pytest

from shop.domain.inventory import StockLevel
from shop.services.stock_watch import StockWatcher

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class FakeStockChanges:
    """Rows as a store keeps them: the last level of each SKU and the time its transaction stamped it. A row
    stamped but not yet committed is invisible until `commit`."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[StockLevel, datetime]] = {}
        self.pending: dict[str, tuple[StockLevel, datetime]] = {}
        self.down = False
        self.rows_read = 0

    def stamp(self, sku: str, on_hand: int, reserved: int, at: datetime, *, committed: bool = True) -> None:
        (self.rows if committed else self.pending)[sku] = (StockLevel(sku, on_hand, reserved), at)

    def commit(self, sku: str) -> None:
        self.rows[sku] = self.pending.pop(sku)

    async def changed_since(self, since: datetime) -> Sequence[tuple[str, Hashable]]:
        self._check()
        found = [(sku, (level.on_hand, level.reserved, at)) for sku, (level, at) in self.rows.items() if at > since]
        self.rows_read += len(found)
        return found

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("main store unreachable")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> FakeStockChanges:
    store = FakeStockChanges()
    store.stamp("A", 5, 0, T0 - timedelta(minutes=10))
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def heard() -> list[Set[str] | None]:
    return []


@pytest.fixture
async def watcher(store: FakeStockChanges, clock: Clock, heard: list[Set[str] | None]) -> StockWatcher:
    watcher = StockWatcher(store, overlap=timedelta(seconds=3), clock=clock)
    watcher.subscribe(heard.append)
    assert await watcher.check() is None  # the first read: whatever was cached before is suspect
    heard.clear()
    return watcher


async def test_a_move_is_reported_once_however_often_the_overlap_reads_it_again(watcher, store, clock,
                                                                              heard) -> None:
    clock.now = T0 + timedelta(seconds=1)
    store.stamp("A", 5, 1, clock.now)
    assert await watcher.check() == {"A"}
    clock.now += timedelta(seconds=1)
    assert await watcher.check() == set()
    assert heard == [{"A"}]


async def test_a_row_committed_after_a_newer_one_was_read_is_still_reported(watcher, store, clock) -> None:
    clock.now = T0 + timedelta(seconds=1)
    store.stamp("B", 2, 1, clock.now, committed=False)  # stamped first, committed last
    store.stamp("C", 9, 0, clock.now + timedelta(seconds=1))
    clock.now += timedelta(seconds=1)
    assert await watcher.check() == {"C"}
    store.commit("B")
    assert await watcher.check() == {"B"}


async def test_two_moves_of_one_sku_between_checks_are_one_report_and_a_later_move_another(watcher, store,
                                                                                          clock) -> None:
    clock.now = T0 + timedelta(seconds=1)
    store.stamp("A", 5, 1, clock.now)
    store.stamp("A", 5, 2, clock.now)  # the same stamp (MariaDB keeps whole seconds): the level tells them apart
    assert await watcher.check() == {"A"}
    store.stamp("A", 5, 1, clock.now)
    assert await watcher.check() == {"A"}


async def test_a_writer_clock_ahead_of_ours_does_not_hide_the_others_moves(watcher, store, clock) -> None:
    clock.now = T0 + timedelta(seconds=1)
    store.stamp("FAST", 1, 0, clock.now + timedelta(seconds=30))  # a host whose clock runs 30 s ahead
    assert await watcher.check() == {"FAST"}
    store.stamp("A", 4, 0, clock.now)
    assert await watcher.check() == {"A"}


async def test_a_quiet_shop_reads_nothing_however_many_rows_a_bulk_load_stamped_once(store, clock) -> None:
    for n in range(1000):  # a catalogue seeded at once, then nothing moves
        store.stamp(f"BULK{n}", 5, 0, T0)
    watcher = StockWatcher(store, overlap=timedelta(seconds=3), clock=clock)
    clock.now = T0 + timedelta(seconds=1)
    await watcher.check()
    read = store.rows_read
    for _ in range(20):
        clock.now += timedelta(seconds=0.25)
        assert await watcher.check() == set()
    assert store.rows_read - read < 1000 * 12  # read while inside the overlap, then never again
    clock.now += timedelta(seconds=5)
    read = store.rows_read
    await watcher.check()
    await watcher.check()
    assert store.rows_read == read


async def test_after_a_failed_poll_the_listeners_hear_that_anything_may_have_changed(watcher, store, clock,
                                                                                    heard) -> None:
    store.down = True
    with pytest.raises(ConnectionError):
        await watcher.check()
    store.down = False
    clock.now = T0 + timedelta(minutes=5)
    store.stamp("A", 1, 0, T0 + timedelta(minutes=1))  # long before the overlap of what it reads now
    assert await watcher.check() is None
    assert heard == [None]


async def test_what_was_seen_is_forgotten_once_it_leaves_the_overlap(watcher, store, clock) -> None:
    for n in range(50):
        store.stamp(f"S{n}", 3, 0, T0 + timedelta(seconds=1))
    clock.now = T0 + timedelta(seconds=1)
    assert len(await watcher.check() or ()) == 50
    clock.now = T0 + timedelta(seconds=10)
    store.stamp("A", 2, 0, clock.now)
    assert await watcher.check() == {"A"}
    clock.now += timedelta(seconds=0.25)
    assert await watcher.check() == set()
    assert set(watcher._seen) == {"A"}
