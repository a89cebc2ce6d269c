"""The catalogue: a tree of categories, products ("posts") and their purchasable variants."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from shop.domain.errors import InvalidValue
from shop.domain.money import Money

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SKU = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,63}")

MAX_PAGE_SIZE = 100
MAX_QUERY_LENGTH = 200
MAX_WEIGHT_GRAMS = 1_000_000


def check_slug(slug: str, *, field: str = "slug") -> str:
    if not 1 <= len(slug) <= 200 or not _SLUG.fullmatch(slug):
        raise InvalidValue(field, "use lowercase letters, digits and single hyphens (at most 200 characters)")
    return slug


def slugify(text: str) -> str:
    """A slug from a title: lowercase ASCII words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    return "-".join(words)[:200].strip("-")


def check_sku(sku: str) -> str:
    if not _SKU.fullmatch(sku):
        raise InvalidValue("sku", "use 1-64 uppercase letters, digits, '.', '_' or '-'")
    return sku


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    slug: str
    name: str
    parent_id: int | None = None
    position: int = 0
    description: str = ""


class CategoryTree:
    """Categories by id, with the descendants of any node (a category page shows its sub-categories' products)."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self._by_id = {c.id: c for c in categories}
        self._by_slug = {c.slug: c for c in self._by_id.values()}
        self._children: dict[int | None, list[Category]] = {}
        for category in sorted(self._by_id.values(), key=lambda c: (c.position, c.name)):
            # a category whose parent is gone is shown at the top rather than lost
            parent = category.parent_id if category.parent_id in self._by_id else None
            self._children.setdefault(parent, []).append(category)

    def __len__(self) -> int:
        return len(self._by_id)

    def by_slug(self, slug: str) -> Category | None:
        return self._by_slug.get(slug)

    def children(self, parent_id: int | None) -> list[Category]:
        return list(self._children.get(parent_id, ()))

    def roots(self) -> list[Category]:
        return self.children(None)

    def subtree_ids(self, category_id: int) -> list[int]:
        """The category and every category below it."""
        found: list[int] = []
        stack = [category_id]
        seen: set[int] = set()
        while stack:
            current = stack.pop()
            if current in seen:  # a cycle in stored data must not hang a request
                continue
            seen.add(current)
            found.append(current)
            stack.extend(child.id for child in self._children.get(current, ()))
        return found

    def path(self, category_id: int) -> list[Category]:
        """From the root down to the category (breadcrumbs)."""
        trail: list[Category] = []
        current = self._by_id.get(category_id)
        while current is not None and current not in trail:
            trail.append(current)
            current = self._by_id.get(current.parent_id) if current.parent_id is not None else None
        return list(reversed(trail))


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Variant:
    sku: str
    price: Money
    options: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    weight_grams: int = 0

    def __post_init__(self) -> None:
        weight: object = self.weight_grams
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT_GRAMS:
            raise InvalidValue("weight_grams", f"must be a whole number of grams from 0 to {MAX_WEIGHT_GRAMS}")


@dataclass(frozen=True, slots=True)
class Offer:
    """One variant as a cart line needs it: what it is, what it costs and weighs, and whether it is for sale."""

    sku: str
    product_slug: str
    product_title: str
    variant_title: str
    price: Money
    weight_grams: int
    published: bool
    options: Mapping[str, str]

    @property
    def name(self) -> str:
        """What a cart line is called: "Product title – variant title", or the product title alone."""
        return f"{self.product_title} – {self.variant_title}" if self.variant_title else self.product_title


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    slug: str
    title: str
    description: str
    category_id: int | None
    variants: Sequence[Variant]
    attributes: Mapping[str, str] = field(default_factory=dict)
    images: Sequence[Image] = ()
    published: bool = True
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        currencies = {v.price.currency for v in self.variants}
        if len(currencies) > 1:
            raise InvalidValue("variants", "all variants of a product are priced in one currency")

    @property
    def price_range(self) -> tuple[Money, Money] | None:
        if not self.variants:
            return None
        prices = [v.price for v in self.variants]
        return min(prices), max(prices)


@dataclass(frozen=True, slots=True)
class ProductSummary:
    """What a product list shows: enough for a card, nothing more."""

    slug: str
    title: str
    price_from: Money
    image: Image | None
    in_stock: bool
    category_id: int | None
    rank: float | None = None


class ProductSort(StrEnum):
    PRICE = "price"
    PRICE_DESC = "-price"
    NEWEST = "newest"
    TITLE = "title"
    RELEVANCE = "relevance"


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """A validated request for a page of the catalogue."""

    page: int = 1
    limit: int = 24
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    sort: ProductSort | None = None
    q: str | None = None

    def __post_init__(self) -> None:
        if self.page < 1:
            raise InvalidValue("page", "must be 1 or more")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidValue("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        for name in ("min_price", "max_price"):
            value = getattr(self, name)
            if value is not None and (not value.is_finite() or value < 0):
                raise InvalidValue(name, "must be a number of 0 or more")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise InvalidValue("min_price", "must not be more than max_price")
        if self.q is not None:
            text = " ".join(self.q.split())
            if len(text) > MAX_QUERY_LENGTH:
                raise InvalidValue("q", f"at most {MAX_QUERY_LENGTH} characters")
            object.__setattr__(self, "q", text or None)
        if self.category is not None:
            check_slug(self.category, field="category")
        if self.sort is ProductSort.RELEVANCE and self.q is None:
            raise InvalidValue("sort", "relevance needs a search text q")

    @property
    def effective_sort(self) -> ProductSort:
        if self.sort is not None:
            return self.sort
        return ProductSort.RELEVANCE if self.q else ProductSort.NEWEST

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    limit: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


def search_terms(text: str) -> list[str]:
    """Words of a search text, lowercased; punctuation is never query syntax."""
    return [w for w in re.findall(r"\w+", text.lower()) if w][:16]
