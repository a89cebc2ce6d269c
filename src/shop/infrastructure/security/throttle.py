"""Failed-attempt throttling with the `limits` library: in memory, or in Redis shared by every worker."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from shop.domain.users import TooManyAttempts


class AttemptThrottle:
    """Throttle: each key may fail `limit` (e.g. "10/15 minutes") times in a moving window."""

    def __init__(self, limits_by_prefix: dict[str, str], *, redis_url: str | None = None) -> None:
        storage = storage_from_string(f"async+{redis_url}") if redis_url else MemoryStorage()
        assert isinstance(storage, Storage)
        self._limiter = MovingWindowRateLimiter(storage)
        self._limits: dict[str, RateLimitItem] = {p: parse(v) for p, v in limits_by_prefix.items()}

    def _limit(self, key: str) -> RateLimitItem:
        return self._limits[key.split(":", 1)[0]]

    async def check(self, keys: Sequence[str]) -> None:
        for key in keys:
            limit = self._limit(key)
            if not await self._limiter.test(limit, key):
                stats = await self._limiter.get_window_stats(limit, key)
                raise TooManyAttempts(retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    async def failed(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self._limiter.hit(self._limit(key), key)

    async def clear(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self._limiter.clear(self._limit(key), key)
