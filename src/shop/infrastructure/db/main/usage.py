"""The control panel's reads of the main store: the request log (traffic, latency, one request) and sales
(orders, revenue, carts, low stock). Counts are grouped in the database, per time bucket, on all three backends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, extract, func, literal_column, select
from sqlalchemy import Integer as SqlInteger

from shop.domain.inventory import StockLevel
from shop.domain.orders import OrderStatus
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.main.tables import carts, orders, request_log, stock_levels
from shop.infrastructure.db.money_columns import from_minor
from shop.services.business import BucketSales, OrderTally, Period
from shop.services.usage import (
    BucketCount,
    LoggedRequest,
    RequestQuery,
    RouteCount,
    RouteKey,
    Timing,
    Window,
)

_BROWSER_COLUMNS = [c for c in request_log.c if c.name != "details"]


def _epoch_seconds(backend: str, column: Any) -> ColumnElement[Any]:
    """Whole seconds since 1970 of a UTC datetime column, whatever time zone the session is in."""
    if backend == "postgresql":
        return func.floor(extract("epoch", column))
    if backend == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        return cast(func.strftime("%s", column), SqlInteger)
    # MariaDB/MySQL: DATETIME holds UTC; UNIX_TIMESTAMP() would read it in the session's zone
    return func.timestampdiff(literal_column("SECOND"), literal_column("'1970-01-01 00:00:00'"), column)


def _bucket(backend: str, column: Any, since: datetime, step: int) -> ColumnElement[Any]:
    """Which bucket of `step` seconds since `since` a row falls in; `since` is on a whole second."""
    # integers written into the statement, so GROUP BY sees the same expression as SELECT
    offset = _epoch_seconds(backend, column) - literal_column(str(int(since.timestamp())), SqlInteger)
    return offset // literal_column(str(int(step)), SqlInteger)  # rows are never before `since`: floor = trunc


def _in(column: Any, since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(column >= since, column < until)


def _route_filter(key: RouteKey | None) -> list[ColumnElement[bool]]:
    if key is None:
        return []
    route = request_log.c.route.is_(None) if key.route is None else request_log.c.route == key.route
    return [request_log.c.method == key.method, route]


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _logged(row: Any, *, details: bool) -> LoggedRequest:
    return LoggedRequest(
        id=row.id, at=row.at, method=row.method, path=row.path, route=row.route, query=row.query,
        status=int(row.status), duration_ms=float(row.duration_ms), bytes_in=int(row.bytes_in),
        bytes_out=int(row.bytes_out), client_ip=row.client_ip, user_agent=row.user_agent, user_id=row.user_id,
        worker_pid=int(row.worker_pid), pool=row.pool, details=(row.details or {}) if details else {})


class SqlRequestLog:
    """RequestLogReader over the `request_log` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def bucket_counts(self, window: Window, *, route: RouteKey | None = None) -> list[BucketCount]:
        log = request_log.c
        bucket = _bucket(self._store.backend, log.at, window.since, window.bucket_seconds).label("bucket")
        stmt = (select(bucket, func.count().label("requests"),
                       _count_where(and_(log.status >= 400, log.status < 500)).label("client_errors"),
                       _count_where(log.status >= 500).label("server_errors"))
                .where(_in(log.at, window.since, window.until), *_route_filter(route))
                .group_by(literal_column("bucket")))
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [BucketCount(index=int(r.bucket), requests=int(r.requests), client_errors=int(r.client_errors or 0),
                            server_errors=int(r.server_errors or 0)) for r in rows]

    async def route_counts(self, window: Window) -> list[RouteCount]:
        log = request_log.c
        requests = func.count().label("requests")
        stmt = (select(log.method, log.route, requests, _count_where(log.status >= 500).label("server_errors"),
                       func.avg(log.duration_ms).label("mean_ms"), func.max(log.duration_ms).label("max_ms"))
                .where(_in(log.at, window.since, window.until))
                .group_by(log.method, log.route).order_by(requests.desc()).limit(500))
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [RouteCount(key=RouteKey(r.method, r.route), requests=int(r.requests),
                           server_errors=int(r.server_errors or 0), mean_ms=float(r.mean_ms or 0),
                           max_ms=float(r.max_ms or 0)) for r in rows]

    async def status_counts(self, window: Window) -> dict[int, int]:
        log = request_log.c
        stmt = (select(log.status, func.count().label("n")).where(_in(log.at, window.since, window.until))
                .group_by(log.status))
        async with self._store.read() as conn:
            return {int(r.status): int(r.n) for r in await conn.execute(stmt)}

    async def timings(self, window: Window, *, route: RouteKey | None = None, limit: int) -> list[Timing]:
        log = request_log.c
        stmt = (select(log.at, log.method, log.route, log.duration_ms)
                .where(_in(log.at, window.since, window.until), *_route_filter(route))
                .order_by(log.at.desc()).limit(limit))
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Timing(at=r.at, key=RouteKey(r.method, r.route), duration_ms=float(r.duration_ms)) for r in rows]

    async def find(self, query: RequestQuery, *, offset: int, limit: int) -> list[LoggedRequest]:
        log = request_log.c
        where: list[ColumnElement[bool]] = []
        if query.request_id is not None:
            where.append(log.id == query.request_id)
        if query.since is not None:
            where.append(log.at >= query.since)
        if query.until is not None:
            where.append(log.at < query.until)
        if query.path_prefix:
            where.append(log.path.startswith(query.path_prefix, autoescape=True))
        if query.status is not None:
            where.append(log.status == query.status)
        if query.status_class is not None:
            where.append(and_(log.status >= query.status_class * 100, log.status < (query.status_class + 1) * 100))
        if query.user_id is not None:
            where.append(log.user_id == query.user_id)
        stmt = (select(*_BROWSER_COLUMNS).where(*where).order_by(log.at.desc(), log.id.desc())
                .offset(offset).limit(limit))
        async with self._store.read() as conn:
            return [_logged(r, details=False) for r in await conn.execute(stmt)]

    async def one(self, request_id: str) -> LoggedRequest | None:
        async with self._store.read() as conn:
            row = (await conn.execute(select(request_log).where(request_log.c.id == request_id))).first()
        return _logged(row, details=True) if row is not None else None


