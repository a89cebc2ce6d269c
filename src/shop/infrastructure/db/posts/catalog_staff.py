"""The catalogue as staff see it, on SQL: every product for the list, and edits of the category tree. Each
change moves the catalogue version in its own transaction, so every worker's caches forget the old tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shop.domain.catalog import Category, Page
from shop.domain.errors import Conflict
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.money_columns import from_minor
from shop.infrastructure.db.posts.tables import NEXT_VERSION, categories, products, variants
from shop.services.catalog_staff import ProductRow

_VARIANT_COUNT = (select(func.count()).select_from(variants).where(variants.c.product_id == products.c.id)
                  .scalar_subquery())
_ROW_COLUMNS = (products.c.slug, products.c.title, products.c.published, products.c.price_min, products.c.price_max,
                products.c.currency, products.c.in_stock, products.c.category_id, _VARIANT_COUNT.label("variants"))


class SqlCatalogStaff:
    """StaffCatalogStore over the posts store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def product_rows(self, *, q: str, page: int, limit: int) -> Page[ProductRow]:
        where: list[ColumnElement[Any]] = []
        if q:
            text = q.lower()
            where.append(or_(func.lower(products.c.title).contains(text, autoescape=True),
                             products.c.slug.contains(text, autoescape=True),
                             products.c.id.in_(select(variants.c.product_id).where(variants.c.sku == q.upper()))))
        async with self._store.read() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(products).where(*where)) or 0)
            rows = await conn.execute(select(*_ROW_COLUMNS).where(*where)
                                      .order_by(products.c.created_at.desc(), products.c.id.desc())
                                      .limit(limit).offset((page - 1) * limit))
            items = [ProductRow(slug=r.slug, title=r.title, published=bool(r.published),
                                price_from=from_minor(r.price_min, r.currency),
                                price_to=from_minor(r.price_max, r.currency), in_stock=bool(r.in_stock),
                                category_id=r.category_id, variants=int(r.variants)) for r in rows]
        return Page(items=items, total=total, page=page, limit=limit)

    async def categories(self) -> Sequence[Category]:
        async with self._store.read() as conn:
            rows = await conn.execute(select(categories).order_by(categories.c.position, categories.c.id))
            return [Category(id=r.id, slug=r.slug, name=r.name, parent_id=r.parent_id, position=r.position,
                             description=r.description) for r in rows]

    async def add_category(self, category: Category) -> int:
        try:
            async with self._store.write() as conn:
                result = await conn.execute(insert(categories).values(
                    slug=category.slug, name=category.name, description=category.description,
                    parent_id=category.parent_id, position=category.position))
                key = result.inserted_primary_key
                assert key is not None
                await conn.execute(NEXT_VERSION)
        except IntegrityError:  # another writer took the slug (or removed the parent) in the meantime
            raise Conflict(f"the slug {category.slug!r} is already used by another category") from None
        return int(key[0])

    async def update_category(self, category: Category) -> None:
        async with self._store.write() as conn:
            await conn.execute(update(categories).where(categories.c.id == category.id).values(
                name=category.name, parent_id=category.parent_id, position=category.position))
            await conn.execute(NEXT_VERSION)

    async def delete_category(self, category_id: int) -> None:
        async with self._store.write() as conn:
            await conn.execute(delete(categories).where(categories.c.id == category_id))
            await conn.execute(NEXT_VERSION)

    async def products_in(self, category_id: int) -> int:
        async with self._store.read() as conn:
            return int(await conn.scalar(select(func.count()).select_from(products)
                                         .where(products.c.category_id == category_id)) or 0)
