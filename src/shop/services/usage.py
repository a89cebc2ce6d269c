"""How the shop is being used, read from the request log: traffic and latency over time, per route, by status;
and the log itself, searched and opened one request at a time (the control panel's usage pages).

Counts come from the database exactly (grouped there, per bucket, route and status). Latency percentiles are
computed here over the durations of the newest `sample_limit` requests of the window, so a busy hour costs a
bounded read: when the window holds more, the report says so and older buckets show counts without latency.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shop.domain.errors import InvalidValue
from shop.services.clock import Clock, utc_now
from shop.services.request_log import RequestRecord

# a range's name → (how far back, bucket width in seconds): 60–360 points a chart
USAGE_RANGES: Mapping[str, tuple[timedelta, int]] = {
    "15m": (timedelta(minutes=15), 15), "1h": (timedelta(hours=1), 60), "6h": (timedelta(hours=6), 300),
    "24h": (timedelta(hours=24), 900), "7d": (timedelta(days=7), 3600)}
RANGE_LABELS: Mapping[str, str] = {"15m": "Last 15 minutes", "1h": "Last hour", "6h": "Last 6 hours",
                                   "24h": "Last 24 hours", "7d": "Last 7 days"}
DEFAULT_RANGE = "1h"
NO_ROUTE = "(no route)"  # requests no route matched (404s, scanners): their path is not a route


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime  # inclusive, on a bucket boundary
    until: datetime  # exclusive
    bucket_seconds: int

    @property
    def buckets(self) -> int:
        return max(1, math.ceil((self.until - self.since).total_seconds() / self.bucket_seconds))


def window_for(range_name: str, now: datetime) -> Window:
    """The window a range name covers up to `now`; InvalidValue for a name not offered."""
    if range_name not in USAGE_RANGES:
        raise InvalidValue("range", f"must be one of {', '.join(USAGE_RANGES)}")
    span, step = USAGE_RANGES[range_name]
    # on a whole multiple of the bucket width since the epoch, so the database's buckets and ours agree
    aligned = datetime.fromtimestamp((int((now - span).timestamp()) // step) * step, UTC)
    return Window(since=aligned, until=now + timedelta(microseconds=1), bucket_seconds=step)


@dataclass(frozen=True, slots=True)
class RouteKey:
    method: str
    route: str | None  # None: no route matched

    @property
    def label(self) -> str:
        return f"{self.method} {self.route or NO_ROUTE}"

    @classmethod
    def parse(cls, raw: str) -> RouteKey:
        """`GET /api/v1/products/{slug}` as the dashboard's route picker sends it."""
        method, _, route = raw.strip().partition(" ")
        if not method.isalpha() or not method.isupper() or len(method) > 16 or not route or len(route) > 255:
            raise InvalidValue("route", "must be a method and a route, e.g. 'GET /api/v1/products'")
        return cls(method, None if route == NO_ROUTE else route)


# what the request log answers
@dataclass(frozen=True, slots=True)
class BucketCount:
    index: int  # buckets since the window's start
    requests: int
    client_errors: int  # 4xx
    server_errors: int  # 5xx


@dataclass(frozen=True, slots=True)
class RouteCount:
    key: RouteKey
    requests: int
    server_errors: int
    mean_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class Timing:
    at: datetime
    key: RouteKey
    duration_ms: float


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """The request browser's filters; each None means any."""

    since: datetime | None = None
    until: datetime | None = None
    path_prefix: str | None = None
    status: int | None = None  # exact
    status_class: int | None = None  # 4 for 4xx, 5 for 5xx
    user_id: str | None = None
    request_id: str | None = None


# a request as the log gives it back is the record its worker wrote
LoggedRequest = RequestRecord


class RequestLogReader(Protocol):
    """The request log as the control panel reads it (the `request_log` table of the main store)."""

    async def bucket_counts(self, window: Window, *, route: RouteKey | None = None) -> list[BucketCount]: ...

    async def route_counts(self, window: Window) -> list[RouteCount]:
        """Every route seen in the window, busiest first."""
        ...

    async def status_counts(self, window: Window) -> dict[int, int]: ...

    async def timings(self, window: Window, *, route: RouteKey | None = None, limit: int) -> list[Timing]:
        """The newest `limit` requests of the window (their durations), newest first."""
        ...

    async def find(self, query: RequestQuery, *, offset: int, limit: int) -> list[LoggedRequest]:
        """Matching requests, newest first, without `details`."""
        ...

    async def one(self, request_id: str) -> LoggedRequest | None: ...


@dataclass(frozen=True, slots=True)
class Latency:
    p50: float | None
    p95: float | None
    p99: float | None


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile of durations already sorted ascending; None for none."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency(durations: Sequence[float]) -> Latency:
    ordered = sorted(durations)
    return Latency(percentile(ordered, 0.50), percentile(ordered, 0.95), percentile(ordered, 0.99))


