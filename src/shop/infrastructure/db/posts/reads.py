"""The catalogue read on SQL: categories, lists with filters, sorting and ranked search, a product, offers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, false, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.catalog import (
    Category,
    Image,
    Offer,
    Page,
    Product,
    ProductQuery,
    ProductSort,
    ProductSummary,
    Variant,
    search_terms,
)
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.money_columns import bound_to_minor, from_minor
from shop.infrastructure.db.posts.dialects import CatalogSearch, SearchShape
from shop.infrastructure.db.posts.tables import catalog_version, categories, products, variants

_SUMMARY_COLUMNS = (products.c.id, products.c.slug, products.c.title, products.c.price_min, products.c.currency,
                    products.c.images, products.c.in_stock, products.c.category_id)

_PRODUCT_BY_SLUG = select(products).where(products.c.slug == bindparam("slug"))
_VARIANTS_OF = (select(variants.c.sku, variants.c.title, variants.c.price, variants.c.currency, variants.c.options,
                       variants.c.weight_grams)
                .where(variants.c.product_id == bindparam("product_id")).order_by(variants.c.position, variants.c.id))
_OFFERS = (select(variants.c.sku, variants.c.title, variants.c.price, variants.c.currency, variants.c.options,
                  variants.c.weight_grams, products.c.slug.label("product_slug"),
                  products.c.title.label("product_title"), products.c.published)
           .join_from(variants, products, products.c.id == variants.c.product_id)
           .where(variants.c.sku.in_(bindparam("skus", expanding=True))))
OFFERS_PER_QUERY = 500  # keeps the IN list well inside every database's limit on bound parameters

_ORDER: dict[ProductSort, tuple[ColumnElement[Any], ...]] = {
    ProductSort.PRICE: (products.c.price_min, products.c.id),
    ProductSort.PRICE_DESC: (products.c.price_min.desc(), products.c.id.desc()),
    ProductSort.TITLE: (products.c.title, products.c.id),
    ProductSort.NEWEST: (products.c.created_at.desc(), products.c.id.desc()),
    ProductSort.RELEVANCE: (products.c.created_at.desc(), products.c.id.desc()),
}


@dataclass(frozen=True, slots=True)
class _Shape:
    category: bool
    min_price: bool
    max_price: bool
    in_stock: bool | None
    sort: ProductSort
    search: SearchShape | None


def _image(raw: Any) -> Image | None:
    if not raw:
        return None
    first = raw[0]
    return Image(url=first["url"], alt=first.get("alt", ""))


class SqlCatalogReader:
    """CatalogReader and OfferSource over the posts store. The only adapter of the store that remembers anything
    (list totals per filter, until `catalog_changed`): bootstrap builds one and every reading service shares it."""

    def __init__(self, store: Store, *, search: CatalogSearch, currency: str) -> None:
        self._store = store
        self._search = search
        self._currency = currency
        self._totals: dict[tuple[Any, ...], int] = {}
        self._statements_by_shape: dict[_Shape, tuple[Select[Any], Select[Any]]] = {}

    def catalog_changed(self, version: int) -> None:
        """Counts are remembered per filter until the catalogue changes."""
        self._totals.clear()

    async def version(self) -> int:
        async with self._store.read() as conn:
            value = await conn.scalar(select(catalog_version.c.version).where(catalog_version.c.id == 1))
        return int(value or 0)

    async def count_products(self) -> int:
        async with self._store.read() as conn:
            return int(await conn.scalar(select(func.count()).select_from(products)) or 0)

    async def categories(self) -> Sequence[Category]:
        async with self._store.read() as conn:
            rows = await conn.execute(select(categories).order_by(categories.c.position, categories.c.id))
            return [Category(id=r.id, slug=r.slug, name=r.name, parent_id=r.parent_id, position=r.position,
                             description=r.description) for r in rows]

    def _statements(self, shape: _Shape) -> tuple[Select[Any], Select[Any]]:
        """The page and count statements for a shape of query, built once and reused with new parameters."""
        cached = self._statements_by_shape.get(shape)
        if cached is not None:
            return cached
        where: list[ColumnElement[bool]] = [products.c.published == true()]
        if shape.category:
            where.append(products.c.category_id.in_(bindparam("category_ids", expanding=True)))
        if shape.min_price:
            where.append(products.c.price_min >= bindparam("min_price"))
        if shape.max_price:
            where.append(products.c.price_min <= bindparam("max_price"))
        if shape.in_stock is not None:
            where.append(products.c.in_stock == (true() if shape.in_stock else false()))
        stmt: Select[Any] = select(*_SUMMARY_COLUMNS)
        if shape.search is not None:
            match, rank = self._search.match_and_rank(shape.search)
            where.append(match)
            stmt = stmt.add_columns(rank.label("rank"))
        stmt = stmt.where(*where).limit(bindparam("limit")).offset(bindparam("offset"))
        if shape.sort is ProductSort.RELEVANCE and shape.search is not None:
            stmt = stmt.order_by(literal_column("rank").desc(), products.c.id.desc())
        else:
            stmt = stmt.order_by(*_ORDER[shape.sort])
        count = select(func.count()).select_from(products).where(*where)
        if len(self._statements_by_shape) > 512:
            self._statements_by_shape.clear()
        self._statements_by_shape[shape] = (stmt, count)
        return stmt, count

    async def products(self, query: ProductQuery, *, category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        search: SearchShape | None = None
        if query.q:
            terms = search_terms(query.q)
            if not terms:  # only punctuation: nothing can match
                return Page(items=[], total=0, page=query.page, limit=query.limit)
            search, search_params = self._search.parameters(terms)
            params.update(search_params)
        if category_ids is not None:
            params["category_ids"] = list(category_ids)
        if query.min_price is not None:
            params["min_price"] = bound_to_minor(query.min_price, self._currency, upper=False)
        if query.max_price is not None:
            params["max_price"] = bound_to_minor(query.max_price, self._currency, upper=True)
        shape = _Shape(category=category_ids is not None, min_price=query.min_price is not None,
                       max_price=query.max_price is not None, in_stock=query.in_stock, sort=query.effective_sort,
                       search=search)
        stmt, count = self._statements(shape)
        key = (shape, tuple(category_ids or ()), params.get("min_price"), params.get("max_price"), query.q)
        async with self._store.read() as conn:
            rows = (await conn.execute(stmt, params)).all()
            total = self._totals.get(key)
            if total is None:
                if query.page == 1 and len(rows) < query.limit:
                    total = len(rows)
                else:
                    total = int(await conn.scalar(count, params) or 0)
                if len(self._totals) > 10_000:
                    self._totals.clear()
                self._totals[key] = total
        ranked = search is not None
        items = [
            ProductSummary(slug=r[1], title=r[2], price_from=from_minor(r[3], r[4]), image=_image(r[5]),
                           in_stock=r[6], category_id=r[7], rank=float(r[8]) if ranked else None)
            for r in rows
        ]
        return Page(items=items, total=total, page=query.page, limit=query.limit)

    async def product(self, slug: str) -> Product | None:
        # two small queries: a join would repeat (and decode) the product's JSON on every variant row
        async with self._store.read() as conn:
            head = (await conn.execute(_PRODUCT_BY_SLUG, {"slug": slug})).first()
            if head is None:
                return None
            rows = (await conn.execute(_VARIANTS_OF, {"product_id": head.id})).all()
        found = [Variant(sku=r.sku, price=from_minor(r.price, r.currency), options=r.options, title=r.title,
                         weight_grams=r.weight_grams) for r in rows]
        return Product(
            id=head.id, slug=head.slug, title=head.title, description=head.description,
            category_id=head.category_id, variants=found, attributes=head.attributes,
            images=[Image(url=i["url"], alt=i.get("alt", "")) for i in head.images],
            published=head.published, created_at=head.created_at,
        )

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        async with self._store.read() as conn:
            return await self.offers_on(conn, skus)

    def shares_pool_with(self, store: Store) -> bool:
        """Whether `store`'s connections come from this catalogue's pool (the catalogue lives in its database)."""
        return store.engine.sync_engine.pool is self._store.engine.sync_engine.pool

    def offers_within(self, conn: AsyncConnection) -> CatalogOffersOn:
        """The offers (an `OfferSource`) read on `conn`, a connection of the catalogue's database the caller
        holds, e.g. inside its transaction."""
        return CatalogOffersOn(self, conn)

    async def offers_on(self, conn: AsyncConnection, skus: Sequence[str]) -> dict[str, Offer]:
        """`offers`, read on a connection of the catalogue's database the caller holds (e.g. inside its
        transaction), so the caller does not hold a second connection of the same pool while waiting."""
        wanted = list(dict.fromkeys(skus))
        exact = set(wanted)
        found: dict[str, Offer] = {}
        for start in range(0, len(wanted), OFFERS_PER_QUERY):
            rows = await conn.execute(_OFFERS, {"skus": wanted[start:start + OFFERS_PER_QUERY]})
            for r in rows:
                if r.sku not in exact:  # MariaDB's collation ignores case and trailing spaces; SKUs do not
                    continue
                found[r.sku] = Offer(
                    sku=r.sku, product_slug=r.product_slug, product_title=r.product_title, variant_title=r.title,
                    price=from_minor(r.price, r.currency), weight_grams=r.weight_grams,
                    published=bool(r.published), options=r.options)
        return found


class CatalogOffersOn:
    """`OfferSource` on a connection of the catalogue's database that someone else holds."""

    __slots__ = ("_catalog", "_conn")

    def __init__(self, catalog: SqlCatalogReader, conn: AsyncConnection) -> None:
        self._catalog = catalog
        self._conn = conn

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        return await self._catalog.offers_on(self._conn, skus)
