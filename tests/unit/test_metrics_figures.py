"""Request figures are added up per turn of the event loop and written at its end: what a scrape then reads must
be exactly what observing each request on its own gives."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from shop.web import metrics

ROUTE = "/test/figures/{n}"
LATENCIES = [0.0004, 0.001, 0.0011, 0.003, 0.003, 0.2, 0.7, 12.0, 0.0, 0.026]


def figures(registry: CollectorRegistry, name: str, route: str, status: str = "200") -> dict[str, float]:
    found: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith(name) and not sample.name.endswith("_created") \
                    and sample.labels.get("route") == route \
                    and sample.labels.get("status") == status:
                key = sample.name.removeprefix(name) + (f"le={sample.labels['le']}" if "le" in sample.labels else "")
                found[key] = sample.value
    return found


async def test_a_turns_requests_reach_the_figures_at_its_end_as_if_observed_one_by_one() -> None:
    for seconds in LATENCIES:
        metrics.observe("GET", ROUTE, 200, seconds)
    metrics.observe("GET", ROUTE, 404, 0.01)
    # nothing written yet: the turn has not ended
    assert REGISTRY.get_sample_value("shop_http_requests_total", {"method": "GET", "route": ROUTE,
                                                                   "status": "200"}) in (None, 0.0)
    await asyncio.sleep(0)

    expected = CollectorRegistry()
    reference = Histogram("shop_http_request_duration_seconds", "x", ["method", "route", "status"],
                          buckets=metrics._LATENCY_BUCKETS, registry=expected)
    for seconds in LATENCIES:
        reference.labels("GET", ROUTE, "200").observe(seconds)
    got = figures(REGISTRY, "shop_http_request_duration_seconds", ROUTE)
    assert got == figures(expected, "shop_http_request_duration_seconds", ROUTE)
    assert got["_count"] == len(LATENCIES) and got["_sum"] == sum(LATENCIES)
    assert REGISTRY.get_sample_value("shop_http_requests_total", {"method": "GET", "route": ROUTE,
                                                                   "status": "200"}) == len(LATENCIES)
    assert REGISTRY.get_sample_value("shop_http_requests_total", {"method": "GET", "route": ROUTE,
                                                                   "status": "404"}) == 1


async def test_the_next_turn_adds_to_them_and_an_explicit_flush_writes_at_once() -> None:
    route = ROUTE + "/again"
    metrics.observe("POST", route, 201, 0.002)
    await asyncio.sleep(0)
    metrics.observe("POST", route, 201, 0.004)
    metrics.flush()  # what a scrape does first
    labels = {"method": "POST", "route": route, "status": "201"}
    assert REGISTRY.get_sample_value("shop_http_requests_total", labels) == 2
    assert REGISTRY.get_sample_value("shop_http_request_duration_seconds_bucket", {**labels, "le": "0.0025"}) == 1
    assert REGISTRY.get_sample_value("shop_http_request_duration_seconds_bucket", {**labels, "le": "0.005"}) == 2
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to add
    assert REGISTRY.get_sample_value("shop_http_requests_total", labels) == 2


def test_outside_a_running_loop_a_request_is_written_at_once() -> None:
    route = ROUTE + "/sync"
    metrics.observe("GET", route, 200, 0.05)
    assert REGISTRY.get_sample_value("shop_http_requests_total", {"method": "GET", "route": route,
                                                                   "status": "200"}) == 1


def test_figures_left_waiting_on_a_loop_that_closed_are_written_by_the_next_one() -> None:
    route = ROUTE + "/closed"
    labels = {"method": "GET", "route": route, "status": "200"}

    async def answer(seconds: float) -> None:
        metrics.observe("GET", route, 200, seconds)

    async def answer_and_wait() -> None:
        await answer(0.02)
        await asyncio.sleep(0)

    old = asyncio.new_event_loop()
    old.call_soon(metrics.observe, "GET", route, 200, 0.01)
    old.call_soon(old.stop)  # the loop stops before the flush it scheduled runs
    old.run_forever()
    old.close()
    assert REGISTRY.get_sample_value("shop_http_requests_total", labels) in (None, 0.0)
    new = asyncio.new_event_loop()
    try:
        new.run_until_complete(answer_and_wait())
    finally:
        new.close()
    assert REGISTRY.get_sample_value("shop_http_requests_total", labels) == 2
