"""Catalogue pages: home, category with filters, search, product."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from starlette.responses import Response

from shop.domain.catalog import ProductQuery, ProductSort
from shop.domain.errors import InvalidValue, NotFound
from shop.services.catalog import CatalogService
from shop.web.deps import CatalogDep
from shop.web.storefront.rendering import Pages
from shop.web.storefront.visitor import Guest, Visitor

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 24
SORTS = [("newest", "Newest"), ("price", "Price: low to high"), ("-price", "Price: high to low"),
         ("title", "Name")]


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


@router.get("/")
async def home(request: Request, guest: Guest, catalog: CatalogDep) -> Response:
    """Home: newest products and the categories."""
    tree = await catalog.category_tree()
    featured = await catalog.list_products(ProductQuery(limit=8, sort=ProductSort.NEWEST))
    return _pages(request).render(guest, "home.html", categories=tree.roots(), featured=featured.items)


def _decimal(raw: str | None) -> Decimal | None:
    if raw is None or not raw.strip():
        return None
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        return None


def _query(request: Request, *, category: str | None) -> tuple[ProductQuery, dict[str, str]]:
    """The filters in the URL, leniently: a bad value is dropped rather than failing the page."""
    params = request.query_params
    chosen = {k: params[k] for k in ("q", "sort", "min_price", "max_price", "in_stock") if params.get(k)}
    try:
        page = max(1, min(10_000, int(params.get("page", "1"))))
    except ValueError:
        page = 1
    sort_raw = params.get("sort")
    sort = ProductSort(sort_raw) if sort_raw in {s.value for s in ProductSort} else None
    q = (params.get("q") or "").strip()[:200] or None
    if sort is ProductSort.RELEVANCE and q is None:
        sort = None
    low, high = _decimal(params.get("min_price")), _decimal(params.get("max_price"))
    try:
        query = ProductQuery(page=page, limit=PAGE_SIZE, category=category, min_price=low, max_price=high,
                             in_stock=True if params.get("in_stock") else None, sort=sort, q=q)
    except InvalidValue:
        query = ProductQuery(page=page, limit=PAGE_SIZE, category=category, sort=sort, q=q)
    return query, chosen


async def _listing(request: Request, guest: Visitor, catalog: CatalogService, *,
                   category_slug: str | None) -> Response:
    tree = await catalog.category_tree()
    category = tree.by_slug(category_slug) if category_slug else None
    if category_slug and category is None:
        raise NotFound("category", category_slug)
    query, chosen = _query(request, category=category_slug)
    found = await catalog.list_products(query)
    return _pages(request).render(
        guest, "listing.html", category=category, crumbs=tree.path(category.id) if category else [],
        children=tree.children(category.id) if category else tree.roots(), page=found, query=query,
        chosen=chosen, sorts=SORTS, partial=request.headers.get("HX-Request") == "true")


@router.get("/c/{slug}")
async def category_page(request: Request, slug: str, guest: Guest, catalog: CatalogDep) -> Response:
    """A category with its sub-categories' products, filters, sorting and pages."""
    return await _listing(request, guest, catalog, category_slug=slug)


@router.get("/search")
async def search_page(request: Request, guest: Guest, catalog: CatalogDep) -> Response:
    """Search results, best match first, the words found marked."""
    return await _listing(request, guest, catalog, category_slug=None)


@router.get("/p/{slug}")
async def product_page(request: Request, slug: str, guest: Guest, catalog: CatalogDep) -> Response:
    """A product: images, description, a variant picker with price and stock per variant."""
    detail = await catalog.product_detail(slug)
    return _pages(request).render(guest, "product.html", detail=detail, product=detail.product)
