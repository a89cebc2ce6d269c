from __future__ import annotations

import contextlib
import itertools
import signal
from collections.abc import Iterator
from decimal import Decimal
from types import FrameType

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from shop.domain.catalog import (
    MAX_PAGE_SIZE,
    MAX_QUERY_LENGTH,
    Category,
    CategoryTree,
    Offer,
    Page,
    Product,
    ProductQuery,
    ProductSort,
    Variant,
    check_sku,
    check_slug,
    search_terms,
    slugify,
)
from shop.domain.errors import InvalidValue
from shop.domain.money import Money

# slugs and SKUs


@pytest.mark.parametrize("slug", ["a", "shoes", "t-shirts", "a1-b2-c3", "2025", "x" * 200])
def test_a_well_formed_slug_is_accepted_as_is(slug: str) -> None:
    assert check_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "Shoes", "-shoes", "shoes-", "t--shirts", "t_shirt", "a b", "café",
                                  "shoes/boots", "x" * 201])
def test_a_malformed_slug_is_refused(slug: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_slug(slug)
    assert error.value.field == "slug"


def test_a_refused_slug_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidValue) as error:
        check_slug("Not A Slug", field="category")
    assert error.value.field == "category"


def test_a_slug_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidValue):
        check_slug("shoes\n")


