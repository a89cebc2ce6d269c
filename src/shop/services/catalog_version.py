"""Watches the catalogue version so every worker forgets stale catalogue data within a second."""

from __future__ import annotations

import asyncio
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

    async def run(self) -> None:
        """Poll until cancelled; a store that is down is retried, never fatal."""
        failing = False
        while True:
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
            await asyncio.sleep(self._interval)
