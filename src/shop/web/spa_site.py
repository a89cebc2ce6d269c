"""The client-rendered backup storefront: static ES modules at /app/ that buy through the JSON API.

The same files are written by `export_spa` to a folder any static host can serve on another origin; the API
origin is then named in index.html and the API allows it through CORS (`cors_middleware_kwargs`).
Assets live under a directory named after a hash of their contents, so they may be cached for a year while
index.html (`no-cache`) always points at the current ones.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from starlette.responses import RedirectResponse, Response

from shop.web.problems import problem
from shop.web.security_headers import STRIPE_CONNECT, STRIPE_FRAMES, STRIPE_SCRIPTS

__all__ = ["PREFIX", "cors_middleware_kwargs", "export_spa", "router"]

PREFIX = "/app"
SPA_DIR = Path(__file__).with_name("spa")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
          ".webmanifest": "application/manifest+json"}
_YEAR = "public, max-age=31536000, immutable"
# what the SPA sends and what it reads back, for a static host on another origin
CORS_REQUEST_HEADERS = ("Content-Type", "Authorization", "Idempotency-Key", "X-Order-Key")
CORS_EXPOSED_HEADERS = ("Location", "Idempotent-Replayed", "Retry-After")
CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")


@dataclass(frozen=True, slots=True)
class Bundle:
    """The SPA's assets, read once: their contents by path (e.g. `vendor/…js`) and the version they make up."""

    version: str
    files: dict[str, bytes]
    index: str  # index.html with its placeholders still in

    @property
    def assets(self) -> str:
        return f"assets/{self.version}"


@functools.cache
def bundle() -> Bundle:
    sources = {p.relative_to(SPA_DIR).as_posix(): p for p in sorted(SPA_DIR.rglob("*"))
               if p.is_file() and p.suffix in _TYPES}
    files = {name: path.read_bytes() for name, path in sorted(sources.items())}
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    index = (SPA_DIR / "index.html").read_text(encoding="utf-8")
    digest.update(index.encode())
    return Bundle(version=digest.hexdigest()[:12], files=files, index=index)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(api_url: str = "", *, cdn_origin: str | None = None, stripe: bool = False) -> str:
    """The policy index.html runs under: our own scripts and styles only (and the CDN's, when assets come from
    one), the API for data and pictures; Stripe.js and its frames only when the shop takes cards with Stripe."""
    api = f" {_origin(api_url)}" if api_url else ""
    cdn = f" {cdn_origin}" if cdn_origin else ""
    scripts = f" {STRIPE_SCRIPTS}" if stripe else ""
    frames = f"frame-src {STRIPE_FRAMES}; " if stripe else ""
    connect = f" {STRIPE_CONNECT}" if stripe else ""
    return (f"default-src 'none'; script-src 'self'{cdn}{scripts}; style-src 'self'{cdn}; img-src 'self' data:{api}; "
            f"connect-src 'self'{api}{connect}; {frames}font-src 'self'; manifest-src 'self'; base-uri 'none'; "
            "form-action 'none'")


def _integrity(name: str) -> str:
    content = bundle().files[name]
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


def render_index(*, api_url: str = "", cdn_base: str | None = None, cdn_origin: str | None = None,
                 stripe: bool = False) -> str:
    """index.html pointing at the current assets — on the shop (or static host) by their bundle version, or on
    jsDelivr (`cdn_base`, from `Assets.spa_base()`) with integrity hashes — and at the API (`""`: the origin
    that serves the page)."""
    current = bundle()
    values = {"%SHOP_API_URL%": api_url, "%SHOP_ASSETS%": cdn_base or f"./{current.assets}",
              "%SHOP_CSP%": content_security_policy(api_url, cdn_origin=cdn_origin if cdn_base else None,
                                                    stripe=stripe)}
    html = current.index
    for placeholder, value in values.items():
        html = html.replace(placeholder, escape(value, quote=True))
    if cdn_base:  # the entry points are checked; what they import comes from the same pinned version
        for name, tag in (("styles.css", 'rel="stylesheet"'), ("app.js", 'type="module"')):
            html = html.replace(tag, f'{tag} integrity="{_integrity(name)}" crossorigin="anonymous"', 1)
    return html