@pytest.mark.parametrize(("title", "slug"), [
    ("Chef's Knife", "chef-s-knife"),
    ("  Hello,   World!  ", "hello-world"),
    ("USB-C Cable", "usb-c-cable"),
    ("T-shirts", "t-shirts"),
    ("!!!", ""),
])
def test_slugify_joins_lowercase_ascii_words_with_hyphens(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugify_cuts_a_long_title_to_200_characters_without_a_dangling_hyphen() -> None:
    slug = slugify("word " * 100)  # "word-word-…", the 200th character falls on a hyphen
    assert len(slug) <= 200
    assert not slug.endswith("-")
    assert check_slug(slug) == slug


@given(st.text(max_size=300))
def test_slugify_gives_a_valid_slug_or_nothing(text: str) -> None:
    slug = slugify(text)
    assert slug == "" or check_slug(slug) == slug


@pytest.mark.parametrize("sku", ["A", "P0000001-00", "SKU_1.2", "9-LIVES", "A" * 64])
def test_a_well_formed_sku_is_accepted_as_is(sku: str) -> None:
    assert check_sku(sku) == sku


@pytest.mark.parametrize("sku", ["", "p0000001", "-A1", ".A1", "A B", "A/B", "ÄB", "A" * 65])
def test_a_malformed_sku_is_refused(sku: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_sku(sku)
    assert error.value.field == "sku"


@pytest.mark.parametrize("sku", ["ABC\n", "A" * 64 + "\n"])
def test_a_sku_with_a_trailing_newline_is_refused(sku: str) -> None:
    with pytest.raises(InvalidValue):
        check_sku(sku)


# the category tree


def _category(category_id: int, parent_id: int | None = None, *, name: str | None = None,
              position: int = 0) -> Category:
    return Category(id=category_id, slug=f"c{category_id}", name=name or f"Category {category_id}",
                    parent_id=parent_id, position=position)


SHOP = [
    Category(id=1, slug="clothing", name="Clothing", position=1),
    Category(id=2, slug="shoes", name="Shoes", position=0),
    Category(id=3, slug="t-shirts", name="T-shirts", parent_id=1, position=0),
    Category(id=4, slug="knitwear", name="Knitwear", parent_id=1, position=0),
    Category(id=5, slug="jackets", name="Jackets", parent_id=1, position=-1),
    Category(id=6, slug="cardigans", name="Cardigans", parent_id=4),
    Category(id=7, slug="boots", name="Boots", parent_id=2),
]


def _ids(categories: list[Category]) -> list[int]:
    return [c.id for c in categories]


def test_roots_are_ordered_by_position() -> None:
    assert _ids(CategoryTree(SHOP).roots()) == [2, 1]


def test_children_are_ordered_by_position_then_name() -> None:
    assert _ids(CategoryTree(SHOP).children(1)) == [5, 4, 3]  # Jackets (-1), then Knitwear before T-shirts


def test_a_leaf_has_no_children() -> None:
    assert CategoryTree(SHOP).children(6) == []


def test_children_are_a_copy_the_caller_may_change() -> None:
    tree = CategoryTree(SHOP)
    tree.children(1).clear()
    assert len(tree.children(1)) == 3


def test_a_tree_counts_its_categories() -> None:
    assert len(CategoryTree(SHOP)) == 7
    assert len(CategoryTree([])) == 0


def test_by_slug_finds_a_category_or_nothing() -> None:
    tree = CategoryTree(SHOP)
    found = tree.by_slug("knitwear")
    assert found is not None
    assert found.id == 4
    assert tree.by_slug("hats") is None


def test_path_runs_from_the_root_down_to_the_category() -> None:
    assert _ids(CategoryTree(SHOP).path(6)) == [1, 4, 6]
    assert _ids(CategoryTree(SHOP).path(2)) == [2]


def test_path_of_an_unknown_category_is_empty() -> None:
    assert CategoryTree(SHOP).path(99) == []


def test_path_stops_where_a_parent_is_missing() -> None:
    tree = CategoryTree([_category(1, parent_id=42), _category(2, parent_id=1)])
    assert _ids(tree.path(2)) == [1, 2]


def test_subtree_holds_the_category_and_everything_below_it() -> None:
    tree = CategoryTree(SHOP)
    ids = tree.subtree_ids(1)
    assert ids[0] == 1
    assert sorted(ids) == [1, 3, 4, 5, 6]
    assert tree.subtree_ids(6) == [6]


@contextlib.contextmanager
def _finishing_within(seconds: float) -> Iterator[None]:
    """Turn a hang into a failure; the walk is synchronous, so no asyncio.timeout can interrupt it."""

    def give_up(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"did not finish within {seconds}s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_cycle_in_stored_categories_neither_hangs_nor_repeats() -> None:
    tree = CategoryTree([_category(1, parent_id=2), _category(2, parent_id=1), _category(3, parent_id=3)])
    with _finishing_within(1):
        assert sorted(tree.subtree_ids(1)) == [1, 2]
        assert tree.subtree_ids(3) == [3]
        assert _ids(tree.path(1)) == [2, 1]
        assert _ids(tree.path(3)) == [3]


@st.composite
def category_rows(draw: st.DrawFn, *, cycles: bool) -> list[Category]:
    """A random forest; with `cycles`, any category may name any other (or itself) as its parent."""
    ids = draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=30, unique=True))
    n = len(ids)
    # a parent is picked by index; -1 (or, in a forest, any index not before the child) means a root
    picks = draw(st.lists(st.integers(min_value=-1, max_value=n - 1), min_size=n, max_size=n))
    names = draw(st.lists(st.sampled_from(["Alpha", "Beta", "Gamma"]), min_size=n, max_size=n))
    positions = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    rows = []
    for index, category_id in enumerate(ids):
        pick = picks[index]
        has_parent = pick >= 0 and (cycles or pick < index)
        rows.append(_category(category_id, ids[pick] if has_parent else None, name=names[index],
                              position=positions[index]))
    return rows


def _ancestry(rows: list[Category], category_id: int) -> list[int]:
    """The category and its parents upwards, stopping at a root, a missing parent or a repeat."""
    parents = {c.id: c.parent_id for c in rows}
    chain: list[int] = []
    current: int | None = category_id
    while current is not None and current in parents and current not in chain:
        chain.append(current)
        current = parents[current]
    return chain


def _check_subtree(rows: list[Category], data: st.DataObject) -> None:
    target = data.draw(st.sampled_from([c.id for c in rows]))
    with _finishing_within(1):
        found = CategoryTree(rows).subtree_ids(target)
    assert found[0] == target
    assert len(found) == len(set(found))
    expected = {c.id for c in rows if target in _ancestry(rows, c.id)}
    assert set(found) == expected  # every descendant, nothing outside the subtree


@given(rows=category_rows(cycles=False), data=st.data())
def test_subtree_finds_every_descendant_and_nothing_else(rows: list[Category], data: st.DataObject) -> None:
    _check_subtree(rows, data)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking a hang would take a second a try
@given(rows=category_rows(cycles=True), data=st.data())
def test_subtree_of_cyclic_data_ends_and_finds_what_is_reachable(rows: list[Category],
                                                                 data: st.DataObject) -> None:
    _check_subtree(rows, data)


@given(rows=category_rows(cycles=False), data=st.data())
def test_path_walks_parent_to_child_from_a_root(rows: list[Category], data: st.DataObject) -> None:
    target = data.draw(st.sampled_from([c.id for c in rows]))
    trail = CategoryTree(rows).path(target)
    assert trail[0].parent_id is None
    assert trail[-1].id == target
    assert all(child.parent_id == parent.id for parent, child in itertools.pairwise(trail))


@given(rows=category_rows(cycles=False))
def test_siblings_are_always_ordered_by_position_then_name(rows: list[Category]) -> None:
    tree = CategoryTree(rows)
    for parent in [None, *(c.id for c in rows)]:
        keys = [(c.position, c.name) for c in tree.children(parent)]
        assert keys == sorted(keys)
        assert all(c.parent_id == parent for c in tree.children(parent))


# products


def _variant(sku: str, price: str, currency: str = "EUR") -> Variant:
    return Variant(sku=sku, price=Money.of(price, currency))


def _product(*variants: Variant) -> Product:
    return Product(id=1, slug="tee", title="Tee", description="", category_id=None, variants=variants)


def test_all_variants_of_a_product_are_priced_in_one_currency() -> None:
    with pytest.raises(InvalidValue) as error:
        _product(_variant("TEE-S", "10"), _variant("TEE-M", "10", "USD"))
    assert error.value.field == "variants"


def test_price_range_runs_from_the_cheapest_to_the_dearest_variant() -> None:
    product = _product(_variant("TEE-S", "12.50"), _variant("TEE-XL", "17"), _variant("TEE-M", "9.99"))
    assert product.price_range == (Money.of("9.99", "EUR"), Money.of("17", "EUR"))


def test_a_single_variant_is_both_ends_of_the_price_range() -> None:
    assert _product(_variant("TEE", "5")).price_range == (Money.of("5", "EUR"), Money.of("5", "EUR"))


def test_a_product_without_variants_has_no_price_range() -> None:
    assert _product().price_range is None


def test_a_variant_weighs_nothing_unless_told() -> None:
    assert _variant("TEE", "5").weight_grams == 0


@pytest.mark.parametrize("grams", [0, 1, 180, 1_000_000])
def test_a_variant_weighs_whole_grams_up_to_a_tonne(grams: int) -> None:
    assert Variant(sku="TEE", price=Money.of("5", "EUR"), weight_grams=grams).weight_grams == grams


@pytest.mark.parametrize("grams", [-1, 1_000_001, 2.5, 180.0, True, False, "180", Decimal(180), None])
def test_a_weight_that_is_not_whole_grams_from_0_to_a_tonne_is_refused(grams: object) -> None:
    with pytest.raises(InvalidValue) as error:
        Variant(sku="TEE", price=Money.of("5", "EUR"), weight_grams=grams)  # type: ignore[arg-type]
    assert error.value.field == "weight_grams"


def _offer(variant_title: str) -> Offer:
    return Offer(sku="TEE-S", product_slug="tee", product_title="Linen Tee", variant_title=variant_title,
                 price=Money.of("19.99", "EUR"), weight_grams=180, published=True, options={"size": "S"})


def test_an_offer_is_named_after_its_product_and_variant() -> None:
    assert _offer("S / Black").name == "Linen Tee – S / Black"


def test_an_offer_without_a_variant_title_is_named_after_its_product_alone() -> None:
    assert _offer("").name == "Linen Tee"


# product queries


def test_a_query_defaults_to_the_first_page_of_24() -> None:
    query = ProductQuery()
    assert (query.page, query.limit, query.offset) == (1, 24, 0)


def test_the_offset_skips_the_earlier_pages() -> None:
    assert ProductQuery(page=3, limit=10).offset == 20


@pytest.mark.parametrize("page", [0, -1])
def test_a_page_below_one_is_refused(page: int) -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(page=page)
    assert error.value.field == "page"


@pytest.mark.parametrize("limit", [0, -5, MAX_PAGE_SIZE + 1])
def test_a_limit_outside_1_to_100_is_refused(limit: int) -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(limit=limit)
    assert error.value.field == "limit"


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
def test_the_limits_of_the_page_size_are_allowed(limit: int) -> None:
    assert ProductQuery(limit=limit).limit == limit


@pytest.mark.parametrize("name", ["min_price", "max_price"])
@pytest.mark.parametrize("value", [Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity")])
def test_a_price_bound_must_be_a_number_of_zero_or_more(name: str, value: Decimal) -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(**{name: value})  # type: ignore[arg-type]
    assert error.value.field == name


def test_a_lower_price_bound_above_the_upper_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(min_price=Decimal("20"), max_price=Decimal("10"))
    assert error.value.field == "min_price"


def test_equal_and_zero_price_bounds_are_allowed() -> None:
    query = ProductQuery(min_price=Decimal("0"), max_price=Decimal("0"))
    assert (query.min_price, query.max_price) == (0, 0)


def test_search_text_has_its_whitespace_collapsed() -> None:
    assert ProductQuery(q="  linen \t\n  shirt ").q == "linen shirt"


def test_search_text_of_only_whitespace_means_no_search() -> None:
    assert ProductQuery(q=" \t ").q is None


def test_search_text_is_limited_after_collapsing_whitespace() -> None:
    assert ProductQuery(q="x" * MAX_QUERY_LENGTH).q == "x" * MAX_QUERY_LENGTH
    assert ProductQuery(q="a" + " " * 500 + "b").q == "a b"
    with pytest.raises(InvalidValue) as error:
        ProductQuery(q="x" * (MAX_QUERY_LENGTH + 1))
    assert error.value.field == "q"


def test_a_malformed_category_slug_is_refused_as_the_category() -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(category="Shoes & Boots")
    assert error.value.field == "category"


def test_sorting_by_relevance_needs_search_text() -> None:
    with pytest.raises(InvalidValue) as error:
        ProductQuery(sort=ProductSort.RELEVANCE)
    assert error.value.field == "sort"
    with pytest.raises(InvalidValue):
        ProductQuery(sort=ProductSort.RELEVANCE, q="   ")
    assert ProductQuery(sort=ProductSort.RELEVANCE, q="linen").effective_sort is ProductSort.RELEVANCE


def test_without_a_sort_newest_come_first_and_a_search_ranks_by_relevance() -> None:
    assert ProductQuery().effective_sort is ProductSort.NEWEST
    assert ProductQuery(q="linen").effective_sort is ProductSort.RELEVANCE
    assert ProductQuery(q="   ").effective_sort is ProductSort.NEWEST


def test_an_explicit_sort_wins_over_the_default() -> None:
    assert ProductQuery(q="linen", sort=ProductSort.PRICE_DESC).effective_sort is ProductSort.PRICE_DESC


# pages and search terms


@pytest.mark.parametrize(("total", "limit", "pages"), [(0, 24, 1), (1, 24, 1), (24, 24, 1), (25, 24, 2),
                                                       (100, 10, 10), (101, 10, 11)])
def test_pages_counts_partial_pages_and_never_drops_below_one(total: int, limit: int, pages: int) -> None:
    assert Page(items=[], total=total, page=1, limit=limit).pages == pages


@pytest.mark.parametrize(("text", "terms"), [
    ("T-Shirt & Jeans!", ["t", "shirt", "jeans"]),
    ('title:"linen" OR wool*', ["title", "linen", "or", "wool"]),
    ("Crème BRÛLÉE", ["crème", "brûlée"]),
    ("  ", []),
])
def test_search_terms_are_lowercased_words_and_punctuation_is_not_syntax(text: str, terms: list[str]) -> None:
    assert search_terms(text) == terms


def test_search_terms_keep_the_first_sixteen_words() -> None:
    words = [f"w{n}" for n in range(20)]
    assert search_terms(" ".join(words)) == words[:16]


def test_slugify_keeps_accented_letters_as_their_plain_form() -> None:
    assert slugify("Crème Brûlée Dish") == "creme-brulee-dish"


def test_a_category_whose_parent_is_gone_is_shown_at_the_top() -> None:
    tree = CategoryTree([Category(id=1, slug="a", name="A"), Category(id=2, slug="orphan", name="O", parent_id=99)])
    assert [c.slug for c in tree.roots()] == ["a", "orphan"]
    assert tree.path(2) == [tree.by_slug("orphan")]
