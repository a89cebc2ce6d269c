"""The fakes the commerce unit tests stand on: each has every member of its port with the same parameters (so a
port that changes fails here, not in a puzzling service test), and the unit of work keeps what a unit wrote only
when it ends without an error, as a transaction does."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from commerce_fakes import (
    FakeCarts,
    FakeIdempotencyStore,
    FakeOrderReader,
    FakeOrderSearch,
    FakeOutbox,
    FakeShelf,
    FakeStockReader,
    FakeVoucherBook,
)
from commerce_shop import CommerceShop
from main_store_fakes import (
    FakeCommerceUnit,
    FakeLockedCarts,
    FakeMainStore,
    FakeMainUnitOfWork,
    FakeOrderRepository,
    FakeOutboxWriter,
    FakePaymentEventLog,
    FakeRefundRepository,
    FakeShipmentRepository,
    FakeStockRepository,
    FakeVoucherCounter,
)
from payment_fakes import FakeEvents, FakeGateway, FakeInStockProjection, FakeMailTemplates

from shop.domain.orders import OrderStatus
from shop.services.commerce_events import CommerceEvents
from shop.services.commerce_ports import CartRepository, IdempotencyStore, InStockProjection, OrderReader
from shop.services.email_delivery import MailTemplates
from shop.services.order_desk import OrderSearch
from shop.services.outbox import Outbox, OutboxWriter
from shop.services.payment_gateway import SimulatedGateway
from shop.services.ports import CatalogReader, StockReader
from shop.services.unit_of_work import (
    CommerceUnit,
    LockedCarts,
    MainUnitOfWork,
    OrderRepository,
    PaymentEventLog,
    RefundRepository,
    ShipmentRepository,
    StockRepository,
    VoucherCounter,
)
from shop.services.vouchers import VoucherBook

PAIRS: list[tuple[type, Any]] = [
    (FakeMainUnitOfWork, MainUnitOfWork), (FakeCommerceUnit, CommerceUnit), (FakeLockedCarts, LockedCarts),
    (FakeOrderRepository, OrderRepository), (FakeStockRepository, StockRepository),
    (FakeVoucherCounter, VoucherCounter), (FakePaymentEventLog, PaymentEventLog), (FakeOutboxWriter, OutboxWriter),
    (FakeOutbox, Outbox), (FakeCarts, CartRepository), (FakeVoucherBook, VoucherBook), (FakeOrderReader, OrderReader),
    (FakeStockReader, StockReader), (FakeIdempotencyStore, IdempotencyStore), (FakeShelf, CatalogReader),
    (FakeGateway, SimulatedGateway), (FakeEvents, CommerceEvents), (FakeMailTemplates, MailTemplates),
    (FakeInStockProjection, InStockProjection), (FakeOrderSearch, OrderSearch),
    (FakeShipmentRepository, ShipmentRepository), (FakeRefundRepository, RefundRepository),
]


def port_members(port: Any) -> dict[str, Any]:
    """The members a port asks for: its methods and properties, and attributes it only annotates."""
    members: dict[str, Any] = {}
    for cls in reversed(port.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        members.update({name: None for name in getattr(cls, "__annotations__", {}) if not name.startswith("_")})
        members.update({name: value for name, value in vars(cls).items() if not name.startswith("_")})
    return members


def shape(function: Any) -> tuple[bool, list[tuple[str, Any, bool]]]:
    """Whether it is awaited, and its parameters after `self`: name, kind, whether it has a default."""
    parameters = list(inspect.signature(function).parameters.values())[1:]
    return inspect.iscoroutinefunction(function), [
        (p.name, p.kind, p.default is not inspect.Parameter.empty) for p in parameters]


@pytest.mark.parametrize(("fake", "port"), PAIRS, ids=[fake.__name__ for fake, _ in PAIRS])
def test_each_fake_has_every_member_of_its_port_with_the_same_parameters(fake: type, port: Any) -> None:
    members = port_members(port)
    assert members, f"{port.__name__} has no members: not a port?"
    for name, wanted in members.items():
        if isinstance(wanted, property) or wanted is None:  # an attribute: set in __init__
            source = inspect.getsource(fake)
            assert hasattr(fake, name) or f"self.{name} =" in source, f"{fake.__name__} has no {name}"
            continue
        assert callable(getattr(fake, name, None)), f"{fake.__name__} has no {name}()"
        assert shape(getattr(fake, name)) == shape(wanted), f"{fake.__name__}.{name} differs from {port.__name__}'s"


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_what_a_unit_wrote_is_gone_when_it_raised(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1), token="tok_threeDSecure")
    before = shop.store.state

    async def cancel_then_fail() -> None:
        async with shop.units.begin() as unit:
            order_id, order = await unit.orders.lock(placed.order.number) or (0, placed.order)
            order.move_to(OrderStatus.CANCELED, at=shop.clock.now)
            await unit.orders.update(order_id, order)
            await unit.stock.release([("TEE", 1)])
            await unit.outbox.add("email", {"to": ["x@example.com"]})
            raise RuntimeError("something failed before the commit")

    with pytest.raises(RuntimeError):
        await cancel_then_fail()
    assert shop.store.state is before and shop.store.rollbacks == 1
    assert shop.order(placed.order.number).status is OrderStatus.PENDING
    assert shop.store.level("TEE") == (5, 1) and shop.store.queued("email") == []


async def test_an_order_read_in_a_unit_changes_only_when_it_is_stored(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1), token="tok_threeDSecure")
    async with shop.units.begin() as unit:
        found = await unit.orders.lock(placed.order.number)
        assert found is not None
        found[1].tracking = "not stored"
    assert shop.order(placed.order.number).tracking is None


async def test_after_commit_work_runs_only_once_the_unit_committed_and_its_failure_is_not_raised(
        shop: CommerceShop) -> None:
    ran: list[str] = []

    async def note(what: str) -> None:
        ran.append(what)

    async def broken() -> None:
        raise RuntimeError("the catalogue is away")

    async def noted_then_rolled_back() -> None:
        async with shop.units.begin() as unit:
            unit.after_commit(lambda: note("rolled back"))
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await noted_then_rolled_back()
    async with shop.units.begin() as unit:
        unit.after_commit(broken)
        unit.after_commit(lambda: note("committed"))
        assert ran == []
    assert ran == ["committed"] and [str(e) for e in shop.units.after_commit_failures] == ["the catalogue is away"]


async def test_a_unit_begun_inside_another_of_the_same_task_is_refused_rather_than_hanging(shop: CommerceShop) -> None:
    async with shop.units.begin():
        with pytest.raises(AssertionError, match="inside another"):
            async with shop.units.begin():
                pass


async def test_units_of_two_tasks_take_turns() -> None:
    store = FakeMainStore()
    store.set_stock("TEE", 1)
    units = FakeMainUnitOfWork(store, FakeShelf())
    order: list[str] = []

    async def hold(name: str) -> None:
        async with units.begin() as unit:
            order.append(f"{name} in")
            await asyncio.sleep(0)
            await unit.stock.reserve([("TEE", 1)])
            order.append(f"{name} out")

    results = await asyncio.gather(hold("a"), hold("b"), return_exceptions=True)
    assert order == ["a in", "a out", "b in"]  # b waited for a, then found nothing left
    assert results[0] is None and type(results[1]).__name__ == "OutOfStock"
    assert store.level("TEE") == (1, 1)
