from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from shop.services.catalog_version import CatalogVersionWatcher

TICK = 0.001


async def _until(condition: Callable[[], bool], *, within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        # polling is deliberate: the conditions are counters on a fake, nothing that could set an Event
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(TICK)


@pytest.fixture
def heard() -> list[int]:
    return []


@pytest.fixture
def watcher(catalog, heard: list[int]) -> CatalogVersionWatcher:
    watcher = CatalogVersionWatcher(catalog, interval=TICK)
    watcher.subscribe(heard.append)
    return watcher


@pytest.fixture
async def running(watcher: CatalogVersionWatcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(watcher.run())
    yield task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await task


async def test_the_first_check_tells_the_listeners_the_version(watcher, catalog, heard) -> None:
    catalog.current_version = 7
    assert await watcher.check() is True
    assert heard == [7]
    assert watcher.version == 7


async def test_a_check_that_finds_the_same_version_tells_nobody(watcher, heard) -> None:
    await watcher.check()
    assert await watcher.check() is False
    assert heard == [1]


async def test_a_check_after_the_version_moved_tells_every_listener(watcher, catalog, heard) -> None:
    also: list[int] = []
    watcher.subscribe(also.append)
    await watcher.check()
    catalog.current_version = 2
    assert await watcher.check() is True
    assert heard == [1, 2]
    assert also == [1, 2]


async def test_a_failed_check_raises_and_keeps_the_known_version(watcher, catalog, heard) -> None:
    await watcher.check()
    catalog.version_error = ConnectionError("posts store down")
    with pytest.raises(ConnectionError):
        await watcher.check()
    assert watcher.version == 1
    assert heard == [1]


async def test_running_tells_listeners_each_time_the_version_moves(running, catalog, heard) -> None:
    await _until(lambda: heard == [1])
    catalog.current_version = 2
    await _until(lambda: heard == [1, 2])
    reads = catalog.version_reads
    await _until(lambda: catalog.version_reads >= reads + 3)
    assert heard == [1, 2]


async def test_running_survives_a_failing_store_and_tells_listeners_again_once_it_answers(
        running, watcher, catalog, heard) -> None:
    await _until(lambda: heard == [1])
    catalog.version_error = ConnectionError("posts store down")
    reads = catalog.version_reads
    await _until(lambda: catalog.version_reads >= reads + 3)  # still polling through the failures
    assert not running.done()
    assert watcher.version is None

    catalog.version_error = None  # back, with the same version: what was cached may still be stale

    await _until(lambda: heard == [1, 1])
    assert watcher.version == 1


async def test_a_failing_store_is_logged_once_per_outage(running, catalog, heard, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="shop.services.catalog_version")
    await _until(lambda: heard == [1])
    for outage in (1, 2):
        catalog.version_error = ConnectionError(f"outage {outage}")
        reads = catalog.version_reads
        await _until(lambda reads=reads: catalog.version_reads >= reads + 5)
        catalog.version_error = None
        await _until(lambda outage=outage: len(heard) == 1 + outage)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["catalog version check failed: outage 1", "catalog version check failed: outage 2"]


async def test_running_stops_when_cancelled(watcher) -> None:
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(TICK * 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await task
    assert task.cancelled()
