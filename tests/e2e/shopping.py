"""Steps the commerce tests share: accounts with a role, products with known stock, carts, a checkout body."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from shop.bootstrap import build_auth, build_databases
from shop.config import Settings
from shop.domain.inventory import StockLevel
from shop.domain.users import Role
from shop.infrastructure.db.main.stock import SqlStock

PROBLEM = "application/problem+json"
PASSWORD = "shopper-password-long"
ROLES = {Role.CUSTOMER: frozenset({Role.CUSTOMER}), Role.STAFF: frozenset({Role.CUSTOMER, Role.STAFF}),
         Role.ADMIN: frozenset(Role)}


async def signed_in(client: httpx.AsyncClient, settings: Settings, role: Role = Role.CUSTOMER,
                    **login: Any) -> tuple[str, dict[str, str]]:
    """A new account with `role`, signed in: its e-mail and the Authorization header."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    databases = build_databases(settings)
    try:
        await build_auth(settings, databases).register(email=email, password=PASSWORD, roles=ROLES[role])
    finally:
        await databases.dispose()
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, **login})
    assert response.status_code == 200, response.text
    return email, {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_product(client: httpx.AsyncClient, staff: dict[str, str], *, stock: int, price: str = "20.00",
                      weight_grams: int = 500) -> str:
    """A published product with one variant; returns its SKU."""
    sku = f"T-{uuid.uuid4().hex[:12].upper()}"
    body = {"title": f"Test Mug {sku}", "description": "For tests.", "published": True,
            "variants": [{"sku": sku, "price": price, "stock": stock, "weight_grams": weight_grams}]}
    response = await client.post("/api/v1/products", json=body, headers=staff)
    assert response.status_code == 201, response.text
    return sku


async def new_cart(client: httpx.AsyncClient, headers: dict[str, str] | None = None,
                   items: dict[str, int] | None = None) -> str:
    response = await client.post("/api/v1/carts", headers=headers or {})
    assert response.status_code in (200, 201), response.text
    cart_id: str = response.json()["id"]
    for sku, quantity in (items or {}).items():
        added = await client.post(f"/api/v1/carts/{cart_id}/items", json={"sku": sku, "quantity": quantity},
                                  headers=headers or {})
        assert added.status_code == 201, added.text
    return cart_id


def address(**changes: str) -> dict[str, str]:
    return {"name": "Ada Lovelace", "line1": "Hauptstraße 1", "city": "Berlin", "postal_code": "10115",
            "country": "DE", **changes}


def checkout_body(cart_id: str, *, token: str = "tok_visa", email: str = "guest@example.com",
                  method: str = "standard", **extra: Any) -> dict[str, Any]:
    return {"cart_id": cart_id, "email": email, "shipping_address": address(), "shipping_method": method,
            "payment": {"token": token}, **extra}


async def stock_of(settings: Settings, sku: str) -> StockLevel:
    databases = build_databases(settings)
    try:
        levels = await SqlStock(databases.store("main")).levels([sku])
    finally:
        await databases.dispose()
    return levels[sku]
