"""The API's documentation page, /docs: Swagger UI vendored and pinned (static/vendor/swagger-ui), loaded from the
shop (or its CDN, with integrity hashes) under the same Content-Security-Policy as every other page."""

from __future__ import annotations

import functools
from html import escape

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from shop.web.assets import Assets

router = APIRouter(include_in_schema=False)
_CSS = "vendor/swagger-ui/swagger-ui-5.36.0.css"
_SCRIPTS = ("vendor/swagger-ui/swagger-ui-bundle-5.36.0.js", "docs.js")


@functools.cache
def _page(assets: Assets, title: str) -> str:
    def attrs(path: str) -> str:
        return f'"{escape(assets.url(path))}" integrity="{assets.integrity(path)}" crossorigin="anonymous"'

    scripts = "".join(f"<script src={attrs(path)}></script>" for path in _SCRIPTS)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} API</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href={attrs(_CSS)}></head>'
            f'<body><div id="swagger-ui"></div>{scripts}</body></html>')


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """The API, described and tried out in the browser."""
    return HTMLResponse(_page(request.app.state.assets, request.app.state.settings.shop_name),
                        headers={"Cache-Control": "no-cache"})
