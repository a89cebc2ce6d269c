"""What the catalogue tells a cart about SKUs, and the weight staff give a variant."""

from __future__ import annotations

import pytest

from shop.domain.catalog import Offer, Product, Variant
from shop.domain.errors import InvalidValue
from shop.domain.money import Money
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin, ProductDraft, VariantDraft


def _tee(*, published: bool = True) -> Product:
    return Product(id=1, slug="linen-tee", title="Linen Tee", description="", category_id=None,
                   published=published, variants=[
                       Variant(sku="TEE-S", price=Money.of("19.99", "EUR"), options={"size": "S"}, title="S",
                               weight_grams=170),
                       Variant(sku="TEE-L", price=Money.of("21.99", "EUR"), options={"size": "L"}, title="L",
                               weight_grams=210)])


async def test_the_catalogue_tells_a_cart_what_known_skus_are(catalog, stock) -> None:
    catalog.product_rows = {"linen-tee": _tee(published=False)}
    service = CatalogService(reader=catalog, stock=stock)

    offers = await service.offers(["TEE-L", "GONE-1"])

    assert offers == {"TEE-L": Offer(sku="TEE-L", product_slug="linen-tee", product_title="Linen Tee",
                                     variant_title="L", price=Money.of("21.99", "EUR"), weight_grams=210,
                                     published=False, options={"size": "L"})}
    assert await service.offers([]) == {}


@pytest.mark.parametrize("grams", [-1, 1_000_001])
async def test_staff_get_the_variant_field_named_for_a_weight_out_of_range(catalog, stock, grams: int) -> None:
    admin = CatalogAdmin(products=catalog, stock=stock,  # type: ignore[arg-type]
                         catalog=CatalogService(reader=catalog, stock=stock), currency="EUR")
    draft = ProductDraft(title="Kettle", variants=[
        VariantDraft(sku="KETTLE-1", price="30", options={}),
        VariantDraft(sku="KETTLE-2", price="30", options={}, weight_grams=grams)])

    with pytest.raises(InvalidValue) as error:
        await admin.create(draft)

    assert error.value.field == "variants.1.weight_grams"
    assert stock.rows == {} and catalog.product_rows == {}
