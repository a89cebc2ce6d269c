"""`shop worker`: deliver the outbox until told to stop.

The loop calls `deliver()` (one batch; returns how many jobs it took) again at once while batches come full, after a
short pause to gather more while they come in ones and twos, sleeps `idle_sleep` when there is none, and backs off
up to `max_error_sleep` while the store or the mail server is down.
SIGTERM or SIGINT ends it after the batch in hand, so no message is left half-sent by the stop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_worker(deliver: Callable[[], Awaitable[int]], *, idle_sleep: float = 1.0,
                     max_error_sleep: float = 30.0, stop: asyncio.Event, gather: float = 0.05,
                     full_batch: int = 20) -> int:
    """Run batches until `stop` is set; returns how many jobs were handled. After a batch that was not full, wait
    `gather` seconds: jobs that trickle in (an order's e-mail at a time) then go in one batch, not one each."""
    handled = 0
    failures = 0
    while not stop.is_set():
        try:
            taken = await deliver()
        except Exception as exc:
            failures += 1
            pause = min(max_error_sleep, idle_sleep * 2 ** min(failures, 16))
            # the exception's type and first line only: a driver's message names hosts, never passwords,
            # but a traceback's locals could hold a message body
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            log.error("outbox delivery failed (%s%s); next try in %.0f s", type(exc).__name__,
                      f": {first}" if first else "", pause)
        else:
            failures = 0
            handled += taken
            pause = 0.0 if taken >= full_batch else gather if taken else idle_sleep
        if pause and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
        await asyncio.sleep(0)  # let signal handlers and other tasks run between back-to-back batches
    return handled


async def serve_worker(deliver: Callable[[], Awaitable[int]], *, idle_sleep: float = 1.0,
                       max_error_sleep: float = 30.0) -> int:
    """`run_worker` with SIGTERM and SIGINT wired to a clean stop; the handlers are removed on return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        if not stop.is_set():
            log.info("worker stopping on %s after the current batch", signal.Signals(signum).name)
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, request_stop, signum)
    try:
        return await run_worker(deliver, idle_sleep=idle_sleep, max_error_sleep=max_error_sleep, stop=stop)
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
