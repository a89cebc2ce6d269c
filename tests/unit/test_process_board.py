"""The file-backed process board: live workers only, pools round-trip, decisions newest first, requests taken once."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shop.infrastructure.process_files import FileProcessBoard
from shop.services.process_status import PoolState, ScalingDecision, SizeRequest, WorkerBeat


def _beat(pid: int, *, age: float = 0.0, pool: str = "catalog") -> WorkerBeat:
    now = datetime.now(UTC)
    return WorkerBeat(pid=pid, pool=pool, started_at=now - timedelta(minutes=5),
                      updated_at=now - timedelta(seconds=age), requests=42, in_flight=1)


def test_only_live_workers_are_listed_and_stale_beats_are_cleared(tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path)
    board.beat(_beat(os.getpid()))
    board.beat(_beat(os.getppid(), age=60))  # alive, but silent for a minute
    board.beat(_beat(2**22 + 12345))  # no such process
    assert [b.pid for b in board.workers()] == [os.getpid()]
    assert len(list((tmp_path / "workers").glob("*.json"))) == 1
    board.forget_worker(os.getpid())
    assert board.workers() == []


def test_pools_round_trip_and_decisions_come_newest_first(tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path)
    assert board.pools() == [] and board.decisions() == []
    now = datetime.now(UTC)
    pool = PoolState(name="catalog", min_workers=1, max_workers=4, workers=2, master_pid=123, updated_at=now,
                     prefixes=("/", "/api/v1/products"), backup="127.0.0.1:9001")
    board.publish_pools([pool])
    assert board.pools() == [pool]
    for n in range(3):
        board.record_decision(ScalingDecision(at=now + timedelta(seconds=n), pool="catalog", action="up",
                                              from_workers=n + 1, to_workers=n + 2, reason=f"busy {n}"))
    assert [d.reason for d in board.decisions(limit=2)] == ["busy 2", "busy 1"]


def test_a_size_request_is_taken_once(tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path)
    now = datetime.now(UTC)
    board.request_size(SizeRequest(pool="checkout", workers=3, requested_by="ada@example.com", at=now))
    board.request_size(SizeRequest(pool="checkout", workers=None, requested_by="ada@example.com",
                                   at=now + timedelta(seconds=1)))
    taken = board.take_size_requests()
    assert [r.workers for r in taken] == [3, None]
    assert board.take_size_requests() == []
