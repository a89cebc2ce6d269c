from __future__ import annotations

import pytest

from shop.domain.catalog import Category, Product, ProductQuery, Variant
from shop.domain.errors import NotFound
from shop.domain.inventory import StockLevel
from shop.domain.money import Money
from shop.services.catalog import CatalogService

CATEGORIES = [
    Category(id=2, slug="shoes", name="Shoes", position=1),
    Category(id=1, slug="clothing", name="Clothing", position=0),
    Category(id=3, slug="t-shirts", name="T-shirts", parent_id=1, position=1),
    Category(id=4, slug="knitwear", name="Knitwear", parent_id=1, position=0),
    Category(id=5, slug="cardigans", name="Cardigans", parent_id=4),
    Category(id=6, slug="boots", name="Boots", parent_id=2),
]


def _product(slug: str, category_id: int | None, *skus: str, published: bool = True) -> Product:
    variants = [Variant(sku=sku, price=Money.of("20", "EUR")) for sku in skus or (f"{slug.upper()}-1",)]
    return Product(id=len(slug), slug=slug, title=slug.title(), description="", category_id=category_id,
                   variants=variants, published=published)


@pytest.fixture
def service(catalog, stock) -> CatalogService:
    catalog.category_rows = list(CATEGORIES)
    products = [_product("wool-cardigan", 5, "CARD-S", "CARD-M", "CARD-L"), _product("linen-tee", 3),
                _product("chelsea-boot", 6), _product("gift-card", None),
                _product("draft", 3, published=False)]
    catalog.product_rows = {p.slug: p for p in products}
    return CatalogService(reader=catalog, stock=stock)


# categories


async def test_categories_list_parents_before_children_and_siblings_by_position(service) -> None:
    slugs = [c.slug for c in await service.categories()]
    assert slugs == ["clothing", "knitwear", "cardigans", "t-shirts", "shoes", "boots"]


async def test_the_category_tree_is_read_once(service, catalog) -> None:
    await service.categories()
    await service.categories()
    await service.list_products(ProductQuery(category="clothing"))
    await service.product_detail("wool-cardigan")
    assert catalog.category_reads == 1


async def test_the_category_tree_is_read_again_after_the_catalogue_changed(service, catalog) -> None:
    await service.categories()
    catalog.category_rows.append(Category(id=7, slug="hats", name="Hats", position=2))
    assert "hats" not in [c.slug for c in await service.categories()]  # still the tree read before

    service.catalog_changed(2)

    assert [c.slug for c in await service.categories()][-1] == "hats"
    assert catalog.category_reads == 2


# listing products


async def test_listing_without_a_category_does_not_limit_the_categories(service, catalog) -> None:
    page = await service.list_products(ProductQuery())
    assert catalog.product_calls[-1][1] is None
    assert page.total == 4


async def test_listing_a_category_asks_for_it_and_every_category_below_it(service, catalog) -> None:
    query = ProductQuery(category="clothing", limit=10)
    page = await service.list_products(query)
    passed_query, category_ids = catalog.product_calls[-1]
    assert passed_query is query
    assert category_ids is not None
    assert sorted(category_ids) == [1, 3, 4, 5]
    assert sorted(item.slug for item in page.items) == ["linen-tee", "wool-cardigan"]


async def test_listing_a_leaf_category_asks_for_that_category_only(service, catalog) -> None:
    await service.list_products(ProductQuery(category="boots"))
    assert catalog.product_calls[-1][1] == [6]


async def test_listing_an_unknown_category_is_not_found(service, catalog) -> None:
    with pytest.raises(NotFound) as error:
        await service.list_products(ProductQuery(category="hats"))
    assert (error.value.kind, error.value.key) == ("category", "hats")
    assert catalog.product_calls == []


# one product


async def test_a_missing_product_is_not_found(service) -> None:
    with pytest.raises(NotFound) as error:
        await service.product_detail("no-such-thing")
    assert (error.value.kind, error.value.key) == ("product", "no-such-thing")


async def test_an_unpublished_product_is_not_found(service, stock) -> None:
    with pytest.raises(NotFound):
        await service.product_detail("draft")
    assert stock.asked_for == []


async def test_product_detail_shows_what_is_available_of_each_variant(service, stock) -> None:
    stock.rows["CARD-S"] = StockLevel("CARD-S", on_hand=5, reserved=2)
    stock.rows["CARD-M"] = StockLevel("CARD-M", on_hand=1, reserved=1)

    detail = await service.product_detail("wool-cardigan")

    assert stock.asked_for == [["CARD-S", "CARD-M", "CARD-L"]]
    assert detail.available("CARD-S") == 3
    assert detail.available("CARD-M") == 0
    assert detail.available("CARD-L") == 0  # no stock row at all


async def test_product_detail_has_breadcrumbs_from_the_root(service) -> None:
    detail = await service.product_detail("wool-cardigan")
    assert detail.product.slug == "wool-cardigan"
    assert [c.slug for c in detail.breadcrumbs] == ["clothing", "knitwear", "cardigans"]


async def test_a_product_outside_any_category_has_no_breadcrumbs(service, catalog) -> None:
    detail = await service.product_detail("gift-card")
    assert list(detail.breadcrumbs) == []
    assert catalog.category_reads == 0