@dataclass(frozen=True, slots=True)
class Point:
    start: datetime
    requests: int
    per_second: float
    error_rate: float  # share of 5xx answers, 0–1
    client_error_rate: float  # share of 4xx answers
    latency: Latency


@dataclass(frozen=True, slots=True)
class RouteFigures:
    key: RouteKey
    requests: int
    per_second: float
    error_rate: float
    mean_ms: float
    max_ms: float
    latency: Latency


@dataclass(frozen=True, slots=True)
class UsageReport:
    window: Window
    route: RouteKey | None  # the series are for this route only, when set
    points: list[Point]
    routes: list[RouteFigures]  # busiest first
    slowest: list[RouteFigures]  # by p95 (mean where no sample), slowest first
    statuses: list[tuple[int, int]]  # (status, count), by status
    requests: int
    per_second: float
    error_rate: float
    latency: Latency
    sampled: int  # requests whose durations the percentiles were computed over
    sample_capped: bool  # the window held more requests than were sampled


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class UsageService:
    def __init__(self, *, log: RequestLogReader, clock: Clock = utc_now, sample_limit: int = 20_000,
                 top_routes: int = 15) -> None:
        self._log = log
        self._clock = clock
        self.sample_limit = sample_limit
        self._top = top_routes
        self._recent: dict[tuple[str, str | None], tuple[float, UsageReport]] = {}

    async def report(self, range_name: str = DEFAULT_RANGE, *, route: str | None = None) -> UsageReport:
        """Traffic, errors and latency over the range (for one route when `route` is given).

        A report that was slow to build is reused for twice as long as it took (at most 5 s), so dashboards
        polling a busy log do not keep the database busy; a quick one is never reused.
        """
        key = (range_name, route)
        cached = self._recent.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        started = time.monotonic()
        report = await self._build(range_name, route=route)
        took = time.monotonic() - started
        if took >= 0.1:
            if len(self._recent) > 64:
                self._recent.clear()
            self._recent[key] = (time.monotonic() + min(2 * took, 5.0), report)
        return report

    async def _build(self, range_name: str, *, route: str | None) -> UsageReport:
        window = window_for(range_name, self._clock())
        key = RouteKey.parse(route) if route else None
        counts = await self._log.bucket_counts(window, route=key)
        routes = await self._log.route_counts(window)
        statuses = await self._log.status_counts(window)
        timings = await self._log.timings(window, route=key, limit=self.sample_limit)

        # the route tables cover every route, whichever one the series are for
        everyone = await self._log.timings(window, limit=self.sample_limit) if key else timings
        per_bucket: dict[int, list[float]] = defaultdict(list)
        per_route: dict[RouteKey, list[float]] = defaultdict(list)
        for t in timings:
            per_bucket[int((t.at - window.since).total_seconds() // window.bucket_seconds)].append(t.duration_ms)
        for t in everyone:
            per_route[t.key].append(t.duration_ms)
        by_index = {c.index: c for c in counts}
        step = window.bucket_seconds
        points = []
        for index in range(window.buckets):
            c = by_index.get(index) or BucketCount(index, 0, 0, 0)
            points.append(Point(start=window.since + timedelta(seconds=index * step), requests=c.requests,
                                per_second=c.requests / step, error_rate=_share(c.server_errors, c.requests),
                                client_error_rate=_share(c.client_errors, c.requests),
                                latency=latency(per_bucket.get(index, ()))))
        seconds = (window.until - window.since).total_seconds()
        figures = [RouteFigures(key=r.key, requests=r.requests, per_second=r.requests / seconds,
                                error_rate=_share(r.server_errors, r.requests), mean_ms=r.mean_ms, max_ms=r.max_ms,
                                latency=latency(per_route.get(r.key, ()))) for r in routes]
        total = sum(c.requests for c in counts)
        errors = sum(c.server_errors for c in counts)
        slowest = sorted(figures, key=lambda f: f.latency.p95 if f.latency.p95 is not None else f.mean_ms,
                         reverse=True)
        return UsageReport(window=window, route=key, points=points, routes=figures[:self._top],
                           slowest=slowest[:self._top], statuses=sorted(statuses.items()), requests=total,
                           per_second=total / seconds, error_rate=_share(errors, total),
                           latency=latency([t.duration_ms for t in timings]), sampled=len(timings),
                           sample_capped=len(timings) >= self.sample_limit and total > len(timings))

    async def find(self, query: RequestQuery, *, page: int, per_page: int) -> tuple[list[LoggedRequest], bool]:
        """One page of matching requests, newest first, and whether another page follows."""
        found = await self._log.find(query, offset=(page - 1) * per_page, limit=per_page + 1)
        return found[:per_page], len(found) > per_page

    async def request(self, request_id: str) -> LoggedRequest | None:
        return await self._log.one(request_id)
