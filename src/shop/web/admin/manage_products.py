"""Control panel: products — the list with search and pages, a new product, a product's own fields, publishing.
Variants, stock and pictures are in manage_variants; every change goes through CatalogAdmin, which moves the
catalogue version so the storefront's caches forget the old page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from shop.domain.catalog import Product
from shop.domain.errors import Conflict, InvalidValue
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import ProductDraft, VariantDraft
from shop.web.admin.manage_forms import (
    Errors,
    field_of,
    page_number,
    pairs,
    pairs_text,
    text,
    too_long,
    whole_number,
)
from shop.web.admin.shell import StaffPage, checked_form, render, section
from shop.web.deps import CatalogAdminDep, CatalogDep, CatalogStaffDep

router = APIRouter(include_in_schema=False)
# the new-product form sits beside the list, so no slug (not even "new") is shadowed by it
NEW_PRODUCT = "/admin/products-new"
section("Products", "/admin/products")
PAGE_SIZE = 25
READ_LIMIT = 20_000  # longer than any field may be, so an overlong one is refused rather than cut short
LIMITS = {"title": 200, "slug": 200, "description": 10_000, "sku": 64, "price": 20}
NOTICES = {"created": "The product was created.", "saved": "Saved.", "published": "The product is on sale now.",
           "unpublished": "The product is hidden from the shop.", "variant": "The variant was saved.",
           "stock": "The stock was counted.", "image": "The picture was added.",
           "image-removed": "The picture was removed."}


async def category_choices(catalog: CatalogService) -> list[tuple[str, str]]:
    """(slug, name indented by depth) for a category picker, parents before children."""
    tree = await catalog.category_tree()
    return [(c.slug, "\u2003" * (len(tree.path(c.id)) - 1) + c.name) for c in await catalog.categories()]


@router.get("/admin/products")
async def products(request: Request, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    """Every product, published or not; search by title, slug or exact SKU."""
    q = request.query_params.get("q", "")[:200]
    found = await staff.products(q, page=page_number(request), limit=PAGE_SIZE)
    return render(request, "admin/manage/products.html", found=found, q=q)


def _new_values(form: FormData | None = None) -> dict[str, str]:
    names = ("title", "slug", "description", "category", "attributes", "sku", "price", "stock", "weight_grams",
             "options")
    values = {n: text(form, n, limit=READ_LIMIT) for n in names} if form is not None else {n: "" for n in names}
    values.setdefault("published", "")
    values["published"] = "1" if form is not None and form.get("published") else ""
    return values


@router.get(NEW_PRODUCT)
async def new_product_page(request: Request, visit: StaffPage, catalog: CatalogDep) -> Response:
    return render(request, "admin/manage/product_new.html", values=_new_values(), errors={},
                  categories=await category_choices(catalog))


@router.post(NEW_PRODUCT)
async def create_product(request: Request, visit: StaffPage, admin: CatalogAdminDep,
                         catalog: CatalogDep) -> Response:
    """Create a product with its first variant (hidden from the shop unless published is ticked)."""
    form = await checked_form(request)
    values, errors = _new_values(form), Errors()
    too_long(values, LIMITS, errors)
    stock = whole_number(form, "stock", errors, required=False)
    weight = whole_number(form, "weight_grams", errors, required=False)
    draft: ProductDraft | None = None
    try:
        attributes = pairs(values["attributes"], field="attributes")
        options = pairs(values["options"], field="options", limit=100)
        draft = ProductDraft(
            title=values["title"], slug=values["slug"] or None, description=values["description"],
            category=values["category"] or None, attributes=attributes, published=bool(values["published"]),
            variants=[VariantDraft(sku=values["sku"], price=values["price"], options=options, stock=stock or 0,
                                   weight_grams=weight or 0)])
    except InvalidValue as exc:
        errors[exc.field] = exc.message
    if draft is not None and not errors:
        try:
            product = await admin.create(draft)
        except InvalidValue as exc:
            errors[field_of(exc)] = exc.message
        except Conflict as exc:
            errors["sku" if "SKU" in str(exc) else "slug"] = str(exc)
        else:
            return RedirectResponse(f"/admin/products/{product.slug}?done=created", status_code=303)
    return render(request, "admin/manage/product_new.html", status=422, values=values, errors=errors,
                  categories=await category_choices(catalog))


def product_values(product: Product, categories: dict[int, str]) -> dict[str, str]:
    return {"title": product.title, "slug": product.slug, "description": product.description,
            "category": categories.get(product.category_id, "") if product.category_id is not None else "",
            "attributes": pairs_text(product.attributes), "published": "1" if product.published else ""}


def variant_values(product: Product) -> dict[str, dict[str, str]]:
    return {v.sku: {"sku": v.sku, "price": str(v.price.amount), "weight_grams": str(v.weight_grams),
                    "title": v.title, "options": pairs_text(v.options, sep="; ")} for v in product.variants}


async def product_page(request: Request, catalog: CatalogService, slug: str, *, status: int = 200,
                       **given: Any) -> Response:
    """A product's page in the panel, with whatever form is being shown again (`values`, `errors`, …)."""
    detail = await catalog.product_detail(slug, include_unpublished=True)
    tree = await catalog.category_tree()
    slugs = {c.id: c.slug for c in await catalog.categories()}
    context: dict[str, Any] = {
        "values": product_values(detail.product, slugs), "errors": {},
        "variants": variant_values(detail.product), "variant_errors": {}, "new_variant": {}, "stock_values": {},
        "stock_errors": {}, "image_error": None, "error": None,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    context.update(given)
    return render(request, "admin/manage/product.html", status=status, product=detail.product, detail=detail,
                  categories=await category_choices(catalog),
                  breadcrumbs=tree.path(detail.product.category_id) if detail.product.category_id else [],
                  **context)


@router.get("/admin/products/{slug}")
async def product(request: Request, slug: str, visit: StaffPage, admin: CatalogAdminDep,
                  catalog: CatalogDep) -> Response:
    """One product: its fields, variants, stock and pictures."""
    await admin.product(slug)
    return await product_page(request, catalog, slug)


@router.post("/admin/products/{slug}")
async def save_product(request: Request, slug: str, visit: StaffPage, admin: CatalogAdminDep,
                       catalog: CatalogDep) -> Response:
    """Save the product's own fields (title, slug, description, attributes, category, published)."""
    form = await checked_form(request)
    await admin.product(slug)
    values = {n: text(form, n, limit=READ_LIMIT) for n in ("title", "slug", "description", "category",
                                                            "attributes")}
    values["published"] = "1" if form.get("published") else ""
    errors = Errors()
    too_long(values, LIMITS, errors)
    draft: ProductDraft | None = None
    try:
        draft = ProductDraft(title=values["title"], slug=values["slug"], description=values["description"],
                             category=values["category"], published=bool(values["published"]),
                             attributes=pairs(values["attributes"], field="attributes"))
    except InvalidValue as exc:
        errors[exc.field] = exc.message
    if draft is not None and not errors:
        try:
            changed = await admin.change(slug, draft)
        except InvalidValue as exc:
            errors[field_of(exc)] = exc.message
        except Conflict as exc:
            errors["slug"] = str(exc)
        else:
            return RedirectResponse(f"/admin/products/{changed.slug}?done=saved", status_code=303)
    return await product_page(request, catalog, slug, status=422, values=values, errors=errors)


@router.post("/admin/products/{slug}/publish")
async def publish(request: Request, slug: str, visit: StaffPage, admin: CatalogAdminDep) -> Response:
    """Put the product on sale, or take it off."""
    form = await checked_form(request)
    wanted = form.get("published") == "1"
    await admin.change(slug, ProductDraft(published=wanted))
    done = "published" if wanted else "unpublished"
    return RedirectResponse(f"/admin/products/{slug}?done={done}", status_code=303)
