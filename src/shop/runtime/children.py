"""The processes `shop serve` keeps running: each in its own session, each stopped when `shop serve` dies.

Its own session: a terminal's Ctrl-C (or a SIGTERM to `shop serve`'s process group) reaches `shop serve` alone,
which forwards one SIGTERM; a child hit by both would stop twice over. When a child's main process dies, what it
leaves behind (a gunicorn master's workers) is still one group to signal.
Stopped with `shop serve`: on Linux every child gets SIGTERM from the kernel when `shop serve` dies, however it
died (SIGKILL, OOM), so nothing it started serves on — or holds a port — forever.
A child that keeps dying soon after its start is restarted after 1, 2, 4 … up to 30 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

QUICK_DEATH_S = 10.0  # a child dying sooner than this after its start is crashing: restarts back off
MAX_BACKOFF_S = 30.0
STOP_TIMEOUT_S = 30.0  # gunicorn's graceful_timeout is 20 s; the background worker ends its batch
_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, found before any fork: a child must not load a library between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,  # type: ignore[attr-defined]
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int  # type: ignore[attr-defined]
    return prctl


def _stop_with_parent() -> Callable[[], None] | None:
    """What a child runs between fork and exec so the kernel sends it SIGTERM when this process dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def tie() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took hold
            os.kill(os.getpid(), signal.SIGTERM)

    return tie


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start a child in its own session, tied to this process's life; its output goes where ours does."""
    return subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,  # noqa: S603
                            start_new_session=True, preexec_fn=_stop_with_parent())


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(group: int, signum: signal.Signals) -> bool:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
        return True
    return False


class Child:
    """One supervised child process (and the process groups its dead predecessors left, while they drain).

    `bury()` after it died, `due()` says when to start the next; `stop()` and `wait_stopped()` end it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.quick_deaths = 0
        self.restart_at = 0.0
        self.draining: list[tuple[int, float]] = []  # process groups of dead children, and when to kill them

    def launch(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = spawn(argv, env)
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive() and self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def died(self) -> bool:
        """Started, and exited since (not yet buried)."""
        return self.process is not None and self.process.poll() is not None

    def send(self, signum: signal.Signals) -> bool:
        pid = self.pid
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
            return True
        return False

    def bury(self, *, now: float | None = None) -> float:
        """It died: what it left in its group is asked to finish (SIGTERM); returns the delay before a restart."""
        assert self.process is not None
        moment = time.monotonic() if now is None else now
        group = self.process.pid
        if signal_group(group, signal.SIGTERM):
            self.draining.append((group, moment + STOP_TIMEOUT_S))
        lived = moment - self.started_at
        self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        delay = min(MAX_BACKOFF_S, 2.0 ** (self.quick_deaths - 1)) if self.quick_deaths else 0.0
        self.restart_at = moment + delay
        self.process = None
        return delay

    def due(self, now: float) -> bool:
        """Buried (or never started), and its back-off is over."""
        return self.process is None and now >= self.restart_at

    def kill_stragglers(self, *, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        left = []
        for group, deadline in self.draining:
            if not group_alive(group):
                continue
            if moment >= deadline:
                signal_group(group, signal.SIGKILL)
                continue
            left.append((group, deadline))
        self.draining = left

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> int | None:
        """Wait for it until `deadline` (monotonic); then SIGKILL to whatever is left of its group. Its exit code."""
        code = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            signal_group(self.process.pid, signal.SIGKILL)  # whatever outlived the graceful stop
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(timeout=5)
        for group, _ in self.draining:
            signal_group(group, signal.SIGKILL)
        self.draining = []
        return code
