"""Idempotency keys with Stripe's semantics: the same key and the same request give the first response again;
the same key with a different request is refused (422); a duplicate arriving while the first still runs is
refused (409, with Retry-After). Responses below 500 are kept — a retry gets the same answer — but a failure on
our side is not, so the request can be tried again. Keys are kept for `keep` (at least a day).

A request that placed an order says so in the order's own transaction (`Ticket`), so the key knows its order
even when the answer was never stored (the database went away after the commit): a retry then finishes that
order (`resume`) instead of trying to place another from a cart that is already closed."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from shop.domain.errors import Conflict, InvalidValue
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import Claim, IdempotencyStore

log = logging.getLogger(__name__)
_KEY = re.compile(r"[\x21-\x7e]{8,255}")


class RequestInProgress(Conflict):
    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry in a moment")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Ticket:
    """The key a request runs under; given to the work it does, so what it creates can be tied to the key."""

    scope: str
    key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: object
    replayed: bool


Action = Callable[[Ticket], Awaitable[tuple[int, object]]]
Resume = Callable[[str, str], Awaitable[tuple[int, object]]]  # (order number, access key) → (status, body)


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


class Idempotency:
    def __init__(self, store: IdempotencyStore, *, keep: timedelta = timedelta(hours=48),
                 lock: timedelta = timedelta(seconds=15), clock: Clock = utc_now) -> None:
        # the lock only keeps a retry from racing a request still running; one that outlives it (a slow gateway)
        # is raced by a retry that resumes the same order, which the gateway's own key and the order's
        # conditional updates make harmless
        if keep < timedelta(hours=24):
            raise ValueError("idempotency keys are kept at least 24 hours")
        self._store = store
        self._keep = keep
        self._lock = lock
        self._clock = clock

    async def run(self, scope: str, key: str, request_fingerprint: str, action: Action,
                  resume: Resume | None = None) -> Outcome:
        """Run `action` once per key; return its (status, body), or the stored one for a repeated request; or,
        when an earlier try placed an order but its answer was lost, what `resume` makes of that order."""
        if not _KEY.fullmatch(key):
            raise InvalidValue("Idempotency-Key", "8-255 visible ASCII characters, e.g. a UUID")
        claim = await self._store.claim(scope, key, request_fingerprint, now=self._clock(),
                                        lock_for=self._lock.total_seconds(), keep_for=self._keep.total_seconds())
        if claim.state == "done":
            assert claim.status is not None
            return Outcome(claim.status, claim.body, replayed=True)
        if claim.state == "running":
            raise RequestInProgress(retry_after=_seconds_left(claim, self._clock))
        if claim.state == "mismatch":
            raise InvalidValue("Idempotency-Key", "was already used with a different request")
        resuming = claim.state == "resume" and resume is not None
        try:
            if resuming:
                assert resume is not None and claim.order_number and claim.access_key
                status, body = await resume(claim.order_number, claim.access_key)
            else:
                status, body = await action(Ticket(scope, key))
            if status < 500:
                await self._store.finish(scope, key, status=status, body=body)
        except BaseException:
            await self._let_go(scope, key)
            raise
        if status >= 500:
            await self._let_go(scope, key)
        return Outcome(status, body, replayed=resuming)

    async def _let_go(self, scope: str, key: str) -> None:
        """The request failed on our side: a retry may run at once. If the store is what failed, this may fail
        too; the key's lock then runs out on its own."""
        with contextlib.suppress(Exception):
            await self._store.release(scope, key)

    async def purge(self) -> int:
        """Drop keys past their keeping time; run by `shop worker`."""
        return await self._store.purge(now=self._clock())


def _seconds_left(claim: Claim, clock: Clock) -> int:
    if claim.locked_until is None:
        return 1
    return max(1, math.ceil((claim.locked_until - clock()).total_seconds()))
