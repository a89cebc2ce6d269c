"""OrderDesk, the staff's list of every order, on the in-memory main store: filters by state, number and e-mail,
with a field error for what cannot be a filter."""

from __future__ import annotations

import pytest
from commerce_fakes import FakeOrderSearch
from commerce_shop import CommerceShop

from shop.domain.errors import InvalidValue
from shop.domain.orders import OrderStatus
from shop.services.order_desk import OrderDesk, OrderSearch


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


@pytest.fixture
def search(shop: CommerceShop) -> FakeOrderSearch:
    return FakeOrderSearch(shop.store)


@pytest.fixture
def desk(search: FakeOrderSearch) -> OrderDesk:
    port: OrderSearch = search
    return OrderDesk(port)


async def test_staff_find_orders_by_state_number_and_address(shop: CommerceShop, desk: OrderDesk) -> None:
    paid = (await shop.buy(("TEE", 1), email="ada@example.com")).order.number
    pending = (await shop.buy(("CAP", 1), token="tok_threeDSecure", email="bob@example.com")).order.number
    assert [o.number for o in (await desk.find()).items] == [pending, paid]  # newest first
    assert [o.number for o in (await desk.find(status="pending")).items] == [pending]
    assert [o.number for o in (await desk.find(email=" ADA@")).items] == [paid]
    found = (await desk.find(number=paid[-3:])).items
    assert [(o.number, o.status) for o in found] == [(paid, OrderStatus.PAID)]


async def test_what_staff_type_is_trimmed_and_bounded_before_it_is_searched(desk: OrderDesk,
                                                                          search: FakeOrderSearch) -> None:
    await desk.find(number="  abc-" + "9" * 40, email=" x@example.com ", page=10**9)
    (asked,) = search.asked
    assert asked.number == ("ABC-" + "9" * 40)[:24] and asked.email == "x@example.com"
    assert asked.page == 100_000 and asked.status is None


@pytest.mark.parametrize(("filters", "field"), [({"status": "lost"}, "status"), ({"limit": 0}, "limit"),
                                                ({"limit": 101}, "limit")])
async def test_a_filter_that_cannot_be_is_a_field_error_not_an_empty_list(desk: OrderDesk, search: FakeOrderSearch,
                                                                         filters: dict[str, object],
                                                                         field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        await desk.find(**filters)  # type: ignore[arg-type]
    assert refused.value.field == field and search.asked == []
