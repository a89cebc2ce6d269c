"""Staff manage the catalogue: create, change and delete products, with their prices and stock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from shop.domain.catalog import Image, Product, Variant, check_sku, check_slug, slugify
from shop.domain.errors import Conflict, InvalidValue, NotFound
from shop.domain.inventory import StockLevel
from shop.domain.money import Money, parse_amount
from shop.services.catalog import CatalogService
from shop.services.ports import CatalogReader, Stock

MAX_STOCK = 1_000_000
MAX_PRICE = 1_000_000_000


class ProductStore(CatalogReader, Protocol):
    async def sku_owners(self, skus: Sequence[str]) -> dict[str, str]: ...

    async def create_product(self, product: Product, *, available: Mapping[str, int]) -> int: ...

    async def replace_product(self, product: Product, *, available: Mapping[str, int]) -> None: ...

    async def delete_product(self, product_id: int) -> None: ...

    async def set_in_stock(self, flags: Mapping[int, bool]) -> int: ...


class StockCounts(Stock, Protocol):
    async def set_on_hand(self, sku: str, on_hand: int) -> StockLevel:
        """Set the units on hand unless orders hold more than that; the level as it is afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class VariantDraft:
    sku: str
    price: str
    options: Mapping[str, str]
    title: str = ""
    stock: int | None = None  # None keeps what is on hand
    weight_grams: int = 0


@dataclass(frozen=True, slots=True)
class ProductDraft:
    """What staff send; None means "leave as it is" when changing a product."""

    title: str | None = None
    slug: str | None = None
    description: str | None = None
    category: str | None = None
    attributes: Mapping[str, str] | None = None
    images: Sequence[Image] | None = None
    published: bool | None = None
    variants: Sequence[VariantDraft] | None = None


