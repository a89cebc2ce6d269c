from __future__ import annotations

from decimal import Decimal

import pytest

from shop.domain.catalog import Category, CategoryTree, Product, check_sku, check_slug
from shop.domain.money import minor_units
from shop.services.seeding import demo_categories, generate_products, seed_catalog


def _generate(count: int, *, seed: int = 42, first_id: int = 1,
              currency: str = "EUR") -> list[tuple[Product, dict[str, int]]]:
    return list(generate_products(count, first_id=first_id, categories=demo_categories(), seed=seed,
                                  currency=currency))


# the demo categories


def test_the_demo_categories_form_a_tree_of_at_least_ten() -> None:
    categories = demo_categories()
    tree = CategoryTree(categories)
    assert len(categories) >= 10
    assert len(tree) == len(categories)  # ids are unique
    assert len(tree.roots()) >= 2
    assert all(tree.children(root.id) for root in tree.roots())
    ids = {c.id for c in categories}
    assert all(c.parent_id is None or c.parent_id in ids for c in categories)


def test_the_demo_categories_list_parents_first_with_ids_from_one() -> None:
    categories = demo_categories()
    assert [c.id for c in categories] == list(range(1, len(categories) + 1))
    seen: set[int] = set()
    for category in categories:
        assert category.parent_id is None or category.parent_id in seen
        seen.add(category.id)


def test_the_demo_categories_have_valid_unique_slugs() -> None:
    slugs = [c.slug for c in demo_categories()]
    assert all(check_slug(slug) == slug for slug in slugs)
    assert len(set(slugs)) == len(slugs)


# generated products


def test_generating_products_is_the_same_every_time_for_the_same_arguments() -> None:
    assert _generate(60, seed=7) == _generate(60, seed=7)


def test_another_seed_generates_other_products() -> None:
    titles = [p.title for p, _ in _generate(60, seed=7)]
    assert titles != [p.title for p, _ in _generate(60, seed=8)]


@pytest.mark.parametrize("currency", ["EUR", "JPY"])
def test_two_hundred_demo_products_are_well_formed(currency: str) -> None:
    generated = _generate(250, first_id=1000, currency=currency)
    products = [p for p, _ in generated]
    leaf_ids = {c.id for c in demo_categories() if c.parent_id is not None}

    assert [p.id for p in products] == list(range(1000, 1250))
    assert all(p.variants for p in products)
    assert all(p.category_id in leaf_ids for p in products)
    prices = [v.price for p in products for v in p.variants]
    assert all(isinstance(m.amount, Decimal) and m.currency == currency for m in prices)
    assert all(m.amount.as_tuple().exponent == -minor_units(currency) and m.amount > 0 for m in prices)


def test_generated_skus_are_valid_and_unique() -> None:
    skus = [v.sku for p, _ in _generate(250) for v in p.variants]
    assert all(check_sku(sku) == sku for sku in skus)
    assert len(set(skus)) == len(skus)


def test_generated_slugs_are_valid_and_unique() -> None:
    slugs = [p.slug for p, _ in _generate(250)]
    assert all(check_slug(slug) == slug for slug in slugs)
    assert len(set(slugs)) == len(slugs)


def test_every_generated_variant_has_a_stock_quantity_and_nothing_else_does() -> None:
    for product, levels in _generate(100):
        assert set(levels) == {v.sku for v in product.variants}
        assert all(isinstance(qty, int) and qty >= 0 for qty in levels.values())


def test_generated_variants_weigh_what_such_things_weigh() -> None:
    names = {c.id: c.name for c in demo_categories()}
    grams: dict[str, list[int]] = {}
    for product, _ in _generate(250):
        assert product.category_id is not None
        grams.setdefault(names[product.category_id], []).extend(v.weight_grams for v in product.variants)
    assert all(0 < g <= 5000 for weights in grams.values() for g in weights)
    assert min(grams["T-shirts"]) >= 150 and max(grams["T-shirts"]) <= 350
    assert min(grams["Boots"]) >= 1100 and max(grams["Boots"]) <= 1800
    assert max(grams["Accessories"]) < min(grams["Boots"])


def test_a_larger_size_of_a_generated_product_never_weighs_less() -> None:
    order = {size: n for n, size in enumerate(("XS", "S", "M", "L", "XL", "Single", "Double", "King",
                                               *(str(n) for n in range(38, 46))))}
    for product, _ in _generate(250):
        sized = sorted((order[v.options["size"]], v.weight_grams) for v in product.variants if "size" in v.options)
        assert [g for _, g in sized] == sorted(g for _, g in sized)


def test_every_demo_category_with_products_gets_some() -> None:
    leaf_ids = {c.id for c in demo_categories() if c.parent_id is not None}
    assert {p.category_id for p, _ in _generate(len(leaf_ids))} == leaf_ids


# seeding a catalogue


async def test_seeding_an_empty_catalogue_adds_the_demo_categories_and_products(catalog, stock) -> None:
    report = await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=30)

    assert catalog.category_rows == demo_categories()
    assert (report.categories, report.products, report.skipped) == (len(demo_categories()), 30, False)
    assert len(catalog.product_rows) == 30


async def test_seeding_writes_the_stock_of_each_batch_before_its_products(catalog, stock, journal) -> None:
    await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=25, batch=10)
    assert journal == ["categories", "stock", "products", "stock", "products", "stock", "products"]


async def test_seeding_tells_the_catalogue_what_is_available(catalog, stock) -> None:
    await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=40, batch=15)

    skus = {v.sku for p in catalog.product_rows.values() for v in p.variants}
    assert set(catalog.available) == skus == set(stock.rows)
    assert catalog.available == {sku: level.on_hand for sku, level in stock.rows.items()}
    assert all(level.reserved == 0 for level in stock.rows.values())


async def test_seeding_reports_progress_that_adds_up_to_the_count(catalog, stock) -> None:
    steps: list[int] = []
    await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=20, batch=7,
                       progress=steps.append)
    assert steps == [7, 7, 6]


async def test_seeding_only_if_empty_skips_a_catalogue_that_has_products(catalog, stock, journal) -> None:
    await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=5)
    journal.clear()

    report = await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=5, only_if_empty=True)

    assert report.skipped
    assert (report.categories, report.products) == (0, 0)
    assert journal == []
    assert len(catalog.product_rows) == 5


async def test_seeding_only_if_empty_fills_an_empty_catalogue(catalog, stock) -> None:
    report = await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=5, only_if_empty=True)
    assert not report.skipped
    assert len(catalog.product_rows) == 5


async def test_seeding_again_keeps_the_demo_categories_and_adds_distinct_products(catalog, stock) -> None:
    await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=30)

    report = await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=30)

    assert report.categories == 0
    assert catalog.category_rows == demo_categories()
    assert sorted(p.id for p in catalog.product_rows.values()) == list(range(1, 61))  # fake refuses dup slugs
    skus = [v.sku for p in catalog.product_rows.values() for v in p.variants]
    assert len(set(skus)) == len(skus)


async def test_seeding_refuses_a_catalogue_with_foreign_categories(catalog, stock, journal) -> None:
    catalog.category_rows = [Category(id=1, slug="vinyl", name="Vinyl")]
    with pytest.raises(ValueError, match="not the demo ones"):
        await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=5)
    assert journal == []
    assert catalog.product_rows == {}


@pytest.mark.parametrize("batch", [0, -1])
async def test_seeding_refuses_an_empty_batch_rather_than_loop_forever(catalog, stock, batch: int) -> None:
    with pytest.raises(ValueError, match="batch"):
        await seed_catalog(reader=catalog, writer=catalog, stock=stock, products=5, batch=batch)
