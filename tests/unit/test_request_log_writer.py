"""The request log's writer with fakes: batches, a store that is down, a full queue, shutdown; and the gunicorn
hook that clears the metric files of dead processes."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shop.runtime.gunicorn_conf import forget_dead_processes
from shop.services.request_log import FILE_SLICE, RequestLogRetention, RequestLogWriter, RequestRecord

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(n: int, *, at: datetime = AT) -> RequestRecord:
    return RequestRecord(id=f"req-{n}", at=at, method="GET", path="/p", route="/p", query=None, status=200,
                         duration_ms=1.0, bytes_in=0, bytes_out=2, client_ip="127.0.0.1", user_agent=None,
                         user_id=None, worker_pid=1, pool="main", details={})


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, RequestRecord] = {}
        self.batches: list[int] = []
        self.down = False

    async def add(self, records: Sequence[RequestRecord]) -> int:
        if self.down:
            raise ConnectionRefusedError("main store: connection refused")
        self.batches.append(len(records))
        rejected = 0
        for r in records:
            if r.id in self.rows:
                rejected += 1
            else:
                self.rows[r.id] = r
        return rejected

    async def purge(self, *, before: datetime) -> int:
        old = [k for k, r in self.rows.items() if r.at < before]
        for key in old:
            del self.rows[key]
        return len(old)


class FakeFile:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.days: set[date] = set()

    def append(self, records: Sequence[RequestRecord]) -> None:
        self.lines.extend(r.id for r in records)

    def purge(self, *, before: date) -> int:
        gone = {d for d in self.days if d < before}
        self.days -= gone
        return len(gone)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def writer(store: FakeStore, file: FakeFile, clock: Clock, **options: float) -> RequestLogWriter:
    settings = {"capacity": 100, "batch_size": 10, "interval": 0.5, "report_every": 10.0, **options}
    return RequestLogWriter(store=store, file=file, monotonic=clock,
                            capacity=int(settings.pop("capacity")), batch_size=int(settings.pop("batch_size")),
                            **settings)


async def test_records_go_to_the_file_and_the_store_in_batches() -> None:
    store, file, clock = FakeStore(), FakeFile(), Clock()
    log = writer(store, file, clock)
    for n in range(25):
        assert log.submit(record(n))
    await log._file_due()
    await log.store_due()
    assert file.lines == [f"req-{n}" for n in range(25)]
    assert store.batches == [10, 10, 5] and len(store.rows) == 25 and log.waiting == 0 and log.stored == 25


async def test_a_big_backlog_is_filed_in_slices_so_requests_run_in_between() -> None:
    store, file, clock = FakeStore(), FakeFile(), Clock()
    log = writer(store, file, clock, capacity=5000, batch_size=500)
    total = FILE_SLICE * 5 + 7
    for n in range(total):
        assert log.submit(record(n))
    slices: list[int] = []

    class SlicedFile(FakeFile):
        def append(self, records: Sequence[RequestRecord]) -> None:
            slices.append(len(records))
            super().append(records)

    log._file = sliced = SlicedFile()
    ran = 0

    async def a_request() -> None:
        nonlocal ran
        while len(sliced.lines) < total:
            ran += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(a_request())
    await log._file_due()
    await other
    assert sliced.lines == [f"req-{n}" for n in range(total)]  # all of them, in order
    assert slices == [FILE_SLICE] * 5 + [7]
    assert ran >= 5  # the event loop ran other work between the slices


async def test_while_the_store_is_down_records_wait_and_the_file_gets_them_at_once(
        caplog: pytest.LogCaptureFixture) -> None:
    store, file, clock = FakeStore(), FakeFile(), Clock()
    log = writer(store, file, clock)
    store.down = True
    for n in range(3):
        log.submit(record(n))
    with caplog.at_level(logging.WARNING, "shop.services.request_log"):
        await log._file_due()
        await log.store_due()
    assert file.lines == ["req-0", "req-1", "req-2"] and store.rows == {} and log.waiting == 3
    assert "connection refused" in caplog.text and "3 records wait" in caplog.text
    store.down = False
    log.submit(record(3))
    await log._file_due()
    await log.store_due()  # backing off: not yet
    assert store.rows == {}
    clock.now += 1.1
    await log.store_due()
    assert sorted(store.rows) == ["req-0", "req-1", "req-2", "req-3"] and log.waiting == 0
    assert file.lines == ["req-0", "req-1", "req-2", "req-3"]  # each line once


async def test_a_full_queue_drops_counts_and_reports_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    store, file, clock = FakeStore(), FakeFile(), Clock()
    log = writer(store, file, clock, capacity=3)
    store.down = True
    accepted = [log.submit(record(n)) for n in range(8)]
    assert accepted == [True] * 3 + [False] * 5 and log.dropped == 5
    with caplog.at_level(logging.WARNING, "shop.services.request_log"):
        await log._file_due()
        assert "dropped" not in caplog.text  # not yet a whole interval since the last report
        clock.now += 10
        await log._file_due()
        await log._file_due()
    reports = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(reports) == 1 and reports[0].startswith("request log: 5 records dropped")


async def test_rows_the_store_refuses_are_counted_not_retried_forever() -> None:
    store, file, clock = FakeStore(), FakeFile(), Clock()
    log = writer(store, file, clock)
    log.submit(record(1))
    log.submit(record(1))  # the same id twice: a proxy's id repeated
    await log._file_due()
    await log.store_due()
    assert log.waiting == 0 and log.rejected == 1 and log.stored == 1


async def test_run_writes_within_an_interval_and_flushes_on_stop() -> None:
    store, file = FakeStore(), FakeFile()
    log = RequestLogWriter(store=store, file=file, capacity=100, interval=0.05)
    task = asyncio.create_task(log.run())
    log.submit(record(1))
    await asyncio.sleep(0.2)
    assert "req-1" in store.rows
    log.submit(record(2))
    log.stop()
    await asyncio.wait_for(task, 2)
    assert "req-2" in store.rows and file.lines == ["req-1", "req-2"]


async def test_stopping_while_the_store_is_down_is_bounded_and_keeps_the_file(
        caplog: pytest.LogCaptureFixture) -> None:
    store, file = FakeStore(), FakeFile()
    store.down = True
    log = RequestLogWriter(store=store, file=file, capacity=100, interval=0.05)
    task = asyncio.create_task(log.run(flush_within=0.5))
    log.submit(record(1))
    log.stop()
    with caplog.at_level(logging.WARNING, "shop.services.request_log"):
        await asyncio.wait_for(task, 2)
    assert file.lines == ["req-1"] and "1 records could not be stored before shutdown" in caplog.text


async def test_retention_forgets_old_rows_and_files() -> None:
    store, file = FakeStore(), FakeFile()
    now = AT + timedelta(days=40)
    store.rows = {"old": record(1, at=AT), "new": record(2, at=now - timedelta(days=1))}
    file.days = {AT.date(), now.date()}
    gone = await RequestLogRetention(store=store, file=file, keep=timedelta(days=30), clock=lambda: now).purge()
    assert gone == 2 and list(store.rows) == ["new"] and file.days == {now.date()}


def test_gunicorn_start_removes_only_the_metric_files_of_processes_that_are_gone(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    names = [f"counter_{dead}.db", f"histogram_{dead}.db", f"counter_{os.getpid()}.db",
             f"gauge_livesum_{os.getpid()}.db", "unrelated.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert forget_dead_processes(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
