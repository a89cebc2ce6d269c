"""The catalogue's JSON shapes, for the OpenAPI document. Routes write the same shapes with orjson directly."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class StrictInput(BaseModel):
    """A request body: unknown fields (ids, derived values, roles) are refused with a 422, never ignored."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class MoneyOut(BaseModel):
    amount: str = Field(examples=["19.99"], description="a decimal number written as text")
    currency: str = Field(examples=["EUR"])


class ImageOut(BaseModel):
    url: str
    alt: str


class CategoryOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    parent_id: int | None
    position: int


class CategoryList(BaseModel):
    items: list[CategoryOut]
    total: int


class CategoryRef(BaseModel):
    slug: str
    name: str


class ProductCard(BaseModel):
    slug: str
    title: str
    price: MoneyOut = Field(description="the lowest price of its variants")
    image: ImageOut | None
    in_stock: bool
    category_id: int | None
    rank: float | None = Field(None, description="relevance when searching; higher is better")


class ProductPage(BaseModel):
    items: list[ProductCard]
    total: int
    page: int
    limit: int


class VariantOut(BaseModel):
    sku: str
    title: str
    options: dict[str, str]
    price: MoneyOut
    weight_grams: int = Field(description="shipping weight in grams")
    available: int
    in_stock: bool


class PriceRange(BaseModel):
    min: MoneyOut
    max: MoneyOut


class ProductOut(BaseModel):
    slug: str
    title: str
    description: str
    category: CategoryRef | None
    breadcrumbs: list[CategoryRef]
    attributes: dict[str, str]
    images: list[ImageOut]
    variants: list[VariantOut]
    price_range: PriceRange | None
    in_stock: bool
    published: bool
    created_at: datetime | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
