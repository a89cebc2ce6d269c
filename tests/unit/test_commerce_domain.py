"""The commerce domain without I/O: carts, vouchers, prices with shipping and tax, and the order state machine."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.domain.cart import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    Cart,
    CartClosed,
    CartStatus,
    check_quantity,
)
from shop.domain.discounts import Voucher, VoucherKind, VoucherNotApplicable, normalize_code, round_money
from shop.domain.errors import Conflict, CurrencyMismatch, InvalidValue, NotFound
from shop.domain.money import Money, minor_units
from shop.domain.orders import (
    HOLDS_RESERVATION,
    IllegalTransition,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    check_transition,
    order_number,
)
from shop.domain.pricing import Address, PricedLine, ShippingKind, ShippingMethod, TaxTable, Totals, price_order

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def new_cart(*, status: CartStatus = CartStatus.OPEN, cart_id: str = "cart-1") -> Cart:
    return Cart(id=cart_id, customer_id=None, created_at=T0, updated_at=T0, status=status)


def ids(prefix: str = "line") -> Callable[[], str]:
    """New line ids in order: line-1, line-2, …"""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"


# --- quantities ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [1, 2, 50, MAX_LINE_QUANTITY])
def test_a_whole_quantity_from_one_to_ninety_nine_is_accepted(quantity: int) -> None:
    assert check_quantity(quantity) == quantity


@pytest.mark.parametrize("quantity", [0, -1, 100, 10**9, True, False, 1.5, 2.0, "3", None, Decimal(2)])
def test_a_quantity_that_is_not_a_whole_number_from_one_to_ninety_nine_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidValue) as error:
        check_quantity(quantity)
    assert error.value.field == "quantity"
    assert "1 to 99" in error.value.message


def test_a_refused_quantity_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidValue) as error:
        check_quantity(0, field="items[2].quantity")
    assert error.value.field == "items[2].quantity"


def test_the_cart_limits_are_ninety_nine_units_and_fifty_lines() -> None:
    assert (MAX_LINE_QUANTITY, MAX_LINES) == (99, 50)


# --- carts -----------------------------------------------------------------------------------------------------


def test_adding_a_new_sku_makes_a_line_with_the_id_given() -> None:
    cart = new_cart()
    line = cart.add("TEE-M", 2, new_line_id="l1")
    assert (line.id, line.sku, line.quantity) == ("l1", "TEE-M", 2)
    assert cart.lines == [line] and not cart.empty


def test_adding_a_sku_already_in_the_cart_raises_its_quantity_instead_of_adding_a_line() -> None:
    cart = new_cart()
    cart.add("TEE-M", 2, new_line_id="l1")
    line = cart.add("TEE-M", 3, new_line_id="l2")
    assert (line.id, line.quantity) == ("l1", 5)
    assert len(cart.lines) == 1


def test_a_line_may_reach_exactly_ninety_nine_units() -> None:
    cart = new_cart()
    cart.add("TEE-M", 98, new_line_id="l1")
    assert cart.add("TEE-M", 1, new_line_id="l2").quantity == 99


def test_adding_to_a_line_past_ninety_nine_units_is_refused_and_changes_nothing() -> None:
    cart = new_cart()
    cart.add("TEE-M", 90, new_line_id="l1")
    with pytest.raises(InvalidValue) as error:
        cart.add("TEE-M", 10, new_line_id="l2")
    assert error.value.field == "quantity"
    assert [(line.sku, line.quantity) for line in cart.lines] == [("TEE-M", 90)]


@pytest.mark.parametrize("quantity", [0, -1, 100, True, 1.5])
def test_adding_a_bad_quantity_is_refused_and_adds_no_line(quantity: object) -> None:
    cart = new_cart()
    with pytest.raises(InvalidValue) as error:
        cart.add("TEE-M", quantity, new_line_id="l1")  # type: ignore[arg-type]
    assert error.value.field == "quantity"
    assert cart.empty


@pytest.mark.parametrize("sku", ["tee-m", "", "TEE M", "-TEE", "X" * 65])
def test_adding_a_malformed_sku_is_refused(sku: str) -> None:
    cart = new_cart()
    with pytest.raises(InvalidValue) as error:
        cart.add(sku, 1, new_line_id="l1")
    assert error.value.field == "sku"
    assert cart.empty


def test_a_cart_holds_fifty_lines_and_refuses_the_fifty_first() -> None:
    cart = new_cart()
    for n in range(MAX_LINES):
        cart.add(f"SKU-{n}", 1, new_line_id=f"l{n}")
    with pytest.raises(InvalidValue) as error:
        cart.add("SKU-ONE-TOO-MANY", 1, new_line_id="l-extra")
    assert error.value.field == "sku" and "50" in error.value.message
    assert len(cart.lines) == MAX_LINES
    # a SKU already in a full cart can still be raised
    assert cart.add("SKU-0", 4, new_line_id="l-again").quantity == 5


def test_setting_a_quantity_replaces_it_within_the_limits() -> None:
    cart = new_cart()
    cart.add("TEE-M", 2, new_line_id="l1")
    assert cart.set_quantity("l1", 99).quantity == 99
    for bad in (0, 100):
        with pytest.raises(InvalidValue):
            cart.set_quantity("l1", bad)
    assert cart.line("l1").quantity == 99


def test_an_unknown_line_is_not_found() -> None:
    cart = new_cart()
    with pytest.raises(NotFound) as error:
        cart.set_quantity("nope", 1)
    assert (error.value.kind, error.value.key) == ("cart item", "nope")
    with pytest.raises(NotFound):
        cart.remove("nope")


def test_removing_the_last_line_empties_the_cart() -> None:
    cart = new_cart()
    cart.add("TEE-M", 2, new_line_id="l1")
    cart.remove("l1")
    assert cart.empty


@pytest.mark.parametrize("status", [CartStatus.ORDERED, CartStatus.MERGED])
def test_a_cart_that_is_no_longer_open_refuses_every_change(status: CartStatus) -> None:
    cart = new_cart(status=status)
    changes = [lambda: cart.add("TEE-M", 1, new_line_id="l1"), lambda: cart.set_quantity("l1", 1),
               lambda: cart.remove("l1"), lambda: cart.set_discount("SUMMER"), cart.close]
    for change in changes:
        with pytest.raises(CartClosed) as error:
            change()
        assert isinstance(error.value, Conflict)
        assert error.value.cart_id == "cart-1" and status.value in str(error.value)
    assert cart.status is status and cart.empty


def test_closing_a_cart_marks_it_ordered_once() -> None:
    cart = new_cart()
    cart.close()
    assert cart.status is CartStatus.ORDERED
    with pytest.raises(CartClosed):
        cart.close()


def test_reopening_gives_an_ordered_cart_back_to_the_shopper_and_leaves_others_alone() -> None:
    ordered, merged, open_cart = new_cart(status=CartStatus.ORDERED), new_cart(status=CartStatus.MERGED), new_cart()
    for cart in (ordered, merged, open_cart):
        cart.reopen()
    assert (ordered.status, merged.status, open_cart.status) == (CartStatus.OPEN, CartStatus.MERGED, CartStatus.OPEN)


def test_absorbing_a_guest_cart_adds_up_quantities_and_marks_the_guest_cart_merged() -> None:
    mine, guest = new_cart(cart_id="mine"), new_cart(cart_id="guest")
    mine.add("TEE-M", 1, new_line_id="m1")
    guest.add("TEE-M", 2, new_line_id="g1")
    guest.add("MUG", 1, new_line_id="g2")
    guest.set_discount("SUMMER")
    mine.absorb(guest, new_line_id=ids("new"))
    assert [(line.id, line.sku, line.quantity) for line in mine.lines] == [("m1", "TEE-M", 3), ("new-1", "MUG", 1)]
    assert mine.discount_code == "SUMMER"
    assert guest.status is CartStatus.MERGED and mine.status is CartStatus.OPEN


def test_absorbing_caps_a_line_at_ninety_nine_units() -> None:
    mine, guest = new_cart(cart_id="mine"), new_cart(cart_id="guest")
    mine.add("TEE-M", 60, new_line_id="m1")
    guest.add("TEE-M", 60, new_line_id="g1")
    mine.absorb(guest, new_line_id=ids())
    assert mine.line("m1").quantity == MAX_LINE_QUANTITY
    assert guest.status is CartStatus.MERGED


def test_absorbing_keeps_the_customers_own_discount_code() -> None:
    mine, guest = new_cart(cart_id="mine"), new_cart(cart_id="guest")
    mine.set_discount("MINE")
    guest.set_discount("THEIRS")
    mine.absorb(guest, new_line_id=ids())
    assert mine.discount_code == "MINE"


def test_absorbing_into_a_full_cart_drops_new_skus_but_still_adds_up_known_ones() -> None:
    mine, guest = new_cart(cart_id="mine"), new_cart(cart_id="guest")
    for n in range(MAX_LINES):
        mine.add(f"SKU-{n}", 1, new_line_id=f"m{n}")
    guest.add("SKU-0", 2, new_line_id="g1")
    guest.add("SKU-NEW", 1, new_line_id="g2")
    mine.absorb(guest, new_line_id=ids())
    assert len(mine.lines) == MAX_LINES
    assert mine.line("m0").quantity == 3
    assert "SKU-NEW" not in {line.sku for line in mine.lines}


@pytest.mark.parametrize(("mine_status", "guest_status"), [
    (CartStatus.ORDERED, CartStatus.OPEN), (CartStatus.MERGED, CartStatus.OPEN),
    (CartStatus.OPEN, CartStatus.ORDERED), (CartStatus.OPEN, CartStatus.MERGED),
])
def test_only_an_open_cart_absorbs_another_open_cart(mine_status: CartStatus, guest_status: CartStatus) -> None:
    mine, guest = new_cart(cart_id="mine", status=mine_status), new_cart(cart_id="guest", status=guest_status)
    with pytest.raises(CartClosed):
        mine.absorb(guest, new_line_id=ids())
    assert (mine.status, guest.status) == (mine_status, guest_status)


# --- voucher codes and rounding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "code"), [
    ("summer-10", "SUMMER-10"), ("  Black_Friday ", "BLACK_FRIDAY"), ("abc", "ABC"), ("9" * 32, "9" * 32),
])
def test_a_voucher_code_is_compared_without_case_or_surrounding_spaces(raw: str, code: str) -> None:
    assert normalize_code(raw) == code


@pytest.mark.parametrize("raw", ["", "ab", "X" * 33, "-SUMMER", "_SUMMER", "SUM MER", "SUMMER!", "ÉTÉ-10",
                                 "SUMMER\n10", None, 10])
def test_a_malformed_voucher_code_is_refused(raw: object) -> None:
    with pytest.raises(InvalidValue) as error:
        normalize_code(raw)  # type: ignore[arg-type]
    assert error.value.field == "code"


def test_a_refused_voucher_code_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidValue) as error:
        normalize_code("x", field="discount_code")
    assert error.value.field == "discount_code"


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("0.005", "EUR", "0.01"), ("0.015", "EUR", "0.02"), ("0.025", "EUR", "0.03"), ("2.675", "EUR", "2.68"),
    ("0.0049999", "EUR", "0.00"), ("-0.005", "EUR", "-0.01"), ("2.5", "JPY", "3"), ("3.5", "JPY", "4"),
    ("1.0005", "BHD", "1.001"),
])
def test_money_is_rounded_half_up_to_the_currencys_minor_unit(amount: str, currency: str, expected: str) -> None:
    rounded = round_money(Decimal(amount), currency)
    assert rounded == Money(Decimal(expected), currency)
    assert str(rounded.amount) == expected


# --- vouchers ---------------------------------------------------------------------------------------------------


def voucher(**changes: object) -> Voucher:
    fields: dict[str, object] = {"code": "SUMMER", "kind": VoucherKind.PERCENTAGE, "value": Decimal(10),
                                 "currency": "EUR"}
    fields.update(changes)
    return Voucher(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "field"), [
    ({"code": "x"}, "code"),
    ({"value": Decimal(0)}, "value"),
    ({"value": Decimal(-5)}, "value"),
    ({"value": Decimal("NaN")}, "value"),
    ({"value": Decimal("Infinity")}, "value"),
    ({"value": 10}, "value"),
    ({"value": 10.0}, "value"),
    ({"value": Decimal("100.01")}, "value"),
    ({"min_order": Money.of("30", "USD")}, "min_order"),
    ({"usage_limit": 0}, "usage_limit"),
    ({"usage_limit": True}, "usage_limit"),
    ({"usage_limit": 1.5}, "usage_limit"),
    ({"per_customer_limit": 0}, "per_customer_limit"),
    ({"starts_at": T0, "ends_at": T0}, "ends_at"),
    ({"starts_at": T0, "ends_at": T0 - TICK}, "ends_at"),
])
def test_a_voucher_breaking_a_rule_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        voucher(**changes)
    assert error.value.field == field


def test_a_hundred_percent_voucher_and_a_large_fixed_one_are_allowed() -> None:
    assert voucher(value=Decimal(100)).value == 100
    assert voucher(kind=VoucherKind.FIXED, value=Decimal(500)).value == 500


@pytest.mark.parametrize(("percent", "goods", "off"), [
    ("10", "54.00", "5.40"),
    ("10", "0.05", "0.01"),  # 0.005 rounds up, where banker's rounding would give 0.00
    ("12.5", "0.20", "0.03"),  # 0.025 rounds up, where banker's rounding would give 0.02
    ("15", "19.99", "3.00"),  # 2.9985
    ("33", "10.00", "3.30"),
    ("100", "12.34", "12.34"),
])
def test_a_percentage_voucher_rounds_half_up_to_the_cent(percent: str, goods: str, off: str) -> None:
    assert voucher(value=Decimal(percent)).amount_off(eur(goods)) == eur(off)


def test_a_percentage_voucher_rounds_to_whole_yen() -> None:
    yen = voucher(value=Decimal(10), currency="JPY")
    assert yen.amount_off(Money.of("1005", "JPY")) == Money.of("101", "JPY")  # 100.5 rounds up


def test_a_fixed_voucher_takes_its_amount_off() -> None:
    assert voucher(kind=VoucherKind.FIXED, value=Decimal("5.00")).amount_off(eur("20.00")) == eur("5.00")


@pytest.mark.parametrize("goods", ["4.99", "0.00", "0.01"])
def test_a_discount_never_exceeds_the_goods(goods: str) -> None:
    fixed = voucher(kind=VoucherKind.FIXED, value=Decimal("5.00"))
    assert fixed.amount_off(eur(goods)) == eur(goods)


@given(goods=st.decimals(min_value=0, max_value=10**7, places=2),
       value=st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
       kind=st.sampled_from(VoucherKind))
def test_any_voucher_takes_off_between_nothing_and_all_of_the_goods(goods: Decimal, value: Decimal,
                                                                    kind: VoucherKind) -> None:
    off = voucher(kind=kind, value=value).amount_off(Money(goods, "EUR"))
    assert Money.zero("EUR") <= off <= Money(goods, "EUR")
    if kind is VoucherKind.PERCENTAGE:
        assert abs(off.amount - goods * value / 100) <= Decimal("0.005")


def test_a_voucher_is_valid_from_the_instant_it_starts_until_just_before_it_ends() -> None:
    windowed = voucher(starts_at=T0, ends_at=T0 + timedelta(days=7))
    windowed.check(eur("10.00"), now=T0)
    windowed.check(eur("10.00"), now=T0 + timedelta(days=7) - TICK)


def test_a_voucher_is_not_valid_before_it_starts() -> None:
    with pytest.raises(VoucherNotApplicable) as error:
        voucher(starts_at=T0).check(eur("10.00"), now=T0 - TICK)
    assert (error.value.code, error.value.reason) == ("SUMMER", "is not valid yet")


def test_a_voucher_has_expired_at_the_instant_it_ends() -> None:
    with pytest.raises(VoucherNotApplicable) as error:
        voucher(ends_at=T0).check(eur("10.00"), now=T0)
    assert error.value.reason == "has expired"
    assert str(error.value) == "voucher SUMMER: has expired"


def test_an_inactive_voucher_is_no_longer_valid() -> None:
    with pytest.raises(VoucherNotApplicable) as error:
        voucher(active=False).check(eur("10.00"), now=T0)
    assert error.value.reason == "is no longer valid"


def test_a_voucher_applies_only_to_orders_in_its_currency() -> None:
    with pytest.raises(VoucherNotApplicable) as error:
        voucher().check(Money.of("10.00", "USD"), now=T0)
    assert error.value.reason == "is for orders in EUR"


def test_a_voucher_with_a_minimum_order_applies_from_exactly_that_amount() -> None:
    minimum = voucher(min_order=eur("30.00"))
    minimum.check(eur("30.00"), now=T0)
    with pytest.raises(VoucherNotApplicable) as error:
        minimum.check(eur("29.99"), now=T0)
    assert error.value.reason == "needs an order of at least 30.00 EUR"


def test_a_voucher_is_used_up_once_its_usage_limit_is_reached() -> None:
    voucher(usage_limit=3, times_used=2).check(eur("10.00"), now=T0)
    for used in (3, 4):
        with pytest.raises(VoucherNotApplicable) as error:
            voucher(usage_limit=3, times_used=used).check(eur("10.00"), now=T0)
        assert error.value.reason == "has been used up"


def test_a_voucher_without_a_usage_limit_is_never_used_up() -> None:
    voucher(times_used=10**6).check(eur("10.00"), now=T0)


# --- addresses --------------------------------------------------------------------------------------------------


def address(**changes: object) -> Address:
    fields: dict[str, object] = {"name": "Ada Lovelace", "line1": "Hauptstraße 1", "city": "Berlin",
                                 "postal_code": "10115", "country": "DE"}
    fields.update(changes)
    return Address.of(**fields)  # type: ignore[arg-type]


def test_an_address_is_tidied_country_and_region_upper_case_and_spaces_collapsed() -> None:
    tidy = address(name="  Ada   Lovelace ", country=" de ", region="by", line2="", postal_code="SW1A 1AA")
    assert (tidy.name, tidy.country, tidy.region, tidy.postal_code, tidy.line2) == (
        "Ada Lovelace", "DE", "BY", "SW1A 1AA", "")


@pytest.mark.parametrize(("changes", "field"), [
    ({"country": "Germany"}, "shipping_address.country"),
    ({"country": "D"}, "shipping_address.country"),
    ({"country": "D1"}, "shipping_address.country"),
    ({"country": 49}, "shipping_address.country"),
    ({"region": "California"}, "shipping_address.region"),
    ({"region": "C-A"}, "shipping_address.region"),
    ({"postal_code": ""}, "shipping_address.postal_code"),
    ({"postal_code": "<script>"}, "shipping_address.postal_code"),
    ({"postal_code": "-10115"}, "shipping_address.postal_code"),
    ({"postal_code": "1" * 17}, "shipping_address.postal_code"),
    ({"name": "   "}, "shipping_address.name"),
    ({"name": "Ada\x00Lovelace"}, "shipping_address.name"),
    ({"name": "A" * 201}, "shipping_address.name"),
    ({"line1": None}, "shipping_address.line1"),
    ({"line2": "x" * 201}, "shipping_address.line2"),
    ({"city": "B" * 101}, "shipping_address.city"),
    ({"phone": "+49 " + "1" * 30}, "shipping_address.phone"),
])
def test_every_address_problem_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        address(**changes)
    assert error.value.field == field


def test_an_address_problem_names_the_address_it_belongs_to() -> None:
    with pytest.raises(InvalidValue) as error:
        address(country="Germany", field="billing_address")
    assert error.value.field == "billing_address.country"


# --- shipping ---------------------------------------------------------------------------------------------------

STANDARD = ShippingMethod(code="standard", name="Standard", kind=ShippingKind.FLAT, price=eur("4.90"),
                          free_above=eur("50.00"))
EXPRESS = ShippingMethod(code="express", name="Express", kind=ShippingKind.WEIGHT, price=eur("9.90"),
                         bands=((2000, eur("9.90")), (10000, eur("14.90")), (30000, eur("29.90"))))


def test_a_flat_method_costs_its_price_whatever_the_weight() -> None:
    assert STANDARD.cost(eur("10.00"), 0) == STANDARD.cost(eur("10.00"), 10**6) == eur("4.90")


def test_shipping_is_free_from_exactly_the_free_above_amount() -> None:
    assert STANDARD.cost(eur("50.00"), 500) == eur("0.00")
    assert STANDARD.cost(eur("49.99"), 500) == eur("4.90")


@pytest.mark.parametrize(("grams", "price"), [
    (0, "9.90"), (1, "9.90"), (2000, "9.90"), (2001, "14.90"), (10000, "14.90"), (10001, "29.90"),
    (30000, "29.90"),
])
def test_a_weight_method_charges_the_band_the_parcel_falls_in_limits_included(grams: int, price: str) -> None:
    assert EXPRESS.cost(eur("20.00"), grams) == eur(price)


def test_a_parcel_heavier_than_the_last_band_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        EXPRESS.cost(eur("20.00"), 30001)
    assert error.value.field == "shipping_method"
    assert "up to 30000 g" in error.value.message and "30001 g" in error.value.message


@pytest.mark.parametrize("bands", [
    (), ((2000, eur("9.90")), (1000, eur("5.90"))), ((2000, eur("9.90")), (2000, eur("14.90"))),
])
def test_weight_bands_must_be_given_and_ascend(bands: tuple[tuple[int, Money], ...]) -> None:
    with pytest.raises(InvalidValue) as error:
        ShippingMethod(code="bad", name="Bad", kind=ShippingKind.WEIGHT, price=eur("1.00"), bands=bands)
    assert error.value.field == "bands" and "bad" in error.value.message


def test_a_method_without_countries_ships_everywhere_and_one_with_countries_only_there() -> None:
    alpine = ShippingMethod(code="alpine", name="Alpine", kind=ShippingKind.FLAT, price=eur("6.00"),
                            countries=frozenset({"AT", "CH"}))
    assert STANDARD.ships_to("JP") and alpine.ships_to("AT") and alpine.ships_to("CH")
    assert not alpine.ships_to("DE")


# --- tax --------------------------------------------------------------------------------------------------------

TAXES = TaxTable(rates={"DE": Decimal("0.19"), "US": Decimal("0.02"), "US-CA": Decimal("0.0725"),
                        "CA-QC": Decimal("0.14975")}, default=Decimal("0.05"))


@pytest.mark.parametrize(("country", "region", "rate"), [
    ("DE", "", "0.19"),
    ("DE", "BY", "0.19"),  # no regional rate: the country's
    ("US", "CA", "0.0725"),  # the region wins over the country
    ("US", "NY", "0.02"),
    ("US", "", "0.02"),
    ("CA", "QC", "0.14975"),  # a regional rate without a country rate
    ("CA", "ON", "0.05"),  # neither: the default
    ("JP", "", "0.05"),
])
def test_the_tax_rate_is_the_regions_else_the_countrys_else_the_default(country: str, region: str,
                                                                       rate: str) -> None:
    assert TAXES.rate_for(address(country=country, region=region)) == Decimal(rate)


def priced(*prices_and_quantities: tuple[str, int], currency: str = "EUR") -> list[PricedLine]:
    return [PricedLine(line_id=f"l{n}", sku=f"SKU-{n}", name=f"Item {n}", product_slug=f"item-{n}",
                       unit_price=Money.of(price, currency), quantity=quantity)
            for n, (price, quantity) in enumerate(prices_and_quantities)]


def test_the_vat_contained_in_a_tax_inclusive_price_is_rounded_to_the_cent() -> None:
    totals = price_order(priced(("12.50", 2)), currency="EUR", discount=eur("0"), shipping=eur("4.90"),
                         tax_rate=Decimal("0.19"), prices_include_tax=True)
    assert (totals.goods, totals.shipping, totals.total, totals.tax) == (
        eur("25.00"), eur("4.90"), eur("29.90"), eur("4.77"))  # 29.90 × 0.19 / 1.19 = 4.7739…
    assert totals.prices_include_tax and totals.tax_rate == Decimal("0.19")


def test_tax_exclusive_prices_get_the_tax_added_on_top() -> None:
    totals = price_order(priced(("100.00", 1), currency="USD"), currency="USD", discount=Money.of("0", "USD"),
                         shipping=Money.of("0", "USD"), tax_rate=Decimal("0.0725"), prices_include_tax=False)
    assert (totals.tax, totals.total) == (Money.of("7.25", "USD"), Money.of("107.25", "USD"))


@pytest.mark.parametrize(("goods", "rate", "tax"), [
    ("1.50", "0.07", "0.11"),  # 0.105
    ("0.50", "0.01", "0.01"),  # 0.005
    ("2.50", "0.19", "0.48"),  # 0.475
    ("1.00", "0.0725", "0.07"),  # 0.0725
])
def test_tax_on_top_rounds_half_up_at_half_a_cent(goods: str, rate: str, tax: str) -> None:
    totals = price_order(priced((goods, 1)), currency="EUR", discount=eur("0"), shipping=eur("0"),
                         tax_rate=Decimal(rate), prices_include_tax=False)
    assert totals.tax == eur(tax)
    assert totals.total == eur(goods) + eur(tax)


def test_contained_tax_rounds_half_up_at_half_a_cent() -> None:
    # 0.12 × 0.6 / 1.6 = 0.045 exactly: half up gives 0.05 where banker's rounding would give 0.04
    totals = price_order(priced(("0.07", 1)), currency="EUR", discount=eur("0"), shipping=eur("0.05"),
                         tax_rate=Decimal("0.6"), prices_include_tax=True)
    assert (totals.total, totals.tax) == (eur("0.12"), eur("0.05"))


def test_tax_is_charged_on_goods_after_discount_plus_shipping() -> None:
    totals = price_order(priced(("40.00", 1), ("20.00", 1)), currency="EUR", discount=eur("10.00"),
                         shipping=eur("5.00"), tax_rate=Decimal("0.10"), prices_include_tax=False)
    assert (totals.goods, totals.discount, totals.tax, totals.total) == (
        eur("60.00"), eur("10.00"), eur("5.50"), eur("60.50"))


def test_a_discount_of_all_the_goods_leaves_only_shipping_to_pay() -> None:
    totals = price_order(priced(("9.99", 1)), currency="EUR", discount=eur("9.99"), shipping=eur("4.90"),
                         tax_rate=Decimal("0.19"), prices_include_tax=True)
    assert (totals.total, totals.tax) == (eur("4.90"), eur("0.78"))  # 4.90 × 0.19 / 1.19 = 0.7823…


def test_a_discount_larger_than_the_goods_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        price_order(priced(("9.99", 1)), currency="EUR", discount=eur("10.00"), shipping=eur("0"),
                    tax_rate=Decimal("0.19"), prices_include_tax=True)
    assert error.value.field == "discount"


def test_an_order_of_nothing_costs_its_shipping() -> None:
    totals = price_order([], currency="EUR", discount=eur("0"), shipping=eur("4.90"), tax_rate=Decimal(0),
                         prices_include_tax=True)
    assert (totals.goods, totals.tax, totals.total) == (eur("0"), eur("0"), eur("4.90"))


def test_lines_in_another_currency_cannot_be_priced_together() -> None:
    with pytest.raises(CurrencyMismatch):
        price_order(priced(("10.00", 1), currency="USD"), currency="EUR", discount=eur("0"), shipping=eur("0"),
                    tax_rate=Decimal(0), prices_include_tax=True)


CURRENCIES = ("EUR", "JPY", "BHD")


@st.composite
def orders_to_price(draw: st.DrawFn) -> tuple[list[PricedLine], str, Money, Money, Decimal]:
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_units(currency)
    amounts = st.decimals(min_value=0, max_value=10**5, places=places)
    lines = [PricedLine(line_id=f"l{n}", sku=f"SKU-{n}", name="x", product_slug="x",
                        unit_price=Money(draw(amounts), currency), quantity=draw(st.integers(1, MAX_LINE_QUANTITY)))
             for n in range(draw(st.integers(0, 4)))]
    goods = sum((line.total for line in lines), Money.zero(currency))
    discount = Money(draw(st.decimals(min_value=0, max_value=goods.amount, places=places)), currency)
    shipping = Money(draw(st.decimals(min_value=0, max_value=100, places=places)), currency)
    rate = draw(st.decimals(min_value=0, max_value=Decimal("0.30"), places=5))
    return lines, currency, discount, shipping, rate


@given(orders_to_price())
def test_with_tax_inclusive_prices_the_total_is_goods_less_discount_plus_shipping_and_contains_the_tax(
        order: tuple[list[PricedLine], str, Money, Money, Decimal]) -> None:
    lines, currency, discount, shipping, rate = order
    totals = price_order(lines, currency=currency, discount=discount, shipping=shipping, tax_rate=rate,
                         prices_include_tax=True)
    assert totals.total == totals.goods - discount + shipping
    assert Money.zero(currency) <= totals.tax <= totals.total
    assert totals.tax == round_money(totals.total.amount * rate / (1 + rate), currency)


@given(orders_to_price())
def test_with_tax_exclusive_prices_the_total_is_the_taxable_amount_plus_its_tax(
        order: tuple[list[PricedLine], str, Money, Money, Decimal]) -> None:
    lines, currency, discount, shipping, rate = order
    totals = price_order(lines, currency=currency, discount=discount, shipping=shipping, tax_rate=rate,
                         prices_include_tax=False)
    taxable = totals.goods - discount + shipping
    assert totals.total == taxable + totals.tax
    assert totals.tax == round_money(taxable.amount * rate, currency)
    assert Money.zero(currency) <= totals.tax <= taxable


# --- orders -----------------------------------------------------------------------------------------------------

S = OrderStatus
LEGAL = {
    (S.PENDING, S.PAID), (S.PENDING, S.CANCELED),
    (S.PAID, S.FULFILLED), (S.PAID, S.CANCELED), (S.PAID, S.REFUNDED),
    (S.FULFILLED, S.PARTLY_SHIPPED), (S.FULFILLED, S.SHIPPED), (S.FULFILLED, S.REFUNDED),
    (S.PARTLY_SHIPPED, S.SHIPPED), (S.PARTLY_SHIPPED, S.REFUNDED),
    (S.SHIPPED, S.DELIVERED), (S.SHIPPED, S.REFUNDED),
    (S.DELIVERED, S.REFUNDED),
}
ALL_PAIRS = list(itertools.product(OrderStatus, repeat=2))


def order(status: OrderStatus = OrderStatus.PENDING) -> Order:
    totals = Totals(goods=eur("25.00"), discount=eur("0"), shipping=eur("4.90"), tax=eur("4.77"),
                    total=eur("29.90"), tax_rate=Decimal("0.19"), prices_include_tax=True)
    return Order(number="100042", status=status, email="ada@example.com", customer_id=None,
                 lines=[OrderLine(sku="TEE-M", name="Tee", product_slug="tee", unit_price=eur("12.50"), quantity=2)],
                 shipping_address=address(), shipping_method="standard", shipping_method_name="Standard",
                 totals=totals, payment=Payment(provider="test", status=PaymentStatus.PENDING, amount=totals.total),
                 created_at=T0, history=[(status, T0)])


@pytest.mark.parametrize(("current", "wanted"), [pair for pair in ALL_PAIRS if pair in LEGAL],
                         ids=lambda s: s.value)
def test_a_legal_transition_moves_the_order_and_records_when(current: OrderStatus, wanted: OrderStatus) -> None:
    check_transition("100042", current, wanted)
    placed = order(current)
    placed.move_to(wanted, at=T0 + timedelta(hours=1))
    assert placed.status is wanted
    assert placed.history == [(current, T0), (wanted, T0 + timedelta(hours=1))]


@pytest.mark.parametrize(("current", "wanted"), [pair for pair in ALL_PAIRS if pair not in LEGAL],
                         ids=lambda s: s.value)
def test_an_illegal_transition_is_a_conflict_and_changes_nothing(current: OrderStatus, wanted: OrderStatus) -> None:
    placed = order(current)
    with pytest.raises(IllegalTransition) as error:
        placed.move_to(wanted, at=T0 + timedelta(hours=1))
    assert isinstance(error.value, Conflict)
    assert (error.value.number, error.value.current, error.value.wanted) == ("100042", current, wanted)
    assert str(error.value) == f"order 100042 is {current.value} and cannot become {wanted.value}"
    assert placed.status is current and placed.history == [(current, T0)]


def test_there_are_thirteen_legal_transitions_among_sixty_four_pairs() -> None:
    assert len(ALL_PAIRS) == 64 and len(LEGAL) == 13


def test_an_order_goes_from_pending_to_delivered_and_is_then_refunded() -> None:
    placed = order()
    path = [S.PAID, S.FULFILLED, S.SHIPPED, S.DELIVERED, S.REFUNDED]
    for n, status in enumerate(path, start=1):
        placed.move_to(status, at=T0 + timedelta(days=n))
    assert [status for status, _ in placed.history] == [S.PENDING, *path]
    assert [at for _, at in placed.history] == [T0 + timedelta(days=n) for n in range(len(path) + 1)]


@pytest.mark.parametrize("final", [S.CANCELED, S.REFUNDED])
def test_canceled_and_refunded_orders_are_final(final: OrderStatus) -> None:
    for wanted in OrderStatus:
        with pytest.raises(IllegalTransition):
            check_transition("100042", final, wanted)


def test_only_a_pending_order_holds_a_reservation() -> None:
    assert frozenset({S.PENDING}) == HOLDS_RESERVATION


def test_an_orders_currency_is_that_of_its_total_and_a_line_totals_its_units() -> None:
    placed = order()
    assert placed.currency == "EUR"
    assert placed.lines[0].total == eur("25.00")


@pytest.mark.parametrize(("serial", "prefix", "number"), [
    (0, "", "100000"), (42, "", "100042"), (899_999, "", "999999"), (900_000, "", "1000000"),
    (7, "WEB-", "WEB-100007"),
])
def test_an_order_number_is_the_prefix_and_at_least_six_digits(serial: int, prefix: str, number: str) -> None:
    assert order_number(serial, prefix=prefix) == number


def test_a_weight_method_refuses_a_parcel_too_heavy_even_when_shipping_would_be_free() -> None:
    free_express = ShippingMethod(code="express", name="Express", kind=ShippingKind.WEIGHT, price=eur("9.90"),
                                  bands=((2000, eur("9.90")),), free_above=eur("100.00"))
    assert free_express.cost(eur("150.00"), 2000) == eur("0.00")
    assert free_express.cost(eur("99.99"), 2000) == eur("9.90")
    with pytest.raises(InvalidValue):
        free_express.cost(eur("150.00"), 2001)
