"""Idempotency keys with Stripe's semantics: the same key and the same request give the first response again;
the same key with a different request is refused (422); a duplicate arriving while the first still runs is
refused (409). Responses below 500 are kept — a retry gets the same answer — but a failure on our side is not,
so the request can be tried again. Keys are kept for `keep` (at least a day)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from shop.domain.errors import Conflict, InvalidValue
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import IdempotencyStore

_KEY = re.compile(r"[\x21-\x7e]{8,255}")


class RequestInProgress(Conflict):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still being processed; retry in a moment")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: object
    replayed: bool


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


class Idempotency:
    def __init__(self, store: IdempotencyStore, *, keep: timedelta = timedelta(hours=48),
                 lock: timedelta = timedelta(seconds=60), clock: Clock = utc_now) -> None:
        if keep < timedelta(hours=24):
            raise ValueError("idempotency keys are kept at least 24 hours")
        self._store = store
        self._keep = keep
        self._lock = lock
        self._clock = clock

    async def run(self, scope: str, key: str, request_fingerprint: str,
                  action: Callable[[], Awaitable[tuple[int, object]]]) -> Outcome:
        """Run `action` once per key; return its (status, body), or the stored one for a repeated request."""
        if not _KEY.fullmatch(key):
            raise InvalidValue("Idempotency-Key", "8-255 visible ASCII characters, e.g. a UUID")
        state, status, body = await self._store.claim(scope, key, request_fingerprint, now=self._clock(),
                                                      lock_for=self._lock.total_seconds(),
                                                      keep_for=self._keep.total_seconds())
        if state == "done":
            assert status is not None
            return Outcome(status, body, replayed=True)
        if state == "running":
            raise RequestInProgress()
        if state == "mismatch":
            raise InvalidValue("Idempotency-Key", "was already used with a different request")
        try:
            status, body = await action()
        except BaseException:
            await self._store.forget(scope, key)
            raise
        if status >= 500:
            await self._store.forget(scope, key)
        else:
            await self._store.finish(scope, key, status=status, body=body)
        return Outcome(status, body, replayed=False)

    async def purge(self) -> int:
        """Drop keys past their keeping time; run by `shop worker`."""
        return await self._store.purge(now=self._clock())
