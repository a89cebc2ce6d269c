"""The outermost middleware: a request id for every request, the request log's record, the metrics, and the
worker's heartbeat on the process board.

It sits outside CORS, the security headers and the response cache, so a response served from the cache is
counted and logged like any other. One callable composes three small pieces, in this order (an ASGI layer each
would cost every request a call and a closure more):

- the request's context (`shop.web.request_context`): its id, the client the trusted proxies vouch for
  (`shop.web.client`), its scheme, its route;
- its figures (`shop.web.metrics.RequestCounts`): answered and in flight for the heartbeat, Prometheus's counts;
- its record (`shop.web.request_record`): the body counted and a small one's fields kept, one record handed to
  the writer's queue.

Nothing it does can fail a request: a record that cannot be built is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime

from shop.config import Settings
from shop.services.process_status import WorkerBeat
from shop.services.request_log import RequestLogWriter
from shop.services.shop import ShopServices
from shop.web import metrics
from shop.web.cache import ASGIApp, Receive, ResponseCache, Scope, Send
from shop.web.client import TrustedProxies
from shop.web.metrics import RequestCounts
from shop.web.request_context import RequestContexts, RouteTemplates
from shop.web.request_record import Answer, RequestRecorder

log = logging.getLogger(__name__)


class RequestLogMiddleware:
    """See the module's docstring. `counts` feeds the heartbeat."""

    def __init__(self, app: ASGIApp, *, writer: RequestLogWriter | None, trusted: TrustedProxies, pool: str,
                 count: bool = True) -> None:
        self.app = app
        self.contexts = RequestContexts(trusted)
        self.counts = RequestCounts(count=count)
        self.recorder = None if writer is None else RequestRecorder(writer, pool=pool)
        self._routes = RouteTemplates()
        self._route_needed = count or writer is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = time.time()
        counts = self.counts
        counts.in_flight += 1  # the heartbeat reports it, to the process board and the metrics
        context = self.contexts.begin(scope, arrived)
        recorder = self.recorder
        body = recorder.capture(context, receive) if recorder is not None and context.has_body else None
        answer = Answer(send, context.id_header)
        try:
            await self.app(scope, receive if body is None else body.receive, answer.send)
        finally:
            seconds = time.perf_counter() - started
            route = self._routes.of(scope, context.path) if self._route_needed else None
            status = answer.status or 500  # the app failed before it answered
            counts.answered(scope["method"], route, status, seconds)
            if recorder is not None and not recorder.record(context, scope, arrived, seconds, route, status, body,
                                                            answer):
                counts.dropped()


class Telemetry:
    """The worker's side tasks, run for the app's lifetime: the request log's writer and the heartbeat."""

    def __init__(self, *, services: ShopServices, settings: Settings, middleware: RequestLogMiddleware,
                 every: float = 2.0, cache: ResponseCache | None = None) -> None:
        self._services = services
        self._middleware = middleware
        self._cache = cache
        self._pool = settings.pool
        self._count = settings.metrics
        self._every = every
        self._pid = os.getpid()
        self._started_at = datetime.now(UTC)
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_failed = False

    def start(self) -> None:
        writer = self._services.request_log
        if writer is not None:
            self._tasks.append(asyncio.create_task(writer.run(), name="request-log"))
        self._tasks.append(asyncio.create_task(self._beat_forever(), name="heartbeat"))

    async def _beat_forever(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self._every)

    def beat(self) -> None:
        """Post this worker's figures to the process board (and its pool and queue figures to the metrics)."""
        counts = self._middleware.counts
        try:
            self._services.processes.beat(WorkerBeat(
                pid=self._pid, pool=self._pool, started_at=self._started_at, updated_at=datetime.now(UTC),
                requests=counts.served, in_flight=counts.in_flight))
            self._beat_failed = False
        except OSError as exc:
            if not self._beat_failed:  # once per outage, not every two seconds
                log.warning("heartbeat: cannot post to the process board (%s)", exc)
            self._beat_failed = True
        if self._count:
            # a gauge set per beat, not moved per request: two shared-memory writes fewer on every request
            metrics.IN_FLIGHT.set(counts.in_flight)
            try:
                metrics.report_pools(self._services.db_pools())
            except Exception as exc:  # the heartbeat must go on
                log.warning("metrics: cannot read the connection pools (%s)", type(exc).__name__)
            if self._services.request_log is not None:
                metrics.LOG_WAITING.set(self._services.request_log.waiting)
            if self._cache is not None:
                metrics.report_cache(self._cache)

    async def stop(self, *, within: float = 8.0) -> None:
        """Stop beating, flush the request log (bounded) and leave the process board."""
        writer = self._services.request_log
        for task in self._tasks:
            if task.get_name() == "heartbeat":
                task.cancel()
        if writer is not None:
            writer.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=within)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._count:
            metrics.flush()
        with contextlib.suppress(OSError):
            self._services.processes.forget_worker(self._pid)
