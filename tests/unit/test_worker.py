"""The worker loop: busy while there is work, idle sleep, survives failures, stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from shop.runtime.worker import run_worker, serve_worker


async def test_the_worker_runs_batches_back_to_back_while_there_is_work_then_waits() -> None:
    stop = asyncio.Event()
    batches = [5, 5, 2]
    calls = 0

    async def deliver() -> int:
        nonlocal calls
        calls += 1
        if not batches:
            stop.set()
            return 0
        return batches.pop(0)

    async with asyncio.timeout(1):  # the idle sleep is an hour: sleeping between busy batches would time out
        handled = await run_worker(deliver, idle_sleep=3600, stop=stop, full_batch=5, gather=0.2)
    assert handled == 12 and calls == 4


async def test_after_a_batch_that_was_not_full_the_worker_gathers_a_moment_before_the_next() -> None:
    stop = asyncio.Event()
    calls: list[float] = []

    async def deliver() -> int:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 3:
            stop.set()
        return 1

    await run_worker(deliver, idle_sleep=3600, stop=stop, full_batch=20, gather=0.05)
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.045 and calls[2] - calls[1] >= 0.045


async def test_stop_interrupts_the_idle_sleep() -> None:
    stop = asyncio.Event()

    async def deliver() -> int:
        return 0

    task = asyncio.create_task(run_worker(deliver, idle_sleep=3600, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    async with asyncio.timeout(1):
        assert await task == 0


async def test_a_failing_batch_is_logged_without_its_details_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    outcomes: list[int | Exception] = [ConnectionError("main store at db:5432 is unreachable\nsecret body"), 3]

    async def deliver() -> int:
        if not outcomes:
            stop.set()
            return 0
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.ERROR, logger="shop.runtime.worker"):
        async with asyncio.timeout(2):
            handled = await run_worker(deliver, idle_sleep=0.01, max_error_sleep=0.05, stop=stop)
    assert handled == 3
    assert "ConnectionError: main store at db:5432 is unreachable" in caplog.text
    assert "secret body" not in caplog.text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_worker_after_the_batch_in_hand(signum: signal.Signals) -> None:
    finished: list[str] = []

    async def deliver() -> int:
        os.kill(os.getpid(), signum)
        await asyncio.sleep(0.05)  # the signal arrives mid-batch; the batch still completes
        finished.append("batch")
        return 1

    async with asyncio.timeout(2):
        handled = await serve_worker(deliver, idle_sleep=3600)
    assert handled == 1 and finished == ["batch"]
    assert signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler)  # handlers removed
