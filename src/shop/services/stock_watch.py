"""Watches the main store's stock so every worker forgets what it cached about a SKU within a bound of its change.

Every stock change stamps its row (`updated_at`). Each poll reads the rows stamped since the previous poll began,
less an overlap: a transaction stamps its rows before it commits, so a row stamped before the previous poll may
only have become visible after it. A row counts as a change when its level or stamp differs from what this worker
last saw of it, so each change is reported once however many polls read it again within the overlap. The bound: a
change is reported within one poll interval (plus the poll's own time) of its commit, provided the transaction
committed within the overlap of stamping its rows and the writer's clock is not behind this worker's by more than
what is left of it (NTP keeps hosts within milliseconds). A quiet shop's polls read nothing, however many rows a
bulk load stamped once. After a failed poll the listeners are told that anything may have changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Set
from datetime import datetime, timedelta

from shop.services.clock import Clock, utc_now
from shop.services.polling import Poller
from shop.services.ports import StockChanges

log = logging.getLogger(__name__)

# the SKUs whose stock moved, or None: anything may have changed (the watcher lost track for a while)
StockListener = Callable[[Set[str] | None], None]


class StockWatcher(Poller[Set[str] | None]):
    what = "stock"

    def __init__(self, changes: StockChanges, *, interval: float = 0.25,
                 overlap: timedelta = timedelta(seconds=3), clock: Clock = utc_now) -> None:
        super().__init__(interval=interval, log=log)
        self._changes = changes
        self._overlap = overlap
        self._clock = clock
        self._listeners: list[StockListener] = []
        self._seen: dict[str, Hashable] = {}  # sku -> its row's signature, for every row the last poll read
        self._last_poll: datetime | None = None  # when the last good poll began, by this worker's clock
        self._lost = True  # nothing read yet: whatever was cached before may be out of date

    def subscribe(self, listener: StockListener) -> None:
        self._listeners.append(listener)

    def _tell(self, skus: Set[str] | None) -> None:
        for listener in self._listeners:
            listener(skus)

    async def _poll(self) -> Set[str] | None:
        """Read what moved since the last check and tell the listeners; returns what it told them. If the read
        fails, the next successful one tells them that anything may have changed (moves may slip past the
        overlap meanwhile)."""
        now = self._clock()
        since = (self._last_poll or now) - self._overlap
        try:
            rows = await self._changes.changed_since(since)
        except BaseException:
            self._lost = True
            self._last_poll = None
            raise
        self._last_poll = now
        before, self._seen = self._seen, dict(rows)
        # the window only moves on: a row this poll did not read is not read again unless it changes
        moved = {sku for sku, signature in self._seen.items() if before.get(sku) != signature}
        if self._lost:
            self._lost = False
            self._tell(None)
            return None
        if moved:
            self._tell(moved)
        return moved
