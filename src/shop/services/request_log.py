"""The request log: one record per HTTP request, kept in the main store and in a file per day.

A web worker hands each record to `RequestLogWriter.submit`, which only appends it to a bounded in-memory queue:
nothing is formatted, written or awaited on the request's path. The writer's task (started with the app) takes
the queue in batches: a batch goes to the day's file at once and to the store in one INSERT. While the store is
down the records wait in the queue (the file has them already) and the writer retries with back-off. When the
queue is full a new record is dropped and counted, and the count is logged once per interval — never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any, Protocol

from shop.services.clock import Clock, utc_now

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RequestRecord:
    """One request as logged; secrets in `query` and `details` are already redacted."""

    id: str
    at: datetime  # UTC, when the request arrived
    method: str
    path: str
    route: str | None  # the route template, e.g. /api/v1/products/{slug}; None when no route matched
    query: str | None
    status: int
    duration_ms: float
    bytes_in: int
    bytes_out: int
    client_ip: str | None
    user_agent: str | None
    user_id: str | None
    worker_pid: int
    pool: str
    details: dict[str, Any]  # request headers, response headers, body fields


class RequestLogStore(Protocol):
    """Where request records are kept for querying (the main store's `request_log` table)."""

    async def add(self, records: Sequence[RequestRecord]) -> int:
        """Store the records in one go; returns how many were refused as bad rows (e.g. an id already stored).
        Raises when the store cannot be reached: the caller keeps the records and tries again later."""
        ...

    async def purge(self, *, before: datetime) -> int:
        """Forget the records of requests that arrived before `before`; returns how many went."""
        ...


class RequestLogFile(Protocol):
    """The human-readable copy: one file per UTC day, appended to by every worker."""

    def append(self, records: Sequence[RequestRecord]) -> None: ...

    def purge(self, *, before: date) -> int:
        """Delete the files of days before `before`; returns how many."""
        ...


# records formatted and written between two yields to the event loop: no request waits behind a whole interval
# (docs/decisions/2026-12-06-request-log-file-slices.md)
FILE_SLICE = 200


class RequestLogWriter:
    """Batches submitted records to the file and the store, off the request path; see the module's docstring."""

    def __init__(self, *, store: RequestLogStore, file: RequestLogFile | None, capacity: int,
                 batch_size: int = 500, interval: float = 0.5, max_backoff: float = 30.0,
                 report_every: float = 10.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = interval
        self.max_backoff = max_backoff
        self.report_every = report_every
        self._store = store
        self._file = file
        self._monotonic = monotonic
        self._queue: deque[RequestRecord] = deque()
        self._filed = 0  # how many records at the front of the queue are in the file already
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_try = 0.0
        self._failures = 0
        self._reported_drops = 0
        self._last_report = monotonic()
        self.dropped = 0  # queue full
        self.rejected = 0  # refused by the store as bad rows
        self.stored = 0

    @property
    def waiting(self) -> int:
        """Records not yet in the store."""
        return len(self._queue)

    def submit(self, record: RequestRecord) -> bool:
        """Queue one record; False (and counted) when the queue is full. Never blocks, never raises."""
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return False
        self._queue.append(record)
        if len(self._queue) - self._filed >= self.batch_size:
            self._wake.set()
        return True

    def stop(self) -> None:
        """Ask `run` to write what is queued and return."""
        self._stopping = True
        self._wake.set()

    async def run(self, *, flush_within: float = 5.0) -> None:
        """Write batches every `interval` (sooner when a batch is full) until `stop`; then flush, bounded.

        The file and the store are written by two loops, so a store that hangs does not hold up the file."""
        filing = asyncio.create_task(self._loop(self._file_due), name="request-log-file")
        try:
            await self._loop(self.store_due)
        finally:
            self.stop()
            await filing
        await self.flush(within=flush_within)

    async def _loop(self, step: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await step()
            except Exception:  # a bug here must not end request logging for the worker's lifetime
                log.exception("request log: writing a batch failed")

    async def _file_due(self) -> None:
        await self._file_in_slices()
        self._report_drops()

    async def _file_in_slices(self) -> None:
        """File what is queued a slice at a time, letting requests run in between: under heavy traffic one
        interval's records, formatted at once, would hold the worker's event loop for tens of milliseconds."""
        while True:
            self._append_to_file(limit=FILE_SLICE)
            if self._file is None or self._filed >= len(self._queue):
                return
            await asyncio.sleep(0)

    async def store_due(self) -> None:
        """Records go to the file, then to the store a batch at a time, unless it is backing off."""
        await self._file_in_slices()  # so a record waits one interval at most, whichever loop wakes first
        if self._monotonic() < self._next_try:
            return
        while self._filed:
            batch = list(islice(self._queue, 0, min(self._filed, self.batch_size)))
            try:
                rejected = await self._store.add(batch)
            except Exception as exc:
                self._failed(exc)
                return
            for _ in batch:
                self._queue.popleft()
            self._filed -= len(batch)
            self.stored += len(batch) - rejected
            if rejected:
                self.rejected += rejected
                log.warning("request log: the store refused %d of %d records (an id already stored)",
                            rejected, len(batch))
            if self._failures:
                log.warning("request log: the store is back; %d records still wait", len(self._queue))
                self._failures = 0

    async def flush(self, *, within: float) -> None:
        """Everything queued to the file, and to the store if it answers within `within` seconds."""
        self._append_to_file()
        self._report_drops(force=True)
        self._next_try = 0.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.store_due()
        if self._queue:
            log.warning("request log: %d records could not be stored before shutdown (they are in the file)",
                        len(self._queue))

    def _append_to_file(self, *, limit: int | None = None) -> None:
        if self._file is None or self._filed >= len(self._queue):
            self._filed = len(self._queue)
            return
        fresh = list(islice(self._queue, self._filed, None if limit is None else self._filed + limit))
        try:
            self._file.append(fresh)
        except OSError as exc:  # a full disk must not stop the store getting them
            log.warning("request log: could not write %d records to the file (%s)", len(fresh), exc)
        self._filed += len(fresh)

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        pause = min(self.max_backoff, self.interval * 2 ** min(self._failures, 16))
        self._next_try = self._monotonic() + pause
        if self._failures == 1 or pause >= self.max_backoff:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            log.warning("request log: the store did not take a batch (%s%s); %d records wait, next try in %.1f s",
                        type(exc).__name__, f": {first}" if first else "", len(self._queue), pause)

    def _report_drops(self, *, force: bool = False) -> None:
        now = self._monotonic()
        fresh = self.dropped - self._reported_drops
        if fresh and (force or now - self._last_report >= self.report_every):
            log.warning("request log: %d records dropped in the last %.0f s, the queue being full (%d); "
                        "%d dropped since start", fresh, now - self._last_report, self.capacity, self.dropped)
            self._reported_drops = self.dropped
            self._last_report = now


@dataclass(slots=True)
class RequestLogRetention:
    """Forgets requests older than `keep`, in the store and in the files; run by `shop worker`'s housekeeping."""

    store: RequestLogStore
    file: RequestLogFile | None
    keep: timedelta
    clock: Clock = utc_now

    async def purge(self) -> int:
        cutoff = self.clock() - self.keep
        gone = await self.store.purge(before=cutoff)
        if self.file is not None:
            gone += self.file.purge(before=cutoff.date())
        return gone
