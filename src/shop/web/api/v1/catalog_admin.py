"""Staff endpoints of the catalogue: create, change and delete products."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import Field
from starlette.responses import Response

from shop.domain.catalog import Image
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import ProductDraft, VariantDraft
from shop.web.api.v1.catalog import product_json
from shop.web.api.v1.schemas import MULTILINE, Problem, ProductOut, StrictInput
from shop.web.deps import CatalogAdminDep, CatalogDep
from shop.web.responses import JSON
from shop.web.security import Admin, Staff

router = APIRouter(prefix="/api/v1", tags=["catalogue (staff)"])
_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Problem} for s in (401, 403, 404, 409, 422)}


class ImageIn(StrictInput):
    url: str = Field(max_length=1000, pattern=r"^(/|https://)[^\s\u0000-\u001f\u007f-\u009f]+$")
    alt: str = Field("", max_length=300)


class VariantIn(StrictInput):
    sku: str = Field(max_length=64, examples=["TEE-BLK-M"])
    price: str = Field(max_length=20, examples=["19.99"], description="a decimal as text, in the shop's currency")
    options: dict[str, Annotated[str, Field(max_length=100)]] = Field(default_factory=dict, max_length=10)
    title: str = Field("", max_length=200)
    stock: int | None = Field(None, ge=0, le=1_000_000, description="units on hand; omitted: unchanged")
    weight_grams: int = Field(0, ge=0, le=1_000_000, description="shipping weight in grams")


class ProductIn(StrictInput):
    title: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=200)
    description: Annotated[str | None, MULTILINE] = Field(None, max_length=10_000)
    category: str | None = Field(None, max_length=200, description="category slug")
    attributes: dict[str, Annotated[str, Field(max_length=500)]] | None = Field(None, max_length=50)
    images: list[ImageIn] | None = Field(None, max_length=20)
    published: bool | None = None
    variants: list[VariantIn] | None = Field(None, max_length=100)

    def draft(self) -> ProductDraft:
        return ProductDraft(
            title=self.title, slug=self.slug, description=self.description, category=self.category,
            attributes=self.attributes, published=self.published,
            images=[Image(i.url, i.alt) for i in self.images] if self.images is not None else None,
            variants=[VariantDraft(sku=v.sku, price=v.price, options=v.options, title=v.title, stock=v.stock,
                                   weight_grams=v.weight_grams)
                      for v in self.variants] if self.variants is not None else None)


async def _detail(catalog: CatalogService, slug: str) -> dict[str, Any]:
    return product_json(await catalog.product_detail(slug, include_unpublished=True))


@router.post("/products", status_code=201, response_model=ProductOut, responses=_ERRORS)
async def create_product(body: ProductIn, admin: CatalogAdminDep, catalog: CatalogDep, _: Staff) -> Response:
    """Create a product (unpublished unless `published` is true)."""
    product = await admin.create(body.draft())
    return JSON(await _detail(catalog, product.slug), status_code=201,
                headers={"Location": f"/api/v1/products/{product.slug}"})


@router.patch("/products/{slug}", response_model=ProductOut, responses=_ERRORS)
async def change_product(body: ProductIn, admin: CatalogAdminDep, catalog: CatalogDep, _: Staff,
                         slug: Annotated[str, PathParam(max_length=200)]) -> Response:
    """Change the fields given; `variants`, when given, replace the old ones."""
    product = await admin.change(slug, body.draft())
    return JSON(await _detail(catalog, product.slug))


@router.delete("/products/{slug}", status_code=204, responses=_ERRORS)
async def delete_product(admin: CatalogAdminDep, _: Admin, slug: Annotated[str, PathParam(max_length=200)]) -> Response:
    """Delete a product (admins only); orders keep their own copy of it."""
    await admin.delete(slug)
    return Response(status_code=204)
