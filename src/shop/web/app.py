"""create_app(): the FastAPI application behind its security headers, the response cache in front of both, and the
request log around everything."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Set

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

import shop
from shop.config import Settings
from shop.services.shop import ShopServices
from shop.web import admin, docs_page, media, metrics, openapi_document, problems, spa_site
from shop.web.api import health
from shop.web.api.v1 import (
    auth,
    card_payments,
    carts,
    catalog,
    catalog_admin,
    checkout,
    orders,
    payments,
    phone,
    vouchers,
)
from shop.web.cache import ASGIApp, ResponseCache, sku_tag
from shop.web.client import TrustedProxies
from shop.web.input_policy import InputPolicy
from shop.web.request_log import RequestLogMiddleware, Telemetry
from shop.web.responses import JSON
from shop.web.security_headers import SecurityHeaders, content_security_policy
from shop.web.storefront import site

__all__ = ["ASGIApp", "create_app"]

CACHED_PREFIXES = ("/api/v1/products", "/api/v1/categories")
# a cached answer is at most this old relative to the newest catalogue and stock checks: the 1 s contract, less a
# margin for the answer's own way out (README "Caches and their contract")
FRESH_FOR_S = 0.9


def _stock_moved(cache: ResponseCache) -> Callable[[Set[str] | None], None]:
    def forget(skus: Set[str] | None) -> None:
        if skus is None:
            cache.clear()
        else:
            cache.invalidate(sku_tag(sku) for sku in skus)

    return forget


def create_app(services: ShopServices, settings: Settings) -> ASGIApp:
    cache: ResponseCache | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # read the version and the stock once before serving, so the first poll does not empty a cache being filled
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await services.catalog_version.check()
                await services.stock_watch.check()
                await services.session_watch.check()  # until it has read once, tokens are checked in the store
        watcher = asyncio.create_task(services.catalog_version.run(), name="catalog-version")
        stock_watch = asyncio.create_task(services.stock_watch.run(), name="stock-watch")
        session_watch = asyncio.create_task(services.session_watch.run(), name="session-watch")
        telemetry = Telemetry(services=services, settings=settings, middleware=logged, cache=cache)
        telemetry.start()
        try:
            yield
        finally:
            await telemetry.stop()  # flushes the request log, so before the stores close
            # let the poll in progress finish: a query cancelled halfway can leave a MySQL connection that
            # never answers again, and then closing the pool hangs; cancel only if it does not stop in time
            services.catalog_version.stop()
            services.stock_watch.stop()
            services.session_watch.stop()
            polls = {watcher, stock_watch, session_watch}
            stuck = (await asyncio.wait(polls, timeout=5))[1]
            for poll in stuck:
                poll.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=5)
            # a stuck connection must not keep a stopping worker alive
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await services.close()

    app = FastAPI(title="shop", version=shop.__version__, default_response_class=JSON, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs is the shop's own page (web/docs_page.py)
    app.state.services = services
    app.state.settings = settings
    problems.install(app)
    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(catalog_admin.router)
    app.include_router(auth.router)
    app.include_router(phone.router)
    for commerce in (carts, checkout, card_payments, orders, payments, vouchers):
        app.include_router(commerce.router)
    assets = site.install(app, settings)
    admin.install(app)
    csp = content_security_policy([assets.cdn_origin] if assets.cdn_origin else [],
                                  stripe=settings.payment_gateway == "stripe")
    app.include_router(media.router)
    app.include_router(docs_page.router)
    app.include_router(spa_site.router)
    if settings.metrics:
        app.include_router(metrics.router)
    openapi_document.install(app)

    outer: ASGIApp = SecurityHeaders(InputPolicy(app), csp=csp)
    if settings.response_cache and settings.response_cache_entries > 0:
        # outside the security headers: an entry keeps the headers as they were sent, so a hit adds none
        cache = ResponseCache(outer, prefixes=CACHED_PREFIXES, max_entries=settings.response_cache_entries,
                              fresh_for=FRESH_FOR_S)
        services.catalog_version.subscribe(cache.clear)
        services.catalog_version.on_checked(cache.freshness("catalogue version"))
        services.stock_watch.subscribe(_stock_moved(cache))
        services.stock_watch.on_checked(cache.freshness("stock"))
        app.state.response_cache = cache
        outer = cache
    if settings.cors_origins:
        # outside the response cache, which does not vary by Origin
        outer = CORSMiddleware(outer, **spa_site.cors_middleware_kwargs(settings.cors_origins))
    # outermost: a cache hit and a CORS preflight are logged and counted like any other request
    logged = RequestLogMiddleware(outer, writer=services.request_log, trusted=TrustedProxies(settings.trusted_proxies),
                                  pool=settings.pool, count=settings.metrics)
    app.state.request_counts = logged.counts  # a scrape reports its own worker's requests in flight as they are now
    return logged
