"""What the edges (web, CLI, workers) are handed by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from shop.services.account_flows import AccountFlows
from shop.services.auth import AuthService
from shop.services.business import BusinessFigures
from shop.services.card_payments import CardPayments
from shop.services.cart import CartService
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin
from shop.services.catalog_staff import CatalogStaff
from shop.services.catalog_version import CatalogVersionWatcher
from shop.services.checkout import CheckoutService
from shop.services.customers import Customers
from shop.services.idempotency import Idempotency
from shop.services.order_desk import OrderDesk
from shop.services.order_payments import OrderPayments
from shop.services.orders import OrderService
from shop.services.phone_verification import PhoneVerification
from shop.services.ports import StoreProbe
from shop.services.process_status import ProcessBoard
from shop.services.request_log import RequestLogWriter
from shop.services.session_watch import SessionWatcher
from shop.services.stock_watch import StockWatcher
from shop.services.two_factor import TwoFactor
from shop.services.uploads import ProductImages
from shop.services.usage import UsageService
from shop.services.vouchers import Vouchers
from shop.services.web_sessions import WebSessions


@dataclass(frozen=True, slots=True)
class ShopServices:
    catalog: CatalogService
    catalog_admin: CatalogAdmin
    auth: AuthService
    accounts: AccountFlows
    two_factor: TwoFactor
    phone: PhoneVerification
    carts: CartService
    checkout: CheckoutService
    orders: OrderService
    order_payments: OrderPayments
    card_payments: CardPayments
    vouchers: Vouchers
    catalog_staff: CatalogStaff
    customers: Customers
    order_desk: OrderDesk
    product_images: ProductImages
    idempotency: Idempotency
    web_sessions: WebSessions
    catalog_version: CatalogVersionWatcher
    stock_watch: StockWatcher
    session_watch: SessionWatcher
    processes: ProcessBoard
    usage: UsageService
    business: BusinessFigures
    stores: Sequence[StoreProbe]
    close: Callable[[], Awaitable[None]]
    request_log: RequestLogWriter | None = None  # None: SHOP_REQUEST_LOG=false
    db_pools: Callable[[], Mapping[str, int]] = dict  # checked-out connections per store, for the metrics
    outbox_depth: Callable[[], Awaitable[Mapping[str, int]]] | None = None  # jobs waiting per kind, for the metrics
