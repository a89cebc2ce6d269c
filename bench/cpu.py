"""Where the machine's CPU went during a measured run: the server, PostgreSQL, wrk, and everything else.

On a shared machine a run is only as good as its quiet: `other` is the share of the machine's CPU that
processes outside the benchmark used meanwhile (other work, or processes that exited during the run).
`interrupts` is kernel time in irq/softirq, mostly the loopback traffic of the benchmark itself (the kernel
may also count part of it in the processes' own time, so the shares can add up to a little over 1).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _machine() -> tuple[float, float, float, float]:
    """CPU seconds since boot over every core: busy, interrupts (where loopback traffic is mostly handled),
    stolen by the hypervisor, and in all."""
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
    fields = [int(x) for x in (_PROC / "stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(fields)
    busy = total - fields[3] - fields[4]
    return busy / _TICK, (fields[5] + fields[6]) / _TICK, fields[7] / _TICK, total / _TICK


def _by_group(server_pgid: int | None) -> dict[str, float]:
    """CPU seconds so far of the server's process group and of PostgreSQL (with its exited backends)."""
    groups = {"server": 0.0, "postgres": 0.0}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        pgrp, utime, stime, cutime, cstime = int(rest[2]), *(int(rest[i]) for i in (11, 12, 13, 14))
        if server_pgid is not None and pgrp == server_pgid:
            groups["server"] += (utime + stime) / _TICK
        elif comm == "postgres" or comm.startswith("postgres:"):
            # the postmaster's reaped children are its backends that ended, e.g. by pool churn
            groups["postgres"] += (utime + stime + cutime + cstime) / _TICK
    return groups


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(slots=True)
class CpuMeter:
    """Start before a wrk run and stop after it; wrk must be the only child reaped meanwhile."""

    server_pgid: int | None
    _start: tuple[tuple[float, float, float, float], dict[str, float], float, float, float] | None = None

    def start(self) -> None:
        self._start = (_machine(), _by_group(self.server_pgid), _children(), _self(), time.monotonic())

    def stop(self, requests: int) -> dict[str, Any]:
        assert self._start is not None, "start() first"
        machine0, groups0, children0, self0, wall0 = self._start
        busy_s, interrupts, steal, capacity = (b - a for a, b in zip(machine0, _machine(), strict=True))
        groups = _by_group(self.server_pgid)
        used = {name: max(0.0, groups[name] - groups0[name]) for name in groups}
        used["wrk"] = _children() - children0
        used["harness"] = _self() - self0
        used["interrupts"] = interrupts
        used["steal"] = steal
        used["other"] = max(0.0, busy_s - sum(used.values()))
        return {
            "wall_s": round(time.monotonic() - wall0, 2),
            "machine_busy_share": round(busy_s / capacity, 3) if capacity else None,
            "seconds": {name: round(value, 2) for name, value in used.items()},
            "share": {name: round(value / capacity, 3) if capacity else None for name, value in used.items()},
            "ms_per_request": {name: round(1000 * used[name] / requests, 3) if requests else None
                               for name in ("server", "postgres", "wrk")},
        }
