"""Prometheus metrics, served at /metrics to trusted addresses and staff.

Under gunicorn every worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR (set by
`shop.runtime.gunicorn_conf` before the workers start, so it is in place before this module is imported), and a
scrape answered by any one worker sums them all. Without it (tests, one process) the figures are the process's
own. Values that live in a database (the outbox's depth) are read at scrape time; the connection pools are
reported by each worker every couple of seconds with its heartbeat.

Who may scrape: a client whose address (after X-Forwarded-For from trusted proxies, `shop.web.client`) is itself
trusted — loopback and `SHOP_TRUSTED_PROXIES` — or anyone sending a staff member's bearer token. Everyone else,
including a client a proxy forwarded as something that is not an address, gets a 403.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.responses import Response

from shop.domain.users import Role, User
from shop.web.cache import ResponseCache
from shop.web.client import client_trusted
from shop.web.deps import services_of
from shop.web.problems import problem
from shop.web.security import optional_user

log = logging.getLogger(__name__)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))  # prometheus_client decides so at import too
_PID = [os.getpid()]


def _refresh_pid() -> None:
    _PID[0] = os.getpid()


if MULTIPROCESS:
    # Multiprocess values ask for the process id on every change, to notice a fork, and getpid() is a system call:
    # read once here and again in a forked child (docs/decisions/2026-12-06-prometheus-process-id-once.md).
    os.register_at_fork(after_in_child=_refresh_pid)
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _PID[0])  # type: ignore[no-untyped-call]
_LABELS = ("method", "route", "status")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route took (404s)

REQUESTS = Counter("shop_http_requests_total", "HTTP requests answered", _LABELS)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY = Histogram("shop_http_request_duration_seconds", "Time from a request's arrival to its last byte", _LABELS,
                    buckets=_LATENCY_BUCKETS)
IN_FLIGHT = Gauge("shop_http_requests_in_flight", "Requests being answered (the scraped worker's now, the other "
                  "workers' as of their last heartbeat, at most 2 s ago)", multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("shop_db_pool_checked_out", "Database connections in use, per store (stores sharing a "
                         "URL share a pool and show the same figure)", ["store"], multiprocess_mode="livesum")
LOG_DROPPED = Counter("shop_request_log_dropped_total", "Request records dropped because the log's queue was full")
LOG_WAITING = Gauge("shop_request_log_waiting", "Request records not yet in the database",
                    multiprocess_mode="livesum")
CACHE = Counter("shop_response_cache_reads_total", "Anonymous catalogue reads the response cache saw: answered (hit), "
                "filled (miss), or passed to the app because its invalidations were behind (behind)", ["outcome"])

_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_BOUNDS = (*_LATENCY_BUCKETS, math.inf)  # as prometheus_client keeps them: +Inf last


def _child(key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
    """The labelled children for (method, route, status), looked up once."""
    pair = _children.get(key)
    if pair is None:
        method, route, status = key
        labels = (method if method in _METHODS else "OTHER", route, str(status))
        pair = _children[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
    return pair


class _RequestFigures:
    """Answered requests added up in the worker and written to the shared figures once per turn of the event loop.

    Under gunicorn a figure's every change is a locked write to a memory-mapped file, three per request, a cost
    the cheapest requests notice (docs/decisions/2026-12-06-request-figures-per-loop-turn.md). Here a request
    adds to a small table; at the end of the loop's turn (when a response has gone, before the next request is
    read) the table goes to the figures at once — a histogram's sum and buckets by what they grew, as `observe`
    would have moved them one by one. A scrape sees every request answered before the turn ended."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, int], list[Any]] = {}
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        key = (method, route or UNMATCHED, status)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = [0, 0.0, [0] * len(_BOUNDS)]
        entry[0] += 1
        entry[1] += seconds
        entry[2][bisect_left(_BOUNDS, seconds)] += 1
        loop = self._flush_on
        if loop is None or loop.is_closed():  # (a loop closed with the flush pending: tests, one loop per test)
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop running: nothing to wait for
            self.flush()
            return
        self._flush_on = loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_on = None
        pending, self._pending = self._pending, {}
        for key, (count, total, buckets) in pending.items():
            counter, histogram = _child(key)
            counter.inc(count)
            # prometheus_client keeps a histogram's sum and each bucket's own count (not cumulative) as values;
            # tests/unit/test_metrics_figures.py holds this to what `observe` one by one gives
            histogram._sum.inc(total)
            for value, grew in zip(histogram._buckets, buckets, strict=True):
                if grew:
                    value.inc(grew)


_FIGURES = _RequestFigures()
observe = _FIGURES.observe
flush = _FIGURES.flush


class RequestCounts:
    """A worker's requests: answered and in flight (the heartbeat posts both) and, when `count`, their figures."""

    __slots__ = ("count", "in_flight", "served")

    def __init__(self, *, count: bool = True) -> None:
        self.count = count  # Prometheus figures on or off
        self.served = 0
        self.in_flight = 0

    def answered(self, method: str, route: str | None, status: int, seconds: float) -> None:
        self.in_flight -= 1
        self.served += 1
        if self.count:
            observe(method, route, status, seconds)

    def dropped(self) -> None:
        """A request's record the log's queue had no room for."""
        if self.count:
            LOG_DROPPED.inc()


_cache_reported: weakref.WeakKeyDictionary[ResponseCache, dict[str, int]] = weakref.WeakKeyDictionary()


def report_cache(cache: ResponseCache) -> None:
    """The response cache's own tallies, added to the shared figures by what they grew since last time (a
    heartbeat or a scrape): nothing is written per read."""
    reported = _cache_reported.setdefault(cache, {"hit": 0, "miss": 0, "behind": 0})
    for outcome, now in (("hit", cache.hits), ("miss", cache.misses), ("behind", cache.behind)):
        grew = now - reported[outcome]
        if grew > 0:
            CACHE.labels(outcome).inc(grew)
            reported[outcome] = now


def report_pools(checked_out: Mapping[str, int]) -> None:
    for store, count in checked_out.items():
        POOL_CHECKED_OUT.labels(store).set(count)


class _Gathered:
    """A collector of figures read before the scrape (they need a database, which collect() cannot await)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def _database_families(request: Request) -> list[Metric]:
    outbox = GaugeMetricFamily("shop_outbox_pending_jobs", "Outbox jobs not yet delivered (nor given up on)",
                               labels=["kind"])
    read = services_of(request).outbox_depth
    if read is None:
        return []
    try:
        async with asyncio.timeout(2):
            depth = await read()
    except Exception as exc:  # a scrape still answers when the main store does not
        log.warning("metrics: outbox depth unavailable (%s)", type(exc).__name__)
        return []
    for kind, count in sorted(depth.items()):
        outbox.add_metric([kind], count)
    return [outbox]


def exposition(families: Iterable[Metric]) -> bytes:
    extra = CollectorRegistry(auto_describe=True)
    extra.register(_Gathered(families))
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry) + generate_latest(extra)
    return generate_latest(REGISTRY) + generate_latest(extra)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> Response:
    """Prometheus exposition: trusted addresses and staff only."""
    if not client_trusted(request) and (user is None or not user.has_role(Role.STAFF)):
        return problem(403, "metrics are served to trusted addresses and to staff")
    flush()  # this worker's figures of the current turn
    counts = getattr(request.app.state, "request_counts", None)
    if counts is not None:
        IN_FLIGHT.set(counts.in_flight)
    cache = getattr(request.app.state, "response_cache", None)
    if cache is not None:
        report_cache(cache)
    body = exposition(await _database_families(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
