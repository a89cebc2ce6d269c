"""The composition root: builds engines, adapters and services from settings. Nothing connects here."""

from __future__ import annotations

from shop.config import STORES, Settings
from shop.infrastructure.db.engines import Databases, SqlStoreProbe
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.posts.catalog import SqlCatalog
from shop.services.catalog import CatalogService
from shop.services.catalog_version import CatalogVersionWatcher
from shop.services.shop import ShopServices
from shop.web.app import ASGIApp, create_app


def build_databases(settings: Settings) -> Databases:
    return Databases({store: settings.store_url(store) for store in STORES},
                     pool_size=settings.db_pool_size, connect_timeout=settings.db_connect_timeout)


def build_catalog(settings: Settings, databases: Databases) -> SqlCatalog:
    return SqlCatalog(databases.store("posts"), currency=settings.currency)


def build_services(settings: Settings, databases: Databases | None = None) -> ShopServices:
    databases = databases or build_databases(settings)
    catalog_store = build_catalog(settings, databases)
    catalog = CatalogService(reader=catalog_store, stock=SqlStock(databases.store("main")))
    watcher = CatalogVersionWatcher(catalog_store, interval=settings.catalog_poll_interval)
    watcher.subscribe(catalog_store.catalog_changed)
    watcher.subscribe(catalog.catalog_changed)
    probes = [SqlStoreProbe(databases, store) for store in STORES]
    return ShopServices(catalog=catalog, catalog_version=watcher, stores=probes, close=databases.dispose)


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The app gunicorn's workers serve (`shop.bootstrap:create_asgi_app()`)."""
    settings = settings or Settings()
    return create_app(build_services(settings), settings)
