"""What an order costs: lines priced from the catalogue, discount, shipping and tax, computed with Decimal and
one explicit rounding rule (half up to the currency's minor unit) at stated points."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shop.domain.discounts import round_money
from shop.domain.errors import InvalidValue
from shop.domain.money import Money

_COUNTRY = re.compile(r"[A-Z]{2}")
_REGION = re.compile(r"[A-Z0-9]{1,3}")


def _text(value: object, field: str, *, required: bool = True, limit: int = 200) -> str:
    text = " ".join(value.split()) if isinstance(value, str) else ""
    if required and not text:
        raise InvalidValue(field, "is required")
    if len(text) > limit:
        raise InvalidValue(field, f"at most {limit} characters")
    if any(ord(ch) < 32 for ch in text):
        raise InvalidValue(field, "must not contain control characters")
    return text


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    line2: str = ""
    region: str = ""  # ISO 3166-2 subdivision code without the country, e.g. "CA" for California
    phone: str = ""

    @classmethod
    def of(cls, *, name: str, line1: str, city: str, postal_code: str, country: str, line2: str = "",
           region: str = "", phone: str = "", field: str = "shipping_address") -> Address:
        """A checked address; every problem names its field, e.g. `shipping_address.postal_code`."""
        code = country.strip().upper() if isinstance(country, str) else ""
        if not _COUNTRY.fullmatch(code):
            raise InvalidValue(f"{field}.country", "use the two-letter ISO country code, e.g. DE")
        area = region.strip().upper() if isinstance(region, str) else ""
        if area and not _REGION.fullmatch(area):
            raise InvalidValue(f"{field}.region", "use the ISO 3166-2 region code, e.g. CA")
        postal = _text(postal_code, f"{field}.postal_code", limit=16)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]*", postal):
            raise InvalidValue(f"{field}.postal_code", "letters, digits, spaces and '-' only")
        return cls(name=_text(name, f"{field}.name"), line1=_text(line1, f"{field}.line1"),
                   line2=_text(line2, f"{field}.line2", required=False), city=_text(city, f"{field}.city", limit=100),
                   postal_code=postal, country=code, region=area,
                   phone=_text(phone, f"{field}.phone", required=False, limit=32))


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A cart line with the catalogue's current price and name."""

    line_id: str
    sku: str
    name: str
    product_slug: str
    unit_price: Money
    quantity: int
    weight_grams: int = 0

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


class ShippingKind(StrEnum):
    FLAT = "flat"
    WEIGHT = "weight"


@dataclass(frozen=True, slots=True)
class ShippingMethod:
    """A way to ship: a flat price, or a price by weight band; free when the goods reach `free_above`."""

    code: str
    name: str
    kind: ShippingKind
    price: Money  # the flat price, or the first band's price
    bands: Sequence[tuple[int, Money]] = ()  # (up to grams, price), ascending; weight methods only
    free_above: Money | None = None
    countries: frozenset[str] = frozenset()  # empty: ships everywhere

    def __post_init__(self) -> None:
        if self.kind is ShippingKind.WEIGHT:
            limits = [grams for grams, _ in self.bands]
            if not limits or limits != sorted(limits) or len(set(limits)) != len(limits):
                raise InvalidValue("bands", f"shipping method {self.code}: weight bands must ascend")

    def ships_to(self, country: str) -> bool:
        return not self.countries or country in self.countries

    def cost(self, goods: Money, weight_grams: int) -> Money:
        """The shipping price for goods worth `goods` (after discount) weighing `weight_grams`; a parcel too
        heavy for the method is refused even when the order would ship free."""
        price = self.price
        if self.kind is ShippingKind.WEIGHT:
            band = next((band_price for up_to, band_price in self.bands if weight_grams <= up_to), None)
            if band is None:
                raise InvalidValue("shipping_method", f"{self.name} takes parcels up to {self.bands[-1][0]} g; "
                                                      f"this order weighs {weight_grams} g")
            price = band
        if self.free_above is not None and goods >= self.free_above:
            return Money.zero(goods.currency)
        return price


@dataclass(frozen=True, slots=True)
class TaxTable:
    """Tax rates by country or country-region ("US-CA"), the region winning; prices either include tax or not."""

    rates: Mapping[str, Decimal]
    default: Decimal = Decimal(0)
    prices_include_tax: bool = True

    def rate_for(self, address: Address) -> Decimal:
        if address.region and f"{address.country}-{address.region}" in self.rates:
            return self.rates[f"{address.country}-{address.region}"]
        return self.rates.get(address.country, self.default)


@dataclass(frozen=True, slots=True)
class Totals:
    goods: Money  # the lines at catalogue prices
    discount: Money
    shipping: Money
    tax: Money  # contained in `total` either way
    total: Money  # what the customer pays
    tax_rate: Decimal
    prices_include_tax: bool


def price_order(lines: Sequence[PricedLine], *, currency: str, discount: Money, shipping: Money, tax_rate: Decimal,
                prices_include_tax: bool) -> Totals:
    """The totals of an order. Tax is charged on goods after discount plus shipping. With tax-inclusive prices
    the tax is the part of that sum the rate accounts for; otherwise it is added on top. Rounded once."""
    goods = sum((line.total for line in lines), Money.zero(currency))
    if discount > goods:
        raise InvalidValue("discount", "cannot exceed the goods")
    taxable = goods - discount + shipping
    if prices_include_tax:
        tax = round_money(taxable.amount * tax_rate / (1 + tax_rate), currency)
        total = taxable
    else:
        tax = round_money(taxable.amount * tax_rate, currency)
        total = taxable + tax
    return Totals(goods=goods, discount=discount, shipping=shipping, tax=tax, total=total, tax_rate=tax_rate,
                  prices_include_tax=prices_include_tax)
