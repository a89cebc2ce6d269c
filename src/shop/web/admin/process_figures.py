"""CPU and memory of the workers on the process board, measured with psutil on this machine.

A process's CPU share is measured between two looks at it; the panel keeps each `psutil.Process` it has seen, so
a poll reports the share since the previous poll, and a worker seen for the first time is looked at twice, a
moment apart, rather than shown as 0 %.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from shop.services.process_status import WorkerBeat

FIRST_LOOK = 0.2  # seconds between the two looks at a newly seen worker


@dataclass(frozen=True, slots=True)
class WorkerFigures:
    pid: int
    pool: str
    requests: int
    in_flight: int
    started_at: datetime
    uptime_seconds: float
    cpu_percent: float | None  # None: the process could not be read (gone, or another user's)
    rss_bytes: int | None
    beat_at: datetime


class ProcessGauge:
    def __init__(self) -> None:
        self._seen: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> tuple[psutil.Process | None, bool]:
        known = self._seen.get(pid)
        if known is not None and known.is_running():
            return known, False
        try:
            process = self._seen[pid] = psutil.Process(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self._seen.pop(pid, None)
            return None, False
        return process, True

    async def measure(self, beats: list[WorkerBeat]) -> list[WorkerFigures]:
        for gone in self._seen.keys() - {b.pid for b in beats}:
            del self._seen[gone]
        looked = {b.pid: self._process(b.pid) for b in beats}
        new = [p for p, first in looked.values() if p is not None and first]
        for process in new:
            try:
                process.cpu_percent(interval=None)  # the first look only starts the clock
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if new:
            await asyncio.sleep(FIRST_LOOK)
        now = datetime.now(UTC)
        figures = []
        for beat in sorted(beats, key=lambda b: (b.pool, b.pid)):
            process, _ = looked[beat.pid]
            cpu: float | None = None
            rss: int | None = None
            if process is not None:
                try:
                    with process.oneshot():
                        cpu = process.cpu_percent(interval=None)
                        rss = int(process.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    cpu = rss = None
            figures.append(WorkerFigures(
                pid=beat.pid, pool=beat.pool, requests=beat.requests, in_flight=beat.in_flight,
                started_at=beat.started_at, uptime_seconds=max(0.0, (now - beat.started_at).total_seconds()),
                cpu_percent=cpu, rss_bytes=rss, beat_at=beat.updated_at))
        return figures


def worker_json(figures: list[WorkerFigures]) -> list[dict[str, object]]:
    return [{"pid": f.pid, "pool": f.pool, "requests": f.requests, "in_flight": f.in_flight,
             "started_at": f.started_at.isoformat(), "uptime_seconds": round(f.uptime_seconds, 1),
             "cpu_percent": None if f.cpu_percent is None else round(f.cpu_percent, 1),
             "rss_mb": None if f.rss_bytes is None else round(f.rss_bytes / 2**20, 1),
             "beat_at": f.beat_at.isoformat()} for f in figures]
