"""Phone numbers as people type them, checked and written in E.164 by the `phonenumbers` adapter."""

from __future__ import annotations

import pytest

from shop.domain.errors import InvalidValue
from shop.infrastructure.sms.numbers import LibPhoneNumbers


@pytest.mark.parametrize(("typed", "e164"), [
    ("+49 1512 3456789", "+4915123456789"),
    ("+33 6 12 34 56 78", "+33612345678"),
    ("+1 (201) 555-0123", "+12015550123"),
    ("  +4915123456789 ", "+4915123456789"),
    ("0049 1512 3456789", "+4915123456789"),
])
def test_numbers_are_written_in_e164(typed: str, e164: str) -> None:
    numbers = LibPhoneNumbers(default_region="DE") if typed.startswith("00") else LibPhoneNumbers()
    assert numbers.normalize(typed) == e164


@pytest.mark.parametrize(("typed", "why"), [
    ("12", "international form"),
    ("abc", "not a phone number"),
    ("+1 555", "not a valid"),
    ("+1 555 123 4567", "not a valid"),
    ("", "not a phone number"),
    ("+49 30 123456", "mobile"),  # a Berlin fixed line
    ("+1 800 555 0199", "mobile"),  # toll-free
    ("+" + "1" * 60, "at most 40"),
])
def test_what_cannot_take_a_text_is_refused_naming_the_phone(typed: str, why: str) -> None:
    with pytest.raises(InvalidValue, match=why) as refused:
        LibPhoneNumbers().normalize(typed)
    assert refused.value.field == "phone"


def test_a_default_region_allows_national_numbers() -> None:
    assert LibPhoneNumbers(default_region="de").normalize("01512 3456789") == "+4915123456789"


def test_texts_can_be_kept_to_some_countries() -> None:
    numbers = LibPhoneNumbers(regions={"de", "AT"})
    assert numbers.normalize("+49 1512 3456789") == "+4915123456789"
    with pytest.raises(InvalidValue, match="this country"):
        numbers.normalize("+33 6 12 34 56 78")
