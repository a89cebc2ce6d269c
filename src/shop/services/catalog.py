"""Catalogue use cases: browse categories, list and search products, show one product with its stock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shop.domain.catalog import Category, CategoryTree, Offer, Page, Product, ProductQuery, ProductSummary
from shop.domain.errors import NotFound
from shop.domain.inventory import StockLevel
from shop.services.ports import CatalogReader, StockReader


@dataclass(frozen=True, slots=True)
class ProductDetail:
    product: Product
    stock: Mapping[str, StockLevel]
    breadcrumbs: Sequence[Category]

    def available(self, sku: str) -> int:
        level = self.stock.get(sku)
        return level.available if level else 0


class CatalogService:
    def __init__(self, *, reader: CatalogReader, stock: StockReader) -> None:
        self._reader = reader
        self._stock = stock
        self._tree: CategoryTree | None = None

    def catalog_changed(self, version: int) -> None:
        """Forget what was read of the catalogue; called by the version watcher."""
        self._tree = None

    async def category_tree(self) -> CategoryTree:
        """The whole category tree, kept until the catalogue changes."""
        if self._tree is None:
            self._tree = CategoryTree(await self._reader.categories())
        return self._tree

    async def categories(self) -> list[Category]:
        """Every category, parents before children, siblings by position."""
        tree = await self.category_tree()
        ordered: list[Category] = []
        stack = list(reversed(tree.roots()))
        while stack:
            current = stack.pop()
            ordered.append(current)
            stack.extend(reversed(tree.children(current.id)))
        return ordered

    async def list_products(self, query: ProductQuery) -> Page[ProductSummary]:
        """One page of published products matching the query."""
        category_ids: list[int] | None = None
        if query.category is not None:
            tree = await self.category_tree()
            category = tree.by_slug(query.category)
            if category is None:
                raise NotFound("category", query.category)
            category_ids = tree.subtree_ids(category.id)
        return await self._reader.products(query, category_ids=category_ids)

    async def product_detail(self, slug: str, *, include_unpublished: bool = False) -> ProductDetail:
        """A published product (or any, for staff) with the stock of each variant."""
        product = await self._reader.product(slug)
        if product is None or not (product.published or include_unpublished):
            raise NotFound("product", slug)
        levels = await self._stock.levels([v.sku for v in product.variants])
        crumbs: Sequence[Category] = ()
        if product.category_id is not None:
            crumbs = (await self.category_tree()).path(product.category_id)
        return ProductDetail(product=product, stock=levels, breadcrumbs=crumbs)

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        """What a cart needs to know of each variant with these SKUs; unknown SKUs are left out."""
        return await self._reader.offers(skus)
