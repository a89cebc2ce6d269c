"""Seeding: a deterministic demo shop, and large synthetic catalogues for benchmarks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shop.domain.catalog import Category, Image, Product, Variant, slugify
from shop.domain.inventory import StockLevel
from shop.domain.money import Money
from shop.services.ports import CatalogReader, CatalogWriter, StockWriter


@dataclass(frozen=True, slots=True)
class _Line:
    """A product line in a category: how its products are named, priced, varied and how much they weigh."""

    nouns: dict[str, tuple[int, int]]  # noun → shipping weight of the smallest size, in grams (low, high)
    materials: tuple[str, ...]
    price: tuple[int, int]
    options: dict[str, tuple[str, ...]]


_SIZES = ("XS", "S", "M", "L", "XL")
_COLOURS = ("Black", "White", "Navy", "Olive", "Sand", "Rust", "Grey")
_SHOE_SIZES = ("38", "39", "40", "41", "42", "43", "44", "45")

# parent category → {child category: product line}
_TREE: dict[str, dict[str, _Line]] = {
    "Clothing": {
        "T-shirts": _Line({"T-shirt": (150, 200), "Crew Tee": (160, 210), "Pocket Tee": (170, 220),
                           "Long-sleeve Tee": (200, 250)},
                          ("Organic Cotton", "Linen", "Merino"), (15, 45), {"size": _SIZES, "colour": _COLOURS[:4]}),
        "Knitwear": _Line({"Sweater": (400, 650), "Cardigan": (400, 600), "Hoodie": (500, 750),
                           "Turtleneck": (350, 550)}, ("Wool", "Cashmere", "Cotton"),
                          (45, 180), {"size": _SIZES[1:], "colour": _COLOURS[2:6]}),
        "Jackets": _Line({"Rain Jacket": (350, 600), "Field Jacket": (800, 1200), "Puffer": (500, 900),
                          "Overshirt": (450, 700)}, ("Waxed Cotton", "Nylon", "Denim"),
                         (80, 320), {"size": _SIZES[1:]}),
    },
    "Shoes": {
        "Sneakers": _Line({"Runner": (550, 800), "Court Sneaker": (700, 950), "Trail Shoe": (650, 900)},
                          ("Suede", "Canvas", "Mesh"), (60, 160), {"size": _SHOE_SIZES, "colour": ("White", "Black")}),
        "Boots": _Line({"Chelsea Boot": (1100, 1300), "Hiking Boot": (1200, 1380), "Work Boot": (1150, 1350)},
                       ("Leather", "Nubuck"), (110, 290), {"size": _SHOE_SIZES}),
    },
    "Home": {
        "Kitchen": _Line({"Chef's Knife": (180, 260), "Cast-iron Pan": (2300, 2700), "Cutting Board": (900, 1600),
                          "Espresso Cups": (350, 600)},
                         ("Steel", "Oak", "Stoneware"), (12, 140), {}),
        "Bedding": _Line({"Duvet Cover": (700, 900), "Pillowcase Set": (250, 350), "Throw Blanket": (900, 1300)},
                         ("Linen", "Percale", "Wool"), (35, 210), {"size": ("Single", "Double", "King")}),
        "Lighting": _Line({"Table Lamp": (1200, 2500), "Pendant Light": (600, 1500), "Reading Light": (500, 1100)},
                          ("Brass", "Ceramic", "Paper"), (40, 260), {"colour": ("Brass", "Black", "White")}),
    },
    "Electronics": {
        "Audio": _Line({"Headphones": (220, 350), "Bluetooth Speaker": (400, 1200), "Earbuds": (40, 70)},
                       ("Aluminium", "Walnut"), (30, 400), {"colour": ("Black", "Silver")}),
        "Accessories": _Line({"USB-C Cable": (40, 60), "Charger": (80, 200), "Laptop Sleeve": (200, 400),
                              "Power Bank": (180, 350)}, ("Braided", "Felt", "Recycled"),
                             (9, 90), {}),
    },
    "Outdoors": {
        "Camping": _Line({"Tent": (1500, 3500), "Sleeping Bag": (800, 1600), "Camp Stove": (80, 400),
                          "Headlamp": (60, 120)}, ("Ripstop", "Titanium", "Down"),
                         (25, 480), {}),
        "Cycling": _Line({"Bike Light": (50, 150), "Saddle Bag": (150, 400), "Cycling Cap": (40, 70),
                          "Bottle Cage": (25, 60)}, ("Carbon", "Aluminium", "Cordura"),
                         (10, 120), {"colour": ("Black", "Orange")}),
    },
    "Books": {
        "Cookbooks": _Line({"Cookbook": (700, 1300), "Baking Guide": (500, 1000), "Fermentation Handbook": (400, 900)},
                           ("Hardcover", "Paperback"), (14, 48), {}),
        "Travel": _Line({"Travel Guide": (250, 500), "Walking Atlas": (400, 800), "City Sketchbook": (200, 400)},
                        ("Hardcover", "Paperback"), (12, 40), {}),
    },
}

_ADJECTIVES = ("Everyday", "Classic", "Nordic", "Coastal", "Alpine", "Urban", "Heritage", "Featherweight",
               "Studio", "Weekend", "Harbour", "Meadow", "Summit", "Midnight", "Sunday", "Atlas")
_PRAISE = ("Made to last and easy to care for.", "Designed in small batches.", "A favourite of our customers.",
           "Built for daily use.", "Comes with a two-year guarantee.", "Packed without plastic.")
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def demo_categories() -> list[Category]:
    """The demo category tree: parents first, with ids from 1."""
    categories: list[Category] = []
    next_id = 1
    for parent_pos, (parent, children) in enumerate(_TREE.items()):
        parent_id = next_id
        categories.append(Category(id=parent_id, slug=slugify(parent), name=parent, position=parent_pos,
                                   description=f"Everything in {parent.lower()}."))
        next_id += 1
        for child_pos, child in enumerate(children):
            categories.append(Category(id=next_id, slug=slugify(child), name=child, parent_id=parent_id,
                                       position=child_pos, description=f"Our {child.lower()}."))
            next_id += 1
    return categories


def _weight(grams: int, sizes: Sequence[str], size: str | None) -> int:
    """A variant's shipping weight: the largest size of a line weighs 30% more than the smallest."""
    if size is None or len(sizes) < 2:
        return grams
    return grams + grams * 3 * sizes.index(size) // (10 * (len(sizes) - 1))


