"""The commerce core's background work, one round per call from `shop worker`: settle orders whose stock
reservation ran out, give back money that arrived for canceled orders, keep the catalogue's in-stock flags."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shop.services.clock import Clock, utc_now
from shop.services.in_stock import InStockFlags
from shop.services.order_payments import STOCK_CHANGED, STRAY_REFUND, OrderPayments
from shop.services.outbox import Outbox, RetryPolicy, short_error

log = logging.getLogger(__name__)
REFUND = STRAY_REFUND


@dataclass(slots=True)
class CommerceJobs:
    payments: OrderPayments
    outbox: Outbox
    flags: InStockFlags
    clock: Clock = utc_now
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # none of these is in a hurry (reservations run for minutes; the in-stock flags were refreshed at the commit
    # already, the jobs are the fallback): a round at most this often, unless the last one found work
    every: timedelta = timedelta(seconds=0.5)
    _last: datetime | None = None
    _found_work: bool = False

    async def run_once(self) -> int:
        """One round, if one is due; returns how many things it settled or sent."""
        now = self.clock()
        if not self._found_work and self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        done = await self.payments.expire_reservations(now=now)
        done += await self._refunds()
        done += await self._in_stock_flags()
        self._found_work = done > 0
        return done

    async def _refunds(self) -> int:
        now = self.clock()
        jobs = await self.outbox.claim_due(REFUND, now=now, limit=20, lease=timedelta(minutes=2))
        for job in jobs:
            try:
                await self.payments.refund_stray_payment({k: str(v) for k, v in job.payload.items()})
            except Exception as exc:
                error = short_error(f"{type(exc).__name__}: {exc}")
                if self.retry.gives_up_after(job.attempts):
                    log.error("refund for order %s given up: %s", job.payload.get("order"), error)
                    await self.outbox.mark_dead(job, error=error, now=self.clock())
                else:
                    await self.outbox.mark_failed(job, error=error,
                                                  retry_at=self.clock() + self.retry.delay(job.attempts))
            else:
                await self.outbox.mark_sent(job, now=self.clock())
        return len(jobs)

    async def _in_stock_flags(self) -> int:
        """Bring the catalogue's in-stock flags up to date for every SKU whose stock changed, in one pass."""
        jobs = await self.outbox.claim_due(STOCK_CHANGED, now=self.clock(), limit=200, lease=timedelta(minutes=1))
        if not jobs:
            return 0
        skus = sorted({str(sku) for job in jobs for sku in job.payload.get("skus", ())})
        try:
            await self.flags.refresh(skus)
        except Exception as exc:
            for job in jobs:
                await self.outbox.mark_failed(job, error=short_error(f"{type(exc).__name__}: {exc}"),
                                              retry_at=self.clock() + self.retry.delay(job.attempts))
            return 0
        for job in jobs:
            await self.outbox.mark_sent(job, now=self.clock())
        return len(jobs)

