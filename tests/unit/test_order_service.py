"""OrderService (the order desk) on the in-memory main store: who may see an order, and the moves of its goods
(packed, shipped, delivered) in the order the domain allows."""

from __future__ import annotations

import pytest
from commerce_shop import CommerceShop

from shop.domain.errors import NotFound
from shop.domain.orders import IllegalTransition, OrderStatus


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_a_customer_sees_their_own_orders_newest_first_a_page_at_a_time(shop: CommerceShop) -> None:
    mine = [(await shop.buy(("TEE", 1), customer_id="u1")).order.number for _ in range(3)]
    await shop.buy(("CAP", 1), customer_id="u2")
    first = await shop.orders.orders_of("u1", page=1, limit=2)
    second = await shop.orders.orders_of("u1", page=2, limit=2)
    assert [o.number for o in first.items] == mine[:0:-1] and first.total == 3
    assert [o.number for o in second.items] == mine[:1]


async def test_an_order_is_seen_by_its_customer_and_staff_and_nobody_else(shop: CommerceShop) -> None:
    number = (await shop.buy(("TEE", 1), customer_id="u1")).order.number
    assert (await shop.orders.order_for(number, customer_id="u1")).number == number
    assert (await shop.orders.order_for(number, staff=True)).number == number
    for someone in ("u2", None):
        with pytest.raises(NotFound):
            await shop.orders.order_for(number, customer_id=someone)


@pytest.mark.parametrize("number", ["999999", "9" * 25])
async def test_an_unknown_or_overlong_number_is_not_found_even_for_staff(shop: CommerceShop, number: str) -> None:
    with pytest.raises(NotFound):
        await shop.orders.order_for(number, staff=True)


async def test_staff_pack_ship_and_deliver_and_the_customer_is_told_of_the_parcel(shop: CommerceShop) -> None:
    number = (await shop.buy(("TEE", 1))).order.number
    await shop.orders.fulfil(number)
    shipped = await shop.orders.ship(number, tracking="DHL-123")
    assert shipped.tracking == "DHL-123" and shop.order(number).tracking == "DHL-123"
    assert shop.emails() == [f"order-confirmation {number}", f"order-shipped {number}"]
    await shop.orders.deliver(number)
    order = shop.order(number)
    assert [status for status, _ in order.history] == [
        OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
    assert shop.store.level("TEE") == (4, 0)  # goods moves leave the stock alone


async def test_an_order_not_yet_paid_cannot_be_packed_or_shipped(shop: CommerceShop) -> None:
    number = (await shop.buy(("TEE", 1), token="tok_threeDSecure")).order.number
    for move in (shop.orders.fulfil, shop.orders.ship, shop.orders.deliver):
        with pytest.raises(IllegalTransition):
            await move(number)
    assert shop.order(number).status is OrderStatus.PENDING and shop.emails() == []


async def test_moving_an_unknown_order_is_not_found(shop: CommerceShop) -> None:
    with pytest.raises(NotFound):
        await shop.orders.fulfil("999999")
