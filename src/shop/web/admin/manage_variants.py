"""Control panel: a product's variants (SKU, price, options, weight), its stock per SKU and its pictures."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from shop.domain.errors import Conflict, InvalidValue
from shop.services.catalog_admin import ProductDraft, VariantDraft
from shop.web.admin.manage_forms import Errors, field_of, pairs, text, too_long, whole_number
from shop.web.admin.manage_products import product_page
from shop.web.admin.shell import StaffPage, checked_form
from shop.web.deps import CatalogAdminDep, CatalogDep, ProductImagesDep

router = APIRouter(prefix="/admin/products/{slug}", include_in_schema=False)
MULTIPART_SLACK = 64 * 1024  # the form's other fields and the multipart framing around the picture


@router.post("/variants")
async def save_variant(request: Request, slug: str, visit: StaffPage, admin: CatalogAdminDep,
                       catalog: CatalogDep) -> Response:
    """Change one variant (named by `original_sku`) or, without it, add a new one."""
    form = await checked_form(request)
    product = await admin.product(slug)
    original = text(form, "original_sku", limit=64)
    values = {n: text(form, n, limit=500) for n in ("sku", "price", "weight_grams", "title", "options")}
    errors = Errors()
    too_long(values, {"sku": 64, "price": 20, "title": 200}, errors)
    weight = whole_number(form, "weight_grams", errors, required=False)
    drafts = [VariantDraft(sku=v.sku, price=str(v.price.amount), options=v.options, title=v.title,
                           weight_grams=v.weight_grams) for v in product.variants]
    position = next((n for n, v in enumerate(product.variants) if v.sku == original), None)
    if original and position is None:
        errors["sku"] = f"{product.title} has no variant {original!r} any more; reload the page"
    if not errors:
        try:
            draft = VariantDraft(sku=values["sku"], price=values["price"], title=values["title"],
                                 options=pairs(values["options"], field="options", limit=100),
                                 weight_grams=weight or 0)
            if position is None:
                drafts.append(draft)
            else:
                drafts[position] = draft
            await admin.change(slug, ProductDraft(variants=drafts))
        except InvalidValue as exc:
            errors[field_of(exc) if exc.field != "variants" else "sku"] = exc.message
        except Conflict as exc:
            errors["sku"] = str(exc)
        else:
            return RedirectResponse(f"/admin/products/{slug}?done=variant#variants", status_code=303)
    if position is None:
        return await product_page(request, catalog, slug, status=422, new_variant={**values, "errors": errors})
    variants = {v.sku: {"sku": v.sku, "price": str(v.price.amount), "weight_grams": str(v.weight_grams),
                        "title": v.title, "options": "; ".join(f"{k}: {o}" for k, o in v.options.items())}
                for v in product.variants}
    variants[original] = values
    return await product_page(request, catalog, slug, status=422, variants=variants, variant_errors={original: errors})


@router.post("/stock")
async def count_stock(request: Request, slug: str, visit: StaffPage, admin: CatalogAdminDep,
                      catalog: CatalogDep) -> Response:
    """Set the units on hand of one SKU; never below what orders hold."""
    form = await checked_form(request)
    sku = text(form, "sku", limit=64)
    errors = Errors()
    on_hand = whole_number(form, "on_hand", errors)
    if on_hand is not None:
        try:
            await admin.set_stock(slug, sku, on_hand)
        except InvalidValue as exc:
            errors[exc.field] = exc.message
        else:
            return RedirectResponse(f"/admin/products/{slug}?done=stock#stock", status_code=303)
    message = errors.get("on_hand") or errors.get("sku") or "check the number"
    return await product_page(request, catalog, slug, status=422, stock_values={sku: text(form, "on_hand", limit=20)},
                              stock_errors={sku: message})


@router.post("/images")
async def upload_image(request: Request, slug: str, visit: StaffPage, images: ProductImagesDep,
                       admin: CatalogAdminDep, catalog: CatalogDep) -> Response:
    """Add an uploaded picture (PNG, JPEG, WebP or GIF, checked by its content) to the product."""
    await admin.product(slug)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > images.max_bytes + MULTIPART_SLACK:
        # refused before the body is read: a huge upload must not fill the disk's temporary space first
        return await product_page(request, catalog, slug, status=413,
                                  image_error=f"the picture is larger than {images.max_bytes // 2**20} MB")
    form = await checked_form(request)
    upload = form.get("image")
    try:
        data = await upload.read(images.max_bytes + 1) if isinstance(upload, UploadFile) else b""
    finally:
        if isinstance(upload, UploadFile):
            await upload.close()
    try:
        await images.add(slug, data, alt=text(form, "alt", limit=1000))
    except InvalidValue as exc:
        return await product_page(request, catalog, slug, status=413 if len(data) > images.max_bytes else 422,
                                  image_error=exc.message)
    return RedirectResponse(f"/admin/products/{slug}?done=image#images", status_code=303)


@router.post("/images/remove")
async def remove_image(request: Request, slug: str, visit: StaffPage, images: ProductImagesDep,
                       catalog: CatalogDep) -> Response:
    """Stop showing one picture on the product."""
    form = await checked_form(request)
    try:
        await images.remove(slug, text(form, "url", limit=1000))
    except InvalidValue as exc:
        return await product_page(request, catalog, slug, status=422, image_error=exc.message)
    return RedirectResponse(f"/admin/products/{slug}?done=image-removed#images", status_code=303)
