"""The composition root: builds engines, adapters and services from settings. Nothing connects here."""

from __future__ import annotations

from datetime import timedelta

from shop.config import STORES, Settings
from shop.infrastructure.db.engines import Databases, SqlStoreProbe
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.posts.catalog import SqlCatalog
from shop.infrastructure.db.users.accounts import SqlRefreshTokens, SqlUsers
from shop.infrastructure.security.passwords import Argon2Passwords
from shop.infrastructure.security.throttle import AttemptThrottle
from shop.infrastructure.security.tokens import JwtAccessTokens
from shop.services.auth import AuthService
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin
from shop.services.catalog_version import CatalogVersionWatcher
from shop.services.shop import ShopServices
from shop.web.app import ASGIApp, create_app


def build_databases(settings: Settings) -> Databases:
    return Databases({store: settings.store_url(store) for store in STORES},
                     pool_size=settings.db_pool_size, connect_timeout=settings.db_connect_timeout)


def build_catalog(settings: Settings, databases: Databases) -> SqlCatalog:
    return SqlCatalog(databases.store("posts"), currency=settings.currency)


def build_auth(settings: Settings, databases: Databases) -> AuthService:
    users = databases.store("users")
    return AuthService(
        users=SqlUsers(users), refresh_tokens=SqlRefreshTokens(users), hasher=Argon2Passwords(),
        access=JwtAccessTokens(settings.signing_secret(), ttl_seconds=settings.access_token_seconds),
        throttle=AttemptThrottle({"account": settings.login_limit_account, "client": settings.login_limit_client},
                                 redis_url=settings.redis_url),
        refresh_ttl=timedelta(days=settings.refresh_token_days))


def build_services(settings: Settings, databases: Databases | None = None) -> ShopServices:
    databases = databases or build_databases(settings)
    catalog_store = build_catalog(settings, databases)
    stock = SqlStock(databases.store("main"))
    catalog = CatalogService(reader=catalog_store, stock=stock)
    admin = CatalogAdmin(products=catalog_store, stock=stock, catalog=catalog, currency=settings.currency)
    watcher = CatalogVersionWatcher(catalog_store, interval=settings.catalog_poll_interval)
    watcher.subscribe(catalog_store.catalog_changed)
    watcher.subscribe(catalog.catalog_changed)
    probes = [SqlStoreProbe(databases, store) for store in STORES]
    return ShopServices(catalog=catalog, catalog_admin=admin, auth=build_auth(settings, databases),
                        catalog_version=watcher, stores=probes, close=databases.dispose)


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The app gunicorn's workers serve (`shop.bootstrap:create_asgi_app()`)."""
    settings = settings or Settings()
    return create_app(build_services(settings), settings)