def _leaf_lines(categories: Sequence[Category]) -> list[tuple[Category, _Line]]:
    by_name = {c.name: c for c in categories}
    return [(by_name[child], line) for children in _TREE.values() for child, line in children.items()]


def generate_products(count: int, *, first_id: int, categories: Sequence[Category], seed: int = 42,
                      currency: str = "EUR") -> Iterator[tuple[Product, dict[str, int]]]:
    """`count` products with variants and stock, the same every time for the same arguments."""
    rng = random.Random(seed)
    leaves = _leaf_lines(categories)
    for n in range(count):
        category, line = leaves[n % len(leaves)]
        product_id = first_id + n
        noun = rng.choice(tuple(line.nouns))
        material = rng.choice(line.materials)
        title = f"{rng.choice(_ADJECTIVES)} {material} {noun}"
        slug = f"{slugify(title)}-{product_id}"
        low, high = line.price
        base = Decimal(rng.randrange(low * 100, high * 100, 100) + rng.choice((0, 50, 95, 99))) / 100
        grams = rng.randint(*line.nouns[noun])
        option_values = [[(k, v) for v in rng.sample(vals, k=min(len(vals), rng.randint(2, 4)))]
                         for k, vals in line.options.items()]
        combos: list[dict[str, str]] = [{}]
        for choices in option_values:
            combos = [{**combo, key: value} for combo in combos for key, value in choices]
        variants = []
        stock: dict[str, int] = {}
        for v, options in enumerate(combos[:12]):
            sku = f"P{product_id:07d}-{v:02d}"
            surcharge = Decimal(5 * v) if options.get("size") in {"XL", "King", "45"} else Decimal(0)
            weight = _weight(grams, line.options.get("size", ()), options.get("size"))
            variants.append(Variant(sku=sku, price=Money(base + surcharge, currency), options=options,
                                    title=" / ".join(options.values()) or "Standard", weight_grams=weight))
            stock[sku] = rng.choice((0, 0, 1, 3, 5, 8, 12, 20, 40, 100)) if n % 9 else 0
        description = (f"The {title.lower()} in {material.lower()}. {rng.choice(_PRAISE)} "
                       f"Part of our {category.name.lower()} range.")
        attributes = {"material": material, "origin": rng.choice(("Portugal", "Italy", "Japan", "Lithuania",
                                                                    "Peru", "Vietnam", "Germany"))}
        product = Product(
            id=product_id, slug=slug, title=title, description=description, category_id=category.id,
            variants=variants, attributes=attributes,
            images=[Image(url=f"/media/placeholder/{slug}.svg", alt=title)],
            published=n % 50 != 49,
            created_at=_EPOCH + timedelta(hours=product_id * 7 % 15_000, seconds=product_id),
        )
        yield product, stock


@dataclass(frozen=True, slots=True)
class SeedReport:
    categories: int
    products: int
    skipped: bool = False


async def seed_catalog(*, reader: CatalogReader, writer: CatalogWriter, stock: StockWriter, products: int,
                       only_if_empty: bool = False, batch: int = 2000,
                       progress: Callable[[int], None] | None = None) -> SeedReport:
    """Add `products` generated products (and the demo categories if there are none)."""
    if batch < 1 or products < 0:
        raise ValueError("batch must be 1 or more and products 0 or more")
    if only_if_empty and await reader.count_products() > 0:
        return SeedReport(categories=0, products=0, skipped=True)
    categories = list(await reader.categories())
    added_categories = 0
    if not categories:
        categories = demo_categories()
        await writer.add_categories(categories)
        added_categories = len(categories)
    elif not _has_demo_leaves(categories):
        raise ValueError("the catalogue has categories but not the demo ones; seed an empty catalogue")
    _, first_id = await writer.next_ids()
    generated = generate_products(products, first_id=first_id, categories=categories, seed=first_id)

    async def write(chunk: list[tuple[Product, dict[str, int]]]) -> None:
        available = {sku: qty for _, levels in chunk for sku, qty in levels.items()}
        await stock.set_levels([StockLevel(sku, qty) for sku, qty in available.items()])
        await writer.add_products([p for p, _ in chunk], available=available)
        if progress:
            progress(len(chunk))

    # the next batch is generated while the database writes the previous one
    writing: asyncio.Task[None] | None = None
    try:
        for start in range(0, products, batch):
            chunk = [next(generated) for _ in range(min(batch, products - start))]
            if writing is not None:
                await writing
            writing = asyncio.create_task(write(chunk))
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
    return SeedReport(categories=added_categories, products=products)


def _has_demo_leaves(categories: Sequence[Category]) -> bool:
    names = {c.name for c in categories}
    return all(child in names for children in _TREE.values() for child in children)
