"""What the watchers of the catalogue version and of the stock share: a poll every `interval` seconds that
survives a store that is away, and the moment each successful poll began, which tells the response cache how
fresh what it holds can be known to be."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")
CheckedListener = Callable[[float], None]  # the time.monotonic() at which a successful check began


class Poller(Generic[R]):
    what = "poll"  # named in the log line of a failed check

    def __init__(self, *, interval: float, log: logging.Logger) -> None:
        self._interval = interval
        self._log = log
        self._checked: list[CheckedListener] = []
        self._stopping = asyncio.Event()

    def on_checked(self, listener: CheckedListener) -> None:
        self._checked.append(listener)

    async def _poll(self) -> R:
        raise NotImplementedError

    def _lost_track(self) -> None:
        """A check failed: what the listeners were told may no longer hold."""

    async def check(self) -> R:
        """One poll; afterwards everything that moved before it began has been told."""
        began = time.monotonic()
        result = await self._poll()
        for listener in self._checked:
            listener(began)
        return result

    def stop(self) -> None:
        """Ask `run` to return after the poll in progress, so no query is cancelled halfway through."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until stopped (or cancelled); a store that is down is retried, never fatal, and logged once."""
        failing = False
        while not self._stopping.is_set():
            try:
                await self.check()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be briefly down; keep serving
                if not failing:
                    self._log.warning("%s check failed: %s", self.what, exc)
                failing = True
                self._lost_track()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
