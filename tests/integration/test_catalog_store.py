"""The catalogue on SQL: filters, sorting, ranked search and counts behave the same on every database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from shop.domain.catalog import Category, Image, Offer, Product, ProductQuery, ProductSort, Variant
from shop.domain.money import Money
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.posts.catalog import PostsCatalog
from shop.infrastructure.db.posts.dialects import dialect_for
from shop.services.catalog import CatalogService

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = [
    Category(id=1, slug="kitchen", name="Kitchen"),
    Category(id=2, slug="knives", name="Knives", parent_id=1),
    Category(id=3, slug="pans", name="Pans", parent_id=1, position=1),
    Category(id=4, slug="garden", name="Garden", position=1),
]


def _product(pid: int, title: str, price: str, category: int, *, description: str = "",
             published: bool = True, extra_price: str | None = None) -> Product:
    variants = [Variant(sku=f"SKU-{pid}-A", price=Money.of(price, "EUR"), options={"size": "S"}, title="S",
                        weight_grams=100 * pid)]
    if extra_price:
        variants.append(Variant(sku=f"SKU-{pid}-B", price=Money.of(extra_price, "EUR"), options={"size": "L"},
                                title="L", weight_grams=100 * pid + 50))
    return Product(id=pid, slug=f"p-{pid}", title=title, description=description or title, category_id=category,
                   variants=variants, attributes={"material": "steel"}, images=[Image(f"/img/{pid}.svg", title)],
                   published=published, created_at=T0 + timedelta(days=pid))


PRODUCTS = [
    _product(1, "Chef's Knife", "89.00", 2, description="A forged steel blade for every kitchen task."),
    _product(2, "Paring Knife", "24.50", 2, description="Small knife for fruit."),
    _product(3, "Cast-iron Pan", "59.99", 3, description="Heavy pan; sears steak. Not a knife.", extra_price="79.99"),
    _product(4, "Garden Shears", "31.00", 4, description="Cuts branches cleanly."),
    _product(5, "Hidden Knife", "10.00", 2, published=False),
    _product(6, "Bread Knife", "0.99", 2, description="Serrated knife for bread. Knife knife knife."),
]
STOCK = {"SKU-1-A": 5, "SKU-2-A": 0, "SKU-3-A": 0, "SKU-3-B": 2, "SKU-4-A": 1, "SKU-5-A": 9, "SKU-6-A": 0}


@pytest_asyncio.fixture
async def catalog(databases: Databases) -> AsyncIterator[PostsCatalog]:
    store = _posts(databases)
    await store.writer.add_categories(CATEGORIES)
    await store.writer.add_products(PRODUCTS, available=STOCK)
    yield store


def _posts(databases: Databases) -> PostsCatalog:
    posts = databases.store("posts")
    return PostsCatalog.on(posts, dialect=dialect_for(posts.backend), currency="EUR")


def _slugs(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.slug for p in page.items]


async def _list(catalog: PostsCatalog, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    return _slugs(await catalog.reader.products(ProductQuery(**kwargs), category_ids=kwargs.pop("ids", None)))


async def test_unpublished_products_are_never_listed(catalog: PostsCatalog) -> None:
    page = await catalog.reader.products(ProductQuery(limit=100), category_ids=None)
    assert "p-5" not in _slugs(page)
    assert page.total == 5


async def test_newest_first_is_the_default_order(catalog: PostsCatalog) -> None:
    assert await _list(catalog) == ["p-6", "p-4", "p-3", "p-2", "p-1"]


@pytest.mark.parametrize(("sort", "expected"), [
    (ProductSort.PRICE, ["p-6", "p-2", "p-4", "p-3", "p-1"]),
    (ProductSort.PRICE_DESC, ["p-1", "p-3", "p-4", "p-2", "p-6"]),
    (ProductSort.TITLE, ["p-6", "p-3", "p-1", "p-4", "p-2"]),
])
async def test_sorting_orders_by_the_lowest_variant_price_or_title(
        catalog: PostsCatalog, sort: ProductSort, expected: list[str]) -> None:
    assert await _list(catalog, sort=sort) == expected


async def test_price_bounds_are_inclusive_and_exact_to_the_cent(catalog: PostsCatalog) -> None:
    assert set(await _list(catalog, min_price=Decimal("24.50"), max_price=Decimal("59.99"))) == {"p-2", "p-3", "p-4"}
    assert set(await _list(catalog, min_price=Decimal("24.501"))) == {"p-1", "p-3", "p-4"}
    assert await _list(catalog, max_price=Decimal("0.989")) == []


async def test_in_stock_filter_uses_any_variant_with_stock(catalog: PostsCatalog) -> None:
    assert set(await _list(catalog, in_stock=True)) == {"p-1", "p-3", "p-4"}
    assert set(await _list(catalog, in_stock=False)) == {"p-2", "p-6"}


async def test_pages_split_the_list_and_keep_the_total(catalog: PostsCatalog) -> None:
    first = await catalog.reader.products(ProductQuery(limit=2, page=1, sort=ProductSort.PRICE), category_ids=None)
    third = await catalog.reader.products(ProductQuery(limit=2, page=3, sort=ProductSort.PRICE), category_ids=None)
    beyond = await catalog.reader.products(ProductQuery(limit=2, page=9), category_ids=None)
    assert (_slugs(first), first.total) == (["p-6", "p-2"], 5)
    assert (_slugs(third), third.total) == (["p-1"], 5)
    assert (_slugs(beyond), beyond.total) == ([], 5)


async def test_a_category_includes_its_sub_categories(catalog: PostsCatalog) -> None:
    service = CatalogService(reader=catalog.reader, stock=SqlStock(catalog.reader._store))
    kitchen = await service.list_products(ProductQuery(category="kitchen", limit=100))
    pans = await service.list_products(ProductQuery(category="pans"))
    assert set(_slugs(kitchen)) == {"p-1", "p-2", "p-3", "p-6"} and kitchen.total == 4
    assert _slugs(pans) == ["p-3"]


async def test_search_finds_words_in_title_and_description_ranked_by_relevance(catalog: PostsCatalog) -> None:
    page = await catalog.reader.products(ProductQuery(q="knife"), category_ids=None)
    found = _slugs(page)
    assert set(found) == {"p-1", "p-2", "p-3", "p-6"}  # p-3 mentions a knife in its description only
    assert found[-1] == "p-3", "a description-only match ranks below title matches"
    ranks = [p.rank for p in page.items]
    assert all(r is not None for r in ranks) and ranks == sorted(ranks, reverse=True)


async def test_search_needs_every_word_and_matches_prefixes(catalog: PostsCatalog) -> None:
    assert await _list(catalog, q="steel blade") == ["p-1"]
    assert await _list(catalog, q="serrat") == ["p-6"]
    assert await _list(catalog, q="knife garden") == []


async def test_search_finds_sku_like_words_that_read_as_numbers(catalog: PostsCatalog, databases: Databases) -> None:
    # PostgreSQL's parser reads "1e5a2b…" alone as the number 1e5 then a word, but as one word inside "T-1E5A…"
    await catalog.writer.add_products([_product(7, "Mug T-1E5A2B3C4D5F", "9.00", 2),
                                _product(8, "Bowl 00E1234ABCDE", "9.00", 2),
                                _product(9, "Cup T-060218403660", "9.00", 2)], available={})
    assert await _list(catalog, q="T-1E5A2B3C4D5F") == ["p-7"]
    assert await _list(catalog, q="1e5a2b") == ["p-7"]  # a prefix
    assert await _list(catalog, q="mug 1E5A2B3C4D5F") == ["p-7"]  # with a plain word
    assert await _list(catalog, q="00e1234abcde") == ["p-8"]
    assert await _list(catalog, q="bowl 00e1234") == ["p-8"]
    assert await _list(catalog, q="1e5a2b knife") == []  # every word still needed
    assert await _list(catalog, q="T-060218403660") == ["p-9"]  # PostgreSQL indexed the integer -060218403660
    if databases.store("posts").backend == "postgresql":  # the one with stop words: still ignored
        assert await _list(catalog, q="the 1e5a2b") == ["p-7"]


async def test_search_text_is_never_query_syntax(catalog: PostsCatalog) -> None:
    for hostile in ['"', "knife' OR 1=1 --", "AND OR NOT", "*", "(knife", "NEAR(knife pan)", "-knife", "+", "%_"]:
        page = await catalog.reader.products(ProductQuery(q=hostile), category_ids=None)
        assert page.total >= 0  # no database error, whatever it found


async def test_search_combines_with_filters_and_other_sorts(catalog: PostsCatalog) -> None:
    assert await _list(catalog, q="knife", sort=ProductSort.PRICE, max_price=Decimal(50)) == ["p-6", "p-2"]


async def test_a_product_comes_with_its_variants_in_order(catalog: PostsCatalog) -> None:
    product = await catalog.reader.product("p-3")
    assert product is not None
    assert [v.sku for v in product.variants] == ["SKU-3-A", "SKU-3-B"]
    assert product.variants[1].price == Money(Decimal("79.99"), "EUR")
    assert product.price_range == (Money.of("59.99", "EUR"), Money.of("79.99", "EUR"))
    assert product.created_at == T0 + timedelta(days=3) and product.created_at.tzinfo is not None
    assert await catalog.reader.product("p-404") is None


async def test_every_write_moves_the_catalogue_version(catalog: PostsCatalog) -> None:
    before = await catalog.reader.version()
    await catalog.writer.add_products([_product(7, "Whisk", "5.00", 1)], available={})
    assert await catalog.reader.version() > before
    assert await catalog.writer.next_ids() == (5, 8)


async def test_counts_are_remembered_until_the_catalogue_changes(catalog: PostsCatalog) -> None:
    assert (await catalog.reader.products(ProductQuery(limit=1), category_ids=None)).total == 5
    await catalog.writer.add_products([_product(8, "Ladle", "7.00", 1)], available={})
    assert (await catalog.reader.products(ProductQuery(limit=1), category_ids=None)).total == 5  # not told yet
    catalog.reader.catalog_changed(await catalog.reader.version())
    assert (await catalog.reader.products(ProductQuery(limit=1), category_ids=None)).total == 6



async def test_in_stock_flags_are_written_where_they_changed_and_only_then_move_the_version(
        catalog: PostsCatalog) -> None:
    found = await catalog.in_stock.siblings(["SKU-3-B", "SKU-1-A", "NO-SUCH-SKU"])
    assert {pid: sorted(skus) for pid, skus in found.items()} == {1: ["SKU-1-A"], 3: ["SKU-3-A", "SKU-3-B"]}
    assert await catalog.in_stock.siblings([]) == {}

    before = await catalog.reader.version()
    assert await catalog.in_stock.set_in_stock({1: True, 2: False}) == 0  # as they were seeded
    assert await catalog.reader.version() == before
    assert await catalog.in_stock.set_in_stock({1: False, 2: False}) == 1
    assert await catalog.reader.version() > before
    assert set(await _list(catalog, in_stock=True)) == {"p-3", "p-4"}


# offers: what a cart needs to know of a SKU


async def test_offers_tell_a_cart_the_product_price_weight_and_state_of_each_sku(catalog: PostsCatalog) -> None:
    offers = await catalog.reader.offers(["SKU-3-B", "SKU-5-A", "SKU-6-A"])

    assert offers["SKU-3-B"] == Offer(sku="SKU-3-B", product_slug="p-3", product_title="Cast-iron Pan",
                                      variant_title="L", price=Money(Decimal("79.99"), "EUR"), weight_grams=350,
                                      published=True, options={"size": "L"})
    assert offers["SKU-3-B"].name == "Cast-iron Pan – L"
    assert offers["SKU-6-A"].price.amount == Decimal("0.99") and isinstance(offers["SKU-6-A"].price.amount, Decimal)
    assert offers["SKU-5-A"].published is False and offers["SKU-5-A"].product_title == "Hidden Knife"
    assert offers["SKU-3-B"].published is True


async def test_offers_leave_out_unknown_skus(catalog: PostsCatalog) -> None:
    offers = await catalog.reader.offers(["SKU-1-A", "NO-SUCH-SKU", "SKU-1-A"])
    assert list(offers) == ["SKU-1-A"]


async def test_offers_match_skus_exactly_on_every_database(catalog: PostsCatalog) -> None:
    # MariaDB's default collation would match these; a SKU is case- and space-sensitive everywhere
    assert await catalog.reader.offers(["sku-1-a", "SKU-1-A ", "Sku-2-A"]) == {}


async def test_offers_of_no_skus_are_empty(catalog: PostsCatalog) -> None:
    assert await catalog.reader.offers([]) == {}


async def test_offers_for_more_skus_than_one_query_takes_are_all_found(catalog: PostsCatalog) -> None:
    many = [_product(100 + n, f"Spoon {n}", f"{n}.05", 1, extra_price=f"{n}.10") for n in range(300)]
    await catalog.writer.add_products(many, available={})
    skus = [v.sku for p in many for v in p.variants]  # 600: more than one query's worth

    offers = await catalog.reader.offers([*skus, "NO-SUCH-SKU"])

    assert set(offers) == set(skus)
    assert offers["SKU-399-B"].price == Money(Decimal("299.10"), "EUR")
    assert offers["SKU-399-B"].weight_grams == 39_950
    assert offers["SKU-100-A"].product_slug == "p-100"


async def test_a_variant_weight_survives_create_and_replace(catalog: PostsCatalog) -> None:
    product = Product(id=0, slug="kettle", title="Kettle", description="", category_id=1, created_at=T0,
                      variants=[Variant(sku="KETTLE-1", price=Money.of("30", "EUR"), weight_grams=1450),
                                Variant(sku="KETTLE-2", price=Money.of("35", "EUR"))])
    product_id = await catalog.writer.create_product(product, available={})
    created = await catalog.reader.product("kettle")
    assert created is not None
    assert [v.weight_grams for v in created.variants] == [1450, 0]

    heavier = [Variant(sku="KETTLE-1", price=Money.of("30", "EUR"), weight_grams=1_000_000),
               Variant(sku="KETTLE-3", price=Money.of("40", "EUR"), weight_grams=1)]
    await catalog.writer.replace_product(Product(id=product_id, slug="kettle", title="Kettle", description="",
                                          category_id=1, variants=heavier, created_at=T0), available={})
    replaced = await catalog.reader.product("kettle")
    assert replaced is not None
    assert [(v.sku, v.weight_grams) for v in replaced.variants] == [("KETTLE-1", 1_000_000), ("KETTLE-3", 1)]
    assert (await catalog.reader.offers(["KETTLE-3"]))["KETTLE-3"].weight_grams == 1


async def test_stock_levels_are_written_and_read_back(databases: Databases) -> None:
    from shop.domain.inventory import StockLevel

    stock = SqlStock(databases.store("main"))
    await stock.set_levels([StockLevel("A-1", 3), StockLevel("B-2", 5, 2)])
    await stock.set_levels([StockLevel("A-1", 7)])
    levels = await stock.levels(["A-1", "B-2", "C-3"])
    assert {k: (v.on_hand, v.reserved) for k, v in levels.items()} == {"A-1": (7, 0), "B-2": (5, 2)}


async def test_many_stock_levels_are_written_in_bulk_and_overwritten(databases: Databases) -> None:
    from shop.domain.inventory import StockLevel

    stock = SqlStock(databases.store("main"))
    skus = [f"BULK-{n:04d}" for n in range(600)]  # above the bulk threshold: COPY on PostgreSQL
    await stock.set_levels([StockLevel(sku, 5) for sku in skus])
    await stock.set_levels([StockLevel(sku, n % 7, n % 3 if n % 7 >= 2 else 0) for n, sku in enumerate(skus)])
    levels = await stock.levels(skus)
    assert len(levels) == 600
    assert all((levels[sku].on_hand, levels[sku].reserved) == (n % 7, n % 3 if n % 7 >= 2 else 0)
               for n, sku in enumerate(skus))


async def test_a_failed_bulk_write_leaves_nothing_behind(databases: Databases) -> None:
    store = _posts(databases)
    await store.writer.add_categories(CATEGORIES)
    many = [_product(100 + n, f"Spoon {n}", "2.00", 1) for n in range(300)]
    clash = [*many, _product(100, "Duplicate id", "2.00", 1)]
    with pytest.raises(Exception):  # noqa: B017, PT011 - each database names the violation differently
        await store.writer.add_products(clash, available={})
    assert await store.reader.count_products() == 0
