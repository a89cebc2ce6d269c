"""The catalogue on SQL: lists with filters, sorting and ranked full-text search per database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.mysql import match as mysql_match
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.exc import IntegrityError
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
from shop.domain.errors import Conflict
from shop.infrastructure.db.bulk import insert_many
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.money_columns import bound_to_minor, from_minor, to_minor
from shop.infrastructure.db.posts.tables import catalog_version, categories, products, variants
from shop.infrastructure.db.types import utcnow

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


def _image(raw: Any) -> Image | None:
    if not raw:
        return None
    first = raw[0]
    return Image(url=first["url"], alt=first.get("alt", ""))


class SqlCatalog:
    """CatalogReader and CatalogWriter over the posts store."""

    def __init__(self, store: Store, *, currency: str) -> None:
        self._store = store
        self._backend = store.backend
        self._currency = currency
        self._totals: dict[tuple[Any, ...], int] = {}
        self._statements_by_shape: dict[_Shape, tuple[Select[Any], Select[Any]]] = {}

    def catalog_changed(self, version: int) -> None:
        """Counts are remembered per filter until the catalogue changes."""
        self._totals.clear()

    # ---- reading -----------------------------------------------------------------------------------------

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
            match, rank = _SEARCH[self._backend](shape.search)
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
        search: _SearchShape | None = None
        if query.q:
            terms = search_terms(query.q)
            if not terms:  # only punctuation: nothing can match
                return Page(items=[], total=0, page=query.page, limit=query.limit)
            search, search_params = _SEARCH_PARAMS[self._backend](terms)
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

    # ---- writing -----------------------------------------------------------------------------------------

    async def next_ids(self) -> tuple[int, int]:
        async with self._store.read() as conn:
            category = await conn.scalar(select(func.max(categories.c.id)))
            product = await conn.scalar(select(func.max(products.c.id)))
        return int(category or 0) + 1, int(product or 0) + 1

    async def add_categories(self, new: Sequence[Category]) -> None:
        rows = [{"id": c.id, "slug": c.slug, "name": c.name, "description": c.description,
                 "parent_id": c.parent_id, "position": c.position} for c in new]
        async with self._store.write() as conn:
            # parents first, so the self-reference holds on every database
            for depth_rows in _by_depth(rows):
                await conn.execute(insert(categories), depth_rows)
            await self._after_insert(conn, "categories")

    def _rows(self, p: Product, available: Mapping[str, int], now: datetime) -> tuple[dict[str, Any],
                                                                                     list[dict[str, Any]]]:
        prices = [to_minor(v.price) for v in p.variants]
        product_row = {
            "slug": p.slug, "title": p.title, "description": p.description,
            "category_id": p.category_id, "attributes": dict(p.attributes),
            "images": [{"url": i.url, "alt": i.alt} for i in p.images], "published": p.published,
            "price_min": min(prices, default=0), "price_max": max(prices, default=0),
            "currency": p.variants[0].price.currency if p.variants else self._currency,
            "in_stock": any(available.get(v.sku, 0) > 0 for v in p.variants),
            "created_at": p.created_at or now, "updated_at": now,
        }
        variant_rows = [{"product_id": p.id, "sku": v.sku, "title": v.title, "price": price,
                         "currency": v.price.currency, "options": dict(v.options), "position": n,
                         "weight_grams": v.weight_grams}
                        for n, (v, price) in enumerate(zip(p.variants, prices, strict=True))]
        return product_row, variant_rows

    async def add_products(self, new: Sequence[Product], *, available: Mapping[str, int]) -> None:
        now = utcnow()
        product_rows: list[dict[str, Any]] = []
        variant_rows: list[dict[str, Any]] = []
        for p in new:
            product_row, rows = self._rows(p, available, now)
            product_rows.append({"id": p.id, **product_row})
            variant_rows.extend(rows)
        async with self._store.write() as conn:
            await insert_many(conn, products, product_rows)
            await insert_many(conn, variants, variant_rows)
            await self._after_insert(conn, "products")

    async def sku_owners(self, skus: Sequence[str]) -> dict[str, str]:
        async with self._store.read() as conn:
            rows = await conn.execute(select(variants.c.sku, products.c.slug)
                                      .join(products, products.c.id == variants.c.product_id)
                                      .where(variants.c.sku.in_(list(skus))))
            return {r.sku: r.slug for r in rows}

    async def create_product(self, product: Product, *, available: Mapping[str, int]) -> int:
        product_row, _ = self._rows(product, available, utcnow())
        try:
            async with self._store.write() as conn:
                result = await conn.execute(insert(products).values(**product_row))
                key = result.inserted_primary_key
                assert key is not None
                product_id = int(key[0])
                _, variant_rows = self._rows(replace(product, id=product_id), available, utcnow())
                await insert_many(conn, variants, variant_rows)
                await self._bump(conn)
        except IntegrityError:  # another writer took the slug or a SKU in the meantime
            raise Conflict("the slug or a SKU is already used by another product") from None
        return product_id

    async def replace_product(self, product: Product, *, available: Mapping[str, int]) -> None:
        product_row, variant_rows = self._rows(product, available, utcnow())
        try:
            async with self._store.write() as conn:
                await conn.execute(update(products).where(products.c.id == product.id).values(**product_row))
                await conn.execute(delete(variants).where(variants.c.product_id == product.id))
                await insert_many(conn, variants, variant_rows)
                await self._bump(conn)
        except IntegrityError:
            raise Conflict("the slug or a SKU is already used by another product") from None

    async def delete_product(self, product_id: int) -> None:
        async with self._store.write() as conn:
            await conn.execute(delete(variants).where(variants.c.product_id == product_id))
            await conn.execute(delete(products).where(products.c.id == product_id))
            await self._bump(conn)

    async def siblings(self, skus: Sequence[str]) -> dict[int, list[str]]:
        """For the products owning these SKUs: every SKU of each, by product id."""
        if not skus:
            return {}
        async with self._store.read() as conn:
            owners = select(variants.c.product_id).where(variants.c.sku.in_(list(dict.fromkeys(skus))))
            rows = await conn.execute(select(variants.c.product_id, variants.c.sku)
                                      .where(variants.c.product_id.in_(owners)))
            found: dict[int, list[str]] = {}
            for row in rows:
                found.setdefault(row.product_id, []).append(row.sku)
            return found

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int:
        """Store each product's in-stock flag where it changed; the catalogue version moves only if one did."""
        changed = 0
        async with self._store.write() as conn:
            for product_id, flag in flags.items():
                result = await conn.execute(update(products).where(products.c.id == product_id,
                                                                   products.c.in_stock != flag)
                                            .values(in_stock=flag))
                changed += result.rowcount or 0
            if changed:
                await self._bump(conn)
        return changed

    async def _bump(self, conn: Any) -> None:
        await conn.execute(update(catalog_version).where(catalog_version.c.id == 1)
                           .values(version=catalog_version.c.version + 1))

    async def _after_insert(self, conn: Any, table: str) -> None:
        if self._backend == "postgresql":  # explicit ids do not move the serial sequence
            await conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))  # noqa: S608
        await self._bump(conn)


