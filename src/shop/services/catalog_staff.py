"""What staff see and arrange of the catalogue besides a product's own fields: every product, published or not,
and the category tree (create, rename, move without cycles, delete only when empty)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from shop.domain.catalog import Category, CategoryTree, Page, check_slug, slugify
from shop.domain.errors import Conflict, InvalidValue, NotFound
from shop.domain.money import Money
from shop.services.catalog import CatalogService

MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class ProductRow:
    """One line of the staff's product list."""

    slug: str
    title: str
    published: bool
    price_from: Money
    price_to: Money
    in_stock: bool
    category_id: int | None
    variants: int


class StaffCatalogStore(Protocol):
    async def product_rows(self, *, q: str, page: int, limit: int) -> Page[ProductRow]:
        """Products whose title or slug contains `q` (any case) or with a variant whose SKU is `q`; newest first."""
        ...

    async def categories(self) -> Sequence[Category]: ...

    async def add_category(self, category: Category) -> int:
        """Store a new category (its id is chosen here); raise Conflict if the slug is taken."""
        ...

    async def update_category(self, category: Category) -> None: ...

    async def delete_category(self, category_id: int) -> None: ...

    async def products_in(self, category_id: int) -> int:
        """How many products (published or not) the category holds directly."""
        ...


class CategoryNotEmpty(Conflict):
    pass


class CatalogStaff:
    def __init__(self, *, store: StaffCatalogStore, catalog: CatalogService) -> None:
        self._store = store
        self._catalog = catalog

    async def products(self, q: str = "", *, page: int = 1, limit: int = 25) -> Page[ProductRow]:
        """One page of every product, unpublished ones included."""
        return await self._store.product_rows(q=" ".join(q.split())[:200], page=max(1, min(page, 100_000)),
                                              limit=limit)

    async def tree(self) -> CategoryTree:
        """The category tree as stored now (not this worker's cached copy)."""
        return CategoryTree(await self._store.categories())

    async def create_category(self, *, name: str, slug: str = "", parent: str = "") -> Category:
        """A new category at the end of its parent's children; its slug comes from the name unless given."""
        tree = await self.tree()
        name = _name(name)
        slug = check_slug(slug.strip() or slugify(name))
        if tree.by_slug(slug) is not None:
            raise InvalidValue("slug", f"the slug {slug!r} is already used by another category")
        parent_id = _category(tree, parent, field="parent").id if parent else None
        siblings = tree.children(parent_id)
        category = Category(id=0, slug=slug, name=name, parent_id=parent_id,
                            position=max((c.position for c in siblings), default=-1) + 1)
        category = replace(category, id=await self._store.add_category(category))
        self._forget()
        return category

    async def rename_category(self, slug: str, *, name: str) -> Category:
        """Give a category a new name (its slug, and so its links, stay)."""
        category = replace(_category(await self.tree(), slug), name=_name(name))
        await self._store.update_category(category)
        self._forget()
        return category

    async def move_category(self, slug: str, *, parent: str) -> Category:
        """Put a category under another one (or at the top); never under itself or its own descendants."""
        tree = await self.tree()
        category = _category(tree, slug)
        parent_id: int | None = None
        if parent:
            target = _category(tree, parent, field="parent")
            if target.id in tree.subtree_ids(category.id):
                raise InvalidValue("parent", f"{target.name} is {category.name} itself or lies below it; "
                                             "a category cannot be moved under itself")
            parent_id = target.id
        siblings = [c for c in tree.children(parent_id) if c.id != category.id]
        moved = replace(category, parent_id=parent_id,
                        position=max((c.position for c in siblings), default=-1) + 1)
        await self._store.update_category(moved)
        self._forget()
        return moved

    async def delete_category(self, slug: str) -> None:
        """Delete a category that holds no products and no sub-categories."""
        tree = await self.tree()
        category = _category(tree, slug)
        children = tree.children(category.id)
        if children:
            raise CategoryNotEmpty(f"{category.name} still has {len(children)} sub-categories; move or delete "
                                   "them first")
        held = await self._store.products_in(category.id)
        if held:
            raise CategoryNotEmpty(f"{category.name} still holds {held} product{'s' if held != 1 else ''}; move "
                                   "them to another category first")
        await self._store.delete_category(category.id)
        self._forget()

    def _forget(self) -> None:
        # this worker's cached tree goes now; the others drop theirs when they see the catalogue version move
        self._catalog.catalog_changed(0)


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidValue("name", "a category needs a name")
    if len(name) > MAX_NAME:
        raise InvalidValue("name", f"at most {MAX_NAME} characters")
    return name


def _category(tree: CategoryTree, slug: str, *, field: str = "") -> Category:
    found = tree.by_slug(slug)
    if found is None:
        if field:
            raise InvalidValue(field, f"there is no category {slug!r}")
        raise NotFound("category", slug)
    return found
