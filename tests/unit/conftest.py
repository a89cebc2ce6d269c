"""Hand-written fakes of the service ports (src/shop/services/ports.py), handed out as fixtures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from shop.domain.catalog import Category, Offer, Page, Product, ProductQuery, ProductSummary
from shop.domain.inventory import StockLevel


class FakeCatalog:
    """The posts store in memory: a CatalogReader and a CatalogWriter over the same rows."""

    def __init__(self, *, journal: list[str] | None = None) -> None:
        self.category_rows: list[Category] = []
        self.product_rows: dict[str, Product] = {}
        self.available: dict[str, int] = {}
        self.current_version = 1
        self.version_error: Exception | None = None
        self.category_reads = 0
        self.version_reads = 0
        self.product_calls: list[tuple[ProductQuery, Sequence[int] | None]] = []
        self.journal = journal if journal is not None else []

    # CatalogReader
    async def categories(self) -> Sequence[Category]:
        self.category_reads += 1
        return list(self.category_rows)

    async def products(self, query: ProductQuery, *,
                       category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        self.product_calls.append((query, None if category_ids is None else list(category_ids)))
        matching = [p for p in self.product_rows.values()
                    if p.published and (category_ids is None or p.category_id in category_ids)]
        items = [ProductSummary(slug=p.slug, title=p.title, price_from=p.variants[0].price, image=None,
                                in_stock=False, category_id=p.category_id) for p in matching]
        return Page(items=items[query.offset:query.offset + query.limit], total=len(items), page=query.page,
                    limit=query.limit)

    async def product(self, slug: str) -> Product | None:
        return self.product_rows.get(slug)

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        wanted = set(skus)
        return {v.sku: Offer(sku=v.sku, product_slug=p.slug, product_title=p.title, variant_title=v.title,
                             price=v.price, weight_grams=v.weight_grams, published=p.published,
                             options=dict(v.options))
                for p in self.product_rows.values() for v in p.variants if v.sku in wanted}

    async def version(self) -> int:
        self.version_reads += 1
        if self.version_error is not None:
            raise self.version_error
        return self.current_version

    async def count_products(self) -> int:
        return len(self.product_rows)

    # CatalogWriter
    async def add_categories(self, categories: Sequence[Category]) -> None:
        self.journal.append("categories")
        self.category_rows.extend(categories)

    async def add_products(self, products: Sequence[Product], *, available: Mapping[str, int]) -> None:
        self.journal.append("products")
        for product in products:
            assert product.slug not in self.product_rows, f"duplicate slug {product.slug}"
            self.product_rows[product.slug] = product
        self.available.update(available)

    async def next_ids(self) -> tuple[int, int]:
        next_category = max((c.id for c in self.category_rows), default=0) + 1
        next_product = max((p.id for p in self.product_rows.values()), default=0) + 1
        return next_category, next_product


class FakeStock:
    """The main store's stock rows: a StockReader and a StockWriter."""

    def __init__(self, *, journal: list[str] | None = None) -> None:
        self.rows: dict[str, StockLevel] = {}
        self.asked_for: list[list[str]] = []
        self.journal = journal if journal is not None else []

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        self.asked_for.append(list(skus))
        return {sku: self.rows[sku] for sku in skus if sku in self.rows}

    async def set_levels(self, levels: Sequence[StockLevel]) -> None:
        self.journal.append("stock")
        for level in levels:
            self.rows[level.sku] = level


@pytest.fixture
def journal() -> list[str]:
    """The order in which the fakes were written to, shared between them."""
    return []


@pytest.fixture
def catalog(journal: list[str]) -> FakeCatalog:
    return FakeCatalog(journal=journal)


@pytest.fixture
def stock(journal: list[str]) -> FakeStock:
    return FakeStock(journal=journal)
