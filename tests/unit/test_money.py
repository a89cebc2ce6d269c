from __future__ import annotations

import operator
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.domain.errors import CurrencyMismatch, InvalidValue
from shop.domain.money import Money, minor_units, parse_amount

CURRENCIES = ("EUR", "USD", "GBP", "JPY", "KRW", "BHD", "KWD")
LIMIT = Decimal(10) ** 12


@st.composite
def money(draw: st.DrawFn, currency: str | None = None) -> Money:
    """An amount already at its currency's precision, so arithmetic on it must be exact."""
    code = currency or draw(st.sampled_from(CURRENCIES))
    amount = draw(st.decimals(min_value=-LIMIT, max_value=LIMIT, places=minor_units(code),
                              allow_nan=False, allow_infinity=False))
    return Money(amount, code)


@st.composite
def same_currency(draw: st.DrawFn, n: int) -> list[Money]:
    code = draw(st.sampled_from(CURRENCIES))
    return [draw(money(code)) for _ in range(n)]


# construction


def test_money_refuses_a_float() -> None:
    with pytest.raises(InvalidValue) as error:
        Money(19.99, "EUR")  # type: ignore[arg-type]
    assert error.value.field == "amount"


def test_money_of_refuses_a_float() -> None:
    with pytest.raises(InvalidValue) as error:
        Money.of(19.99, "EUR")  # type: ignore[arg-type]
    assert error.value.field == "amount"


@pytest.mark.parametrize("flag", [True, False])
def test_money_refuses_a_bool(flag: bool) -> None:
    with pytest.raises(InvalidValue):
        Money.of(flag, "EUR")
    with pytest.raises(InvalidValue):
        Money(flag, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["NaN", "sNaN", "Infinity", "-Infinity", "inf"])
def test_money_refuses_nan_and_infinity(raw: str) -> None:
    with pytest.raises(InvalidValue) as error:
        Money(Decimal(raw), "EUR")
    assert error.value.field == "amount"
    with pytest.raises(InvalidValue):
        Money.of(raw, "EUR")


def test_money_of_reads_text_ints_and_decimals_alike() -> None:
    assert Money.of(" 19.99 ", "EUR") == Money.of(Decimal("19.99"), "EUR")
    assert Money.of(3, "EUR").amount == Decimal("3.00")


def test_zero_is_zero_in_the_currencys_precision() -> None:
    assert Money.zero("EUR").amount == Decimal("0.00")
    assert str(Money.zero("JPY")) == "0 JPY"


@pytest.mark.parametrize("code", ["eur", "Eur", "EU", "EURO", "", "€UR", "ÉUR"])
def test_money_refuses_a_currency_that_is_not_three_capital_letters(code: str) -> None:
    with pytest.raises(InvalidValue) as error:
        Money(Decimal(1), code)
    assert error.value.field == "currency"


@pytest.mark.parametrize("code", ["EU1", "E  ", "U$D"])
def test_money_refuses_a_currency_code_with_digits_spaces_or_symbols(code: str) -> None:
    with pytest.raises(InvalidValue):
        Money(Decimal(1), code)


@pytest.mark.parametrize("raw", ["1e26", "1e30", "-1e40"])
def test_an_amount_too_large_to_hold_in_cents_is_an_invalid_value(raw: str) -> None:
    with pytest.raises(InvalidValue):
        Money.of(raw, "EUR")


def test_money_is_rounded_half_to_even_to_the_cent() -> None:
    assert Money.of("0.125", "EUR").amount == Decimal("0.12")
    assert Money.of("0.135", "EUR").amount == Decimal("0.14")
    assert Money.of("0.1", "EUR").amount.as_tuple().exponent == -2


def test_yen_has_no_minor_units() -> None:
    assert minor_units("JPY") == 0
    assert Money.of("1234.5", "JPY").amount == Decimal("1234")
    assert Money.of("1235.5", "JPY").amount == Decimal("1236")
    assert str(Money.of("1500", "JPY")) == "1500 JPY"


def test_dinars_have_three_minor_units() -> None:
    assert Money.of("1.2345", "BHD").amount == Decimal("1.234")
    assert str(Money.of("2", "KWD")) == "2.000 KWD"


def test_money_prints_amount_then_currency() -> None:
    assert str(Money.of("19.9", "EUR")) == "19.90 EUR"


def test_amounts_written_differently_are_the_same_money() -> None:
    assert Money.of("1.5", "EUR") == Money.of("1.500", "EUR")
    assert hash(Money.of("1.5", "EUR")) == hash(Money.of("1.500", "EUR"))


def test_the_same_amount_in_two_currencies_is_not_equal() -> None:
    assert Money.of("1", "EUR") != Money.of("1", "USD")


