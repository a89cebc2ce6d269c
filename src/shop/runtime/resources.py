"""How much CPU and memory each serving process uses, as the autoscaler samples it once a tick."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import psutil


@dataclass(frozen=True, slots=True)
class ProcessSample:
    cpu_percent: float | None  # of one core since the previous sample; None on a process's first sample
    rss_mb: float


class ResourceSampler(Protocol):
    def sample(self, pids: Iterable[int]) -> dict[int, ProcessSample]:
        """The processes among `pids` still running; any process not asked about is forgotten."""
        ...


class PsutilSampler:
    """CPU and resident memory per process; keeps each `psutil.Process`, whose CPU figure is since its last call."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, pids: Iterable[int]) -> dict[int, ProcessSample]:
        wanted = set(pids)
        for gone in self._processes.keys() - wanted:
            del self._processes[gone]
        samples: dict[int, ProcessSample] = {}
        for pid in wanted:
            process = self._processes.get(pid)
            first = process is None or not process.is_running()  # not running: the pid was reused
            try:
                if first:
                    process = self._processes[pid] = psutil.Process(pid)
                assert process is not None
                with process.oneshot():
                    cpu = process.cpu_percent(interval=None)
                    rss = process.memory_info().rss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._processes.pop(pid, None)
                continue
            samples[pid] = ProcessSample(cpu_percent=None if first else cpu, rss_mb=rss)
        return samples