class CatalogAdmin:
    def __init__(self, *, products: ProductStore, stock: StockCounts, catalog: CatalogService,
                 currency: str) -> None:
        self._products = products
        self._stock = stock
        self._catalog = catalog
        self._currency = currency

    async def create(self, draft: ProductDraft) -> Product:
        """A new product; its slug comes from the title unless given."""
        if not draft.title or not draft.title.strip():
            raise InvalidValue("title", "a product needs a title")
        if not draft.variants:
            raise InvalidValue("variants", "a product needs at least one variant")
        slug = check_slug(draft.slug or slugify(draft.title))
        if await self._products.product(slug) is not None:
            raise Conflict(f"the slug {slug!r} is already used")
        product = Product(
            id=0, slug=slug, title=draft.title.strip(), description=draft.description or "",
            category_id=await self._category_id(draft.category), variants=self._variants(draft.variants),
            attributes=dict(draft.attributes or {}), images=list(draft.images or ()),
            published=draft.published if draft.published is not None else False,
            created_at=datetime.now(UTC))
        await self._check_skus(product, owner=None)
        available = await self._set_stock(draft.variants)
        product_id = await self._products.create_product(product, available=available)
        return replace(product, id=product_id)

    async def change(self, slug: str, draft: ProductDraft) -> Product:
        """Change the fields given; variants, when given, replace the old ones."""
        current = await self._products.product(slug)
        if current is None:
            raise NotFound("product", slug)
        new_slug = check_slug(draft.slug) if draft.slug is not None else current.slug
        if new_slug != current.slug and await self._products.product(new_slug) is not None:
            raise Conflict(f"the slug {new_slug!r} is already used")
        if draft.title is not None and not draft.title.strip():
            raise InvalidValue("title", "a product needs a title")
        if draft.variants is not None and not draft.variants:
            raise InvalidValue("variants", "a product needs at least one variant")
        product = replace(
            current, slug=new_slug,
            title=draft.title.strip() if draft.title is not None else current.title,
            description=draft.description if draft.description is not None else current.description,
            category_id=(await self._category_id(draft.category)) if draft.category is not None
            else current.category_id,
            attributes=dict(draft.attributes) if draft.attributes is not None else current.attributes,
            images=list(draft.images) if draft.images is not None else current.images,
            published=draft.published if draft.published is not None else current.published,
            variants=self._variants(draft.variants) if draft.variants is not None else current.variants)
        await self._check_skus(product, owner=current.slug)
        available = await self._set_stock(draft.variants or ())
        levels = await self._stock.levels([v.sku for v in product.variants])
        available = {sku: level.available for sku, level in levels.items()} | available
        await self._products.replace_product(product, available=available)
        return product

    async def product(self, slug: str) -> Product:
        """A product as staff see it, published or not."""
        product = await self._products.product(slug) if len(slug) <= 200 else None
        if product is None:
            raise NotFound("product", slug)
        return product

    async def set_stock(self, slug: str, sku: str, on_hand: int) -> StockLevel:
        """Count the units on hand of one variant; never fewer than orders being paid for hold."""
        product = await self.product(slug)
        skus = [v.sku for v in product.variants]
        if sku not in skus:
            raise InvalidValue("sku", f"{product.title} has no variant {sku!r}")
        if isinstance(on_hand, bool) or not 0 <= on_hand <= MAX_STOCK:
            raise InvalidValue("on_hand", f"must be a whole number from 0 to {MAX_STOCK}")
        level = await self._stock.set_on_hand(sku, on_hand)
        if level.on_hand != on_hand:
            raise InvalidValue("on_hand", f"orders hold {level.reserved} units of {sku}; on hand cannot go below "
                                          f"{level.reserved}")
        levels = await self._stock.levels(skus)
        await self._products.set_in_stock({product.id: any(lv.available > 0 for lv in levels.values())})
        return level

    async def delete(self, slug: str) -> None:
        """Remove a product from the catalogue; orders keep their own copy of it."""
        current = await self._products.product(slug)
        if current is None:
            raise NotFound("product", slug)
        await self._products.delete_product(current.id)

    async def _category_id(self, slug: str | None) -> int | None:
        if not slug:
            return None
        category = (await self._catalog.category_tree()).by_slug(slug)
        if category is None:
            raise InvalidValue("category", f"there is no category {slug!r}")
        return category.id

    def _variants(self, drafts: Sequence[VariantDraft]) -> list[Variant]:
        variants = []
        for n, draft in enumerate(drafts):
            field = f"variants.{n}"
            amount = parse_amount(draft.price, field=f"{field}.price")
            if amount < 0:
                raise InvalidValue(f"{field}.price", "must be 0 or more")
            if amount > MAX_PRICE:  # beyond this the stored minor units would overflow a database's integer
                raise InvalidValue(f"{field}.price", f"must be at most {MAX_PRICE}")
            if draft.stock is not None and draft.stock < 0:
                raise InvalidValue(f"{field}.stock", "must be 0 or more")
            try:
                sku = check_sku(draft.sku)
            except InvalidValue:
                raise InvalidValue(f"{field}.sku", "use 1-64 uppercase letters, digits, '.', '_' or '-'") from None
            price = Money(amount, self._currency)
            try:
                variant = Variant(sku=sku, price=price, options=dict(draft.options),
                                  title=draft.title or " / ".join(draft.options.values()) or "Standard",
                                  weight_grams=draft.weight_grams)
            except InvalidValue as error:  # the weight: named as the field of this variant
                raise InvalidValue(f"{field}.{error.field}", error.message) from None
            variants.append(variant)
        skus = [v.sku for v in variants]
        if len(set(skus)) != len(skus):
            raise InvalidValue("variants", "each variant needs its own SKU")
        return variants

    async def _check_skus(self, product: Product, *, owner: str | None) -> None:
        owners = await self._products.sku_owners([v.sku for v in product.variants])
        taken = sorted(sku for sku, slug in owners.items() if slug != owner)
        if taken:
            raise Conflict(f"SKU {taken[0]} already belongs to another product")

    async def _set_stock(self, drafts: Sequence[VariantDraft]) -> dict[str, int]:
        given = [StockLevel(d.sku, d.stock) for d in drafts if d.stock is not None]
        if given:
            current = await self._stock.levels([level.sku for level in given])
            # reserved units stay reserved: stock on hand cannot drop below what orders hold
            for level in given:
                held = current[level.sku].reserved if level.sku in current else 0
                level.on_hand = max(level.on_hand, held)
                level.reserved = held
            await self._stock.set_levels(given)
        return {level.sku: level.available for level in given}
