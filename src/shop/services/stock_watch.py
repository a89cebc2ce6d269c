"""Watches the main store's stock so every worker forgets what it cached about a SKU within a bound of its change.

Every stock change stamps its row (`updated_at`). Each poll reads the rows stamped after the newest stamp seen so
far, less an overlap: a transaction stamps its rows before it commits, so a row can become visible a little after a
newer one did. A row counts as a change when its level or stamp differs from what this worker last saw of it, so
each change is reported once however many polls read it again within the overlap. The bound: a change is reported
within one poll interval (plus the poll's own time) of its commit, provided the transaction committed within the
overlap of stamping its rows and the shop's hosts' clocks agree within it (NTP keeps them within milliseconds).
After a failed poll the listeners are told that anything may have changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
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
        self._seen: dict[str, tuple[int, int, datetime]] = {}  # sku -> (on hand, reserved, stamp) last read
        self._newest: datetime | None = None
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
        try:
            if self._newest is None:
                self._newest = await self._changes.newest_change()
            now = self._clock()
            # a writer's clock ahead of ours must not push the window past rows stamped by the others
            high = min(self._newest, now) if self._newest is not None else now
            rows = await self._changes.changed_since(high - self._overlap)
        except BaseException:
            self._lost = True
            self._newest = None
            raise
        moved: set[str] = set()
        for level, stamp in rows:
            seen = (level.on_hand, level.reserved, stamp)
            if self._seen.get(level.sku) != seen:
                self._seen[level.sku] = seen
                moved.add(level.sku)
            if self._newest is None or stamp > self._newest:
                self._newest = stamp
        if self._newest is not None:
            oldest = min(self._newest, now) - self._overlap
            self._seen = {sku: seen for sku, seen in self._seen.items() if seen[2] > oldest}
        if self._lost:
            self._lost = False
            self._tell(None)
            return None
        if moved:
            self._tell(moved)
        return moved
