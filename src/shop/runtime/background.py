"""The background worker (`shop worker`) as a child of `shop serve`, in either mode.

Without it nothing delivers the outbox (no e-mail leaves), unpaid reservations never expire, in-stock flags go
stale and stray refunds wait. `shop serve` starts it beside the web workers unless told `--no-worker` (where a
process manager runs `shop worker` apart), restarts it when it dies (backing off while it keeps dying), restarts
it on SIGHUP so it runs the new code, and stops it with SIGTERM, which lets it finish the batch in hand.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping

from shop.runtime.children import Child

log = logging.getLogger("shop.serve")


def worker_argv() -> list[str]:
    """`shop worker` with this interpreter, so it runs the same code as the web workers."""
    return [sys.executable, "-m", "shop", "worker"]


class BackgroundWorker(Child):
    def __init__(self, env: Mapping[str, str] | None = None, argv: list[str] | None = None) -> None:
        super().__init__("background worker")
        self._env = dict(os.environ if env is None else env)
        self._argv = worker_argv() if argv is None else argv
        self._restarting = False  # asked to stop for a reload: start the next at once, not as a crash

    def start(self) -> None:
        self.launch(self._argv, self._env)
        self._restarting = False

    def tick(self, now: float | None = None) -> None:
        """Restart it if it died (after its back-off), and clear what a dead one left."""
        moment = time.monotonic() if now is None else now
        if self.died():
            assert self.process is not None
            pid, code = self.process.pid, self.process.returncode
            if self._restarting:
                deaths = self.quick_deaths
                self.bury(now=moment)
                self.quick_deaths, self.restart_at = deaths, moment
                log.info("background worker %d stopped for the reload; starting a new one", pid)
            else:
                delay = self.bury(now=moment)
                log.warning("background worker %d exited with %s; starting a new one%s", pid, code,
                            f" in {delay:.0f} s" if delay else "")
        if self.due(moment):
            self.start()
        self.kill_stragglers(now=moment)

    def reload(self) -> None:
        """A new worker with the new code once the current one has finished its batch (SIGTERM)."""
        if self.alive():
            self._restarting = True
            self.stop()
        else:  # dead or waiting out its back-off: the new code may be what it was missing
            self.process = None
            self.restart_at = 0.0
            self.quick_deaths = 0
