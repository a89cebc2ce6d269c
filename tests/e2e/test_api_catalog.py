"""The catalogue API over HTTP, against the seeded demo shop on every database."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

PROBLEM = "application/problem+json"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "stores": {"main": "ok", "users": "ok", "posts": "ok"}}


async def test_openapi_documents_the_catalogue(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/api/v1/products", "/api/v1/products/{slug}", "/api/v1/categories", "/healthz", "/readyz"} <= set(
        spec["paths"])
    params = {p["name"] for p in spec["paths"]["/api/v1/products"]["get"]["parameters"]}
    assert params == {"q", "category", "min_price", "max_price", "in_stock", "sort", "page", "limit"}


async def test_the_demo_shop_has_a_category_tree(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/categories")).json()
    assert body["total"] == len(body["items"]) >= 10
    ids = {c["id"] for c in body["items"]}
    seen: set[int] = set()
    for category in body["items"]:
        assert category["parent_id"] is None or category["parent_id"] in seen, "parents come first"
        seen.add(category["id"])
    assert any(c["parent_id"] in ids for c in body["items"])


async def test_a_product_list_page_has_the_contract_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products", params={"limit": 24})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"items", "total", "page", "limit"}
    assert (body["page"], body["limit"], len(body["items"])) == (1, 24, 24)
    assert body["total"] >= 200
    card = body["items"][0]
    assert set(card) == {"slug", "title", "price", "image", "in_stock", "category_id", "rank"}
    assert isinstance(card["price"]["amount"], str) and card["price"]["currency"] == "EUR"
    Decimal(card["price"]["amount"])  # a decimal written as text, never a float


async def test_paging_walks_the_whole_list_once(client: httpx.AsyncClient) -> None:
    total = (await client.get("/api/v1/products", params={"limit": 1})).json()["total"]
    slugs: list[str] = []
    for page in range(1, total // 100 + 2):
        slugs += [p["slug"] for p in (await client.get("/api/v1/products", params={"limit": 100, "page": page,
                                                                                   "sort": "title"})).json()["items"]]
    assert len(slugs) == len(set(slugs)) == total


async def test_filters_and_sorting_hold_for_every_item(client: httpx.AsyncClient) -> None:
    params = {"min_price": "20", "max_price": "100.5", "in_stock": "true", "sort": "price", "limit": 100}
    items = (await client.get("/api/v1/products", params=params)).json()["items"]
    prices = [Decimal(i["price"]["amount"]) for i in items]
    assert items and all(Decimal(20) <= p <= Decimal("100.5") for p in prices)
    assert prices == sorted(prices)
    assert all(i["in_stock"] for i in items)
    descending = (await client.get("/api/v1/products", params={"sort": "-price", "limit": 5})).json()["items"]
    top = [Decimal(i["price"]["amount"]) for i in descending]
    assert top == sorted(top, reverse=True)


async def test_a_parent_category_lists_its_children_products(client: httpx.AsyncClient) -> None:
    categories = (await client.get("/api/v1/categories")).json()["items"]
    clothing = next(c for c in categories if c["slug"] == "clothing")
    children = {c["id"] for c in categories if c["parent_id"] == clothing["id"]}
    body = (await client.get("/api/v1/products", params={"category": "clothing", "limit": 100})).json()
    assert body["total"] > 0 and {i["category_id"] for i in body["items"]} <= children | {clothing["id"]}
    for child in children:
        one = (await client.get("/api/v1/products", params={"category": next(
            c["slug"] for c in categories if c["id"] == child), "limit": 1})).json()
        assert 0 < one["total"] < body["total"]


async def test_search_ranks_matches_by_relevance(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/products", params={"q": "wool sweater", "limit": 50})).json()
    assert body["total"] > 0
    titles = [i["title"].lower() for i in body["items"]]
    assert all("wool" in t and "sweater" in t for t in titles)
    ranks = [i["rank"] for i in body["items"]]
    assert ranks == sorted(ranks, reverse=True)


async def test_a_product_shows_variants_prices_and_stock(client: httpx.AsyncClient) -> None:
    slug = (await client.get("/api/v1/products", params={"category": "t-shirts", "limit": 1})).json()["items"][0][
        "slug"]
    product = (await client.get(f"/api/v1/products/{slug}")).json()
    assert product["slug"] == slug and product["variants"]
    assert [c["slug"] for c in product["breadcrumbs"]] == ["clothing", "t-shirts"]
    for variant in product["variants"]:
        assert variant["available"] >= 0 and variant["in_stock"] == (variant["available"] > 0)
        assert set(variant["options"]) <= {"size", "colour"}
    amounts = [Decimal(v["price"]["amount"]) for v in product["variants"]]
    assert product["price_range"]["min"]["amount"] == str(min(amounts))
    assert product["in_stock"] == any(v["in_stock"] for v in product["variants"])


async def test_a_placeholder_image_is_served_for_every_product(client: httpx.AsyncClient) -> None:
    # the seeded products have placeholder images; products other tests add to the shared shop may have none
    cards = (await client.get("/api/v1/products", params={"limit": 100, "sort": "title"})).json()["items"]
    card = next(c for c in cards if c["image"])
    image = await client.get(card["image"]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
    assert image.text.startswith("<svg") and "immutable" in image.headers["cache-control"]


@pytest.mark.parametrize(("query", "field", "status"), [
    ({"limit": "0"}, "limit", 422),
    ({"limit": "10000"}, "limit", 422),
    ({"page": "-1"}, "page", 422),
    ({"page": "abc"}, "page", 422),
    ({"sort": "bogus"}, "sort", 422),
    ({"min_price": "abc"}, "min_price", 422),
    ({"min_price": "-1"}, "min_price", 422),
    ({"max_price": "NaN"}, "max_price", 422),
    ({"max_price": "Infinity"}, "max_price", 422),
    ({"min_price": "50", "max_price": "10"}, "min_price", 422),
    ({"in_stock": "perhaps"}, "in_stock", 422),
    ({"q": "x" * 201}, "q", 422),
    ({"sort": "relevance"}, "sort", 422),
    ({"category": "Not A Slug!"}, "category", 422),
])
async def test_bad_parameters_get_a_problem_naming_the_field(
        client: httpx.AsyncClient, query: dict[str, str], field: str, status: int) -> None:
    response = await client.get("/api/v1/products", params=query)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and field in body["detail"]
    assert field in {e["field"] for e in body["errors"]}


@pytest.mark.parametrize("path", ["/api/v1/products/no-such-thing", "/api/v1/products?category=no-such-category",
                                  "/api/v1/nowhere"])
async def test_unknown_things_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 404


async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/categories")
    assert response.status_code == 405 and response.headers["content-type"] == PROBLEM


async def test_an_unpublished_product_is_hidden(client: httpx.AsyncClient, demo_settings) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from shop.bootstrap import build_databases

    databases = build_databases(demo_settings)
    try:
        async with databases.engine("posts").connect() as conn:
            slug = await conn.scalar(text("SELECT slug FROM products WHERE published = false ORDER BY id LIMIT 1"))
    finally:
        await databases.dispose()
    assert slug
    assert (await client.get(f"/api/v1/products/{slug}")).status_code == 404
    listed = (await client.get("/api/v1/products", params={"q": slug.split("-")[0], "limit": 100})).json()["items"]
    assert slug not in {i["slug"] for i in listed}


async def test_a_store_that_is_down_gives_503_problems_not_500(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings, open_client

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/main.db",
                             posts="postgresql://postgres@127.0.0.1:1/nowhere", db_connect_timeout=1)
    async for client in open_client(settings):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["content-type"] == PROBLEM
        assert ready.json()["stores"]["main"] == "ok" and "127.0.0.1:1" in ready.json()["stores"]["posts"]
        listing = await client.get("/api/v1/products")
        assert listing.status_code == 503 and listing.headers["content-type"] == PROBLEM
        assert "posts" in listing.json()["detail"] and listing.headers["retry-after"]
