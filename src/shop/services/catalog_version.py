"""Watches the catalogue version so every worker forgets stale catalogue data within a second."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shop.services.polling import Poller
from shop.services.ports import CatalogReader

log = logging.getLogger(__name__)

Listener = Callable[[int], None]


class CatalogVersionWatcher(Poller[bool]):
    what = "catalog version"

    def __init__(self, reader: CatalogReader, *, interval: float = 0.25) -> None:
        super().__init__(interval=interval, log=log)
        self._reader = reader
        self._listeners: list[Listener] = []
        self.version: int | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def _poll(self) -> bool:
        """Read the version once; tell the listeners when it moved. True if it moved."""
        current = await self._reader.version()
        if current == self.version:
            return False
        self.version = current
        for listener in self._listeners:
            listener(current)
        return True

    def _lost_track(self) -> None:
        self.version = None  # when it answers again, treat everything as changed
