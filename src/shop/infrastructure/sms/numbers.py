"""`PhoneNumbers` with Google's libphonenumber rules (the `phonenumbers` package)."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from shop.domain.errors import InvalidValue

# numbers that can take a text message; fixed lines, toll-free and premium-rate numbers cannot, or should not
# (texts to premium-rate numbers are a known way to run up someone else's SMS bill)
_TEXTABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP,
                       PhoneNumberType.PERSONAL_NUMBER})
MAX_INPUT = 40


class LibPhoneNumbers:
    """Parses what a person typed into E.164. Without `default_region` a number must start with + and its country
    code; `regions` (e.g. {"DE", "AT"}), when given, are the only countries texts may go to."""

    def __init__(self, *, default_region: str | None = None, regions: Iterable[str] | None = None) -> None:
        self._default_region = default_region.upper() if default_region else None
        self._regions = frozenset(r.upper() for r in regions) if regions else None

    def normalize(self, raw: str) -> str:
        example = "e.g. +49 1512 3456789"
        if len(raw) > MAX_INPUT:
            raise InvalidValue("phone", f"use at most {MAX_INPUT} characters")
        try:
            number = phonenumbers.parse(raw, self._default_region)
        except NumberParseException:
            how = "" if self._default_region else " in international form"
            raise InvalidValue("phone", f"is not a phone number; write it{how}, {example}") from None
        if not phonenumbers.is_valid_number(number):
            raise InvalidValue("phone", f"is not a valid phone number; check it, {example}")
        if phonenumbers.number_type(number) not in _TEXTABLE:
            raise InvalidValue("phone", "cannot receive text messages; use a mobile number")
        if self._regions is not None and phonenumbers.region_code_for_number(number) not in self._regions:
            raise InvalidValue("phone", "we cannot send text messages to this country")
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
