from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.domain.errors import InvalidQuantity, InvalidValue, OutOfStock
from shop.domain.inventory import StockLevel


def test_reserving_holds_stock_without_removing_it_from_hand() -> None:
    level = StockLevel("TEE-M", on_hand=5)
    level.reserve(2)
    assert (level.on_hand, level.reserved, level.available) == (5, 2, 3)
    assert level.in_stock


def test_releasing_gives_reserved_stock_back() -> None:
    level = StockLevel("TEE-M", on_hand=5, reserved=3)
    level.release(2)
    assert (level.reserved, level.available) == (1, 4)


def test_reserving_the_last_unit_leaves_nothing_in_stock() -> None:
    level = StockLevel("TEE-M", on_hand=2, reserved=1)
    level.reserve(1)
    assert level.available == 0
    assert not level.in_stock


def test_two_buyers_cannot_take_the_last_unit() -> None:
    level = StockLevel("TEE-M", on_hand=1)
    level.reserve(1)
    with pytest.raises(OutOfStock):
        level.reserve(1)


def test_out_of_stock_says_what_was_requested_and_what_is_available() -> None:
    level = StockLevel("TEE-M", on_hand=5, reserved=2)
    with pytest.raises(OutOfStock) as error:
        level.reserve(4)
    assert (error.value.sku, error.value.requested, error.value.available) == ("TEE-M", 4, 3)
    assert "TEE-M: 4 requested, 3 available" in str(error.value)


def test_a_refused_reservation_changes_nothing() -> None:
    level = StockLevel("TEE-M", on_hand=5, reserved=2)
    with pytest.raises(OutOfStock):
        level.reserve(10)
    assert level.reserved == 2


def test_nothing_on_hand_is_not_in_stock() -> None:
    assert not StockLevel("TEE-M", on_hand=0).in_stock


@pytest.mark.parametrize("quantity", [0, -1])
def test_reserving_needs_a_positive_quantity(quantity: int) -> None:
    level = StockLevel("TEE-M", on_hand=5)
    with pytest.raises(InvalidQuantity) as error:
        level.reserve(quantity)
    assert error.value.quantity == quantity
    assert level.reserved == 0


@pytest.mark.parametrize("quantity", [0, -1, 3])
def test_releasing_needs_a_positive_quantity_no_more_than_is_reserved(quantity: int) -> None:
    level = StockLevel("TEE-M", on_hand=5, reserved=2)
    with pytest.raises(InvalidQuantity) as error:
        level.release(quantity)
    assert error.value.quantity == quantity
    assert level.reserved == 2


def test_stock_on_hand_cannot_be_negative() -> None:
    with pytest.raises(InvalidValue) as error:
        StockLevel("TEE-M", on_hand=-1)
    assert error.value.field == "on_hand"


@pytest.mark.parametrize(("on_hand", "reserved"), [(5, -1), (5, 6), (0, 1)])
def test_reserved_stock_lies_between_zero_and_what_is_on_hand(on_hand: int, reserved: int) -> None:
    with pytest.raises(InvalidValue) as error:
        StockLevel("TEE-M", on_hand=on_hand, reserved=reserved)
    assert error.value.field == "reserved"


def test_everything_on_hand_may_be_reserved() -> None:
    assert StockLevel("TEE-M", on_hand=3, reserved=3).available == 0


@given(on_hand=st.integers(min_value=0, max_value=50),
       moves=st.lists(st.tuples(st.booleans(), st.integers(min_value=-2, max_value=20)), max_size=30))
def test_no_sequence_of_reservations_and_releases_oversells(on_hand: int,
                                                            moves: list[tuple[bool, int]]) -> None:
    level = StockLevel("TEE-M", on_hand=on_hand)
    for reserving, quantity in moves:
        before = level.reserved
        try:
            if reserving:
                level.reserve(quantity)
            else:
                level.release(quantity)
        except (InvalidQuantity, OutOfStock):
            assert level.reserved == before
        else:
            assert level.reserved == before + (quantity if reserving else -quantity)
        assert 0 <= level.reserved <= level.on_hand == on_hand
        assert level.available == on_hand - level.reserved


@pytest.mark.parametrize("quantity", [1.5, True, "2"])
def test_only_whole_numbers_of_units_can_be_reserved_or_released(quantity: object) -> None:
    level = StockLevel("TEE-M", on_hand=5, reserved=2)
    with pytest.raises(InvalidQuantity):
        level.reserve(quantity)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuantity):
        level.release(quantity)  # type: ignore[arg-type]
    assert level.reserved == 2