def _by_depth(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    levels: list[list[dict[str, Any]]] = []
    placed: set[int | None] = {None}
    remaining = rows
    while remaining:
        level = [r for r in remaining if r["parent_id"] in placed or not any(
            o["id"] == r["parent_id"] for o in remaining)]
        if not level:
            raise ValueError("category parents form a cycle")
        levels.append(level)
        placed.update(r["id"] for r in level)
        remaining = [r for r in remaining if r not in level]
    return levels


__all__ = ["SqlCatalog"]


@dataclass(frozen=True, slots=True)
class _SearchShape:
    """What a search statement depends on besides its parameters (MariaDB: how many short and long words)."""

    short_words: int = 0
    long_words: bool = True
    numbered_words: int = 0  # PostgreSQL: words with a digit in them, each matched two ways
    plain_words: bool = True  # PostgreSQL: whether there are others


@dataclass(frozen=True, slots=True)
class _Shape:
    category: bool
    min_price: bool
    max_price: bool
    in_stock: bool | None
    sort: ProductSort
    search: _SearchShape | None


_ORDER: dict[ProductSort, tuple[ColumnElement[Any], ...]] = {
    ProductSort.PRICE: (products.c.price_min, products.c.id),
    ProductSort.PRICE_DESC: (products.c.price_min.desc(), products.c.id.desc()),
    ProductSort.TITLE: (products.c.title, products.c.id),
    ProductSort.NEWEST: (products.c.created_at.desc(), products.c.id.desc()),
    ProductSort.RELEVANCE: (products.c.created_at.desc(), products.c.id.desc()),
}

# Search terms are \w+ words (domain.catalog.search_terms), so no quote or operator of any dialect reaches SQL.
Search = tuple[ColumnElement[bool], ColumnElement[Any]]


def _search_postgresql(shape: _SearchShape) -> Search:
    # The text search parser reads a word with digits differently alone than inside the text it was indexed from:
    # "1e5a2b" alone is the number 1e5 and the word a2b, inside "T-1E5A2B" (a SKU) it is one lexeme. So a word
    # with a digit also matches as the literal lexeme it is (`'1e5a2b':*`, no parsing), whichever way was indexed,
    # or as the negative number a hyphen before digits makes of it.
    parts: list[ColumnElement[Any]] = [func.to_tsquery("english", bindparam("search"))] if shape.plain_words else []
    parts += [func.to_tsquery("english", bindparam(f"numbered_{n}")).op("||")(cast(bindparam(f"lexeme_{n}"), TSQUERY))
              for n in range(shape.numbered_words)]
    tsquery = parts[0]
    for part in parts[1:]:
        tsquery = tsquery.op("&&")(part)
    vector: ColumnElement[Any] = literal_column("products.search_vector")
    return vector.op("@@")(tsquery), func.ts_rank_cd(vector, tsquery)


def _search_sqlite(_: _SearchShape) -> Search:
    matching = text("products_fts MATCH :search")
    ids: Select[Any] = select(literal_column("rowid")).select_from(text("products_fts")).where(matching)
    rank = (select(literal_column("-bm25(products_fts, 10.0, 1.0)")).select_from(text("products_fts"))
            .where(matching, literal_column("products_fts.rowid") == products.c.id).scalar_subquery())
    return products.c.id.in_(ids), rank


def _search_mysql(shape: _SearchShape) -> Search:
    # InnoDB does not index words shorter than three letters; those are looked for in the title instead
    conditions: list[ColumnElement[bool]] = [products.c.title.like(bindparam(f"short_{n}"), escape="\\")
                                             for n in range(shape.short_words)]
    rank: ColumnElement[Any] = literal_column("0")
    if shape.long_words:
        conditions.append(mysql_match(products.c.title, products.c.description,
                                      against=bindparam("search")).in_boolean_mode())
        # a word in the title counts more than one in the description, as on the other databases
        rank = mysql_match(products.c.title, against=bindparam("words")) * 3 + mysql_match(
            products.c.title, products.c.description, against=bindparam("words"))
    return and_(*conditions), rank


def _postgresql_params(terms: list[str]) -> tuple[_SearchShape, dict[str, Any]]:
    numbered = [t for t in terms if any(c.isdigit() for c in t)]
    params: dict[str, Any] = {"search": " & ".join(f"{t}:*" for t in terms if t not in numbered)}
    for n, word in enumerate(numbered):  # \w+ words: no quote or operator can reach the tsquery syntax
        params[f"numbered_{n}"] = f"{word}:*"
        params[f"lexeme_{n}"] = f"'{word}':* | '-{word}':*"  # "T-0602" is indexed as T and the integer -0602
    return _SearchShape(numbered_words=len(numbered), plain_words=len(numbered) < len(terms)), params


def _sqlite_params(terms: list[str]) -> tuple[_SearchShape, dict[str, Any]]:
    return _SearchShape(), {"search": " AND ".join(f'"{t}"*' for t in terms)}


def _mysql_params(terms: list[str]) -> tuple[_SearchShape, dict[str, Any]]:
    short = [t for t in terms if len(t) < 3]
    long = [t for t in terms if len(t) >= 3]
    params: dict[str, Any] = {f"short_{n}": "%" + t.replace("_", "\\_") + "%" for n, t in enumerate(short)}
    if long:
        params.update(search=" ".join(f"+{t}*" for t in long), words=" ".join(long))
    return _SearchShape(short_words=len(short), long_words=bool(long)), params


_SEARCH = {"postgresql": _search_postgresql, "sqlite": _search_sqlite, "mysql": _search_mysql,
           "mariadb": _search_mysql}
_SEARCH_PARAMS = {"postgresql": _postgresql_params, "sqlite": _sqlite_params, "mysql": _mysql_params,
                  "mariadb": _mysql_params}


class CatalogOffersOn:
    """`OfferSource` on a connection of the catalogue's database that someone else holds."""

    __slots__ = ("_catalog", "_conn")

    def __init__(self, catalog: SqlCatalog, conn: AsyncConnection) -> None:
        self._catalog = catalog
        self._conn = conn

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        return await self._catalog.offers_on(self._conn, skus)
