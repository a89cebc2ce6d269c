"""Catalogue API: categories, product lists with search and filters, one product."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from shop.domain.catalog import MAX_PAGE_SIZE, MAX_QUERY_LENGTH, ProductQuery, ProductSort, ProductSummary
from shop.services.catalog import ProductDetail
from shop.web.api.v1.schemas import SLUG, CategoryList, Problem, ProductOut, ProductPage
from shop.web.cache import sku_tag, tag_response
from shop.web.deps import CatalogDep
from shop.web.responses import JSON, iso, money

router = APIRouter(prefix="/api/v1", tags=["catalogue"])
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Problem}, 422: {"model": Problem}}


@router.get("/categories", response_model=CategoryList, summary="The category tree")
async def list_categories(catalog: CatalogDep) -> Response:
    """Every category, parents before their children."""
    items = [{"id": c.id, "slug": c.slug, "name": c.name, "description": c.description, "parent_id": c.parent_id,
              "position": c.position} for c in await catalog.categories()]
    return JSON({"items": items, "total": len(items)})


def _card(p: ProductSummary) -> dict[str, Any]:
    return {"slug": p.slug, "title": p.title, "price": money(p.price_from),
            "image": {"url": p.image.url, "alt": p.image.alt} if p.image else None,
            "in_stock": p.in_stock, "category_id": p.category_id, "rank": p.rank}


@router.get("/products", response_model=ProductPage, responses=_ERRORS, summary="List and search products")
async def list_products(
    catalog: CatalogDep,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH, description="full-text search")] = None,
    category: Annotated[str | None, Query(max_length=200, pattern=SLUG, description="category slug; includes "
                                                                                "sub-categories")] = None,
    min_price: Annotated[Decimal | None, Query(ge=0, max_digits=14)] = None,
    max_price: Annotated[Decimal | None, Query(ge=0, max_digits=14)] = None,
    in_stock: Annotated[bool | None, Query()] = None,
    sort: Annotated[ProductSort | None, Query(description="default: relevance when searching, else newest")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 24,
) -> Response:
    """A page of published products, filtered, sorted, or ranked by relevance to `q`."""
    query = ProductQuery(page=page, limit=limit, category=category, min_price=min_price, max_price=max_price,
                         in_stock=in_stock, sort=sort, q=q)
    result = await catalog.list_products(query)
    return JSON({"items": [_card(p) for p in result.items], "total": result.total, "page": result.page,
                 "limit": result.limit})


def product_json(detail: ProductDetail) -> dict[str, Any]:
    product = detail.product
    price_range = product.price_range
    variants = [{"sku": v.sku, "title": v.title, "options": dict(v.options), "price": money(v.price),
                 "weight_grams": v.weight_grams, "available": detail.available(v.sku),
                 "in_stock": detail.available(v.sku) > 0}
                for v in product.variants]
    crumbs = [{"slug": c.slug, "name": c.name} for c in detail.breadcrumbs]
    return {
        "slug": product.slug, "title": product.title, "description": product.description,
        "category": crumbs[-1] if crumbs else None, "breadcrumbs": crumbs,
        "attributes": dict(product.attributes),
        "images": [{"url": i.url, "alt": i.alt} for i in product.images],
        "variants": variants,
        "price_range": {"min": money(price_range[0]), "max": money(price_range[1])} if price_range else None,
        "in_stock": any(v["in_stock"] for v in variants),
        "published": product.published,
        "created_at": iso(product.created_at),
    }


@router.get("/products/{slug}", response_model=ProductOut, responses=_ERRORS, summary="One product")
async def get_product(request: Request, catalog: CatalogDep,
                      slug: Annotated[str, PathParam(max_length=200)]) -> Response:
    """A published product with its variants, their prices and how many can be bought."""
    detail = await catalog.product_detail(slug)
    tag_response(request.scope, stock_tags(detail))  # the cached copy goes when any of its SKUs' stock moves
    return JSON(product_json(detail))


def stock_tags(detail: ProductDetail) -> list[str]:
    return [sku_tag(variant.sku) for variant in detail.product.variants]
