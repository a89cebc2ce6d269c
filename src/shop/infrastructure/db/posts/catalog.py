"""The catalogue's adapters over one posts store, built together so every service reads through one reader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shop.domain.catalog import Category, Offer, Page, Product, ProductQuery, ProductSummary
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.posts.dialects import PostsDialect
from shop.infrastructure.db.posts.in_stock import SqlInStockProjection
from shop.infrastructure.db.posts.reads import SqlCatalogReader
from shop.infrastructure.db.posts.writes import SqlCatalogWriter


@dataclass(frozen=True, slots=True)
class PostsCatalog:
    """One reader (CatalogReader, OfferSource: the list totals it remembers are kept there and nowhere else), the
    writer (CatalogWriter), the in-stock projection (InStockProjection) and the staff's ProductStore over them."""

    reader: SqlCatalogReader
    writer: SqlCatalogWriter
    in_stock: SqlInStockProjection
    products: SqlProductStore

    @classmethod
    def on(cls, store: Store, *, dialect: PostsDialect, currency: str) -> PostsCatalog:
        reader = SqlCatalogReader(store, search=dialect, currency=currency)
        writer = SqlCatalogWriter(store, ids=dialect, currency=currency)
        in_stock = SqlInStockProjection(store)
        return cls(reader=reader, writer=writer, in_stock=in_stock,
                   products=SqlProductStore(reader=reader, writer=writer, in_stock=in_stock))


class SqlProductStore:
    """ProductStore (CatalogAdmin): a port that reads, edits and flags products, answered by the adapters above
    (its reads go to the shared reader, so there is still one cache to clear)."""

    __slots__ = ("_in_stock", "_reader", "_writer")

    def __init__(self, *, reader: SqlCatalogReader, writer: SqlCatalogWriter, in_stock: SqlInStockProjection) -> None:
        self._reader, self._writer, self._in_stock = reader, writer, in_stock

    async def categories(self) -> Sequence[Category]:
        return await self._reader.categories()

    async def products(self, query: ProductQuery, *, category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        return await self._reader.products(query, category_ids=category_ids)

    async def product(self, slug: str) -> Product | None:
        return await self._reader.product(slug)

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        return await self._reader.offers(skus)

    async def version(self) -> int:
        return await self._reader.version()

    async def count_products(self) -> int:
        return await self._reader.count_products()

    async def sku_owners(self, skus: Sequence[str]) -> dict[str, str]:
        return await self._writer.sku_owners(skus)

    async def create_product(self, product: Product, *, available: Mapping[str, int]) -> int:
        return await self._writer.create_product(product, available=available)

    async def replace_product(self, product: Product, *, available: Mapping[str, int]) -> None:
        await self._writer.replace_product(product, available=available)

    async def delete_product(self, product_id: int) -> None:
        await self._writer.delete_product(product_id)

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        return await self._in_stock.set_in_stock(flags)