def check_api_url(api_url: str) -> str:
    """`api_url` without a trailing slash, or ValueError saying what is wrong with it."""
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the API URL must start with http:// or https:// and name a host, not {api_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"the API URL must not carry a query, fragment or password: {api_url!r}")
    return api_url.strip().rstrip("/")


def export_spa(directory: Path, *, api_url: str) -> list[Path]:
    """Write the backup storefront into `directory` for a static host; it buys through the API at `api_url`.

    Returns the files written. Files already in `directory` are left alone (older asset versions included)."""
    api_url = check_api_url(api_url)
    current = bundle()
    written: list[Path] = []

    def write(relative: str, content: bytes) -> None:
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)

    for name, content in current.files.items():
        write(f"{current.assets}/{name}", content)
    write("index.html", render_index(api_url=api_url).encode())
    write(".nojekyll", b"")  # GitHub Pages: publish the folder as it is
    return written


def check_origins(origins: Iterable[str]) -> list[str]:
    """Origins as a browser sends them (`https://shop.example`, no path), or ValueError naming a bad one."""
    checked: list[str] = []
    for origin in origins:
        value = origin.strip().rstrip("/")
        if not value:
            continue
        parts = urlsplit(value)
        if value != "*" and (parts.scheme not in ("http", "https") or not parts.hostname or parts.path
                             or parts.query or parts.fragment):
            raise ValueError(f"a CORS origin is a scheme and a host (and port), e.g. https://shop.example, "
                             f"not {origin!r}")
        checked.append(value)
    return checked


def cors_middleware_kwargs(origins: Iterable[str]) -> dict[str, Any]:
    """Keyword arguments for Starlette's CORSMiddleware letting the SPA on `origins` use the API.

    No credentials: the SPA identifies itself with headers (Authorization, X-Order-Key), never cookies."""
    return {"allow_origins": check_origins(origins), "allow_methods": list(CORS_METHODS),
            "allow_headers": list(CORS_REQUEST_HEADERS), "expose_headers": list(CORS_EXPOSED_HEADERS),
            "allow_credentials": False, "max_age": 600}


router = APIRouter(tags=["storefront (CSR)"], include_in_schema=False)


@router.get(PREFIX)
async def app_root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.api_route(f"{PREFIX}/", methods=["GET", "HEAD"])
@router.api_route(f"{PREFIX}/index.html", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    """The backup storefront's page; `no-cache`, so it always names the current assets."""
    assets = getattr(request.app.state, "assets", None)
    cdn_base = assets.spa_base() if assets is not None else None
    cdn_origin = assets.cdn_origin if assets is not None else None
    settings = getattr(request.app.state, "settings", None)
    stripe = settings is not None and settings.payment_gateway == "stripe"
    etag = f'"{bundle().version}{"-cdn" if cdn_base else ""}{"-stripe" if stripe else ""}"'
    policy = content_security_policy(cdn_origin=cdn_origin if cdn_base else None, stripe=stripe)
    headers = {"Cache-Control": "no-cache", "ETag": etag, "Content-Security-Policy":
               f"{policy}; frame-ancestors 'none'",
               "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "strict-origin-when-cross-origin"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(_index_html(cdn_base, cdn_origin, stripe), media_type="text/html; charset=utf-8",
                    headers=headers)


@functools.cache
def _index_html(cdn_base: str | None, cdn_origin: str | None, stripe: bool = False) -> bytes:
    return render_index(cdn_base=cdn_base, cdn_origin=cdn_origin, stripe=stripe).encode()


@router.api_route(PREFIX + "/assets/{version}/{name:path}", methods=["GET", "HEAD"])
async def asset(version: str = PathParam(pattern=r"^[0-9a-f]{12}$"), name: str = PathParam(max_length=200)) -> Response:
    """One of the SPA's files, cacheable for a year: a change to any file changes `version`."""
    current = bundle()
    content = current.files.get(name) if version == current.version else None
    if content is None:
        return problem(404, f"no file {name!r} in version {version} of the backup storefront",
                       headers={"Cache-Control": "no-store"})
    return Response(content, media_type=_TYPES[Path(name).suffix],
                    headers={"Cache-Control": _YEAR, "X-Content-Type-Options": "nosniff"})