class SqlSales:
    """SalesReader over the orders, carts and stock tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def order_tallies(self, period: Period) -> list[OrderTally]:
        o = orders.c
        stmt = (select(o.status, o.currency, func.count().label("n"), func.sum(o.total).label("total"))
                .where(_in(o.created_at, period.since, period.until)).group_by(o.status, o.currency))
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [OrderTally(status=OrderStatus(r.status), orders=int(r.n), total=from_minor(int(r.total or 0),
                                                                                            r.currency))
                for r in rows]

    async def sales_by_bucket(self, period: Period, *, statuses: frozenset[OrderStatus]) -> list[BucketSales]:
        o = orders.c
        bucket = _bucket(self._store.backend, o.created_at, period.since, period.bucket_seconds).label("bucket")
        stmt = (select(bucket, o.currency, func.count().label("n"), func.sum(o.total).label("total"))
                .where(_in(o.created_at, period.since, period.until), o.status.in_([s.value for s in statuses]))
                .group_by(literal_column("bucket"), o.currency).order_by(literal_column("bucket")))
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [BucketSales(index=int(r.bucket), currency=r.currency, orders=int(r.n),
                            revenue=from_minor(int(r.total or 0), r.currency)) for r in rows]

    async def carts_created(self, period: Period) -> int:
        stmt = select(func.count()).select_from(carts).where(_in(carts.c.created_at, period.since, period.until))
        async with self._store.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def carts_converted(self, period: Period, *, statuses: frozenset[OrderStatus]) -> int:
        stmt = (select(func.count(func.distinct(carts.c.id)))
                .select_from(carts.join(orders, orders.c.cart_id == carts.c.id))
                .where(_in(carts.c.created_at, period.since, period.until),
                       orders.c.status.in_([s.value for s in statuses])))
        async with self._store.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def low_stock(self, *, threshold: int, limit: int) -> list[StockLevel]:
        s = stock_levels.c
        available = s.on_hand - s.reserved
        stmt = (select(s.sku, s.on_hand, s.reserved).where(available <= threshold)
                .order_by(available, s.sku).limit(limit))
        async with self._store.read() as conn:
            return [StockLevel(r.sku, int(r.on_hand), int(r.reserved)) for r in await conn.execute(stmt)]
