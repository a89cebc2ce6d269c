"""Product pictures: placeholders (a small SVG drawn from the product's slug, the same every time) and the
pictures staff uploaded."""

from __future__ import annotations

import hashlib
from html import escape

from fastapi import APIRouter
from fastapi import Path as PathParam
from starlette.responses import FileResponse, Response

from shop.domain.errors import NotFound
from shop.web.deps import ProductImagesDep

router = APIRouter(tags=["media"], include_in_schema=False)


def placeholder_svg(name: str) -> bytes:
    words = [w for w in name.split("-") if not w.isdigit()][:4]
    label = escape(" ".join(words).title() or "Product")
    digest = hashlib.sha256(name.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    accent = (hue + 40) % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 600" role="img" '
        f'aria-label="{label}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},45%,88%)"/><stop offset="1" stop-color="hsl({accent},40%,72%)"/>'
        '</linearGradient></defs><rect width="600" height="600" fill="url(#g)"/>'
        f'<circle cx="300" cy="260" r="120" fill="hsl({hue},35%,60%)" opacity=".55"/>'
        f'<text x="300" y="480" font-family="system-ui,sans-serif" font-size="34" text-anchor="middle" '
        f'fill="hsl({hue},40%,25%)">{label}</text></svg>'
    ).encode()


@router.get("/media/placeholder/{name}.svg")
async def placeholder(name: str = PathParam(pattern=r"^[a-z0-9-]{1,200}$")) -> Response:
    return Response(placeholder_svg(name), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})


@router.get("/media/uploads/{name}")
async def uploaded(images: ProductImagesDep, name: str = PathParam(max_length=64)) -> Response:
    """An uploaded picture: its name is its content's hash, so it may be cached for good."""
    found = images.file(name)
    if found is None:
        raise NotFound("picture", name)
    path, content_type = found
    # a picture is never a page: no script runs in it even if a browser were tempted to render it as one
    return FileResponse(path, media_type=content_type, headers={
        "Cache-Control": "public, max-age=31536000, immutable", "Content-Security-Policy": "default-src 'none'"})
