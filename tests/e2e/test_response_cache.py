"""The response cache: hits skip the framework, ETags revalidate, an edit empties it within a second."""

from __future__ import annotations

import asyncio

import httpx

from shop.bootstrap import build_catalog, build_databases
from shop.config import Settings
from shop.domain.catalog import Product, Variant
from shop.domain.money import Money


async def test_a_second_anonymous_read_is_a_hit_with_the_same_body(cached_client: httpx.AsyncClient) -> None:
    first = await cached_client.get("/api/v1/products", params={"limit": 3})
    second = await cached_client.get("/api/v1/products", params={"limit": 3})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    # the entry keeps the security headers as first sent: a hit carries them without passing that middleware
    for answer in (first, second):
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["referrer-policy"]
        assert "strict-transport-security" not in answer.headers  # plain http
    secure = await cached_client.get("https://test/api/v1/products", params={"limit": 3})
    assert secure.headers["x-cache"] == "miss"  # an https read is its own entry: it carries HSTS
    assert secure.headers["strict-transport-security"].startswith("max-age=")


async def test_an_etag_gets_a_304_without_a_body(cached_client: httpx.AsyncClient) -> None:
    etag = (await cached_client.get("/api/v1/categories")).headers["etag"]
    again = await cached_client.get("/api/v1/categories", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert again.headers["x-content-type-options"] == "nosniff" and again.headers["cache-control"] == "no-cache"
    assert "content-type" not in again.headers and "content-length" not in again.headers
    other = await cached_client.get("/api/v1/categories", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.content


async def test_requests_with_credentials_are_never_served_from_the_cache(cached_client: httpx.AsyncClient) -> None:
    await cached_client.get("/api/v1/products", params={"limit": 2})
    private = await cached_client.get("/api/v1/products", params={"limit": 2},
                                      headers={"Authorization": "Bearer x"})
    assert "x-cache" not in private.headers


async def test_errors_are_not_cached(cached_client: httpx.AsyncClient) -> None:
    for _ in range(2):
        response = await cached_client.get("/api/v1/products", params={"limit": 0})
        assert response.status_code == 422 and "x-cache" not in response.headers


async def test_a_catalogue_edit_is_visible_within_a_second(cached_client: httpx.AsyncClient,
                                                           demo_settings: Settings) -> None:
    before = (await cached_client.get("/api/v1/products", params={"limit": 1})).json()
    assert (await cached_client.get("/api/v1/products", params={"limit": 1})).headers["x-cache"] == "hit"
    databases = build_databases(demo_settings)
    try:
        catalog = build_catalog(demo_settings, databases).writer
        _, next_id = await catalog.next_ids()
        new = Product(id=next_id, slug=f"cache-test-{next_id}", title="Cache Test Lamp", description="new",
                      category_id=None, variants=[Variant(sku=f"CACHE-{next_id}", price=Money.of("1.00", "EUR"))])
        await catalog.add_products([new], available={})
    finally:
        await databases.dispose()
    async with asyncio.timeout(1.0):
        while True:
            after = (await cached_client.get("/api/v1/products", params={"limit": 1})).json()
            if after["total"] == before["total"] + 1:
                break
            await asyncio.sleep(0.05)
    assert (await cached_client.get(f"/api/v1/products/cache-test-{next_id}")).status_code == 200


async def test_the_metrics_count_what_the_cache_answered(cached_client: httpx.AsyncClient) -> None:
    def figure(text: str, outcome: str) -> float:
        line = f'shop_response_cache_reads_total{{outcome="{outcome}"}} '
        return sum(float(row[len(line):]) for row in text.splitlines() if row.startswith(line))

    before = (await cached_client.get("/metrics")).text
    for _ in range(3):
        await cached_client.get("/api/v1/products", params={"limit": 4, "sort": "title"})
    after = (await cached_client.get("/metrics")).text
    assert figure(after, "miss") - figure(before, "miss") == 1
    assert figure(after, "hit") - figure(before, "hit") == 2
