"""Control panel: the category tree — create, rename, move under another parent (never under itself), delete
when empty."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shop.domain.catalog import Category, CategoryTree
from shop.domain.errors import Conflict, InvalidValue
from shop.services.catalog_staff import CatalogStaff
from shop.web.admin.manage_forms import Errors, text
from shop.web.admin.shell import StaffPage, checked_form, render, section
from shop.web.deps import CatalogStaffDep

router = APIRouter(prefix="/admin/categories", include_in_schema=False)
section("Categories", "/admin/categories")
NOTICES = {"created": "The category was created.", "renamed": "The category was renamed.",
           "moved": "The category was moved.", "deleted": "The category was deleted."}


def _rows(tree: CategoryTree) -> list[tuple[Category, int]]:
    """Each category with its depth, parents before children."""
    rows: list[tuple[Category, int]] = []
    stack = [(c, 0) for c in reversed(tree.roots())]
    while stack:
        category, depth = stack.pop()
        rows.append((category, depth))
        stack.extend((child, depth + 1) for child in reversed(tree.children(category.id)))
    return rows


async def _page(request: Request, staff: CatalogStaff, *, status: int = 200, **given: Any) -> Response:
    tree = await staff.tree()
    rows = _rows(tree)
    context: dict[str, Any] = {"values": {}, "errors": {}, "row_errors": {}, "error": None,
                               "notice": NOTICES.get(request.query_params.get("done", ""))}
    context.update(given)
    return render(request, "admin/manage/categories.html", status=status, rows=rows,
                  choices=[(c.slug, "\u2003" * depth + c.name) for c, depth in rows],
                  parent_of={c.id: tree.path(c.id)[-2].slug if len(tree.path(c.id)) > 1 else "" for c, _ in rows},
                  **context)


@router.get("")
async def categories(request: Request, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    """The tree, with a form for each change."""
    return await _page(request, staff)


@router.post("")
async def create_category(request: Request, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    form = await checked_form(request)
    values = {"name": text(form, "name", limit=300), "slug": text(form, "slug", limit=300),
              "parent": text(form, "parent")}
    try:
        await staff.create_category(**values)
    except InvalidValue as exc:
        return await _page(request, staff, status=422, values=values, errors={exc.field: exc.message})
    except Conflict as exc:
        return await _page(request, staff, status=409, values=values, errors={"slug": str(exc)})
    return RedirectResponse("/admin/categories?done=created", status_code=303)


async def _change(request: Request, staff: CatalogStaff, slug: str, action: str) -> Response:
    form = await checked_form(request)
    errors = Errors()
    try:
        if action == "renamed":
            await staff.rename_category(slug, name=text(form, "name", limit=300))
        elif action == "moved":
            await staff.move_category(slug, parent=text(form, "parent"))
        else:
            await staff.delete_category(slug)
    except InvalidValue as exc:
        errors[exc.field] = exc.message
    except Conflict as exc:
        errors["category"] = str(exc)
    if errors:
        return await _page(request, staff, status=409 if "category" in errors else 422, row_errors={slug: errors})
    return RedirectResponse(f"/admin/categories?done={action}", status_code=303)


@router.post("/{slug}/rename")
async def rename_category(request: Request, slug: str, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    return await _change(request, staff, slug, "renamed")


@router.post("/{slug}/move")
async def move_category(request: Request, slug: str, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    return await _change(request, staff, slug, "moved")


@router.post("/{slug}/delete")
async def delete_category(request: Request, slug: str, visit: StaffPage, staff: CatalogStaffDep) -> Response:
    return await _change(request, staff, slug, "deleted")
