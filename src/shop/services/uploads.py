"""Product pictures uploaded by staff: only real PNG, JPEG, WebP or GIF files (judged by their first bytes, never
by their name), within a size limit, stored under a name made from their content and served by the shop."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from shop.domain.catalog import Image
from shop.domain.errors import InvalidValue
from shop.services.catalog_admin import CatalogAdmin, ProductDraft

UPLOADS_URL = "/media/uploads/"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 20
MAX_ALT = 300
_NAME = re.compile(r"[0-9a-f]{32}\.(png|jpg|webp|gif)")
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


def picture_kind(data: bytes) -> str | None:
    """The file extension the bytes really are, or None for anything but the four picture formats."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class MediaStore(Protocol):
    async def save(self, name: str, data: bytes) -> None:
        """Keep the file under `name` (the same name always means the same bytes)."""
        ...

    def path_of(self, name: str) -> Path | None:
        """Where a stored file is, or None."""
        ...


class ProductImages:
    def __init__(self, *, store: MediaStore, admin: CatalogAdmin, max_bytes: int = MAX_IMAGE_BYTES) -> None:
        self._store = store
        self._admin = admin
        self.max_bytes = max_bytes

    async def add(self, slug: str, data: bytes, *, alt: str = "") -> Image:
        """Store an uploaded picture and show it after the product's other pictures."""
        product = await self._admin.product(slug)
        if not data:
            raise InvalidValue("image", "choose a picture to upload")
        if len(data) > self.max_bytes:
            raise InvalidValue("image", f"the picture is larger than {self.max_bytes // (1024 * 1024)} MB")
        kind = picture_kind(data)
        if kind is None:
            raise InvalidValue("image", "upload a PNG, JPEG, WebP or GIF picture")
        alt = " ".join(alt.split())
        if len(alt) > MAX_ALT:
            raise InvalidValue("alt", f"at most {MAX_ALT} characters")
        if len(product.images) >= MAX_IMAGES:
            raise InvalidValue("image", f"a product shows at most {MAX_IMAGES} pictures; remove one first")
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.{kind}"
        await self._store.save(name, data)
        image = Image(url=UPLOADS_URL + name, alt=alt or product.title)
        if all(i.url != image.url for i in product.images):
            await self._admin.change(slug, ProductDraft(images=[*product.images, image]))
        return image

    async def remove(self, slug: str, url: str) -> None:
        """Stop showing a picture on the product (the file stays: another product may show it too)."""
        product = await self._admin.product(slug)
        kept = [i for i in product.images if i.url != url]
        if len(kept) == len(product.images):
            raise InvalidValue("image", "the product does not show this picture")
        await self._admin.change(slug, ProductDraft(images=kept))

    def file(self, name: str) -> tuple[Path, str] | None:
        """The stored file behind an uploads URL name and its content type; None for any other name."""
        found = _NAME.fullmatch(name)
        path = self._store.path_of(name) if found else None
        return (path, CONTENT_TYPES[found.group(1)]) if path is not None and found else None
