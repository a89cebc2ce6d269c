"""Housekeeping for `shop worker`: what is kept only for a while is forgotten on time — storefront sessions,
phone codes, delivered outbox jobs (e-mail bodies with their links), idempotency keys, the request log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shop.services.clock import Clock, utc_now
from shop.services.idempotency import Idempotency
from shop.services.outbox import Outbox
from shop.services.phone_verification import PhoneCodeStore
from shop.services.request_log import RequestLogRetention
from shop.services.web_sessions import WebSessions

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Housekeeping:
    sessions: WebSessions
    phone_codes: PhoneCodeStore
    outbox: Outbox
    idempotency: Idempotency
    clock: Clock = utc_now
    every: timedelta = timedelta(hours=1)
    keep_sent: timedelta = timedelta(days=7)  # a delivered e-mail stays a week, for support questions
    keep_dead: timedelta = timedelta(days=30)  # one given up on stays a month, for a person to look at
    keep_codes: timedelta = timedelta(days=1)
    request_log: RequestLogRetention | None = None  # keeps its own retention (SHOP_REQUEST_LOG_RETENTION_DAYS)
    _last: datetime | None = None

    async def run_once(self) -> int:
        """Purge what is due, at most once per `every`; returns how many records went."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        gone = {
            "sessions": await self.sessions.purge(),
            "phone codes": await self.phone_codes.purge(expired_before=now - self.keep_codes),
            "outbox jobs": await self.outbox.purge(sent_before=now - self.keep_sent, dead_before=now - self.keep_dead),
            "idempotency keys": await self.idempotency.purge(),
            "request log records and files": await self.request_log.purge() if self.request_log else 0,
        }
        if any(gone.values()):
            log.info("housekeeping: %s", ", ".join(f"{n} {what}" for what, n in gone.items() if n))
        return sum(gone.values())
