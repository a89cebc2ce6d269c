"""Watches the catalogue version so every worker forgets stale catalogue data within a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from shop.services.ports import CatalogReader

log = logging.getLogger(__name__)

Listener = Callable[[int], None]


class CatalogVersionWatcher:
    def __init__(self, reader: CatalogReader, *, interval: float = 0.5) -> None:
        self._reader = reader
        self._interval = interval
        self._listeners: list[Listener] = []
        self.version: int | None = None
        self._stopping = asyncio.Event()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def check(self) -> bool:
        """Read the version once; tell the listeners when it moved. True if it moved."""
        current = await self._reader.version()
        if current == self.version:
            return False
        self.version = current
        for listener in self._listeners:
            listener(current)
        return True

    def stop(self) -> None:
        """Ask `run` to return after the poll in progress, so no query is cancelled halfway through."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll until stopped (or cancelled); a store that is down is retried, never fatal."""
        failing = False
        while not self._stopping.is_set():
            try:
                await self.check()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be briefly down; keep serving
                if not failing:
                    log.warning("catalog version check failed: %s", exc)
                failing = True
                self.version = None  # when it answers again, treat everything as changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
