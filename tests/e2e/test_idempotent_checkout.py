"""A checkout whose answer was lost (the database went away after the order committed) is finished by a retry
with the same Idempotency-Key: the buyer gets the order it made, paid once, never a second order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from shop.bootstrap import build_databases, build_services
from shop.config import Settings
from shop.domain.users import Role
from shop.infrastructure.db.main.tables import idempotency_keys, orders
from shop.infrastructure.db.types import utcnow
from shop.services.ports import StoreUnavailable
from shop.services.shop import ShopServices
from shop.web.app import create_app
from tests.e2e.shopping import checkout_body, new_cart, new_product, signed_in, stock_of


@dataclass
class Shop:
    client: httpx.AsyncClient
    services: ShopServices
    settings: Settings


@pytest_asyncio.fixture
async def shop(demo_settings: Settings) -> AsyncIterator[Shop]:
    settings = demo_settings.model_copy(update={"response_cache": False})
    services = build_services(settings)
    app = create_app(services, settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield Shop(client, services, settings)


def fail_once(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Make owner.name raise StoreUnavailable the first time it is called, as a database going away would."""
    real = getattr(owner, name)
    calls: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise StoreUnavailable("main", "db.test", "connection was closed in the middle of operation")
        return await real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


async def _orders_of_cart(settings: Settings, cart_id: str) -> list[tuple[str, str, str]]:
    databases = build_databases(settings)
    try:
        async with databases.store("main").read() as conn:
            rows = await conn.execute(select(orders.c.number, orders.c.status, orders.c.payment_status)
                                      .where(orders.c.cart_id == cart_id))
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await databases.dispose()


async def _bought(shop: Shop, units: int = 2) -> tuple[str, str, dict[str, str]]:
    staff = (await signed_in(shop.client, shop.settings, Role.STAFF))[1]
    sku = await new_product(shop.client, staff, stock=10)
    cart = await new_cart(shop.client, items={sku: units})
    return sku, cart, {"Idempotency-Key": str(uuid.uuid4())}


async def test_an_order_paid_before_its_answer_was_lost_is_answered_to_the_retry(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    sku, cart, key = await _bought(shop)
    fail_once(monkeypatch, shop.services.idempotency._store, "finish")  # the order is paid, its answer not kept
    lost = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert lost.status_code == 503 and lost.headers["retry-after"]
    [(number, status, payment)] = await _orders_of_cart(shop.settings, cart)
    assert (status, payment) == ("paid", "captured")

    retried = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "true"
    order = retried.json()
    assert order["number"] == number and order["status"] == "paid"
    seen = await shop.client.get(f"/api/v1/orders/{number}", headers={"X-Order-Key": order["access_key"]})
    assert seen.status_code == 200  # the guest's access key is the one the lost answer carried

    again = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert again.status_code == 201 and again.json() == order
    assert len(await _orders_of_cart(shop.settings, cart)) == 1
    assert (await stock_of(shop.settings, sku)).on_hand == 8  # taken once


async def test_a_charge_whose_outcome_never_reached_the_order_is_asked_again_and_paid_once(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    sku, cart, key = await _bought(shop)
    charges: list[str] = []
    gateway = shop.services.checkout._gateway
    real_charge = gateway.charge

    async def counted(request: Any) -> Any:
        result = await real_charge(request)
        charges.append(result.payment_ref)
        return result

    monkeypatch.setattr(gateway, "charge", counted)
    fail_once(monkeypatch, shop.services.checkout.payments, "record_charge")  # the bank said yes; the store went away
    lost = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert lost.status_code == 503
    [(number, status, payment)] = await _orders_of_cart(shop.settings, cart)
    assert (status, payment) == ("pending", "pending")

    retried = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert retried.status_code == 201, retried.text
    assert retried.json()["number"] == number and retried.json()["status"] == "paid"
    assert len(charges) == 2 and charges[0] == charges[1]  # asked again under the same gateway key: one payment
    assert await _orders_of_cart(shop.settings, cart) == [(number, "paid", "captured")]
    level = await stock_of(shop.settings, sku)
    assert (level.on_hand, level.reserved) == (8, 0)


async def test_a_retry_while_the_key_is_held_is_told_when_to_come_back(shop: Shop,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, cart, key = await _bought(shop)
    store = shop.services.idempotency._store
    fail_once(monkeypatch, store, "finish")
    fail_once(monkeypatch, store, "release")  # the store is gone for the clean-up too: the key stays locked
    lost = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert lost.status_code == 503

    held = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert held.status_code == 409, held.text
    assert 1 <= int(held.headers["retry-after"]) <= 15

    databases = build_databases(shop.settings)  # the lock runs out
    try:
        async with databases.store("main").write() as conn:
            await conn.execute(update(idempotency_keys).where(idempotency_keys.c.key == key["Idempotency-Key"])
                               .values(locked_until=utcnow() - timedelta(seconds=1)))
            placed = (await conn.execute(select(func.count()).select_from(orders)
                                         .where(orders.c.cart_id == cart))).scalar_one()
        assert placed == 1
    finally:
        await databases.dispose()
    retried = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert retried.status_code == 201, retried.text


async def test_a_request_that_failed_before_placing_an_order_runs_again_in_full(
        shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    _, cart, key = await _bought(shop)
    fail_once(monkeypatch, shop.services.checkout, "place_order")
    assert (await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)).status_code == 503
    assert await _orders_of_cart(shop.settings, cart) == []
    retried = await shop.client.post("/api/v1/checkout", json=checkout_body(cart), headers=key)
    assert retried.status_code == 201 and retried.headers["idempotent-replayed"] == "false"
