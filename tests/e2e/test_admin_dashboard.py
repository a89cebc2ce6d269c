"""The control panel's figures agree with what happened: the requests a test made, rows it put in the request log,
the orders it placed, the workers and pools on the process board; bad filters get field errors, never a 500."""

from __future__ import annotations

import asyncio
import math
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import insert, select

from shop.bootstrap import build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import request_log
from shop.infrastructure.process_files import FileProcessBoard
from shop.services.process_status import PoolState, ScalingDecision, SizeRequest, WorkerBeat
from tests.conftest import open_client
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in
from tests.e2e.test_admin_access import csrf_of, panel_settings, signed_in_as


@pytest_asyncio.fixture
async def fresh(empty_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """A panel over a new, empty shop: every figure on it comes from this test."""
    settings = panel_settings(empty_settings, tmp_path)
    async for client in open_client(settings):
        yield client, settings


async def _rows(settings: Settings, statement: Any) -> list[Any]:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            return list((await conn.execute(statement)).all())
    finally:
        await databases.dispose()


async def _log_rows(settings: Settings, rows: list[dict[str, Any]]) -> None:
    databases = build_databases(settings)
    try:
        async with databases.store("main").write() as conn:
            await conn.execute(insert(request_log), rows)
    finally:
        await databases.dispose()


def _row(at: datetime, *, route: str, status: int = 200, ms: float = 10.0, **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "at": at, "method": "GET", "path": route, "route": route, "query": None,
            "status": status, "duration_ms": ms, "bytes_in": 0, "bytes_out": 100, "client_ip": "127.0.0.1",
            "user_agent": "test", "user_id": None, "worker_pid": 1, "pool": "main", "details": {}, **extra}


def _nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def test_usage_figures_count_the_requests_this_test_made(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    await signed_in_as(client, settings, Role.STAFF)
    for _ in range(6):
        assert (await client.get("/api/v1/categories")).status_code == 200
    for _ in range(2):
        assert (await client.get("/api/v1/no-such-thing")).status_code == 404

    route = "GET /api/v1/categories"
    figures: dict[str, Any] = {}
    for _ in range(50):  # the request log's writer hands records to the database within about a second
        figures = (await client.get("/admin/api/usage", params={"range": "15m", "route": route})).json()
        if figures["totals"]["requests"] >= 6:
            break
        await asyncio.sleep(0.1)
    assert figures["route"] == route and figures["bucket_seconds"] == 15
    assert figures["totals"]["requests"] == 6 and sum(figures["series"]["requests"]) == 6
    assert figures["totals"]["error_rate"] == 0 and max(figures["series"]["error_rate"]) == 0

    durations = [r.duration_ms for r in await _rows(settings, select(request_log.c.duration_ms).where(
        request_log.c.route == "/api/v1/categories"))]
    assert len(durations) == 6
    for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert figures["totals"][name] == round(_nearest_rank(durations, share), 2)

    whole = (await client.get("/admin/api/usage", params={"range": "15m"})).json()
    by_route = {r["route"]: r for r in whole["routes"]}
    assert by_route[route]["requests"] == 6
    assert by_route["GET (no route)"]["requests"] == 2
    assert {"status": 404, "count": 2} in whole["statuses"]
    assert sum(whole["series"]["requests"]) == whole["totals"]["requests"] >= 8
    assert any(rate > 0 for rate in whole["series"]["client_error_rate"])


async def test_requests_fall_in_the_buckets_of_their_minute(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    await signed_in_as(client, settings, Role.STAFF)
    route = f"/test/{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=30, seconds=s) for s in (0, 1, 2)] + [now - timedelta(minutes=5)] * 2 + \
        [now - timedelta(hours=2)]  # outside the last hour
    statuses = [200, 500, 200, 404, 200, 200]
    await _log_rows(settings, [_row(at, route=route, status=st, ms=float(10 * (i + 1)))
                               for i, (at, st) in enumerate(zip(moments, statuses, strict=True))])
    figures = (await client.get("/admin/api/usage", params={"range": "1h", "route": f"GET {route}"})).json()
    since = datetime.fromisoformat(figures["since"])
    expected: dict[int, list[int]] = {}
    for at, status in zip(moments[:5], statuses[:5], strict=True):
        expected.setdefault(int((at - since).total_seconds() // 60), []).append(status)
    series = figures["series"]
    assert len(series["t"]) in (60, 61) and series["t"][0] == int(since.timestamp())
    for index, count in enumerate(series["requests"]):
        assert count == len(expected.get(index, [])), index
        if index in expected:
            bucket = expected[index]
            assert series["error_rate"][index] == round(100 * sum(s >= 500 for s in bucket) / len(bucket), 2)
            assert series["p50"][index] is not None
        else:
            assert series["p50"][index] is None
    assert figures["totals"]["requests"] == 5 and figures["totals"]["error_rate"] == 0.2
    assert figures["totals"]["p99"] == 50.0  # the 2-hour-old 60 ms request is outside the window


async def test_bad_dashboard_choices_get_field_errors(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    await signed_in_as(client, settings, Role.STAFF)
    for params, field in (({"range": "2y"}, "range"), ({"route": "products"}, "route"),
                          ({"route": "get /x"}, "route")):
        problem = await client.get("/admin/api/usage", params=params)
        assert problem.status_code == 422 and problem.json()["errors"][0]["field"] == field
        page = await client.get("/admin/", params=params)
        assert page.status_code == 422 and f'id="{field}-error"' in page.text


async def test_the_request_browser_finds_and_opens_requests(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    await signed_in_as(client, settings, Role.STAFF)
    now = datetime.now(UTC)
    mine = _row(now - timedelta(minutes=3), route="/api/v1/carts/{cart_id}", status=503, ms=12.5, user_id="u-42",
                details={"request": {"headers": {"authorization": "[redacted]"}, "body": {"sku": "MUG-1"}}})
    others = [_row(now - timedelta(minutes=m), route="/api/v1/products", status=200) for m in range(1, 60)]
    old = _row(now - timedelta(days=2), route="/api/v1/products", status=404)
    await _log_rows(settings, [mine, old, *others])

    async def listed(**params: str) -> tuple[int, list[str], str]:
        page = await client.get("/admin/requests", params=params)
        return page.status_code, re.findall(r'data-request-id="([^"]+)"', page.text), page.text

    assert (await listed(id=mine["id"]))[1] == [mine["id"]]
    assert (await listed(status="5xx"))[1] == [mine["id"]]
    assert (await listed(status="503", user="u-42"))[1] == [mine["id"]]
    assert (await listed(path="/api/v1/carts/"))[1] == [mine["id"]]
    assert (await listed(path="/api/v1/carts_"))[1] == []  # a prefix, not a LIKE pattern
    assert (await listed(status="404"))[1] == [old["id"]]
    since = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    until = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert (await listed(since=since, until=until))[1] == [old["id"]]

    status, first, text = await listed(path="/api/v1/products")
    assert status == 200 and len(first) == 50 and 'rel="next"' in text
    status, second, text = await listed(path="/api/v1/products", page="2")
    assert len(second) == 10 and not set(first) & set(second) and 'rel="prev"' in text

    opened = await client.get(f"/admin/requests/{mine['id']}")
    assert opened.status_code == 200
    assert "12.50 ms" in opened.text and "u-42" in opened.text and "/api/v1/carts/{cart_id}" in opened.text
    assert '&#34;authorization&#34;: &#34;[redacted]&#34;' in opened.text  # pretty-printed, escaped
    assert '  &#34;request&#34;: {' in opened.text
    assert (await client.get("/admin/requests/no-such-id")).status_code == 404


async def test_bad_request_filters_get_field_errors(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    await signed_in_as(client, settings, Role.STAFF)
    cases = {"since": "yesterday", "until": "2025-13-40", "path": "api/v1", "status": "4x", "user": "a b",
             "id": "x" * 65, "page": "0"}
    for field, value in cases.items():
        page = await client.get("/admin/requests", params={field: value})
        assert page.status_code == 422, (field, value)
        assert 'class="field-error"' in page.text
        if field != "page":
            assert f'id="f-{field}-error"' in page.text and 'aria-invalid="true"' in page.text
    backwards = await client.get("/admin/requests", params={"since": "2025-01-02T00:00", "until": "2025-01-01T00:00"})
    assert backwards.status_code == 422 and "later than the start" in backwards.text


async def test_business_figures_follow_the_orders_placed(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    _, staff = await signed_in(client, settings, Role.STAFF)
    sku = await new_product(client, staff, stock=3, price="20.00")
    bought = await new_cart(client, items={sku: 1})
    await new_cart(client, items={sku: 1})  # abandoned
    placed = await client.post("/api/v1/checkout", json=checkout_body(bought))
    assert placed.status_code == 201, placed.text
    total = Decimal(placed.json()["totals"]["total"]["amount"])

    await signed_in_as(client, settings, Role.STAFF)
    page = await client.get("/admin/business", params={"range": "24h", "threshold": "2"})
    assert page.status_code == 200

    def figure(name: str) -> str:
        found = re.search(rf'data-figure="{name}">([^<]*)<', page.text)
        assert found, name
        return found[1]

    assert figure("orders") == "1"
    assert figure("revenue-EUR") == f"€{total}" and figure("aov-EUR") == f"€{total}"
    assert figure("conversion") == "50.0 %"
    assert f'data-sku="{sku}"' in page.text  # 3 − 1 sold = 2 available, at the threshold
    higher = await client.get("/admin/business", params={"range": "24h", "threshold": "1"})
    assert f'data-sku="{sku}"' not in higher.text

    for params, field in (({"range": "1y"}, "range"), ({"threshold": "-1"}, "threshold"),
                          ({"threshold": "lots"}, "threshold"), ({"threshold": "99999999"}, "threshold")):
        bad = await client.get("/admin/business", params=params)
        assert bad.status_code == 422 and f'id="{field}-error"' in bad.text


async def test_workers_and_pools_come_from_the_process_board(fresh: tuple[httpx.AsyncClient, Settings]) -> None:
    client, settings = fresh
    email = await signed_in_as(client, settings, Role.STAFF)
    board = FileProcessBoard(settings.run_dir)
    now = datetime.now(UTC)
    pid = os.getppid()  # a live process other than this one, whose own heartbeat would overwrite ours
    board.beat(WorkerBeat(pid=pid, pool="api", started_at=now - timedelta(minutes=3), updated_at=now, requests=123,
                          in_flight=2))
    board.publish_pools([PoolState(name="api", min_workers=1, max_workers=4, workers=2, master_pid=pid,
                                   updated_at=now, prefixes=("/api/",))])
    board.record_decision(ScalingDecision(at=now, pool="api", action="up", from_workers=1, to_workers=2,
                                          reason="in flight 6.0 per worker over 5 s"))

    workers = (await client.get("/admin/api/workers")).json()
    ours = next(w for w in workers["workers"] if w["pid"] == pid)
    assert ours["pool"] == "api" and ours["requests"] == 123 and ours["in_flight"] == 2
    assert ours["rss_mb"] > 1 and ours["cpu_percent"] is not None and 170 <= ours["uptime_seconds"] <= 200
    assert workers["pools"] == [{"name": "api", "workers": 2, "min_workers": 1, "max_workers": 4, "manual": False,
                                 "master_pid": pid}]

    page = await client.get("/admin/workers")
    assert "in flight 6.0 per worker over 5 s" in page.text and f"<td>{pid}</td>" in page.text
    csrf = csrf_of(page)
    for data, field in (({"pool": "api", "workers": "9"}, "workers"), ({"pool": "api", "workers": "0"}, "workers"),
                        ({"pool": "api", "workers": "two"}, "workers"), ({"pool": "nope", "workers": "2"}, "pool")):
        refused = await client.post("/admin/workers/size", data={"csrf": csrf, "mode": "set", **data})
        assert refused.status_code == 422 and 'class="field-error"' in refused.text, data
        assert ("Workers must be" if field == "workers" else "Pool is not a pool") in refused.text
    assert board.take_size_requests() == []

    done = await client.post("/admin/workers/size", data={"csrf": csrf, "pool": "api", "workers": "3", "mode": "set"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/workers?asked=api"
    back = await client.post("/admin/workers/size", data={"csrf": csrf, "pool": "api", "mode": "auto"})
    assert back.status_code == 303
    asked = board.take_size_requests()
    assert [(r.pool, r.workers, r.requested_by) for r in asked] == [("api", 3, email), ("api", None, email)]
    assert all(isinstance(r, SizeRequest) for r in asked)