# arithmetic and comparison


@given(d=st.decimals(min_value=-LIMIT, max_value=LIMIT, places=6, allow_nan=False, allow_infinity=False),
       code=st.sampled_from(CURRENCIES))
def test_an_amount_is_quantised_to_the_currencys_minor_units(d: Decimal, code: str) -> None:
    amount = Money(d, code).amount
    unit = Decimal(1).scaleb(-minor_units(code))
    assert amount.as_tuple().exponent == -minor_units(code)
    assert amount == d.quantize(unit, rounding=ROUND_HALF_EVEN)
    assert abs(amount - d) <= unit / 2


@given(pair=same_currency(2))
def test_addition_is_exact_and_commutative_in_one_currency(pair: list[Money]) -> None:
    a, b = pair
    assert (a + b).amount == a.amount + b.amount
    assert (a + b).currency == a.currency
    assert a + b == b + a


@given(triple=same_currency(3))
def test_addition_is_associative_in_one_currency(triple: list[Money]) -> None:
    a, b, c = triple
    assert (a + b) + c == a + (b + c)


@given(pair=same_currency(2))
def test_subtraction_undoes_addition(pair: list[Money]) -> None:
    a, b = pair
    assert (a + b) - b == a
    assert a - a == Money.zero(a.currency)


@given(m=money(), n=st.integers(min_value=0, max_value=20))
def test_multiplying_by_a_whole_number_is_repeated_addition(m: Money, n: int) -> None:
    total = Money.zero(m.currency)
    for _ in range(n):
        total += m
    assert m * n == total
    assert n * m == total


@given(pair=same_currency(2))
def test_comparisons_follow_the_amounts(pair: list[Money]) -> None:
    a, b = pair
    assert (a < b) == (a.amount < b.amount)
    assert (a <= b) == (a.amount <= b.amount)
    assert (a > b) == (a.amount > b.amount)
    assert (a >= b) == (a.amount >= b.amount)


def test_min_and_max_pick_the_cheapest_and_dearest() -> None:
    prices = [Money.of(p, "EUR") for p in ("9.99", "4.50", "12")]
    assert min(prices) == Money.of("4.50", "EUR")
    assert max(prices) == Money.of("12", "EUR")


@pytest.mark.parametrize("combine", [operator.add, operator.sub, operator.lt, operator.le, operator.gt,
                                     operator.ge])
def test_combining_two_currencies_raises_currency_mismatch(combine: object) -> None:
    with pytest.raises(CurrencyMismatch) as error:
        combine(Money.of("1", "EUR"), Money.of("1", "USD"))  # type: ignore[operator]
    assert (error.value.left, error.value.right) == ("EUR", "USD")


def test_multiplying_by_a_decimal_rounds_to_the_cent() -> None:
    assert Money.of("10.00", "EUR") * Decimal("0.333") == Money.of("3.33", "EUR")
    assert Decimal("1.5") * Money.of("0.03", "EUR") == Money.of("0.04", "EUR")  # 0.045 → half-even


@pytest.mark.parametrize("factor", [1.5, True, "2", None])
def test_money_is_multiplied_by_a_whole_number_or_decimal_only(factor: object) -> None:
    with pytest.raises(InvalidValue) as error:
        Money.of("10", "EUR") * factor  # type: ignore[operator]
    assert error.value.field == "factor"


def test_money_cannot_be_multiplied_by_money() -> None:
    with pytest.raises(InvalidValue):
        Money.of("10", "EUR") * Money.of("2", "EUR")  # type: ignore[operator]


# parse_amount


def test_parse_amount_reads_text_with_surrounding_spaces() -> None:
    assert parse_amount("  19.99\n") == Decimal("19.99")


def test_parse_amount_keeps_ints_and_decimals_exact() -> None:
    assert parse_amount(7) == Decimal(7)
    assert parse_amount(Decimal("0.1")) == Decimal("0.1")


@pytest.mark.parametrize("raw", ["abc", "", "   ", "1,50", "12.5.3", "NaN", "Infinity", "-inf",
                                 1.5, True, None, ["1"]])
def test_parse_amount_errors_name_the_field(raw: object) -> None:
    with pytest.raises(InvalidValue) as error:
        parse_amount(raw, field="min_price")  # type: ignore[arg-type]
    assert error.value.field == "min_price"
    assert str(error.value).startswith("min_price: ")


def test_parse_amount_names_amount_when_no_field_is_given() -> None:
    with pytest.raises(InvalidValue) as error:
        parse_amount("twelve")
    assert error.value.field == "amount"
    assert "'twelve'" in error.value.message
