"""Staff manage products over HTTP: roles are enforced, bad input is refused, the shop sees the change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_auth, build_databases
from shop.config import Settings
from shop.domain.users import Role

PROBLEM = "application/problem+json"
PASSWORD = "staff-password-long"


async def _account(settings: Settings, role: Role) -> str:
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    databases = build_databases(settings)
    try:
        auth = build_auth(settings, databases)
        roles = {Role.CUSTOMER: frozenset({Role.CUSTOMER}), Role.STAFF: frozenset({Role.CUSTOMER, Role.STAFF}),
                 Role.ADMIN: frozenset(Role)}[role]
        await auth.register(email=email, password=PASSWORD, roles=roles)
    finally:
        await databases.dispose()
    return email


@pytest_asyncio.fixture
async def tokens(client: httpx.AsyncClient, demo_settings: Settings) -> AsyncIterator[dict[Role, dict[str, str]]]:
    headers = {}
    for role in Role:
        email = await _account(demo_settings, role)
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        headers[role] = {"Authorization": f"Bearer {login.json()['access_token']}"}
    yield headers


def _new(**extra: object) -> dict[str, object]:
    sku = f"LAMP-{uuid.uuid4().hex[:8].upper()}"
    return {"title": f"Desk Lamp {uuid.uuid4().hex[:6]}", "description": "Warm light.", "category": "lighting",
            "published": True, "attributes": {"material": "brass"},
            "variants": [{"sku": sku, "price": "49.90", "options": {"colour": "Brass"}, "stock": 4},
                         {"sku": sku + "-B", "price": "54.90", "options": {"colour": "Black"}, "stock": 0}],
            **extra}


async def test_staff_create_a_product_that_customers_then_find(client: httpx.AsyncClient,
                                                               tokens: dict[Role, dict[str, str]]) -> None:
    body = _new()
    created = await client.post("/api/v1/products", json=body, headers=tokens[Role.STAFF])
    assert created.status_code == 201, created.text
    product = created.json()
    assert created.headers["location"] == f"/api/v1/products/{product['slug']}"
    assert product["title"] == body["title"] and product["category"]["slug"] == "lighting"
    assert [v["available"] for v in product["variants"]] == [4, 0]
    assert product["price_range"]["min"] == {"amount": "49.90", "currency": "EUR"}
    public = await client.get(f"/api/v1/products/{product['slug']}")
    assert public.status_code == 200 and public.json()["variants"][0]["in_stock"] is True
    found = (await client.get("/api/v1/products", params={"q": str(body["title"]).split()[-1]})).json()
    assert product["slug"] in {i["slug"] for i in found["items"]}


async def test_staff_change_and_unpublish_a_product(client: httpx.AsyncClient,
                                                    tokens: dict[Role, dict[str, str]]) -> None:
    slug = (await client.post("/api/v1/products", json=_new(), headers=tokens[Role.STAFF])).json()["slug"]
    changed = await client.patch(f"/api/v1/products/{slug}", headers=tokens[Role.STAFF],
                                 json={"title": "Renamed Lamp", "published": False})
    assert changed.status_code == 200 and changed.json()["title"] == "Renamed Lamp"
    assert changed.json()["published"] is False and len(changed.json()["variants"]) == 2
    assert (await client.get(f"/api/v1/products/{slug}")).status_code == 404


async def test_only_admins_delete(client: httpx.AsyncClient, tokens: dict[Role, dict[str, str]]) -> None:
    slug = (await client.post("/api/v1/products", json=_new(), headers=tokens[Role.STAFF])).json()["slug"]
    assert (await client.delete(f"/api/v1/products/{slug}", headers=tokens[Role.STAFF])).status_code == 403
    assert (await client.delete(f"/api/v1/products/{slug}", headers=tokens[Role.ADMIN])).status_code == 204
    assert (await client.get(f"/api/v1/products/{slug}")).status_code == 404
    assert (await client.delete(f"/api/v1/products/{slug}", headers=tokens[Role.ADMIN])).status_code == 404


async def test_customers_and_strangers_cannot_touch_the_catalogue(client: httpx.AsyncClient,
                                                                  tokens: dict[Role, dict[str, str]]) -> None:
    anonymous = await client.post("/api/v1/products", json=_new())
    customer = await client.post("/api/v1/products", json=_new(), headers=tokens[Role.CUSTOMER])
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert customer.status_code == 403 and customer.headers["content-type"] == PROBLEM
    slug = (await client.get("/api/v1/products", params={"limit": 1})).json()["items"][0]["slug"]
    assert (await client.patch(f"/api/v1/products/{slug}", json={"title": "x"},
                               headers=tokens[Role.CUSTOMER])).status_code == 403


@pytest.mark.parametrize(("change", "field"), [
    ({"id": 7}, "id"),
    ({"in_stock": True}, "in_stock"),
    ({"price_min": "1.00"}, "price_min"),
    ({"variants": [{"sku": "LOW-1", "price": 19.99}]}, "variants.0.price"),
    ({"variants": [{"sku": "LOW-1", "price": "abc"}]}, "variants.0.price"),
    ({"variants": [{"sku": "LOW-1", "price": "-1"}]}, "variants.0.price"),
    ({"variants": [{"sku": "lower case", "price": "1"}]}, "variants.0.sku"),
    ({"variants": [{"sku": "DUP", "price": "1"}, {"sku": "DUP", "price": "2"}]}, "variants"),
    ({"variants": []}, "variants"),
    ({"category": "no-such-category"}, "category"),
    ({"slug": "Bad Slug!"}, "slug"),
    ({"images": [{"url": "javascript:alert(1)"}]}, "images.0.url"),
    ({"variants": [{"sku": "LOW-1", "price": "1", "weight_grams": -1}]}, "variants.0.weight_grams"),
    ({"variants": [{"sku": "LOW-1", "price": "1", "weight_grams": 2_000_000}]}, "variants.0.weight_grams"),
    ({"variants": [{"sku": "LOW-1", "price": "1", "weight_grams": "abc"}]}, "variants.0.weight_grams"),
])
async def test_bad_product_input_gets_a_problem_naming_the_field(
        client: httpx.AsyncClient, tokens: dict[Role, dict[str, str]], change: dict[str, object], field: str) -> None:
    response = await client.post("/api/v1/products", json=_new(**change), headers=tokens[Role.STAFF])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_staff_set_a_shipping_weight_that_the_product_then_shows(
        client: httpx.AsyncClient, tokens: dict[Role, dict[str, str]]) -> None:
    body = _new()
    variants = body["variants"]
    assert isinstance(variants, list)
    variants[0]["weight_grams"] = 1850  # the second variant leaves it out
    created = await client.post("/api/v1/products", json=body, headers=tokens[Role.STAFF])
    assert created.status_code == 201, created.text
    assert [v["weight_grams"] for v in created.json()["variants"]] == [1850, 0]

    slug = created.json()["slug"]
    detail = (await client.get(f"/api/v1/products/{slug}")).json()
    assert [v["weight_grams"] for v in detail["variants"]] == [1850, 0]

    changed = await client.patch(f"/api/v1/products/{slug}", headers=tokens[Role.STAFF], json={
        "variants": [{"sku": variants[0]["sku"], "price": "49.90", "weight_grams": 1_000_000}]})
    assert changed.status_code == 200, changed.text
    detail = (await client.get(f"/api/v1/products/{slug}")).json()
    assert [v["weight_grams"] for v in detail["variants"]] == [1_000_000]


async def test_a_taken_slug_or_sku_is_a_conflict(client: httpx.AsyncClient,
                                                 tokens: dict[Role, dict[str, str]]) -> None:
    first = (await client.post("/api/v1/products", json=_new(), headers=tokens[Role.STAFF])).json()
    same_slug = await client.post("/api/v1/products", json=_new(slug=first["slug"]), headers=tokens[Role.STAFF])
    sku = first["variants"][0]["sku"]
    same_sku = await client.post("/api/v1/products", json=_new(variants=[{"sku": sku, "price": "1.00"}]),
                                 headers=tokens[Role.STAFF])
    assert same_slug.status_code == same_sku.status_code == 409


async def test_an_edit_reaches_the_cached_storefront_within_a_second(cached_client: httpx.AsyncClient,
                                                                     demo_settings: Settings) -> None:
    email = await _account(demo_settings, Role.STAFF)
    token = (await cached_client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    staff = {"Authorization": f"Bearer {token['access_token']}"}
    slug = (await cached_client.post("/api/v1/products", json=_new(), headers=staff)).json()["slug"]
    async with asyncio.timeout(2.0):  # the creation itself moves the version: let the watcher see it first
        while (await cached_client.get(f"/api/v1/products/{slug}")).headers["x-cache"] != "hit":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await cached_client.patch(f"/api/v1/products/{slug}", json={"title": "Fresh Title"}, headers=staff)
    async with asyncio.timeout(1.0):
        while (await cached_client.get(f"/api/v1/products/{slug}")).json()["title"] != "Fresh Title":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
