"""Ports: what the use cases need from the world, as protocols the infrastructure implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from shop.domain.catalog import Category, Page, Product, ProductQuery, ProductSummary
from shop.domain.inventory import StockLevel


class CatalogReader(Protocol):
    """Reads the catalogue (the posts store)."""

    async def categories(self) -> Sequence[Category]: ...

    async def products(self, query: ProductQuery, *, category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        ...

    async def product(self, slug: str) -> Product | None: ...

    async def version(self) -> int:
        """A number that changes whenever anything in the catalogue changes."""
        ...

    async def count_products(self) -> int: ...


class CatalogWriter(Protocol):
    async def add_categories(self, categories: Sequence[Category]) -> None: ...

    async def add_products(self, products: Sequence[Product], *, available: Mapping[str, int]) -> None:
        """Insert many products at once (ids chosen by the caller); `available` feeds the in-stock flag."""
        ...

    async def next_ids(self) -> tuple[int, int]:
        """The first free category id and product id."""
        ...


class StockReader(Protocol):
    """Reads stock levels (the main store)."""

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]: ...


class StockWriter(Protocol):
    async def set_levels(self, levels: Sequence[StockLevel]) -> None: ...


class StoreProbe(Protocol):
    """Answers whether one store can be reached."""

    name: str

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""
        ...


class StoreUnavailable(Exception):
    def __init__(self, store: str, host: str, reason: str) -> None:
        super().__init__(f"{store} store at {host} is unreachable: {reason}")
        self.store = store
        self.host = host
        self.reason = reason
