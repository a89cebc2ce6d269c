"""The catalogue written on SQL: the seeder's bulk inserts and the staff's product edits. Every write moves the
catalogue version in its transaction, so every worker's caches forget what they held."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shop.domain.catalog import Category, Product
from shop.domain.errors import Conflict
from shop.infrastructure.db.bulk import insert_many
from shop.infrastructure.db.engines import Store
from shop.infrastructure.db.money_columns import to_minor
from shop.infrastructure.db.posts.dialects import IdSequences
from shop.infrastructure.db.posts.tables import NEXT_VERSION, categories, products, variants
from shop.infrastructure.db.types import utcnow


class SqlCatalogWriter:
    """CatalogWriter (the seeder) and the product edits of ProductStore (staff) over the posts store."""

    def __init__(self, store: Store, *, ids: IdSequences, currency: str) -> None:
        self._store = store
        self._ids = ids
        self._currency = currency

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
            await self._ids_given(conn, "categories")

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
            await self._ids_given(conn, "products")

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
                await conn.execute(NEXT_VERSION)
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
                await conn.execute(NEXT_VERSION)
        except IntegrityError:
            raise Conflict("the slug or a SKU is already used by another product") from None

    async def delete_product(self, product_id: int) -> None:
        async with self._store.write() as conn:
            await conn.execute(delete(variants).where(variants.c.product_id == product_id))
            await conn.execute(delete(products).where(products.c.id == product_id))
            await conn.execute(NEXT_VERSION)

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

    async def _ids_given(self, conn: AsyncConnection, table: str) -> None:
        await self._ids.ids_given(conn, table)
        await conn.execute(NEXT_VERSION)


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
